//! Export folders are untrusted input: a manifest or ONNX file that names a file
//! outside the folder (`..`, an absolute path, a symlink leaving it) is refused in one
//! line naming the field and the value, even when the file there is a byte-identical
//! copy whose hash matches. And an fp32 shared-buffer export is refused on CUDA before
//! any session exists, so that check runs here without a GPU.

use std::path::{Path, PathBuf};

use c3_core::ExportManifest;
use c3_core::manifest::sha256_file;
use c3_export::{ExportOptions, KvCacheChoice};
use c3_onnx::proto::tensor_proto::DataLocation;
use c3_onnx::proto::{ModelProto, StringStringEntryProto};
use c3_runtime::{C3Runtime, Provider, RuntimeOptions};
use prost::Message;

/// Exports the tiny fixture to `root/export` and returns that folder.
fn export(root: &Path, kv_cache: KvCacheChoice) -> PathBuf {
    let out = root.join("export");
    let args = ExportOptions {
        kv_cache,
        ..ExportOptions::new(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny"),
            out.clone(),
        )
    };
    c3_export::run(&args).unwrap();
    out
}

/// Rewrites the manifest as an attacker would: as JSON, not through the checking loader.
fn edit_manifest(dir: &Path, f: impl FnOnce(&mut ExportManifest)) {
    let bytes = std::fs::read(dir.join(c3_core::MANIFEST_FILE)).unwrap();
    let mut m: ExportManifest = serde_json::from_slice(&bytes).unwrap();
    f(&mut m);
    m.save(dir).unwrap();
}

/// Moves `dir/name` to `root/elsewhere/name` and returns the new path.
fn move_out(dir: &Path, name: &str) -> PathBuf {
    let elsewhere = dir.parent().unwrap().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let to = elsewhere.join(name);
    std::fs::rename(dir.join(name), &to).unwrap();
    to
}

/// The load error, checked to be one line that names every `needle`.
fn refused(dir: &Path, options: RuntimeOptions, needles: &[&str]) -> String {
    let err = match C3Runtime::load(dir, options) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => format!("{e:#}"),
    };
    assert!(!err.contains('\n'), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
    err
}

#[test]
fn a_manifest_path_leaving_the_folder_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path(), KvCacheChoice::Auto);
    move_out(&dir, "encoder.onnx");
    edit_manifest(&dir, |m| {
        m.models.encoder.file = "../elsewhere/encoder.onnx".into()
    });
    refused(
        &dir,
        RuntimeOptions::default(),
        &["models.encoder.file", "`../elsewhere/encoder.onnx`"],
    );
}

/// A manifest claiming more layers than its decoder declares inputs for is refused
/// in one line before names for that many layers are built (found by fuzz/: it asked
/// for a 412 GB allocation and aborted), whatever the count.
#[test]
fn a_hostile_layer_count_is_refused_without_allocating() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path(), KvCacheChoice::Auto);
    for layers in [usize::MAX, usize::MAX / 2, 1 << 40, 3] {
        edit_manifest(&dir, |m| m.layers = layers);
        refused(
            &dir,
            RuntimeOptions::default(),
            &["decoder declares", "layers need"],
        );
    }
}

#[test]
fn an_absolute_tokenizer_path_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path(), KvCacheChoice::Auto);
    // The copy stays in the folder too: the runtime's tokenizer loads from there, only
    // the manifest's hashed name points away.
    let outside = root.path().join("tokenizer.json");
    std::fs::copy(dir.join("tokenizer.json"), &outside).unwrap();
    let abs = outside.display().to_string();
    edit_manifest(&dir, |m| m.tokenizer.file = abs.clone());
    refused(
        &dir,
        RuntimeOptions::default(),
        &["tokenizer.file", &format!("`{abs}`")],
    );
    // Refused by name, before anything is opened: a path that does not exist gets the
    // same answer, not a file-not-found from hashing.
    edit_manifest(&dir, |m| {
        m.tokenizer.file = "/nonexistent/tokenizer.json".into()
    });
    refused(
        &dir,
        RuntimeOptions::default(),
        &["tokenizer.file", "`/nonexistent/tokenizer.json`"],
    );
}

#[cfg(unix)]
#[test]
fn the_tokenizer_loaded_is_the_one_the_manifest_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = export(tmp.path(), KvCacheChoice::Auto);
    // Renamed, hash unchanged: the manifest's name is what loads.
    std::fs::rename(dir.join("tokenizer.json"), dir.join("vocab.json")).unwrap();
    edit_manifest(&dir, |m| m.tokenizer.file = "vocab.json".into());
    let rt = C3Runtime::load(&dir, RuntimeOptions::default()).unwrap();
    assert_eq!(rt.tokenizer.path(), dir.join("vocab.json"));
    // A stray tokenizer.json beside it is not picked up instead.
    std::fs::write(dir.join("tokenizer.json"), b"{}").unwrap();
    let rt = C3Runtime::load(&dir, RuntimeOptions::default()).unwrap();
    assert_eq!(rt.tokenizer.path(), dir.join("vocab.json"));
}

