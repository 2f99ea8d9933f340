//! The exported tiny fixture, run by this runtime, against HF transformers' Qwen2
//! goldens (tests/golden/gen_golden.py): projected latents and prefill logits within
//! 1e-4 in fp32, greedy tokens identical, batched = one by one, streaming = final.
//! Also: cached decoder steps equal a full recompute; the half-precision exports
//! load with their declared types; bad inputs fail clearly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use c3_core::DType;
use c3_core::GenerationConfig;
use c3_core::KvCache;
use c3_export::{ExportOptions, KvCacheChoice, Target};
use c3_runtime::{C3Runtime, Latents, RuntimeOptions};
use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

struct Golden(HashMap<String, (Vec<usize>, Vec<u8>)>);

impl Golden {
    fn load() -> Self {
        let bytes = std::fs::read(fixtures().join("golden/tiny_golden.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        Golden(
            st.tensors()
                .into_iter()
                .map(|(k, v)| (k, (v.shape().to_vec(), v.data().to_vec())))
                .collect(),
        )
    }
    fn f32s(&self, k: &str) -> Vec<f32> {
        self.0[k]
            .1
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
    fn ids(&self, k: &str) -> Vec<u32> {
        self.0[k]
            .1
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32)
            .collect()
    }
}

fn export(dtype: DType, target: Target, kv_cache: KvCacheChoice, out: &Path) {
    export_with(dtype, target, kv_cache, false, out)
}

fn export_with(
    dtype: DType,
    target: Target,
    kv_cache: KvCacheChoice,
    decoder_embeds_only: bool,
    out: &Path,
) {
    let args = ExportOptions {
        dtype,
        target,
        kv_cache,
        decoder_embeds_only,
        ..ExportOptions::new(fixtures().join("tiny"), out.to_path_buf())
    };
    c3_export::run(&args).unwrap();
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn gen_cfg(rt: &C3Runtime, n: usize) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: 40,
        no_repeat_ngram_size: n,
        stop_ids: rt.tokenizer.specials().stop_ids(),
    }
}

#[test]
fn fp32_exports_match_hf_goldens() {
    let g = Golden::load();
    // Both cache contracts under `--target ort`, and the TensorRT-ready graphs; the
    // decoder taking ids (one run per step) or, for engines without empty tensors,
    // embeddings only.
    for (target, kv, want_kv, embeds_only) in [
        (
            Target::Ort,
            KvCacheChoice::Auto,
            KvCache::SharedBuffer,
            false,
        ),
        (Target::Ort, KvCacheChoice::Concat, KvCache::Concat, false),
        (
            Target::Tensorrt,
            KvCacheChoice::Auto,
            KvCache::Concat,
            false,
        ),
        (
            Target::Ort,
            KvCacheChoice::Auto,
            KvCache::SharedBuffer,
            true,
        ),
        (Target::Tensorrt, KvCacheChoice::Auto, KvCache::Concat, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        export_with(DType::F32, target, kv, embeds_only, &out);
        let rt = C3Runtime::load(&out, RuntimeOptions::default()).unwrap();
        assert_eq!(rt.manifest.kv_cache, want_kv, "{target:?} {kv:?}");
        let takes_ids = rt.manifest.models.decoder.inputs[0].name == "input_ids";
        assert_eq!(takes_ids, !embeds_only);
        let target = (target, want_kv, embeds_only);
        let docs: Vec<Vec<u32>> = (0..3).map(|i| g.ids(&format!("doc{i}.text_ids"))).collect();
        // Batched (length-sorted, left-padded) encoding, compared per document.
        let lats = rt.compress(&docs).unwrap();
        for (i, lat) in lats.iter().enumerate() {
            let d = max_abs(lat.data(), &g.f32s(&format!("doc{i}.projected")));
            assert!(
                d <= 1e-4,
                "{target:?} doc{i} projected latents differ by {d}"
            );
            let alone = rt
                .compress(std::slice::from_ref(&docs[i]))
                .unwrap()
                .remove(0);
            assert!(
                max_abs(alone.data(), lat.data()) <= 1e-5,
                "batched != unbatched for doc{i}"
            );
        }
        assert_eq!(rt.manifest.prompt.ids, g.ids("doc0.prompt_ids"));
        // The decoder computes the last prompt position's logits only `[batch, 1,
        // vocab]`: the golden's last row.
        let want = g.f32s("doc0.prefill_logits");
        let got = rt.prefill_logits(&lats[0], false).unwrap();
        assert_eq!(got.len(), rt.manifest.vocab);
        // From the prompt-prefix cache (what requests run): the same logits.
        let reused = rt.prefill_logits(&lats[0], true).unwrap();
        let d = max_abs(&got, &reused);
        assert!(
            d <= 1e-5,
            "{target:?} prefix reuse changes the logits by {d}"
        );
        let logits_out = &rt.manifest.models.decoder.outputs[0];
        assert_eq!(logits_out.name, "logits");
        assert_eq!(logits_out.shape[1], serde_json::json!(1), "{logits_out:?}");
        let d = max_abs(&got, &want[want.len() - got.len()..]);
        assert!(d <= 1e-4, "{target:?} prefill logits differ by {d}");
        // Requests start from the prompt-prefix cache by default; without it, the
        // whole prompt runs: the goldens either way.
        let full = RuntimeOptions {
            reuse_prompt_prefix: false,
            ..Default::default()
        };
        let rt_full = C3Runtime::load(&out, full).unwrap();
        for (rt, reuse) in [(&rt, true), (&rt_full, false)] {
            let target = (target, reuse);
            for (i, n) in [(0, 20), (0, 3), (1, 20), (2, 20)] {
                let want = g.ids(&format!("doc{i}.greedy_ngram{n}"));
                let mut streamed = Vec::new();
                let got = rt
                    .generate(&[&lats[i]], rt.prompt(), &gen_cfg(rt, n), &mut |_, t| {
                        streamed.push(t)
                    })
                    .unwrap()
                    .remove(0);
                assert_eq!(got.ids, want, "{target:?} doc{i} ngram{n} greedy tokens");
                assert_eq!(streamed, want, "streaming callback saw other tokens");
            }
            // Three rows decoded together (they stop at different steps) = one by one.
            let rows: Vec<&Latents> = lats.iter().collect();
            let batched = rt
                .generate(&rows, rt.prompt(), &gen_cfg(rt, 20), &mut |_, _| {})
                .unwrap();
            for (i, b) in batched.iter().enumerate() {
                assert_eq!(
                    b.ids,
                    g.ids(&format!("doc{i}.greedy_ngram20")),
                    "{target:?} batched decode row {i}"
                );
            }
        }
    }
}

/// Relative distance: max |a - b| over max |b|.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    max_abs(a, b) / b.iter().fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()))
}

