//! The routes: round trip (JSON or streamed), compress, decompress, health and
//! metrics; plus the fallbacks and the middleware that counts every answer.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use c3_core::report::{RoundtripInfo, roundtrip_json};
use c3_core::{Cascade, DecoderPrompt};
use c3_runtime::{CompressTask, DecompressTask, RoundtripTask, latent_file};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::sse;
use crate::state::AppState;

/// The back-end name in round-trip summaries (as `c3 roundtrip --model` prints it).
pub const BACKEND: &str = "onnxruntime";

/// Marks a streamed response: its duration is recorded when the stream ends, not
/// when the headers leave.
#[derive(Clone, Copy)]
pub(crate) struct Streaming;

type Shared = State<Arc<AppState>>;

/// Runs CPU-heavy work (tokenizing megabytes, latent-file parsing, edit distances)
/// off the async threads.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker task failed: {e}")))
}

fn core_error(e: c3_core::Error) -> ApiError {
    match e {
        c3_core::Error::Input(m) => ApiError::bad_request(m),
        e => ApiError::internal(e),
    }
}

/// The decoder prompt of a request's `prompt` field: the model's own when absent.
fn request_prompt(
    st: &AppState,
    prompt: Option<&str>,
) -> Result<Option<Arc<DecoderPrompt>>, ApiError> {
    let Some(task) = prompt else {
        return Ok(None);
    };
    let p = st
        .rt
        .prompt_for(Some(task))
        .map_err(|e| match e.is_client_error() {
            true => ApiError::bad_request(format!("`prompt`: {e}")),
            false => ApiError::from(e),
        })?;
    Ok(Some(Arc::new(p)))
}

fn check_limit(max_new_tokens: Option<usize>) -> Result<(), ApiError> {
    if max_new_tokens == Some(0) {
        return Err(ApiError::bad_request("`max_new_tokens` must be at least 1"));
    }
    Ok(())
}

/// `POST /v1/roundtrip`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundtripRequest {
    pub text: String,
    #[serde(default)]
    pub max_new_tokens: Option<usize>,
    #[serde(default)]
    pub stream: bool,
    /// The task after the latents in the decoder prompt, for a model trained to
    /// answer it; default: the prompt the model was exported with.
    #[serde(default)]
    pub prompt: Option<String>,
}

pub(crate) async fn roundtrip(
    State(st): Shared,
    ApiJson(req): ApiJson<RoundtripRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let deadline = tokio::time::Instant::now() + st.options.request_timeout;
    st.check_open()?;
    check_limit(req.max_new_tokens)?;
    if req.text.trim().is_empty() {
        return Err(ApiError::bad_request("`text` is empty"));
    }
    let prompt = request_prompt(&st, req.prompt.as_deref())?;
    let (text, ids) = {
        let st = st.clone();
        blocking(move || {
            let ids = c3_core::prompt::document_ids(&st.rt.tokenizer, &req.text);
            (req.text, ids)
        })
        .await?
    };
    let ids = ids.map_err(core_error)?;
    let max = st.options.max_text_tokens;
    if ids.len() > max {
        return Err(ApiError::bad_request(format!(
            "`text` has {} tokens, over this server's limit of {max} for a round trip (--max-text-tokens)",
            ids.len()
        )));
    }
    let windows = st.plan.split(0, ids.len());
    let task = RoundtripTask {
        text_ids: ids,
        prompt,
        cfg: st.generation.clone(),
        limit: req.max_new_tokens,
    };
    let job = st.submit(task)?;
    if req.stream {
        return Ok(sse::roundtrip(st, text, windows, job, arrived, deadline));
    }
    let r = job.outcome(&st, arrived, deadline).await?;
    let summary = blocking(move || summary(&st, &r, &text)).await?;
    Ok(Json(summary).into_response())
}

/// The round trip's JSON summary, as `c3 roundtrip --json` prints it (the Qwen
/// token count needs the Qwen vocabulary, which a server does not carry: null).
pub(crate) fn summary(st: &AppState, r: &c3_core::Reconstruction, text: &str) -> Value {
    roundtrip_json(
        r,
        &RoundtripInfo {
            input: text,
            window: st.plan.window,
            n_latents: st.rt.n_latents(),
            qwen_text_tokens: None,
            backend: BACKEND,
        },
    )
}

/// `POST /v1/compress`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressRequest {
    pub documents: Vec<String>,
    /// Names recorded in the latent file (`c3 compress` records its file arguments);
    /// default `0`, `1`, ...
    #[serde(default)]
    pub sources: Option<Vec<String>>,
}