#[test]
fn a_symlink_leaving_the_folder_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path(), KvCacheChoice::Auto);
    let outside = move_out(&dir, "decoder.onnx");
    std::os::unix::fs::symlink(&outside, dir.join("decoder.onnx")).unwrap();
    refused(
        &dir,
        RuntimeOptions::default(),
        &["models.decoder.file", "`decoder.onnx`", "symlink"],
    );
    // A link that stays inside is an ordinary file of the folder.
    std::fs::remove_file(dir.join("decoder.onnx")).unwrap();
    std::fs::rename(&outside, dir.join("real-decoder.onnx")).unwrap();
    std::os::unix::fs::symlink("real-decoder.onnx", dir.join("decoder.onnx")).unwrap();
    C3Runtime::load(&dir, RuntimeOptions::default()).unwrap();
}

/// Moves the largest initializer of `dir/file` into external data at `location`
/// (relative to `dir`, so `../x` lands outside) and records it in the manifest.
fn externalize(dir: &Path, file: &str, location: &str) {
    let path = dir.join(file);
    let mut model = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let t = graph
        .initializer
        .iter_mut()
        .max_by_key(|t| t.raw_data.as_ref().map_or(0, Vec::len))
        .unwrap();
    let data = t.raw_data.take().unwrap();
    std::fs::write(dir.join(location), &data).unwrap();
    t.data_location = Some(DataLocation::External as i32);
    t.external_data = [("location", location.to_string()), ("offset", "0".into())]
        .into_iter()
        .chain([("length", data.len().to_string())])
        .map(|(k, v)| StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v),
        })
        .collect();
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let sha = sha256_file(&path).unwrap();
    let name = Path::new(location).file_name().unwrap().to_str().unwrap();
    edit_manifest(dir, |m| {
        let e = match file {
            "decoder.onnx" => &mut m.models.decoder,
            "encoder.onnx" => &mut m.models.encoder,
            _ => &mut m.models.embed_tokens,
        };
        e.sha256 = sha;
        e.data_file = Some(name.into());
        e.data_bytes = data.len() as u64;
    });
}

#[test]
fn external_data_must_stay_inside_the_folder() {
    // Inside: loads and runs (ONNX Runtime reads the data file).
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path(), KvCacheChoice::Auto);
    externalize(&dir, "embed_tokens.onnx", "embed_tokens.onnx.data");
    let rt = C3Runtime::load(&dir, RuntimeOptions::default()).unwrap();
    let lat = rt
        .compress(&[rt.document_ids("outside in").unwrap()])
        .unwrap();
    rt.prefill_embeds(&[&lat[0]]).unwrap();

    // Outside: the manifest's data_file is a plain name that exists in the folder (the
    // same bytes), but the ONNX file itself points at `../elsewhere/...`.
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path(), KvCacheChoice::Auto);
    std::fs::create_dir(root.path().join("elsewhere")).unwrap();
    let loc = "../elsewhere/embed_tokens.onnx.data";
    externalize(&dir, "embed_tokens.onnx", loc);
    std::fs::copy(
        root.path().join("elsewhere/embed_tokens.onnx.data"),
        dir.join("embed_tokens.onnx.data"),
    )
    .unwrap();
    refused(
        &dir,
        RuntimeOptions::default(),
        &[
            "embed_tokens.onnx: external data location",
            &format!("`{loc}`"),
        ],
    );
}

#[test]
fn fp32_shared_buffer_exports_are_refused_on_cuda_before_any_session() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path(), KvCacheChoice::SharedBuffer);
    for provider in [Provider::Cuda, Provider::TensorRt { cache_dir: None }] {
        let options = RuntimeOptions {
            provider,
            // Even with fallback allowed: the export, not the machine, is at fault.
            allow_fallback: true,
            ..RuntimeOptions::default()
        };
        refused(
            &dir,
            options,
            &["fp32", "shared_buffer", "--dtype fp16", "--kv-cache concat"],
        );
    }
    C3Runtime::load(&dir, RuntimeOptions::default()).unwrap();
}

