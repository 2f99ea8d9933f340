//! The I/O contract of an export's three graphs, in one place: every graph input and
//! output name of export/CONTRACT.md, the cache tensors' names per layer, and the
//! check that an export's manifest declares exactly what the runtime drives. The
//! exporter names its graphs with these, the runtime feeds them, the TensorRT
//! profiles and the tests look them up; nothing else spells a graph name. The
//! special ids and the prompt layout are [`crate::SpecialTokens`] and
//! [`crate::prompt`] (re-exported here, so the contract reads in one module).

use crate::manifest::{ExportManifest, IoSpec};

pub use crate::prompt::{DecoderPrompt, PromptTemplate};
pub use crate::tokenizer::SpecialTokens;

/// `encoder.onnx`: text ids (left-padded) to latents.
pub mod encoder {
    pub const INPUT_IDS: &str = "input_ids";
    pub const ATTENTION_MASK: &str = "attention_mask";
    pub const LATENTS: &str = "latents";
    pub const INPUTS: [&str; 2] = [INPUT_IDS, ATTENTION_MASK];
    pub const OUTPUTS: [&str; 1] = [LATENTS];
}

/// `embed_tokens.onnx`: ids to the decoder's token embeddings.
pub mod embed_tokens {
    pub const INPUT_IDS: &str = "input_ids";
    pub const INPUTS_EMBEDS: &str = "inputs_embeds";
}

/// `decoder.onnx`, both cache contracts (Optimum / onnxruntime-genai naming).
pub mod decoder {
    use crate::manifest::KvCache;

    /// Token ids embedded inside the graph (decoders since the one-run step).
    pub const INPUT_IDS: &str = "input_ids";
    pub const INPUTS_EMBEDS: &str = "inputs_embeds";
    /// `concat` only: the mask over past and new positions, and the new positions.
    pub const ATTENTION_MASK: &str = "attention_mask";
    pub const POSITION_IDS: &str = "position_ids";
    /// `shared_buffer` only: each row's past length, and the run's total length.
    pub const SEQLENS_K: &str = "seqlens_k";
    pub const TOTAL_SEQUENCE_LENGTH: &str = "total_sequence_length";
    pub const LOGITS: &str = "logits";
    /// The two cache tensors of a layer, in the graph's order.
    pub const KINDS: [&str; 2] = ["key", "value"];

    /// `past_key_values.{layer}.{kind}`.
    pub fn past(layer: usize, kind: &str) -> String {
        format!("past_key_values.{layer}.{kind}")
    }

    /// `present.{layer}.{kind}`.
    pub fn present(layer: usize, kind: &str) -> String {
        format!("present.{layer}.{kind}")
    }

    /// `(past, present)` names of every cache tensor: layer by layer, key then value
    /// (the order of the graph's inputs and outputs).
    pub fn cache_names(layers: usize) -> Vec<(String, String)> {
        (0..layers)
            .flat_map(|i| KINDS.map(|kind| (past(i, kind), present(i, kind))))
            .collect()
    }

    /// The inputs the runtime feeds, in graph order.
    pub fn inputs(kv: KvCache, takes_ids: bool, layers: usize) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        if takes_ids {
            v.push(INPUT_IDS.into());
        }
        v.push(INPUTS_EMBEDS.into());
        let lengths = match kv {
            KvCache::Concat => [ATTENTION_MASK, POSITION_IDS],
            KvCache::SharedBuffer => [SEQLENS_K, TOTAL_SEQUENCE_LENGTH],
        };
        v.extend(lengths.map(String::from));
        v.extend(cache_names(layers).into_iter().map(|(p, _)| p));
        v
    }

    /// The outputs the runtime reads, in graph order.
    pub fn outputs(layers: usize) -> Vec<String> {
        std::iter::once(LOGITS.to_string())
            .chain(cache_names(layers).into_iter().map(|(_, p)| p))
            .collect()
    }
}

