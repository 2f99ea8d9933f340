//! The sessions layer: an export's three ONNX Runtime sessions, opened after the
//! contract check, and the one place that builds their inputs and reads their
//! outputs by the contract's names (c3_core::contract). The layers above (the KV
//! caches in decode/, `C3Runtime` in model.rs) call these methods and never touch a
//! session.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use c3_core::contract::{decoder as dec, embed_tokens, encoder};
use c3_core::manifest::ModelInfo;
use c3_core::{DType, ExportManifest, FileCheck};
use c3_onnx::ort::session::Session;
use c3_onnx::ort::value::DynValue;

use crate::error::{Error, Result, ensure};
use crate::external::check_external_data;
use crate::options::RuntimeOptions;
use crate::provider::session;
use crate::values::{Embeds, float_value, i64_value, to_f32};

/// New positions for `rows` rows: `embeds` `[rows, e, hidden]` (if any), then `ids`
/// (`rows x k`, row-major).
pub(crate) struct Feed {
    pub(crate) rows: usize,
    pub(crate) embeds: Option<(Embeds, usize)>,
    pub(crate) ids: Vec<u32>,
}

impl Feed {
    /// Embeddings `[rows, seq, hidden]` only.
    pub(crate) fn embeds(rows: usize, embeds: Embeds, seq: usize) -> Self {
        Feed {
            rows,
            embeds: Some((embeds, seq)),
            ids: Vec::new(),
        }
    }

    /// Token ids only: `ids.len() / rows` per row.
    pub(crate) fn ids(rows: usize, ids: Vec<u32>) -> Self {
        Feed {
            rows,
            embeds: None,
            ids,
        }
    }

    /// Positions appended to each row.
    pub(crate) fn seq(&self) -> usize {
        self.embeds.as_ref().map_or(0, |e| e.1) + self.ids.len() / self.rows.max(1)
    }
}

/// The sessions of one loaded export.
pub(crate) struct Sessions {
    dir: PathBuf,
    options: RuntimeOptions,
    pub(crate) dtype: DType,
    hidden: usize,
    embed_info: ModelInfo,
    encoder: Mutex<Session>,
    /// `embed_tokens.onnx`, opened on first use: decoders that take `input_ids`
    /// never need it.
    embed: OnceLock<Mutex<Session>>,
    /// The decoder embeds token ids itself (`input_ids`): one run per decode step.
    takes_ids: bool,
    decoder: Mutex<Session>,
}