/// A TensorRT plan folder is checked by the runtime library itself (every front-end
/// gets the check): one that is not a plan, or a plan of another export, is refused
/// before any session exists.
#[test]
fn a_foreign_or_missing_tensorrt_plan_is_refused_by_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = export(tmp.path(), KvCacheChoice::Concat);
    let plans = tmp.path().join("trt-plans");
    std::fs::create_dir_all(&plans).unwrap();
    let with_engine = || RuntimeOptions {
        engine: Some(c3_trt::TrtPlanCheck::plan(&plans)),
        ..Default::default()
    };
    let err = C3Runtime::load(&dir, with_engine()).err().expect("refused");
    assert!(matches!(err, c3_runtime::Error::Engine(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("plan.json") && !msg.contains('\n'), "{msg}");
    // A plan made for another export (its manifest hash differs).
    let gpu = c3_trt::gpu::GpuInfo {
        index: 0,
        name: "NVIDIA H100".into(),
        compute_capability: "9.0".into(),
        driver_version: "570".into(),
    };
    c3_trt::plan::PlanManifest {
        format: c3_trt::plan::PLAN_FORMAT.into(),
        c3_version: "0".into(),
        model_id: "tiny".into(),
        export_manifest_sha256: "0".repeat(64),
        export_dtype: "fp32".into(),
        backend: "ort-trt".into(),
        gpu_arch: gpu.arch(),
        gpu,
        tensorrt_version: "10.0".into(),
        cuda_version: None,
        onnxruntime_version: None,
        engines: Vec::new(),
        timing_cache: None,
        built_at_unix: 0,
        build_seconds: 0.0,
    }
    .save(&plans)
    .unwrap();
    let msg = C3Runtime::load(&dir, with_engine())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        msg.contains("built from export manifest 000000000000") && !msg.contains('\n'),
        "{msg}"
    );
}

/// Weight files are hashed once at export: a load checks their size (the bytes are
/// ONNX Runtime's to map), `verify_files` (`--verify-files`) rehashes them and names
/// the changed file. `embed_tokens.onnx` is hashed when first opened.
#[test]
fn changed_weights_are_found_by_verify_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path(), KvCacheChoice::Auto);
    externalize(&dir, "embed_tokens.onnx", "embed_tokens.onnx.data");
    let data = dir.join("embed_tokens.onnx.data");
    let sha = sha256_file(&data).unwrap();
    edit_manifest(&dir, |m| m.models.embed_tokens.data_sha256 = Some(sha));
    let full = || RuntimeOptions {
        verify_files: true,
        ..Default::default()
    };
    C3Runtime::load(&dir, full()).unwrap();
    // Same size, one byte changed.
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[7] ^= 0x40;
    std::fs::write(&data, &bytes).unwrap();
    C3Runtime::load(&dir, RuntimeOptions::default()).unwrap();
    refused(
        &dir,
        full(),
        &[
            "embed_tokens.onnx.data",
            "sha256",
            "weights changed since export",
        ],
    );
    // A changed graph: its hash (checked here at the full level; at the default
    // level a graph is hashed when it is opened).
    let graph = dir.join("embed_tokens.onnx");
    let mut g = std::fs::read(&graph).unwrap();
    let last = g.len() - 1;
    g[last] ^= 0x01;
    std::fs::write(&graph, &g).unwrap();
    refused(&dir, full(), &["embed_tokens.onnx", "sha256"]);
}

/// Corrupted decoder weights (NaN and huge values where the weights were, same
/// size): `verify_files` refuses them at load, naming the file; without it they
/// load (their size is right and their hash is taken only at export) and a round
/// trip runs to an answer or an error, never a crash: the behaviour docs/serve.md
/// documents for `--verify-files`.
#[test]
fn corrupted_weights_are_refused_with_verify_files_and_never_crash_without() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path(), KvCacheChoice::Auto);
    externalize(&dir, "decoder.onnx", "decoder.onnx.data");
    let data = dir.join("decoder.onnx.data");
    let sha = sha256_file(&data).unwrap();
    edit_manifest(&dir, |m| m.models.decoder.data_sha256 = Some(sha));
    let mut bytes = std::fs::read(&data).unwrap();
    for (i, b) in bytes.iter_mut().enumerate() {
        // 0xff.. is a NaN in f32; every 7th byte group pushed to huge exponents.
        if i % 3 == 0 {
            *b = 0xff;
        } else if i % 7 == 0 {
            *b = 0x7f;
        }
    }
    std::fs::write(&data, &bytes).unwrap();
    let full = RuntimeOptions {
        verify_files: true,
        ..Default::default()
    };
    refused(&dir, full, &["decoder.onnx.data", "sha256"]);
    let rt = C3Runtime::load(&dir, RuntimeOptions::default()).unwrap();
    let cfg = rt.reference_generation();
    let text = "Corrupted weights must not crash the runtime.";
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c3_core::Cascade::roundtrip(&rt, text, rt.prompt(), &cfg, Some(8)).map(|r| r.text)
    }));
    assert!(got.is_ok(), "a round trip on corrupted weights panicked");
}
