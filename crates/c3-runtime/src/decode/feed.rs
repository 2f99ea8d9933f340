//! What a decoder run appends to each row: embeddings first (the latents, or any
//! embeddings a caller built), then token ids. Decoders exported with an `input_ids`
//! input embed the ids themselves, so a decode step is one ONNX Runtime run; older
//! exports take embeddings only, which `embed_tokens.onnx` makes from the ids first.

use c3_onnx::ort::value::DynValue;

use crate::error::{Error, Result, ensure};
use crate::latents::Latents;
use crate::model::C3Runtime;
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

impl C3Runtime {
    /// The prompt's constant prefix (before the first latent) for `rows` rows.
    pub(crate) fn prefix_feed(&self, rows: usize) -> Feed {
        let p = &self.manifest.prompt;
        let ids = &p.ids[..p.latent_start];
        Feed::ids(rows, ids.repeat(rows))
    }

    /// The rest of the prompt, one row per latent set: the latents in their N slots,
    /// then the prompt's suffix.
    pub(crate) fn rest_feed(&self, latents: &[&Latents]) -> Result<Feed> {
        let m = &self.manifest;
        let (n, d) = (m.n_latents, m.hidden);
        let mut data = Vec::with_capacity(latents.len() * n * d);
        for l in latents {
            ensure!(
                l.n() == n && l.dim() == d,
                Input,
                "latents are [{}, {}], this export takes [{n}, {d}]",
                l.n(),
                l.dim()
            );
            data.extend_from_slice(l.data());
        }
        let rows = latents.len();
        let embeds = Embeds(float_value(self.dtype, &[rows, n, d], &data)?);
        let suffix = &m.prompt.ids[m.prompt.latent_start + n..];
        Ok(Feed {
            rows,
            embeds: Some((embeds, n)),
            ids: suffix.repeat(rows),
        })
    }

    /// The decoder's `input_ids` (where it has that input) and `inputs_embeds` for
    /// `feed`.
    pub(crate) fn feed_values(&self, feed: Feed) -> Result<Vec<(&'static str, DynValue)>> {
        let (rows, d) = (feed.rows, self.manifest.hidden);
        ensure!(
            rows > 0 && feed.ids.len().is_multiple_of(rows),
            Internal,
            "{} ids for {rows} rows",
            feed.ids.len()
        );
        let k = feed.ids.len() / rows;
        if self.decoder_takes_ids {
            let ids = i64_value(&[rows, k], feed.ids.iter().map(|&t| t as i64).collect())?;
            let embeds = match feed.embeds {
                Some((e, _)) => e.0,
                None => float_value(self.dtype, &[rows, 0, d], &[])?,
            };
            return Ok(vec![("input_ids", ids), ("inputs_embeds", embeds)]);
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
        Ok(vec![("inputs_embeds", embeds)])
    }
}

/// A run that was given nothing.
pub(crate) fn empty_feed() -> Error {
    Error::Input("nothing to run: 0 new positions".into())
}
