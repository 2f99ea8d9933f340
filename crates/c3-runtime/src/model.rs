//! A loaded export: its sessions (sessions.rs), the manifest, the tokenizer, the
//! window plan and the prompt, and the cascade's operations on top: compress,
//! prefill, generate (through a KV cache of decode/cache.rs).

use std::ops::Range;
use std::path::{Path, PathBuf};

use c3_core::prompt::document_ids;
use c3_core::window::decode_windows;
use c3_core::{
    C3Tokenizer, Cascade, DecoderPrompt, Decompressed, ExportManifest, FileCheck, Generated,
    GenerationConfig, PromptTemplate, RowGreedy, Window, WindowPlan, contract,
};

use crate::decode::cache::KvCache;
use crate::decode::{DecodeState, Decoder, new_cache};
use crate::encoder_batches::{EncoderCost, plan};
use crate::error::{Error, Result, ensure};
use crate::latents::Latents;
use crate::options::RuntimeOptions;
use crate::provider::{Provider, check_export};
use crate::sessions::Sessions;
use crate::values::{Embeds, float_value, to_f32};

/// Documents compressed window by window (c3_core::window).
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    /// Every document's windows, in document order.
    pub windows: Vec<Window>,
    /// One entry per window.
    pub latents: Vec<Latents>,
    /// Each document's length in the model's tokens.
    pub doc_tokens: Vec<usize>,
}

/// An export folder loaded into ONNX Runtime. `Send + Sync`; see the crate docs.
pub struct C3Runtime {
    pub dir: PathBuf,
    pub manifest: ExportManifest,
    /// sha256 of `c3-export.json`: the identity latent files and plans record.
    pub manifest_sha256: String,
    pub tokenizer: C3Tokenizer,
    pub options: RuntimeOptions,
    /// How documents are windowed: the export's window or `options.window`, fixed
    /// at load and handed to every front-end ([`C3Runtime::plan`]).
    plan: WindowPlan,
    /// The prompt the model was trained with, as the manifest records it (the
    /// decoder keeps the prompt built from it).
    template: PromptTemplate,
    generation: GenerationConfig,
    /// The sessions and the decoding layer on them (decode.rs).
    pub(crate) decoder: Decoder,
    /// The encoder's activation cost per document, from the manifest (read once).
    encoder_cost: Option<EncoderCost>,
}

impl C3Runtime {
    /// Loads `dir` (made by `c3 export`), checking file hashes, the I/O contract and
    /// that the copied tokenizer rebuilds the manifest's prompt from its template.
    pub fn load(dir: &Path, options: RuntimeOptions) -> Result<Self> {
        // Untrusted until checked: names (in ExportManifest::load, before anything is
        // opened), the provider fit, hashes, then the ONNX files' external-data names.
        let (manifest, manifest_sha256) = ExportManifest::load(dir)?;
        let options = with_engine(options, &manifest_sha256)?;
        check_export(dir, &options.provider, manifest.kv_cache, manifest.dtype)?;
        if options.provider != Provider::Cpu {
            if let Err(e) = crate::cuda_libs::preload(options.cuda_libs.as_deref()) {
                return Err(Error::Ort(format!("CUDA libraries: {e}")));
            }
        }
        let check = match options.verify_files {
            true => FileCheck::Full,
            false => FileCheck::Quick,
        };
        manifest.verify_files(dir, check)?;
        contract::check(&manifest).map_err(|e| {
            Error::export(dir, format!("manifest does not match this runtime: {e}"))
        })?;
        // The file the manifest names (and hashed), not whichever one the folder has.
        let tokenizer = C3Tokenizer::from_file(&dir.join(&manifest.tokenizer.file))?;
        let (sp, want) = (*tokenizer.specials(), manifest.special_tokens);
        if sp != want {
            return Err(Error::export(
                tokenizer.path(),
                format!("special token ids {sp:?} differ from the manifest's {want:?}"),
            ));
        }
        let template = PromptTemplate::parse(&manifest.prompt.template)
            .map_err(|e| Error::export(dir, format!("c3-export.json: {e}")))?;
        let prompt = DecoderPrompt::build(&tokenizer, manifest.n_latents, &template)?;
        if prompt.ids != manifest.prompt.ids || prompt.latent_start != manifest.prompt.latent_start
        {
            return Err(Error::export(
                tokenizer.path(),
                "the tokenizer builds a different decoder prompt than the manifest records",
            ));
        }
        let plan = manifest.window_plan(options.window)?;
        let sessions = Sessions::open(dir, &manifest, &options)?;
        let decoder = Decoder::new(sessions, &manifest, options.provider.clone(), prompt);
        Ok(C3Runtime {
            dir: dir.to_path_buf(),
            encoder_cost: EncoderCost::new(&manifest),
            generation: manifest.generation.clone(),
            manifest,
            manifest_sha256,
            tokenizer,
            options,
            plan,
            template,
            decoder,
        })
    }

