//! The I/O contract (export/CONTRACT.md) this runtime drives, checked against an
//! export's manifest before any session exists.

use c3_core::{ExportManifest, KvCache};

/// Checks the I/O names and shapes this runtime drives against the manifest; the
/// mismatch found, for the caller to attribute to the export folder.
pub(crate) fn check_contract(m: &ExportManifest) -> std::result::Result<(), String> {
    let names =
        |v: &[c3_core::manifest::IoSpec]| v.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    expect(
        "encoder inputs",
        &names(&m.models.encoder.inputs),
        &["input_ids", "attention_mask"],
    )?;
    expect(
        "encoder outputs",
        &names(&m.models.encoder.outputs),
        &["latents"],
    )?;
    let mut want_in = match m.kv_cache {
        KvCache::Concat => vec![
            "inputs_embeds".to_string(),
            "attention_mask".into(),
            "position_ids".into(),
        ],
        KvCache::SharedBuffer => vec![
            "inputs_embeds".to_string(),
            "seqlens_k".into(),
            "total_sequence_length".into(),
        ],
    };
    // Decoders since the one-run step also take `input_ids` (embedded in the graph,
    // after `inputs_embeds`); older ones embeddings only.
    let dec_in = names(&m.models.decoder.inputs);
    if dec_in.first().map(String::as_str) == Some("input_ids") {
        want_in.insert(0, "input_ids".into());
    }
    let mut want_out = vec!["logits".to_string()];
    for i in 0..m.layers {
        for kind in ["key", "value"] {
            want_in.push(format!("past_key_values.{i}.{kind}"));
            want_out.push(format!("present.{i}.{kind}"));
        }
    }
    if dec_in != want_in {
        return Err(format!(
            "decoder inputs are {dec_in:?}, expected {want_in:?} ({} layers, kv cache {})",
            m.layers,
            m.kv_cache.name()
        ));
    }
    expect(
        "decoder outputs",
        &names(&m.models.decoder.outputs),
        &want_out,
    )?;
    expect(
        "embed_tokens outputs",
        &names(&m.models.embed_tokens.outputs),
        &["inputs_embeds"],
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
) -> std::result::Result<(), String> {
    let same = got.len() == want.len() && got.iter().zip(want).all(|(g, w)| g == w.as_ref());
    match same {
        true => Ok(()),
        false => Err(format!("{what} are {got:?}, expected {want:?}")),
    }
}