/// Half-precision exports declare their dtypes everywhere but the logits (f32). On
/// ONNX Runtime 1.31's CPU provider fp16 graphs run, and must stay within fp16's
/// tolerance of the HF goldens (1e-2 of the values' range, as `--verify`); bf16 ones
/// do not load (no bf16 `Expand` kernel: they are for GPU hosts), and the error must
/// name the model.
#[test]
fn half_precision_exports_declare_their_dtypes_and_fp16_matches_the_goldens() {
    let g = Golden::load();
    for dtype in [DType::F16, DType::BF16] {
        let name = dtype.torch_name();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        export(dtype, Target::Tensorrt, KvCacheChoice::Auto, &out);
        let (m, _) = c3_core::ExportManifest::load(&out).unwrap();
        assert_eq!(m.dtype, dtype);
        assert_eq!(m.models.encoder.outputs[0].dtype, name);
        let dec_in = &m.models.decoder.inputs;
        assert_eq!(
            (dec_in[0].name.as_str(), dec_in[0].dtype.as_str()),
            ("input_ids", "int64")
        );
        assert_eq!(
            (dec_in[1].name.as_str(), dec_in[1].dtype.as_str()),
            ("inputs_embeds", name)
        );
        assert_eq!(
            m.models.decoder.outputs[0].dtype, "float32",
            "logits stay f32"
        );
        assert!(
            m.models
                .decoder
                .outputs
                .iter()
                .skip(1)
                .all(|o| o.dtype == name),
            "KV cache in {name}"
        );
        let rt = match (dtype, C3Runtime::load(&out, RuntimeOptions::default())) {
            (DType::F16, loaded) => loaded.unwrap(),
            (_, Ok(_)) => continue, // a newer ONNX Runtime with bf16 kernels
            (_, Err(e)) => {
                let msg = format!("{e:#}");
                assert!(msg.contains(".onnx"), "error should name the model: {msg}");
                continue;
            }
        };
        let doc = g.ids("doc0.text_ids");
        let lat = rt.compress(&[doc]).unwrap().remove(0);
        let d = rel_diff(lat.data(), &g.f32s("doc0.projected"));
        assert!(
            d <= 1e-2,
            "fp16 latents differ from HF by {d} of their range"
        );
        let want = g.f32s("doc0.prefill_logits");
        let got = rt.prefill_logits(&lat, true).unwrap();
        let d = rel_diff(&got, &want[want.len() - got.len()..]);
        assert!(
            d <= 1e-2,
            "fp16 prefill logits differ from HF by {d} of their range"
        );
    }
}