pub(crate) async fn compress(
    State(st): Shared,
    ApiJson(req): ApiJson<CompressRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let deadline = tokio::time::Instant::now() + st.options.request_timeout;
    st.check_open()?;
    if req.documents.is_empty() {
        return Err(ApiError::bad_request("`documents` is empty"));
    }
    if let Some(i) = req.documents.iter().position(|d| d.trim().is_empty()) {
        return Err(ApiError::bad_request(format!("document {i} is empty")));
    }
    let sources = match req.sources {
        Some(s) if s.len() != req.documents.len() => {
            return Err(ApiError::bad_request(format!(
                "{} `sources` for {} documents",
                s.len(),
                req.documents.len()
            )));
        }
        Some(s) => s,
        None => (0..req.documents.len()).map(|i| i.to_string()).collect(),
    };
    let docs = {
        let st = st.clone();
        blocking(move || {
            (req.documents.iter())
                .map(|d| c3_core::prompt::document_ids(&st.rt.tokenizer, d))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?
        .map_err(core_error)?
    };
    let job = st.submit(CompressTask { docs })?;
    let c = job.outcome(&st, arrived, deadline).await?;
    let body = blocking(move || {
        let bytes = latent_file::to_bytes(&st.rt, &c, &sources)
            .map_err(|e| ApiError::internal(format!("writing the latent file: {e:#}")))?;
        let windows: Vec<usize> = (0..c.doc_tokens.len())
            .map(|d| c.windows.iter().filter(|w| w.doc == d).count())
            .collect();
        Ok::<_, ApiError>(json!({
            "latent_file": BASE64.encode(bytes),
            "n_latents": st.rt.n_latents(),
            "text_tokens": c.doc_tokens,
            "windows": windows,
        }))
    })
    .await??;
    Ok(Json(body).into_response())
}

/// `POST /v1/decompress`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecompressRequest {
    pub latent_file: String,
    #[serde(default)]
    pub max_new_tokens: Option<usize>,
    /// As in [`RoundtripRequest::prompt`].
    #[serde(default)]
    pub prompt: Option<String>,
}

pub(crate) async fn decompress(
    State(st): Shared,
    ApiJson(req): ApiJson<DecompressRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let deadline = tokio::time::Instant::now() + st.options.request_timeout;
    st.check_open()?;
    check_limit(req.max_new_tokens)?;
    let prompt = request_prompt(&st, req.prompt.as_deref())?;
    // The upload is untrusted: latent_file::from_bytes checks the header, shapes,
    // dtype, values, the window index and that this export made it.
    let file = {
        let st = st.clone();
        blocking(move || {
            let bytes = BASE64
                .decode(req.latent_file.trim())
                .map_err(|e| ApiError::bad_request(format!("`latent_file` is not base64: {e}")))?;
            latent_file::from_bytes(&bytes, &st.rt)
                .map_err(|e| ApiError::bad_request(format!("`latent_file`: {e:#}")))
        })
        .await??
    };
    let task = DecompressTask {
        compressed: file.compressed,
        prompt,
        cfg: st.generation.clone(),
        limit: req.max_new_tokens,
    };
    let job = st.submit(task)?;
    let docs = job.outcome(&st, arrived, deadline).await?.docs;
    let texts = (docs.iter())
        .map(|ids| st.rt.tokenizer.decode_text(ids))
        .collect::<Result<Vec<_>, _>>()
        .map_err(core_error)?;
    Ok(Json(json!({ "texts": texts, "sources": file.sources })).into_response())
}

/// `GET /healthz`: 200 with the model's identity once loaded, 503 while shutting down.
pub(crate) async fn healthz(State(st): Shared) -> Response {
    let m = &st.rt.manifest;
    let status = if st.is_shutting_down() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ok" } else { "shutting_down" },
        // The export's folder name, not its path: the host's layout is not the
        // client's business.
        "model": st.rt.dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        "manifest_sha256": st.rt.manifest_sha256,
        "dtype": m.dtype,
        "kv_cache": m.kv_cache.name(),
        "n_latents": m.n_latents,
        "hidden": m.hidden,
        "window": st.plan.window,
        "provider": st.rt.options.provider.name(),
        "max_batch": st.scheduler_options.max_batch,
        "max_queue": st.scheduler_options.max_queue,
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(st): Shared) -> Response {
    let text = st.metrics.render(&st.scheduler.stats());
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", uri.path()),
    )
}

/// Counts every answer by route and status, and times it (streams time themselves).
pub(crate) async fn track(State(st): Shared, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let t0 = Instant::now();
    let resp = next.run(req).await;
    st.metrics.request(&route, resp.status().as_u16());
    if resp.extensions().get::<Streaming>().is_none() {
        st.metrics.duration(&route, t0.elapsed());
    }
    resp
}
