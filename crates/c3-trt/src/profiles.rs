//! TensorRT optimization profiles (min/opt/max input shapes) derived from the export
//! manifest.
//!
//! TensorRT compiles kernels for a shape range chosen at build time, so every dynamic
//! dim of every input needs a range. The manifest lists each input's shape with
//! symbolic dims (`batch`, `text_len`, `seq`, `past_len`, `total_len`); this module
//! gives each symbol a range per model and phase. One engine is built per
//! (model, phase): the prefill engines see the whole prompt once, the decode engines
//! one token against a growing KV cache, and one engine tuned for both would be tuned
//! for neither.

use std::fmt;

use c3_core::ExportManifest;
use c3_core::manifest::ModelInfo;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which phase of the cascade an engine serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Encoder on the documents, then the decoder over the whole prompt (past 0).
    Prefill,
    /// One new token per step against the KV cache.
    Decode,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
        }
    }
}

/// `--profile`: which phases to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum ProfileSet {
    Prefill,
    Decode,
    #[default]
    Both,
}

impl ProfileSet {
    pub fn phases(self) -> &'static [Phase] {
        match self {
            ProfileSet::Prefill => &[Phase::Prefill],
            ProfileSet::Decode => &[Phase::Decode],
            ProfileSet::Both => &[Phase::Prefill, Phase::Decode],
        }
    }
}

/// The three ONNX models of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Encoder,
    Decoder,
    EmbedTokens,
}

impl ModelKind {
    pub const ALL: [ModelKind; 3] = [
        ModelKind::Encoder,
        ModelKind::EmbedTokens,
        ModelKind::Decoder,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Encoder => "encoder",
            ModelKind::Decoder => "decoder",
            ModelKind::EmbedTokens => "embed_tokens",
        }
    }

    /// This model's entry in the manifest.
    pub fn info(self, m: &ExportManifest) -> &ModelInfo {
        match self {
            ModelKind::Encoder => &m.models.encoder,
            ModelKind::Decoder => &m.models.decoder,
            ModelKind::EmbedTokens => &m.models.embed_tokens,
        }
    }

    /// The models a phase runs: the encoder only runs at prefill.
    pub fn for_phase(phase: Phase) -> &'static [ModelKind] {
        match phase {
            Phase::Prefill => &[
                ModelKind::Encoder,
                ModelKind::EmbedTokens,
                ModelKind::Decoder,
            ],
            Phase::Decode => &[ModelKind::EmbedTokens, ModelKind::Decoder],
        }
    }
}

/// Overrides of the derived ranges (`c3 build` flags). `None` keeps the default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProfileOptions {
    /// Largest batch the engines accept.
    pub max_batch: usize,
    /// Batch TensorRT tunes for.
    pub opt_batch: usize,
    /// Document length the encoder is tuned for; default `max_text_tokens`, because
    /// documents are chunked to the encoder's limit, so most chunks are full.
    pub opt_text_len: Option<usize>,
    /// KV length decode steps are tuned for; default the prompt plus half a document,
    /// the middle of reconstructing a full chunk.
    pub opt_past_len: Option<usize>,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            max_batch: 1,
            opt_batch: 1,
            opt_text_len: None,
            opt_past_len: None,
        }
    }
}

/// min/opt/max of one dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    min: i64,
    opt: i64,
    max: i64,
}

impl Range {
    fn fixed(n: i64) -> Self {
        Range {
            min: n,
            opt: n,
            max: n,
        }
    }
    fn add(self, o: Range) -> Range {
        Range {
            min: self.min + o.min,
            opt: self.opt + o.opt,
            max: self.max + o.max,
        }
    }
}

/// The min/opt/max shape of one input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShapes {
    pub name: String,
    pub min: Vec<i64>,
    pub opt: Vec<i64>,
    pub max: Vec<i64>,
}

/// Which bound of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Min,
    Opt,
    Max,
}

/// The optimization profile of one engine: a model at one phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineProfile {
    pub model: ModelKind,
    pub phase: Phase,
    /// The ONNX file in the export folder.
    pub onnx: String,
    /// Only inputs with a dynamic dim: TensorRT takes static ones from the graph.
    pub inputs: Vec<InputShapes>,
}

impl EngineProfile {
    /// `decoder-decode`: the engine's name in file names and messages.
    pub fn name(&self) -> String {
        format!("{}-{}", self.model.name(), self.phase.name())
    }