fn lock(m: &Mutex<Session>) -> MutexGuard<'_, Session> {
    // A panic while holding a session leaves it usable: ONNX Runtime keeps no
    // half-updated state between runs.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sessions {
    /// Opens the encoder and decoder of `dir` (the embedding model on first use),
    /// checking every model's external-data names before ONNX Runtime reads it.
    pub(crate) fn open(dir: &Path, m: &ExportManifest, options: &RuntimeOptions) -> Result<Self> {
        let open = |f: &str| {
            check_external_data(dir, f)?;
            session(
                &dir.join(f),
                &options.provider,
                options.allow_fallback,
                options.threads,
            )
        };
        // The encoder and decoder are checked and opened side by side: each spends
        // seconds in a single thread (parsing the graph, prepacking weights for the
        // matmul kernels), most of a load's wall time. Errors in model order.
        let models = &m.models;
        let (encoder, embed, decoder) = std::thread::scope(|s| {
            let encoder = s.spawn(|| open(&models.encoder.file));
            // Opened on first use (if ever), but an export is refused at load for
            // any hostile file it holds.
            let embed = s.spawn(|| check_external_data(dir, &models.embed_tokens.file));
            let decoder = open(&models.decoder.file);
            let panicked = || Error::Internal("loading a model panicked".into());
            (
                encoder.join().unwrap_or_else(|_| Err(panicked())),
                embed.join().unwrap_or_else(|_| Err(panicked())),
                decoder,
            )
        });
        let (encoder, (), decoder) = (encoder?, embed?, decoder?);
        Ok(Sessions {
            dir: dir.to_path_buf(),
            options: options.clone(),
            dtype: m.dtype,
            hidden: m.hidden,
            embed_info: models.embed_tokens.clone(),
            encoder: Mutex::new(encoder),
            embed: OnceLock::new(),
            takes_ids: m.decoder_takes_ids(),
            decoder: Mutex::new(decoder),
        })
    }

    /// One encoder run over `[b, l]` left-padded ids and their mask: the latents
    /// tensor's shape and values (f32).
    pub(crate) fn encode(
        &self,
        b: usize,
        l: usize,
        ids: Vec<i64>,
        mask: Vec<i64>,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let inputs = vec![
            (encoder::INPUT_IDS, i64_value(&[b, l], ids)?),
            (encoder::ATTENTION_MASK, i64_value(&[b, l], mask)?),
        ];
        let mut enc = lock(&self.encoder);
        let outputs = enc.run(inputs)?;
        to_f32(&outputs[encoder::LATENTS], self.dtype)
    }

    /// `embed_tokens.onnx`'s session, opened on first use (its external data was
    /// checked at load). Two threads may both open it; one session is kept.
    fn embed_session(&self) -> Result<&Mutex<Session>> {
        if let Some(s) = self.embed.get() {
            return Ok(s);
        }
        let o = &self.options;
        // Hashed here, when first needed, unless the load hashed everything.
        if !o.verify_files {
            self.embed_info.verify(&self.dir, FileCheck::Quick)?;
        }
        let s = session(
            &self.dir.join(&self.embed_info.file),
            &o.provider,
            o.allow_fallback,
            o.threads,
        )?;
        Ok(self.embed.get_or_init(|| Mutex::new(s)))
    }

    /// Token embeddings `[rows, ids.len() / rows, hidden]` of decoder ids.
    pub(crate) fn embed(&self, ids: &[u32], rows: usize) -> Result<Embeds> {
        let per_row = ids.len() / rows.max(1);
        let v = i64_value(&[rows, per_row], ids.iter().map(|&t| t as i64).collect())?;
        let mut s = lock(self.embed_session()?);
        let mut out = s.run(vec![(embed_tokens::INPUT_IDS, v)])?;
        out.remove(embed_tokens::INPUTS_EMBEDS)
            .map(Embeds)
            .ok_or_else(|| Error::Internal("embed_tokens.onnx returned no inputs_embeds".into()))
    }

    /// Whether the decoder embeds token ids itself (one run per decode step).
    #[cfg(test)]
    pub(crate) fn takes_ids(&self) -> bool {
        self.takes_ids
    }

    /// Whether `embed_tokens.onnx` has been opened.
    #[cfg(test)]
    pub(crate) fn embed_opened(&self) -> bool {
        self.embed.get().is_some()
    }

    /// The decoder session, for one run (the KV caches bind and run it).
    pub(crate) fn decoder(&self) -> MutexGuard<'_, Session> {
        lock(&self.decoder)
    }

    /// The decoder's `input_ids` (where it has that input) and `inputs_embeds` for
    /// `feed`.
    pub(crate) fn feed_values(&self, feed: Feed) -> Result<Vec<(&'static str, DynValue)>> {
        let (rows, d) = (feed.rows, self.hidden);
        ensure!(
            rows > 0 && feed.ids.len().is_multiple_of(rows),
            Internal,
            "{} ids for {rows} rows",
            feed.ids.len()
        );
        let k = feed.ids.len() / rows;
        if self.takes_ids {
            let ids = i64_value(&[rows, k], feed.ids.iter().map(|&t| t as i64).collect())?;
            let embeds = match feed.embeds {
                Some((e, _)) => e.0,
                None => float_value(self.dtype, &[rows, 0, d], &[])?,
            };
            return Ok(vec![(dec::INPUT_IDS, ids), (dec::INPUTS_EMBEDS, embeds)]);
        }
        let embeds = match (feed.embeds, k) {
            (Some((e, _)), 0) => e.0,
            (None, _) => self.embed(&feed.ids, rows)?.0,
            (Some((e, e_seq)), _) => {
                // Latents then the suffix's embeddings, row by row.
                let (_, first) = to_f32(&e.0, self.dtype)?;
                let (_, tail) = to_f32(&self.embed(&feed.ids, rows)?.0, self.dtype)?;
                let mut data = Vec::with_capacity(first.len() + tail.len());
                for r in 0..rows {
                    data.extend_from_slice(&first[r * e_seq * d..(r + 1) * e_seq * d]);
                    data.extend_from_slice(&tail[r * k * d..(r + 1) * k * d]);
                }
                float_value(self.dtype, &[rows, e_seq + k, d], &data)?
            }
        };
        Ok(vec![(dec::INPUTS_EMBEDS, embeds)])
    }
}
