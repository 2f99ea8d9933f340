//! The fuzz targets: every parser of bytes c3 takes from outside, each with seeds
//! (valid inputs the mutations start from) and the largest single allocation an
//! input may cause. A target's `run` may return an error for any input (that is the
//! parser doing its job); a panic, a hang or an allocation past the limit is a
//! finding.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use c3_core::checkpoint::TensorStore;
use c3_core::{C3Config, C3Tokenizer, ExportManifest, MANIFEST_FILE, contract};
use c3_runtime::{C3Runtime, RuntimeOptions, SchedulerOptions, latent_file};
use c3_serve::{AppState, ServeOptions};

/// One parser under test.
pub struct Target {
    pub name: &'static str,
    pub what: &'static str,
    pub seeds: Vec<Vec<u8>>,
    /// Largest single allocation (bytes) an input may cause.
    pub alloc_limit: usize,
    pub run: Box<dyn Fn(&[u8])>,
}

/// What the targets share: a scratch folder, the tiny fixture exported and loaded.
pub struct Context {
    pub dir: tempfile::TempDir,
    pub fixture: PathBuf,
    pub export: PathBuf,
    pub rt: Arc<C3Runtime>,
}

const MIB: usize = 1 << 20;

impl Context {
    /// Exports the tiny fixture into a scratch folder and loads it.
    pub fn new() -> Result<Self, String> {
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny");
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let export = dir.path().join("export");
        c3_export::run(&c3_export::ExportOptions::new(&fixture, &export))
            .map_err(|e| format!("exporting the fixture: {e:#}"))?;
        let options = RuntimeOptions {
            window: Some(24),
            ..Default::default()
        };
        let rt = C3Runtime::load(&export, options).map_err(|e| e.to_string())?;
        Ok(Context {
            dir,
            fixture,
            export,
            rt: Arc::new(rt),
        })
    }

    fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("scratch folder");
        p
    }
}

const TEXTS: &[&str] = &[
    "A short document.",
    "Latent files remember their export: documents of any length, window by window, \
     each compressed to its own latents and decoded back in order.",
    "  Grüße aus Köln — 日本語のテキスト, αβγ 🦀 and <|im_start|> typed by a user.\n",
];

/// Every target, built on `ctx`, its seeds joined by the committed corpus
/// (`fuzz/corpus/NAME/*`: inputs worth keeping, such as past findings' fixes).
pub fn all(ctx: &Context) -> Vec<Target> {
    let mut all = vec![
        latent_file_target(ctx),
        manifest_target(ctx),
        config_target(ctx),
        safetensors_target(ctx),
        tokenizer_target(ctx),
        http_target(ctx, "http-roundtrip", "/v1/roundtrip"),
        http_target(ctx, "http-compress", "/v1/compress"),
        http_target(ctx, "http-decompress", "/v1/decompress"),
    ];
    for t in &mut all {
        let Ok(entries) = std::fs::read_dir(corpus_dir(t.name)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if let Ok(b) = std::fs::read(&f)
                && !t.seeds.contains(&b)
            {
                t.seeds.push(b);
            }
        }
    }
    all
}

fn latent_file_target(ctx: &Context) -> Target {
    let rt = ctx.rt.clone();
    let ids: Vec<Vec<u32>> = TEXTS.iter().map(|t| rt.document_ids(t).unwrap()).collect();
    let seeds = [&ids[..1], &ids[1..], &ids[..]]
        .iter()
        .map(|docs| {
            let c = rt.compress_documents(docs).unwrap();
            let sources: Vec<String> = (0..docs.len()).map(|i| format!("doc {i}")).collect();
            latent_file::to_bytes(&rt, &c, &sources).unwrap()
        })
        .collect();
    Target {
        name: "latent-file",
        what: "c3_runtime::latent_file::from_bytes (safetensors header, tensor table, c3.windows index, values)",
        seeds,
        alloc_limit: 64 * MIB,
        run: Box::new(move |b| {
            let _ = latent_file::from_bytes(b, &rt);
        }),
    }
}

fn manifest_target(ctx: &Context) -> Target {
    let seed = std::fs::read(ctx.export.join(MANIFEST_FILE)).unwrap();
    // The real export's files beside the manifest, so name checks see real files.
    let dir = ctx.scratch("manifest");
    for e in std::fs::read_dir(&ctx.export).unwrap().flatten() {
        let _ = std::fs::copy(e.path(), dir.join(e.file_name()));
    }
    Target {
        name: "manifest",
        what: "ExportManifest::load (JSON, format, file names) then the contract check and the window plan",
        seeds: vec![seed],
        alloc_limit: 64 * MIB,
        run: Box::new(move |b| {
            std::fs::write(dir.join(MANIFEST_FILE), b).unwrap();
            if let Ok((m, _)) = ExportManifest::load(&dir) {
                let _ = contract::check(&m);
                let _ = m.window_plan(None);
                let _ = m.window_plan(Some(7));
            }
        }),
    }
}

fn config_target(ctx: &Context) -> Target {
    let dir = ctx.scratch("config");
    std::fs::create_dir_all(dir.join("llm1")).unwrap();
    let root = std::fs::read(ctx.fixture.join("config.json")).unwrap();
    let enc = std::fs::read(ctx.fixture.join("llm1/config.json")).unwrap();
    // First byte: which file the rest replaces (even: the root config, odd: llm1's).
    let seeds = vec![[&[0u8][..], &root].concat(), [&[1u8][..], &enc].concat()];
    Target {
        name: "config",
        what: "C3Config::load (both config.json files: fields, ranges, consistency)",
        seeds,
        alloc_limit: 64 * MIB,
        run: Box::new(move |b| {
            let Some((&which, rest)) = b.split_first() else {
                return;
            };
            let (mutated, other) = match which % 2 {
                0 => ("config.json", ("llm1/config.json", &enc)),
                _ => ("llm1/config.json", ("config.json", &root)),
            };
            std::fs::write(dir.join(mutated), rest).unwrap();
            std::fs::write(dir.join(other.0), other.1).unwrap();
            if let Ok(cfg) = C3Config::load(&dir) {
                let _ = cfg.window_plan(None, 0);
                let _ = cfg.n_latents();
                let _ = cfg.max_text_tokens();
            }
        }),
    }
}