    /// N, the latents per document.
    pub fn n_latents(&self) -> usize {
        self.manifest.n_latents
    }

    /// How documents are windowed (the export's window, or `options.window`).
    pub fn plan(&self) -> &WindowPlan {
        &self.plan
    }

    /// The decoder prompt the model was trained with (from the manifest).
    pub fn prompt(&self) -> &DecoderPrompt {
        &self.decoder.prompt
    }

    /// An empty cache for `batch` rows that will hold at most `capacity` positions
    /// (prompt + generated; at most the decoder context): what benchmarks and tools
    /// drive with [`DecodeState::forward`]. A shared-buffer export allocates its
    /// buffers here, once.
    pub fn decode_state(&self, batch: usize, capacity: usize) -> Result<DecodeState<'_>> {
        self.decoder.decode_state(batch, capacity)
    }

    /// A KV cache of `slots` rows of `capacity` positions for this export's contract
    /// (what [`C3Runtime::generate`] and the scheduler decode with).
    pub(crate) fn new_cache(
        &self,
        slots: usize,
        capacity: usize,
        reuse_prefix: bool,
    ) -> Result<Box<dyn KvCache + '_>> {
        new_cache(&self.decoder, slots, capacity, reuse_prefix)
    }

    /// The manifest's generation settings.
    pub fn reference_generation(&self) -> GenerationConfig {
        self.generation.clone()
    }

    /// Tokenizes a document of any length, refusing empty text.
    pub fn document_ids(&self, text: &str) -> Result<Vec<u32>> {
        Ok(document_ids(&self.tokenizer, text)?)
    }

    /// Compresses tokenized documents of any length window by window: every window
    /// of every document goes through [`C3Runtime::compress`]'s length-sorted batches.
    pub fn compress_documents(&self, docs: &[Vec<u32>]) -> Result<Compressed> {
        for (i, d) in docs.iter().enumerate() {
            ensure!(!d.is_empty(), Input, "document {i} is empty");
        }
        let (windows, inputs) = self.plan.split_inputs(docs);
        Ok(Compressed {
            latents: self.compress(&inputs)?,
            windows,
            doc_tokens: docs.iter().map(Vec::len).collect(),
        })
    }

    /// Decodes every window of every document after `prompt` as batched decodes and
    /// joins each document's windows; `limit` caps each window's new tokens.
    pub fn decompress(
        &self,
        c: &Compressed,
        prompt: &DecoderPrompt,
        cfg: &GenerationConfig,
        limit: Option<usize>,
    ) -> Result<Decompressed> {
        let rows: Vec<&Latents> = c.latents.iter().collect();
        let (docs, reports) =
            decode_windows(&c.windows, c.doc_tokens.len(), cfg, limit, |range, cfg| {
                self.generate(&rows[range], prompt, cfg, &mut |_, _| {})
            })?;
        Ok(Decompressed { docs, reports })
    }

    /// Latents of tokenized documents, in input order. Documents are sorted by length
    /// (to limit padding work) and encoded in runs sized by the memory budget
    /// (`encoder_memory`, at most `batch_size` documents), left-padded.
    pub fn compress(&self, docs: &[Vec<u32>]) -> Result<Vec<Latents>> {
        let max = self.manifest.max_text_tokens;
        let vocab = self.tokenizer.vocab_size();
        for (i, d) in docs.iter().enumerate() {
            ensure!(!d.is_empty(), Input, "document {i} is empty");
            ensure!(
                d.len() <= max,
                Input,
                "document {i} has {} tokens, over the encoder's limit of {max}",
                d.len()
            );
            // The encoder's embedding lookup would fail on it, and fail the whole run.
            if let Some(t) = d.iter().find(|&&t| t as usize >= vocab) {
                return Err(Error::Input(format!(
                    "document {i} has token id {t}, outside the tokenizer's {vocab} ids"
                )));
            }
        }
        let mut order: Vec<usize> = (0..docs.len()).collect();
        order.sort_by_key(|&i| docs[i].len());
        let mut out: Vec<Option<Latents>> = vec![None; docs.len()];
        let lens: Vec<usize> = order.iter().map(|&i| docs[i].len()).collect();
        let sizes = plan(
            &lens,
            self.encoder_cost.as_ref(),
            self.options.encoder_memory,
            self.options.batch_size,
        );
        let mut rest = order.as_slice();
        for size in sizes {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| docs[i].as_slice()).collect();
            for (&i, lat) in chunk.iter().zip(self.encode_batch(&batch)?) {
                out[i] = Some(lat);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    fn encode_batch(&self, docs: &[&[u32]]) -> Result<Vec<Latents>> {
        let (b, l) = (docs.len(), docs.iter().map(|d| d.len()).max().unwrap_or(0));
        let mut ids = vec![self.manifest.pad_id as i64; b * l];
        let mut mask = vec![0i64; b * l];
        for (r, d) in docs.iter().enumerate() {
            let off = l - d.len();
            for (j, &t) in d.iter().enumerate() {
                ids[r * l + off + j] = t as i64;
                mask[r * l + off + j] = 1;
            }
        }
        let (shape, data) = self.decoder.sessions.encode(b, l, ids, mask)?;
        let (n, dim) = (self.manifest.n_latents, self.manifest.hidden);
        ensure!(
            shape == [b, n, dim],
            Internal,
            "encoder returned latents of shape {shape:?}, expected [{b}, {n}, {dim}]"
        );
        docs.iter()
            .enumerate()
            .map(|(r, d)| {
                let row = data[r * n * dim..(r + 1) * n * dim].to_vec();
                // An encoder that overflows (fp16) yields latents no decoder can use.
                Latents::new(n, dim, row, d.len())
                    .map_err(|e| Error::Internal(format!("the encoder's {e}")))
            })
            .collect()
    }

    /// The whole prompt's embeddings `[B, L, hidden]` with each row's latents in the
    /// N slots: one run's input for [`crate::DecodeState::forward`] (requests run the
    /// prompt in two parts, after the prompt-prefix cache).
    pub fn prefill_embeds(&self, latents: &[&Latents]) -> Result<Embeds> {
        let m = &self.manifest;
        let p = self.prompt();
        let (b, d, prompt_len) = (latents.len(), m.hidden, p.ids.len());
        for l in latents {
            l.check_shape(m.n_latents, d)?;
        }
        let dtype = self.decoder.sessions.dtype;
        let (_, base) = to_f32(&self.decoder.sessions.embed(&p.ids, 1)?.0, dtype)?;
        let mut embeds = Vec::with_capacity(b * prompt_len * d);
        for lat in latents {
            let mut row = base.clone();
            let s = p.latent_start * d;
            row[s..s + lat.data().len()].copy_from_slice(lat.data());
            embeds.extend(row);
        }
        float_value(dtype, &[b, prompt_len, d], &embeds).map(Embeds)
    }

    /// The prefill's last-position logits `[vocab]` (f32) for one document's latents:
    /// what verification compares with the reference (the decoder computes no
    /// others). `reuse_prefix`: start from the prompt-prefix cache, as requests do.
    pub fn prefill_logits(&self, latents: &Latents, reuse_prefix: bool) -> Result<Vec<f32>> {
        let prompt = self.prompt();
        let mut cache = self.new_cache(1, prompt.ids.len(), reuse_prefix)?;
        let mut out = Vec::new();
        cache.prefill(&[(0, latents, prompt)], &mut |_, l| out = l.to_vec())?;
        Ok(out)
    }

    /// Greedy decoding of each row's latents with a KV cache, after `prompt` (the
    /// model's own: [`C3Runtime::prompt`]). `on_token(row, id)` is called for every
    /// generated token as it comes. Rows that finish are no longer fed; the rest
    /// decode together (a run still spans every slot between the first and last live
    /// row, or a whole cohort of a concat export, so a finished row inside it costs a
    /// row of compute).
    pub fn generate(
        &self,
        latents: &[&Latents],
        prompt: &DecoderPrompt,
        cfg: &GenerationConfig,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Vec<Generated>> {
        let m = &self.manifest;
        let b = latents.len();
        ensure!(b > 0, Input, "no latents to decode");
        let prompt_len = prompt.ids.len();
        ensure!(
            prompt_len < m.max_context,
            Input,
            "the prompt ({prompt_len} tokens) fills the decoder context ({})",
            m.max_context
        );
        // Room for the prompt and every token the generation may add, within context.
        let capacity = (prompt_len + cfg.max_new_tokens).min(m.max_context);
        let mut cache = self.new_cache(b, capacity, self.options.reuse_prompt_prefix)?;
        let mut rows = vec![RowGreedy::new(&prompt.ids, m.max_context, cfg); b];
        // The token each row feeds next; None once it has ended.
        let mut next: Vec<Option<u32>> = vec![None; b];
        let mut pick = |next: &mut [Option<u32>], s: usize, logits: &[f32]| {
            next[s] = rows[s].pick(logits);
            if let Some(t) = next[s] {
                on_token(s, t);
            }
        };
        let slots: Vec<(usize, &Latents, &DecoderPrompt)> = latents
            .iter()
            .enumerate()
            .map(|(s, &l)| (s, l, prompt))
            .collect();
        cache.prefill(&slots, &mut |s, l| pick(&mut next, s, l))?;
        // RowGreedy ends every row by max_new_tokens, so the steps fit `capacity`.
        loop {
            let feed: Vec<(usize, u32)> = (0..b).filter_map(|s| Some((s, next[s]?))).collect();
            if feed.is_empty() {
                break;
            }
            cache.step(&feed, &mut |s, l| pick(&mut next, s, l))?;
        }
        Ok(rows.into_iter().map(RowGreedy::into_result).collect())
    }

    /// The export's float dtype (weights, latents, KV cache).
    #[cfg(feature = "bench")]
    pub(crate) fn dtype(&self) -> c3_core::DType {
        self.decoder.sessions.dtype
    }

    /// Embeddings of `shape` `[rows, seq, width]` from row-major f32 `data`, converted
    /// to the export dtype: what tests and tools feed [`DecodeState::forward`]
    /// directly. The width is not checked here: the decoder refuses one other than
    /// the export's `hidden` when it runs.
    ///
    /// [`DecodeState::forward`]: crate::DecodeState::forward
    pub fn embeds_from_f32(&self, shape: [usize; 3], data: &[f32]) -> Result<Embeds> {
        let want = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        ensure!(
            want == Some(data.len()),
            Input,
            "embeddings hold {} values, shape {shape:?} needs {}",
            data.len(),
            want.map_or("more than fit in memory".into(), |w| w.to_string())
        );
        float_value(self.decoder.sessions.dtype, &shape, data).map(Embeds)
    }
}

/// The ONNX Runtime cascade: what the CLI, the evaluation and the round trip run.
impl Cascade for C3Runtime {
    type Latents = Vec<Latents>;
    type Error = Error;

    fn backend(&self) -> &'static str {
        "onnxruntime"
    }
    fn tokenizer(&self) -> &C3Tokenizer {
        &self.tokenizer
    }
    fn n_latents(&self) -> usize {
        self.manifest.n_latents
    }
    fn plan(&self) -> &WindowPlan {
        &self.plan
    }
    fn generation(&self) -> &GenerationConfig {
        &self.generation
    }
    fn template(&self) -> &PromptTemplate {
        &self.template
    }
    fn prompt(&self) -> &DecoderPrompt {
        &self.decoder.prompt
    }
    fn encode(&self, windows: &[Vec<u32>]) -> Result<Vec<Latents>> {
        self.compress(windows)
    }
    fn decode(
        &self,
        latents: &Vec<Latents>,
        rows: Range<usize>,
        prompt: &DecoderPrompt,
        cfg: &GenerationConfig,
    ) -> Result<Vec<Generated>> {
        let refs: Vec<&Latents> = latents[rows].iter().collect();
        self.generate(&refs, prompt, cfg, &mut |_, _| {})
    }
}

/// Checks a TensorRT plan folder (`options.engine`) against the export's manifest hash
/// and this machine, and points the TensorRT provider at its engines. Here in the
/// library, so every front-end (CLI, service, bindings) refuses a stale or foreign
/// plan the same way, before any session exists.
fn with_engine(options: RuntimeOptions, manifest_sha256: &str) -> Result<RuntimeOptions> {
    let Some(plan) = &options.engine else {
        return Ok(options);
    };
    let engines = (plan.check)
        .check(&plan.dir, manifest_sha256)
        .map_err(Error::Engine)?;
    let provider = Provider::TensorRt {
        cache_dir: Some(engines),
    };
    Ok(RuntimeOptions {
        provider,
        ..options
    })
}
