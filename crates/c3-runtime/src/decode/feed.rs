//! What a decoder run appends to each row: embeddings first (the latents, or any
//! embeddings a caller built), then token ids. Decoders exported with an `input_ids`
//! input embed the ids themselves, so a decode step is one ONNX Runtime run; older
//! exports take embeddings only, which `embed_tokens.onnx` makes from the ids first
//! (the sessions layer turns a feed into the decoder's inputs: sessions.rs).

use c3_core::DecoderPrompt;

use crate::error::{Error, Result, ensure};
use crate::latents::Latents;
use crate::model::{C3Runtime, check_latents};
use crate::values::{Embeds, float_value};

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

/// `prompt`'s constant prefix (before the first latent) for `rows` rows.
pub(crate) fn prefix_feed(prompt: &DecoderPrompt, rows: usize) -> Feed {
    Feed::ids(rows, prompt.ids[..prompt.latent_start].repeat(rows))
}

/// The rest of `prompt`, one row per latent set: the latents in their N slots, then
/// the prompt's suffix.
pub(crate) fn rest_feed(
    rt: &C3Runtime,
    latents: &[&Latents],
    prompt: &DecoderPrompt,
) -> Result<Feed> {
    let m = &rt.manifest;
    let (n, d) = (m.n_latents, m.hidden);
    ensure!(
        prompt.n_latents == n,
        Input,
        "the prompt has {} latent slots, this export takes {n}",
        prompt.n_latents
    );
    let mut data = Vec::with_capacity(latents.len() * n * d);
    for l in latents {
        check_latents(m, l)?;
        data.extend_from_slice(l.data());
    }
    let rows = latents.len();
    let embeds = Embeds(float_value(rt.sessions.dtype, &[rows, n, d], &data)?);
    let suffix = &prompt.ids[prompt.latent_start + n..];
    Ok(Feed {
        rows,
        embeds: Some((embeds, n)),
        ids: suffix.repeat(rows),
    })
}

/// A run that was given nothing.
pub(crate) fn empty_feed() -> Error {
    Error::Input("nothing to run: 0 new positions".into())
}
