//! The prompt as decoder feeds (sessions.rs's [`Feed`]): its constant prefix, then
//! each row's latents in their N slots and the prompt's suffix.

use c3_core::DecoderPrompt;

use super::Decoder;
use crate::error::{Error, Result, ensure};
use crate::latents::Latents;
use crate::sessions::Feed;
use crate::values::{Embeds, float_value};

/// `prompt`'s constant prefix (before the first latent) for `rows` rows.
pub(crate) fn prefix_feed(prompt: &DecoderPrompt, rows: usize) -> Feed {
    Feed::ids(rows, prompt.ids[..prompt.latent_start].repeat(rows))
}

/// The rest of `prompt`, one row per latent set: the latents in their N slots, then
/// the prompt's suffix.
pub(crate) fn rest_feed(
    dec: &Decoder,
    latents: &[&Latents],
    prompt: &DecoderPrompt,
) -> Result<Feed> {
    let m = &dec.geo;
    let (n, d) = (m.n_latents, m.hidden);
    ensure!(
        prompt.n_latents == n,
        Input,
        "the prompt has {} latent slots, this export takes {n}",
        prompt.n_latents
    );
    let mut data = Vec::with_capacity(latents.len() * n * d);
    for l in latents {
        l.check_shape(n, d)?;
        data.extend_from_slice(l.data());
    }
    let rows = latents.len();
    let embeds = Embeds(float_value(dec.sessions.dtype, &[rows, n, d], &data)?);
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