/// A quantized fp16 export holds the fp32 export's codes with each scale rounded to
/// fp16 (MatMulNBits types its scales like its activations), so with the same
/// (fp32) compute its logits stay within fp16's tolerance of the quantized fp32
/// export's; scales written in the wrong dtype or layout would not.
#[test]
fn quantized_fp16_exports_equal_quantized_fp32_ones_to_fp16_precision() {
    let g = Golden::load();
    let mut logits = Vec::new();
    for dtype in [DType::F32, DType::F16] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        let args = ExportOptions {
            dtype,
            quantize: Some(c3_export::Quantize::Int4),
            quant_compute: c3_export::QuantCompute::Fp32,
            ..ExportOptions::new(fixtures().join("tiny"), out.clone())
        };
        c3_export::run(&args).unwrap();
        let rt = C3Runtime::load(&out, RuntimeOptions::default()).unwrap();
        let lat = rt.compress(&[g.ids("doc0.text_ids")]).unwrap().remove(0);
        logits.push(rt.prefill_logits(&lat, true).unwrap());
    }
    let d = rel_diff(&logits[1], &logits[0]);
    assert!(
        d <= 1e-2,
        "int4 fp16 vs int4 fp32 logits differ by {d} of their range"
    );
}

/// KV-cache steps through the ONNX decoder equal a full recompute, for both cache
/// contracts: prefill 4 positions, then 2 single steps from the cache, vs all 6 at
/// once (fp32, 1e-4); after truncating back to 4, the same 2 steps again; and the two
/// contracts give the same logits.
#[test]
fn cached_decoder_steps_equal_full_recompute() {
    let (t, split) = (6usize, 4usize);
    let mut per_kind = Vec::new();
    for kv in [KvCacheChoice::SharedBuffer, KvCacheChoice::Concat] {
        let tmp = tempfile::tempdir().unwrap();
        export(DType::F32, Target::Ort, kv, tmp.path());
        let rt = C3Runtime::load(tmp.path(), RuntimeOptions::default()).unwrap();
        let h = rt.manifest.hidden;
        // Deterministic, non-trivial embeddings (sines of distinct frequencies).
        let embeds: Vec<f32> = (0..t * h).map(|i| (0.37 * i as f32).sin() * 0.5).collect();
        let value = |from: usize, to: usize| {
            rt.embeds_from_f32([1, to - from, h], &embeds[from * h..to * h])
                .unwrap()
        };
        let short = rt.embeds_from_f32([1, 2, h], &embeds[..h]).unwrap_err();
        assert!(matches!(short, c3_runtime::Error::Input(_)), "{short}");
        // Full recompute of every prefix 0..=p: its last-position logits (all the
        // decoder computes) are position p's.
        let vocab = rt.manifest.vocab;
        let full: Vec<f32> = (split - 1..t)
            .flat_map(|p| {
                let mut state = rt.decode_state(1, t).unwrap();
                state.forward(value(0, p + 1), p + 1).unwrap();
                state.logits().unwrap().last(0).to_vec()
            })
            .collect();

        let mut state = rt.decode_state(1, t).unwrap();
        state.forward(value(0, split), split).unwrap();
        let mut cached = state.logits().unwrap().last(0).to_vec();
        for p in split..t {
            state.forward(value(p, p + 1), 1).unwrap();
            cached.extend(state.logits().unwrap().last(0));
        }
        assert_eq!(state.len(), t);
        state.truncate(split).unwrap();
        let mut again = Vec::new();
        for p in split..t {
            state.forward(value(p, p + 1), 1).unwrap();
            again.extend(state.logits().unwrap().last(0));
        }

        let diff = max_abs(&cached, &full);
        assert!(
            diff <= 1e-4,
            "{kv:?}: cached vs full recompute: max abs diff {diff} over {t} x {vocab}"
        );
        let tail = &full[vocab..];
        let diff = max_abs(&again, tail);
        assert!(
            diff <= 1e-4,
            "{kv:?}: steps after truncate differ by {diff}"
        );
        let err = state.forward(value(0, 1), 1).unwrap_err();
        assert!(
            format!("{err:#}").contains("capacity"),
            "{kv:?}: over capacity: {err:#}"
        );
        // A run that fails part-way (embeddings of the wrong width) leaves the state
        // refusing further runs rather than decoding from a half-updated cache.
        let mut state = rt.decode_state(1, t).unwrap();
        let bad = rt
            .embeds_from_f32([1, 1, h + 1], &vec![0.0; h + 1])
            .unwrap();
        assert!(
            state.forward(bad, 1).is_err(),
            "{kv:?}: wrong width accepted"
        );
        let err = state.forward(value(0, 1), 1).unwrap_err();
        assert!(
            format!("{err:#}").contains("earlier run"),
            "{kv:?}: {err:#}"
        );
        per_kind.push(full);
    }
    let diff = max_abs(&per_kind[0], &per_kind[1]);
    assert!(
        diff <= 1e-4,
        "shared-buffer vs concat logits differ by {diff}"
    );
}