    /// `name:1x2,name2:1x2x3` for one bound: the syntax of both ONNX Runtime's
    /// `trt_profile_{min,opt,max}_shapes` and trtexec's `--{min,opt,max}Shapes`.
    pub fn shapes(&self, bound: Bound) -> String {
        let dims = |v: &[i64]| {
            v.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
        };
        self.inputs
            .iter()
            .map(|i| {
                let v = match bound {
                    Bound::Min => &i.min,
                    Bound::Opt => &i.opt,
                    Bound::Max => &i.max,
                };
                format!("{}:{}", i.name, dims(v))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The three trtexec flags of this profile.
    pub fn trtexec_flags(&self) -> [String; 3] {
        [
            format!("--minShapes={}", self.shapes(Bound::Min)),
            format!("--optShapes={}", self.shapes(Bound::Opt)),
            format!("--maxShapes={}", self.shapes(Bound::Max)),
        ]
    }
}

impl fmt::Display for EngineProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({}):", self.name(), self.onnx)?;
        for i in &self.inputs {
            writeln!(
                f,
                "  {:<28} min {:?} opt {:?} max {:?}",
                i.name, i.min, i.opt, i.max
            )?;
        }
        Ok(())
    }
}

/// The profiles of every engine of `set`, in build order.
pub fn derive_profiles(
    m: &ExportManifest,
    set: ProfileSet,
    opts: &ProfileOptions,
) -> Result<Vec<EngineProfile>> {
    let mut out = Vec::new();
    for &phase in set.phases() {
        for &model in ModelKind::for_phase(phase) {
            out.push(derive_one(m, model, phase, opts)?);
        }
    }
    Ok(out)
}

/// The profile of `model` at `phase`.
pub fn derive_one(
    m: &ExportManifest,
    model: ModelKind,
    phase: Phase,
    opts: &ProfileOptions,
) -> Result<EngineProfile> {
    let info = model.info(m);
    let ranges = SymbolRanges::new(m, phase, opts).map_err(|msg| Error::model(&info.file, msg))?;
    let mut inputs = Vec::new();
    for io in &info.inputs {
        let mut dims = Vec::with_capacity(io.shape.len());
        let mut dynamic = false;
        for d in &io.shape {
            let r = match d {
                serde_json::Value::Number(n) => n.as_i64().filter(|n| *n >= 0).map(Range::fixed),
                serde_json::Value::String(sym) => {
                    dynamic = true;
                    ranges.get(sym)
                }
                _ => None,
            };
            dims.push(r.ok_or_else(|| {
                Error::model(
                    &info.file,
                    format!(
                        "input `{}` dim {d} has no {} range (known symbols: batch, text_len, seq, past_len, total_len, embeds_len, ids_len)",
                        io.name,
                        phase.name()
                    ),
                )
            })?);
        }
        if dynamic {
            inputs.push(InputShapes {
                name: io.name.clone(),
                min: dims.iter().map(|r| r.min).collect(),
                opt: dims.iter().map(|r| r.opt).collect(),
                max: dims.iter().map(|r| r.max).collect(),
            });
        }
    }
    Ok(EngineProfile {
        model,
        phase,
        onnx: info.file.clone(),
        inputs,
    })
}

/// Ranges of the manifest's symbolic dims at one phase.
struct SymbolRanges {
    batch: Range,
    text_len: Range,
    seq: Range,
    past_len: Range,
    /// Decoders that take `input_ids`: the embeddings and ids of one run (seq is
    /// their sum).
    embeds_len: Range,
    ids_len: Range,
}

impl SymbolRanges {
    fn new(m: &ExportManifest, phase: Phase, o: &ProfileOptions) -> Result<Self, String> {
        let prompt = m.prompt.ids.len() as i64;
        let max_text = m.max_text_tokens as i64;
        let max_ctx = m.max_context as i64;
        if o.max_batch == 0 || o.opt_batch == 0 || o.opt_batch > o.max_batch {
            return Err(format!(
                "batch range is invalid: opt {} must be in 1..={} (--max-batch)",
                o.opt_batch, o.max_batch
            ));
        }
        let latents_end = m.prompt.latent_start as i64 + m.n_latents as i64;
        if latents_end > prompt {
            return Err(format!(
                "manifest prompt: latent slots end at {latents_end}, past its {prompt} tokens"
            ));
        }
        if prompt == 0 || max_text == 0 || prompt >= max_ctx {
            return Err(format!(
                "manifest limits leave no room: prompt {prompt} tokens, max_text_tokens {max_text}, max_context {max_ctx}"
            ));
        }
        let opt_text = o.opt_text_len.map_or(max_text, |v| v as i64);
        if !(1..=max_text).contains(&opt_text) {
            return Err(format!(
                "--opt-text-len {opt_text} is outside 1..={max_text} (max_text_tokens)"
            ));
        }
        // Decode steps start after the prompt; allow 1 so a chunked prefill also fits.
        let max_past = max_ctx - 1;
        let opt_past = o
            .opt_past_len
            .map_or((prompt + max_text / 2).min(max_past), |v| v as i64);
        if !(1..=max_past).contains(&opt_past) {
            return Err(format!(
                "--opt-past-len {opt_past} is outside 1..={max_past} (max_context - 1)"
            ));
        }
        let batch = Range {
            min: 1,
            opt: o.opt_batch as i64,
            max: o.max_batch as i64,
        };
        let text_len = Range {
            min: 1,
            opt: opt_text,
            max: max_text,
        };
        let (n, prefix) = (m.n_latents as i64, m.prompt.latent_start as i64);
        let (seq, past_len, embeds_len, ids_len) = match phase {
            // The prompt template has a fixed length (latents included). A decoder
            // that takes ids runs it in two parts: the constant prefix (ids, no
            // past), then the latents and the suffix after it.
            Phase::Prefill if m.decoder_takes_ids() => (
                Range {
                    min: 1,
                    opt: prompt - prefix,
                    max: prompt,
                },
                Range {
                    min: 0,
                    opt: prefix,
                    max: prefix,
                },
                Range {
                    min: 0,
                    opt: n,
                    max: n,
                },
                Range {
                    min: 1,
                    opt: prompt - prefix - n,
                    max: prompt,
                },
            ),
            Phase::Prefill => (
                Range::fixed(prompt),
                Range::fixed(0),
                Range::fixed(0),
                Range::fixed(0),
            ),
            Phase::Decode => (
                Range::fixed(1),
                Range {
                    min: 1,
                    opt: opt_past,
                    max: max_past,
                },
                Range::fixed(0),
                Range::fixed(1),
            ),
        };
        Ok(SymbolRanges {
            batch,
            text_len,
            seq,
            past_len,
            embeds_len,
            ids_len,
        })
    }

