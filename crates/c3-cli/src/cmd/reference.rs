//! `c3 reference`: the tch reference's numbers for given document ids, written to a
//! safetensors file. `c3 export --verify` (and `c3-export --verify`) call it in a
//! child process, so the exporter compares against tch without linking libtorch.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use c3_torch::tch::{Device, Kind, Tensor};
use c3_torch::{KvCache, TorchCascade, generate};

#[derive(clap::Args)]
pub struct Args {
    /// Checkpoint folder (release layout).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Document ids in the model's tokenizer, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    ids: Vec<u32>,
    /// Greedy tokens to generate.
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// The task after the latents in the decoder prompt (the export's template).
    #[arg(long, default_value = c3_core::prompt::REPEAT_TASK)]
    prompt: String,
    /// Output file: `latents` [N, D_dec] (projected), `prefill_logits` [L, vocab],
    /// `greedy` [k] (int64).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let c = TorchCascade::load(&a.checkpoint, Device::Cpu)?;
    let prompt = c3_core::Cascade::prompt_for(&c, Some(&a.prompt))?;
    let max = c.model.config.max_text_tokens();
    ensure!(
        a.ids.len() <= max,
        "{} ids, over the encoder's limit of {max}",
        a.ids.len()
    );
    let vocab = c.model.config.encoder.vocab_size as u32;
    ensure!(
        a.ids.iter().all(|&i| i < vocab),
        "an id is outside the encoder's vocabulary ({vocab})"
    );
    let latents = c.compress_ids(std::slice::from_ref(&a.ids))?;
    let logits = c3_torch::tch::no_grad(|| {
        let embeds = c.model.prompt_embeds(&prompt, &latents);
        let mut cache = KvCache::new(c.model.model.layers.len());
        c.model.logits(&c.model.decode_hidden(&embeds, &mut cache))
    });
    let mut cfg = c.reference_generation();
    cfg.max_new_tokens = a.max_new_tokens;
    let g = generate(&c.model, &prompt, &latents, &cfg)?.remove(0);
    let greedy = Tensor::from_slice(&g.ids.iter().map(|&i| i as i64).collect::<Vec<_>>());
    let tensors = [
        (
            "latents",
            latents.squeeze_dim(0).to_kind(Kind::Float).contiguous(),
        ),
        (
            "prefill_logits",
            logits.squeeze_dim(0).to_kind(Kind::Float).contiguous(),
        ),
        ("greedy", greedy),
    ];
    Tensor::write_safetensors(&tensors, &a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    Ok(())
}