/// Checks that `m` declares exactly the graph inputs and outputs this contract
/// names, and a prompt whose latent slots fit; the mismatch found, for the caller to
/// attribute to the export folder. Runs before any session exists.
pub fn check(m: &ExportManifest) -> Result<(), String> {
    let names = |v: &[IoSpec]| v.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let models = &m.models;
    expect(
        "encoder inputs",
        &names(&models.encoder.inputs),
        &encoder::INPUTS,
    )?;
    expect(
        "encoder outputs",
        &names(&models.encoder.outputs),
        &encoder::OUTPUTS,
    )?;
    let dec_in = names(&models.decoder.inputs);
    // The layer count is the manifest's word: check it against what the decoder
    // declares before building names for that many layers (a hostile `layers` would
    // otherwise ask for an allocation of any size; found by fuzz/, manifest target).
    let fixed = 3 + usize::from(m.decoder_takes_ids());
    let want_len = m.layers.checked_mul(2).and_then(|n| n.checked_add(fixed));
    if want_len != Some(dec_in.len()) {
        return Err(format!(
            "the decoder declares {} inputs, {} layers need {}",
            dec_in.len(),
            m.layers,
            want_len.map_or("more than fit in memory".into(), |n| n.to_string())
        ));
    }
    let want_in = decoder::inputs(m.kv_cache, m.decoder_takes_ids(), m.layers);
    if dec_in != want_in {
        return Err(format!(
            "decoder inputs are {dec_in:?}, expected {want_in:?} ({} layers, kv cache {})",
            m.layers,
            m.kv_cache.name()
        ));
    }
    expect(
        "decoder outputs",
        &names(&models.decoder.outputs),
        &decoder::outputs(m.layers),
    )?;
    expect(
        "embed_tokens outputs",
        &names(&models.embed_tokens.outputs),
        &[embed_tokens::INPUTS_EMBEDS],
    )?;
    let end = m.prompt.latent_start.checked_add(m.n_latents);
    if end.is_none_or(|e| e > m.prompt.ids.len()) {
        return Err("prompt latent slots fall outside the prompt".into());
    }
    Ok(())
}

/// `got` must be `want`, element for element.
fn expect<S: AsRef<str> + std::fmt::Debug>(
    what: &str,
    got: &[String],
    want: &[S],
) -> Result<(), String> {
    let same = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| g == w.as_ref());
    match same {
        true => Ok(()),
        false => Err(format!("{what} are {got:?}, expected {want:?}")),
    }
}

/// Whether a decoder's declared inputs include token ids (one-run decode steps).
pub(crate) fn takes_ids(inputs: &[IoSpec]) -> bool {
    inputs.iter().any(|i| i.name == decoder::INPUT_IDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::KvCache;

    #[test]
    fn decoder_names_follow_the_contract_document() {
        assert_eq!(
            decoder::inputs(KvCache::SharedBuffer, true, 1),
            [
                "input_ids",
                "inputs_embeds",
                "seqlens_k",
                "total_sequence_length",
                "past_key_values.0.key",
                "past_key_values.0.value"
            ]
        );
        assert_eq!(
            decoder::inputs(KvCache::Concat, false, 2)[..3],
            ["inputs_embeds", "attention_mask", "position_ids"]
        );
        assert_eq!(
            decoder::outputs(2),
            [
                "logits",
                "present.0.key",
                "present.0.value",
                "present.1.key",
                "present.1.value"
            ]
        );
        // The contract document spells every name this module does.
        let doc = include_str!("../../../export/CONTRACT.md");
        for name in [
            encoder::INPUT_IDS,
            encoder::ATTENTION_MASK,
            encoder::LATENTS,
            embed_tokens::INPUTS_EMBEDS,
            decoder::POSITION_IDS,
            decoder::SEQLENS_K,
            decoder::TOTAL_SEQUENCE_LENGTH,
            decoder::LOGITS,
            "past_key_values.{i}.key",
            "present.{i}.key",
        ] {
            assert!(
                doc.contains(&format!("`{name}")),
                "{name} not in CONTRACT.md"
            );
        }
    }
}