/// Small safetensors files in the checkpoint layout, built here.
fn safetensors_seeds() -> Vec<Vec<u8>> {
    use safetensors::tensor::TensorView;
    use safetensors::{Dtype, serialize};
    let f32s: Vec<u8> = (0..24)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let halves: Vec<u8> = (0..8).flat_map(|i| (i as u16 * 3).to_le_bytes()).collect();
    let a = TensorView::new(Dtype::F32, vec![4, 6], &f32s).unwrap();
    let b = TensorView::new(Dtype::BF16, vec![2, 4], &halves).unwrap();
    let c = TensorView::new(Dtype::F16, vec![8], &halves).unwrap();
    let meta = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    vec![
        serialize([("model.embed_tokens.weight", a.clone())], meta.clone()).unwrap(),
        serialize(
            [
                ("model.layers.0.w", a),
                ("model.norm.weight", b),
                ("lm_head.weight", c),
            ],
            meta,
        )
        .unwrap(),
    ]
}

fn safetensors_target(ctx: &Context) -> Target {
    let dir = ctx.scratch("safetensors");
    Target {
        name: "safetensors",
        what: "TensorStore::open (checkpoint header, dtypes, offsets) and reading every tensor",
        seeds: safetensors_seeds(),
        alloc_limit: 64 * MIB,
        run: Box::new(move |b| {
            std::fs::write(dir.join("model.safetensors"), b).unwrap();
            if let Ok(store) = TensorStore::open(&dir) {
                let names: Vec<String> = store.names().iter().map(|s| s.to_string()).collect();
                for n in names {
                    if let Ok(t) = store.get(&n) {
                        let _ = t.to_f32();
                    }
                }
            }
        }),
    }
}

fn tokenizer_target(ctx: &Context) -> Target {
    let tok: C3Tokenizer = C3Tokenizer::from_file(&ctx.fixture.join("tokenizer.json")).unwrap();
    let seeds = TEXTS.iter().map(|t| t.as_bytes().to_vec()).collect();
    Target {
        name: "tokenizer",
        what: "C3Tokenizer encode/decode of any text (decode(encode(s)) == s) and decode of any ids",
        seeds,
        alloc_limit: 64 * MIB,
        run: Box::new(move |b| {
            let text = String::from_utf8_lossy(b);
            if let Ok(ids) = tok.encode(&text) {
                let back = tok.decode(&ids).expect("ids the tokenizer made decode");
                assert_eq!(back, text, "decode(encode(text)) differs from the text");
            }
            let ids: Vec<u32> = b
                .chunks(2)
                .map(|c| u32::from(c[0]) | u32::from(*c.get(1).unwrap_or(&0)) << 8)
                .collect();
            let _ = tok.decode(&ids);
        }),
    }
}

/// A route of the service, called in-process through its router.
fn http_target(ctx: &Context, name: &'static str, route: &'static str) -> Target {
    use tower::ServiceExt;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sched = SchedulerOptions {
        max_batch: 4,
        ..Default::default()
    };
    let serve = ServeOptions {
        max_text_tokens: 256,
        request_timeout: std::time::Duration::from_secs(10),
        ..Default::default()
    };
    let state = Arc::new(AppState::new(ctx.rt.clone(), sched, serve).unwrap());
    let app = c3_serve::router(state);
    let latent = {
        let rt = &ctx.rt;
        let ids = vec![rt.document_ids(TEXTS[1]).unwrap()];
        let c = rt.compress_documents(&ids).unwrap();
        let bytes = latent_file::to_bytes(rt, &c, &["0".into()]).unwrap();
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
    };
    let seeds: Vec<String> = match route {
        "/v1/roundtrip" => vec![
            r#"{"text": "Fuzzing the service, one body at a time.", "max_new_tokens": 8}"#.into(),
            r#"{"text": "Streamed.", "stream": true, "max_new_tokens": 4, "prompt": "Summarize: "}"#
                .into(),
        ],
        "/v1/compress" => {
            vec![r#"{"documents": ["one", "two documents"], "sources": ["a", "b"]}"#.into()]
        }
        _ => vec![format!(
            r#"{{"latent_file": "{latent}", "max_new_tokens": 6, "prompt": "Repeat the text: "}}"#
        )],
    };
    Target {
        name,
        what: "the service's request bodies, through its router: extraction, validation, the scheduler",
        seeds: seeds.into_iter().map(String::into_bytes).collect(),
        alloc_limit: 64 * MIB,
        run: Box::new(move |b| {
            let req = axum::http::Request::builder()
                .method("POST")
                .uri(route)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(b.to_vec()))
                .unwrap();
            tokio.block_on(async {
                let resp = app.clone().oneshot(req).await.unwrap();
                let status = resp.status();
                // Every answer is complete: a streamed one is read to its end.
                let body = axum::body::to_bytes(resp.into_body(), 1 << 24)
                    .await
                    .unwrap();
                assert!(
                    !status.is_server_error(),
                    "{status} for a client's body: {}",
                    String::from_utf8_lossy(&body)
                );
            });
        }),
    }
}

/// The folder a target's committed seeds live in (`fuzz/corpus/NAME`).
pub fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name)
}
