//! `--verify`: the exported models, run by ONNX Runtime through `c3-runtime`, against
//! the tch reference on the same document ids: projected latents and prefill logits
//! within a dtype-aware tolerance, greedy tokens identical in fp32.
//!
//! The reference comes from `c3 reference` in a child process (the `c3` binary links
//! libtorch; this crate must not). The binary is `$C3_BIN`, else `c3` beside this
//! executable, else `c3` on PATH.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use c3_core::{C3Config, DType};
use c3_runtime::{C3Runtime, RuntimeOptions};
use safetensors::SafeTensors;
use serde::Serialize;

use crate::error::{ExportError, Result, ResultExt};

/// The document verification reconstructs (cut to the encoder's limit).
pub const SAMPLE_TEXT: &str = "Context cascade compression squeezes a long text into a few latent vectors, \
and a second, larger model reads the text back from them. The quick brown fox jumps over the lazy dog.";
/// Tokens generated for the greedy comparison.
pub const VERIFY_NEW_TOKENS: usize = 32;

/// What verification measured.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub dtype: String,
    pub quantize: Option<String>,
    pub text_tokens: usize,
    pub latents_max_abs_diff: f32,
    pub prefill_logits_max_abs_diff: f32,
    /// Allowed max abs difference (scaled by the reference's magnitude for fp16/bf16).
    pub latents_tolerance: f32,
    pub logits_tolerance: f32,
    pub greedy_tokens: usize,
    /// First position where ONNX Runtime's greedy tokens differ from the reference's.
    pub greedy_first_difference: Option<usize>,
    /// Whether identical greedy tokens are required (fp32) or only reported.
    pub greedy_must_match: bool,
    pub pass: bool,
}

impl VerifyReport {
    /// The comparisons that failed, on one line (empty when it passed).
    pub fn failures(&self) -> String {
        let mut out = Vec::new();
        if self.latents_max_abs_diff > self.latents_tolerance || self.latents_max_abs_diff.is_nan()
        {
            out.push(format!(
                "latents max |ort - tch| = {:.3e} > tolerance {:.1e}",
                self.latents_max_abs_diff, self.latents_tolerance
            ));
        }
        if self.prefill_logits_max_abs_diff > self.logits_tolerance
            || self.prefill_logits_max_abs_diff.is_nan()
        {
            out.push(format!(
                "prefill logits max |ort - tch| = {:.3e} > tolerance {:.1e}",
                self.prefill_logits_max_abs_diff, self.logits_tolerance
            ));
        }
        if let (true, Some(i)) = (self.greedy_must_match, self.greedy_first_difference) {
            out.push(format!(
                "greedy tokens differ from token {i} of {}",
                self.greedy_tokens
            ));
        }
        out.join("; ")
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "verify ({}, {} text tokens): {}",
            self.dtype,
            self.text_tokens,
            if self.pass { "PASS" } else { "FAIL" }
        )?;
        writeln!(
            f,
            "  latents        max |ort - tch| = {:.3e} (tolerance {:.1e})",
            self.latents_max_abs_diff, self.latents_tolerance
        )?;
        writeln!(
            f,
            "  prefill logits max |ort - tch| = {:.3e} (tolerance {:.1e})",
            self.prefill_logits_max_abs_diff, self.logits_tolerance
        )?;
        match self.greedy_first_difference {
            None => write!(f, "  greedy: {} tokens identical", self.greedy_tokens),
            Some(i) => write!(
                f,
                "  greedy: first difference at token {i} of {}{}",
                self.greedy_tokens,
                if self.greedy_must_match {
                    ""
                } else {
                    " (reported only for half precision)"
                }
            ),
        }
    }
}

