//! Fixtures shared by the benchmarks: a random-weight `tiny` preset checkpoint
//! (decoder context 2048, so decode steps can be timed at position 1024), exported
//! to ONNX and loaded in the runtime. Latency does not depend on the weights' values.

use c3_core::DType;
use c3_core::presets::{Preset, init_checkpoint};
use c3_export::{ExportOptions, KvCacheChoice};
use c3_runtime::{C3Runtime, RuntimeOptions};

/// A loaded export and the folder that holds it (deleted on drop).
pub struct Fixture {
    pub runtime: C3Runtime,
    _dir: tempfile::TempDir,
}

/// Exports a fresh `tiny` preset checkpoint with the decoder cache `kv_cache` and
/// loads it with `options`.
pub fn tiny_export(options: RuntimeOptions, kv_cache: KvCacheChoice) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let ck = dir.path().join("ck");
    init_checkpoint(Preset::Tiny, 0, DType::F32, &ck, false).expect("init tiny checkpoint");
    let out = dir.path().join("export");
    let args = ExportOptions {
        kv_cache,
        ..ExportOptions::new(ck, out.clone())
    };
    c3_export::run(&args).expect("export");
    let runtime = C3Runtime::load(&out, options).expect("load export");
    Fixture { runtime, _dir: dir }
}
