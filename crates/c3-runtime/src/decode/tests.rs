//! The shared-buffer state binds the current lengths on every run. On the CPU a
//! binding made once and rewritten in host memory gives the same outputs (ONNX Runtime
//! aliases host tensors), so outputs cannot catch a regression; the record of what each
//! run bound can.

use std::path::{Path, PathBuf};

use c3_export::{ExportOptions, KvCacheChoice};

use super::{Cache, DecodeState};
use crate::{C3Runtime, RuntimeOptions};

fn export_shared(out: &Path) -> C3Runtime {
    let args = ExportOptions {
        kv_cache: KvCacheChoice::SharedBuffer,
        ..ExportOptions::new(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny"),
            out.to_path_buf(),
        )
    };
    c3_export::run(&args).unwrap();
    C3Runtime::load(out, RuntimeOptions::default()).unwrap()
}

fn bound(state: &DecodeState<'_>) -> Vec<(Vec<i32>, i32)> {
    match &state.cache {
        Cache::Shared(sh) => sh.bound_lengths.clone(),
        Cache::Concat { .. } => panic!("expected a shared-buffer cache"),
    }
}

#[test]
fn every_shared_buffer_run_binds_the_current_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let rt = export_shared(&dir.path().join("export"));
    let prompt_len = rt.manifest.prompt.ids.len();
    let ids = rt.document_ids("bind me every step").unwrap();
    let lat = rt.compress(&[ids.clone(), ids]).unwrap();
    let rows: Vec<_> = lat.iter().collect();
    let mut state = rt.decode_state(2, prompt_len + 4).unwrap();
    state
        .forward(rt.prefill_embeds(&rows).unwrap(), prompt_len)
        .unwrap();
    let mut want = vec![(vec![prompt_len as i32 - 1; 2], prompt_len as i32)];
    assert_eq!(bound(&state), want);
    for step in 1..=3 {
        state
            .forward(rt.decoder.sessions.embed(&[1, 2], 2).unwrap(), 1)
            .unwrap();
        let total = (prompt_len + step) as i32;
        want.push((vec![total - 1; 2], total));
        assert_eq!(bound(&state), want, "after step {step}");
    }
    // Back to an earlier position (what benchmarks do): the next run binds that one.
    state.truncate(prompt_len).unwrap();
    state
        .forward(rt.decoder.sessions.embed(&[1, 2], 2).unwrap(), 1)
        .unwrap();
    assert_eq!(
        bound(&state).last(),
        Some(&(vec![prompt_len as i32; 2], prompt_len as i32 + 1))
    );
}

/// A decoder that takes `input_ids` decodes in one run per step: `embed_tokens.onnx`
/// is never opened, by requests or by the scheduler; one without it opens it.
#[test]
fn decoders_taking_ids_never_run_the_embedding_model() {
    let tiny = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny");
    for (kv_cache, embeds_only) in [
        (KvCacheChoice::SharedBuffer, false),
        (KvCacheChoice::Concat, false),
        (KvCacheChoice::SharedBuffer, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("export");
        let args = ExportOptions {
            kv_cache,
            decoder_embeds_only: embeds_only,
            ..ExportOptions::new(&tiny, &out)
        };
        c3_export::run(&args).unwrap();
        let rt = std::sync::Arc::new(C3Runtime::load(&out, RuntimeOptions::default()).unwrap());
        assert_eq!(rt.decoder.sessions.takes_ids(), !embeds_only);
        let r = c3_core::Cascade::roundtrip(
            &*rt,
            "one run per step",
            rt.prompt(),
            &rt.reference_generation(),
            Some(6),
        )
        .unwrap();
        assert!(r.generation.ids.len() > 1);
        let sched = crate::Scheduler::start(rt.clone(), Default::default()).unwrap();
        let ids = rt.document_ids("and through the scheduler").unwrap();
        let task = crate::RoundtripTask {
            text_ids: ids,
            prompt: None,
            cfg: rt.reference_generation(),
            limit: Some(6),
        };
        sched.run(task).unwrap();
        drop(sched);
        assert_eq!(
            rt.decoder.sessions.embed_opened(),
            embeds_only,
            "{kv_cache:?}"
        );
    }
}