/// Runs the comparison for the export at `export` of checkpoint `ckpt`. A mismatch is
/// a report with `pass: false`, not an error: the caller decides what it costs.
pub fn verify(ckpt: &Path, export: &Path, cfg: &C3Config) -> Result<VerifyReport> {
    let rt = C3Runtime::load(export, RuntimeOptions::default())?;
    let mut ids = rt.tokenizer.encode(SAMPLE_TEXT)?;
    ids.truncate(cfg.max_text_tokens().max(1));
    // The reference decodes after the same prompt the export records.
    let task = c3_core::Cascade::template(&rt).task.clone();
    let reference = run_reference(ckpt, &ids, &task)?;
    let lat = rt.compress(std::slice::from_ref(&ids))?.remove(0);
    // Both prefill paths: the whole prompt, and the rest of it after the runtime's
    // prompt-prefix cache (what requests run).
    let logits = rt.prefill_logits(&lat, false)?;
    let reused = rt.prefill_logits(&lat, true)?;
    let mut gen_cfg = rt.reference_generation();
    gen_cfg.max_new_tokens = VERIFY_NEW_TOKENS;
    let got = rt
        .generate(&[&lat], rt.prompt(), &gen_cfg, &mut |_, _| {})?
        .remove(0)
        .ids;

    // The decoder computes the last position's logits only: compare that row.
    let vocab = rt.manifest.vocab;
    let ref_logits = reference
        .logits
        .get(reference.logits.len().saturating_sub(vocab)..)
        .unwrap_or_default();
    let lat_diff = max_abs_diff(lat.data(), &reference.latents)?;
    let logit_diff = max_abs_diff(&logits, ref_logits)?.max(max_abs_diff(&reused, ref_logits)?);
    let dtype = rt.manifest.dtype.name().to_string();
    // Quantized weights change the numbers by design: bounded relative error, greedy
    // reported only. Int4's bound is loose (on random weights its logits move by up
    // to ~55% of their range, measured on the tiny fixture): it catches packing and
    // layout errors, not quality, which `c3 eval` measures. Unquantized fp32 must
    // match token for token, values to 1e-4 or 5e-5 of their range, whichever is
    // larger: a trained model's logits reach tens, and two correct fp32 programs
    // that sum in different orders drift apart with depth (models/c3-small, 4+4
    // layers, logits up to 18: ORT vs tch 2.6e-4 = 1.4e-5 of the range).
    let (rel, floor, must_match): (f32, f32, bool) =
        match (rt.manifest.quantize.as_deref(), rt.manifest.dtype) {
            (Some("int8"), _) => (5e-2, 0.0, false),
            (Some(_), _) => (7.5e-1, 0.0, false),
            (None, DType::F32) => (5e-5, 1e-4, true),
            (None, DType::F16) => (1e-2, 0.0, false),
            _ => (4e-2, 0.0, false),
        };
    let tol = |r: &[f32]| floor.max(rel * r.iter().fold(1f32, |m, v| m.max(v.abs())));
    let (lat_tol, logit_tol) = (tol(&reference.latents), tol(ref_logits));
    let first_diff =
        (0..got.len().max(reference.greedy.len())).find(|&i| got.get(i) != reference.greedy.get(i));
    let pass =
        lat_diff <= lat_tol && logit_diff <= logit_tol && (!must_match || first_diff.is_none());
    let report = VerifyReport {
        dtype,
        quantize: rt.manifest.quantize.clone(),
        text_tokens: ids.len(),
        latents_max_abs_diff: lat_diff,
        prefill_logits_max_abs_diff: logit_diff,
        latents_tolerance: lat_tol,
        logits_tolerance: logit_tol,
        greedy_tokens: reference.greedy.len(),
        greedy_first_difference: first_diff,
        greedy_must_match: must_match,
        pass,
    };
    Ok(report)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> Result<f32> {
    if a.len() != b.len() {
        return Err(ExportError::input(format!(
            "ONNX Runtime produced {} values, the reference {}",
            a.len(),
            b.len()
        )));
    }
    Ok(a.iter().zip(b).fold(0f32, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() { f32::INFINITY } else { m.max(d) }
    }))
}

struct Reference {
    latents: Vec<f32>,
    logits: Vec<f32>,
    greedy: Vec<u32>,
}

/// The `c3` binary that provides `c3 reference`.
pub fn reference_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("C3_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(sibling) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("c3")))
        && sibling.is_file()
    {
        return sibling;
    }
    PathBuf::from("c3")
}

fn run_reference(ckpt: &Path, ids: &[u32], task: &str) -> Result<Reference> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("reference.safetensors");
    let bin = reference_binary();
    let ids_arg = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let status = Command::new(&bin)
        .arg("reference")
        .arg("--checkpoint")
        .arg(ckpt)
        .args([
            "--ids",
            &ids_arg,
            "--max-new-tokens",
            &VERIFY_NEW_TOKENS.to_string(),
            "--prompt",
            task,
            "--out",
        ])
        .arg(&out)
        // stdout belongs to our `--json` object: the child's goes to stderr.
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| {
            ExportError::Environment(
                format!(
                    "cannot run the tch reference `{} reference` ({e}); set C3_BIN to the c3 binary",
                    bin.display()
                )
                .into(),
            )
        })?;
    // 3: `c3` found its environment lacking; 126/127: the loader could not start it
    // (libtorch missing). Anything else is the reference failing on this input.
    if matches!(status.code(), Some(3 | 126 | 127)) {
        return Err(ExportError::Environment(
            format!(
                "the tch reference `{} reference` could not run here ({status}): is libtorch installed?",
                bin.display()
            )
            .into(),
        ));
    }
    if !status.success() {
        return Err(ExportError::input(format!(
            "the tch reference `{} reference` failed ({status})",
            bin.display()
        )));
    }
    let bytes = std::fs::read(&out).with_context(|| out.display().to_string())?;
    let st = SafeTensors::deserialize(&bytes)?;
    let f32s = |k: &str| -> Result<Vec<f32>> {
        let t = st
            .tensor(k)
            .with_context(|| format!("reference output has no `{k}`"))?;
        Ok(t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let g = st
        .tensor("greedy")
        .context("reference output has no `greedy`")?;
    let greedy = g
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as u32)
        .collect();
    Ok(Reference {
        latents: f32s("latents")?,
        logits: f32s("prefill_logits")?,
        greedy,
    })
}