    fn get(&self, sym: &str) -> Option<Range> {
        match sym {
            "batch" => Some(self.batch),
            "text_len" => Some(self.text_len),
            "seq" => Some(self.seq),
            "past_len" => Some(self.past_len),
            "total_len" => Some(self.past_len.add(self.seq)),
            "embeds_len" => Some(self.embeds_len),
            "ids_len" => Some(self.ids_len),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::manifest;

    fn find(ps: &[EngineProfile], model: ModelKind, phase: Phase) -> &EngineProfile {
        ps.iter()
            .find(|p| p.model == model && p.phase == phase)
            .expect("profile present")
    }

    #[test]
    fn encoder_spans_batch_and_text_len() -> Result<()> {
        let m = manifest("fp16", "tensorrt");
        let opts = ProfileOptions {
            max_batch: 8,
            opt_batch: 2,
            ..Default::default()
        };
        let ps = derive_profiles(&m, ProfileSet::Both, &opts)?;
        let enc = find(&ps, ModelKind::Encoder, Phase::Prefill);
        assert_eq!(enc.shapes(Bound::Min), "input_ids:1x1,attention_mask:1x1");
        assert_eq!(enc.shapes(Bound::Opt), "input_ids:2x64,attention_mask:2x64");
        assert_eq!(enc.shapes(Bound::Max), "input_ids:8x64,attention_mask:8x64");
        // The encoder has no decode engine.
        assert_eq!(ps.len(), 5);
        assert!(
            ps.iter()
                .all(|p| !(p.model == ModelKind::Encoder && p.phase == Phase::Decode))
        );
        Ok(())
    }

    #[test]
    fn decoder_prefill_is_the_prompt_with_no_past() -> Result<()> {
        let m = manifest("fp16", "tensorrt");
        let ps = derive_profiles(&m, ProfileSet::Prefill, &ProfileOptions::default())?;
        let dec = find(&ps, ModelKind::Decoder, Phase::Prefill);
        let l = m.prompt.ids.len() as i64;
        let mask = dec
            .inputs
            .iter()
            .find(|i| i.name == "attention_mask")
            .expect("mask");
        assert_eq!(
            (mask.min.clone(), mask.max.clone()),
            (vec![1, l], vec![1, l])
        );
        let k = dec
            .inputs
            .iter()
            .find(|i| i.name == "past_key_values.1.key")
            .expect("past key");
        assert_eq!(k.min, vec![1, 2, 0, 8]);
        assert_eq!(k.max, vec![1, 2, 0, 8]);
        let embeds = dec
            .inputs
            .iter()
            .find(|i| i.name == "inputs_embeds")
            .expect("embeds");
        assert_eq!(embeds.opt, vec![1, l, 16]);
        Ok(())
    }

    #[test]
    fn decode_steps_cover_the_context() -> Result<()> {
        let m = manifest("fp16", "tensorrt");
        let ps = derive_profiles(&m, ProfileSet::Decode, &ProfileOptions::default())?;
        assert_eq!(ps.len(), 2);
        let dec = find(&ps, ModelKind::Decoder, Phase::Decode);
        let max_past = m.max_context as i64 - 1;
        let opt_past = m.prompt.ids.len() as i64 + m.max_text_tokens as i64 / 2;
        let k = dec
            .inputs
            .iter()
            .find(|i| i.name == "past_key_values.0.value")
            .expect("pkv");
        assert_eq!(k.min, vec![1, 2, 1, 8]);
        assert_eq!(k.opt, vec![1, 2, opt_past, 8]);
        assert_eq!(k.max, vec![1, 2, max_past, 8]);
        // total_len = past_len + seq.
        let mask = dec
            .inputs
            .iter()
            .find(|i| i.name == "attention_mask")
            .expect("mask");
        assert_eq!(mask.max, vec![1, max_past + 1]);
        assert_eq!(mask.min, vec![1, 2]);
        let ids = find(&ps, ModelKind::EmbedTokens, Phase::Decode);
        assert_eq!(ids.shapes(Bound::Max), "input_ids:1x1");
        Ok(())
    }

    #[test]
    fn overrides_apply_and_are_checked() -> Result<()> {
        let m = manifest("fp16", "tensorrt");
        let opts = ProfileOptions {
            max_batch: 4,
            opt_batch: 4,
            opt_text_len: Some(10),
            opt_past_len: Some(20),
        };
        let enc = derive_one(&m, ModelKind::Encoder, Phase::Prefill, &opts)?;
        assert_eq!(enc.inputs[0].opt, vec![4, 10]);
        let dec = derive_one(&m, ModelKind::Decoder, Phase::Decode, &opts)?;
        assert_eq!(dec.inputs[1].opt, vec![4, 21]);
        let [min, opt, max] = enc.trtexec_flags();
        assert_eq!(min, "--minShapes=input_ids:1x1,attention_mask:1x1");
        assert!(opt.starts_with("--optShapes=input_ids:4x10"));
        assert!(max.starts_with("--maxShapes=input_ids:4x64"));

        let bad = ProfileOptions {
            opt_text_len: Some(1000),
            ..Default::default()
        };
        let err = derive_one(&m, ModelKind::Encoder, Phase::Prefill, &bad).unwrap_err();
        assert!(err.to_string().contains("--opt-text-len 1000"), "{err}");
        let bad = ProfileOptions {
            max_batch: 2,
            opt_batch: 3,
            ..Default::default()
        };
        assert!(derive_one(&m, ModelKind::Encoder, Phase::Prefill, &bad).is_err());
        Ok(())
    }

    #[test]
    fn unknown_symbol_names_input_and_model() {
        let mut m = manifest("fp16", "tensorrt");
        m.models.encoder.inputs[0].shape[1] = serde_json::json!("doc_len");
        let err = derive_one(
            &m,
            ModelKind::Encoder,
            Phase::Prefill,
            &ProfileOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("encoder.onnx") && err.contains("input_ids") && err.contains("doc_len"),
            "{err}"
        );
    }

    #[test]
    fn latent_slots_past_the_prompt_are_refused() {
        let mut m = manifest("fp16", "tensorrt");
        m.prompt.latent_start = m.prompt.ids.len() - m.n_latents + 1;
        let err = derive_one(
            &m,
            ModelKind::Decoder,
            Phase::Prefill,
            &ProfileOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("latent slots end at"), "{err}");
    }
}
