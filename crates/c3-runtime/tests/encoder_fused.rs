//! The `--target ort` encoder (ONNX Runtime's GroupQueryAttention over rows rotated
//! to right padding) equals the standard-op encoder, itself checked against the HF
//! goldens (golden.rs): latents within fp32 tolerance for a batch of documents of
//! different lengths (so rows really are padded), alone or batched, and the same
//! greedy reconstruction. On the shipped tiny model, whose encoder head_dim (32) the
//! fused op takes; the golden fixture's (12) it does not.

use std::path::{Path, PathBuf};

use c3_core::KvCache;
use c3_export::{ExportOptions, KvCacheChoice, Target};
use c3_runtime::{C3Runtime, RuntimeOptions};

fn export(target: Target, out: &Path) -> C3Runtime {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/c3-tiny");
    let args = ExportOptions {
        target,
        // The same decoder for both: only the encoder differs.
        kv_cache: KvCacheChoice::Concat,
        ..ExportOptions::new(model, out)
    };
    c3_export::run(&args).unwrap();
    C3Runtime::load(out, RuntimeOptions::default()).unwrap()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn fused_encoder_equals_standard_ops() {
    let dir = tempfile::tempdir().unwrap();
    let fused = export(Target::Ort, &dir.path().join("ort"));
    let standard = export(Target::Tensorrt, &dir.path().join("trt"));
    let ops = |rt: &C3Runtime| rt.manifest.models.encoder.op_types.clone();
    assert!(
        ops(&fused)
            .iter()
            .any(|o| o.ends_with("GroupQueryAttention"))
    );
    assert!(
        !ops(&standard)
            .iter()
            .any(|o| o.ends_with("GroupQueryAttention"))
    );
    assert_eq!(fused.manifest.kv_cache, KvCache::Concat);
    let page = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo-page.txt"),
    )
    .unwrap();
    let ids = fused.document_ids(&page).unwrap();
    // Four lengths in one batch: three rows padded, by 1 to 40 positions.
    let docs: Vec<Vec<u32>> = [40usize, 39, 17, 1]
        .iter()
        .map(|&n| ids[..n].to_vec())
        .collect();
    let a = fused.compress(&docs).unwrap();
    let b = standard.compress(&docs).unwrap();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let d = max_abs(x.data(), y.data());
        assert!(
            d <= 1e-4,
            "doc {i} ({} tokens): latents differ by {d}",
            docs[i].len()
        );
        let alone = fused.compress(std::slice::from_ref(&docs[i])).unwrap();
        let d = max_abs(alone[0].data(), x.data());
        assert!(d <= 1e-5, "doc {i}: batched and alone differ by {d}");
    }
    let cfg = fused.reference_generation();
    let text = &page[..400];
    let r1 = c3_core::Cascade::roundtrip(&fused, text, fused.prompt(), &cfg, Some(48)).unwrap();
    let r2 =
        c3_core::Cascade::roundtrip(&standard, text, standard.prompt(), &cfg, Some(48)).unwrap();
    assert_eq!(r1.text, r2.text);
}
