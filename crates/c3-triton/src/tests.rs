//! The repository on disk, for the exported tiny fixture (tests/fixtures/tiny).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;

fn export(dir: &Path) -> PathBuf {
    let out = dir.join("export");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny");
    c3_export::run(&c3_export::ExportOptions::new(fixture, &out)).unwrap();
    out
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

#[test]
fn writes_three_models_naming_the_export_and_python_path() {
    let tmp = tempfile::tempdir().unwrap();
    let export = export(tmp.path());
    let repo = tmp.path().join("repo");
    let mut o = RepoOptions::new(&export);
    o.python_path = vec![tmp.path().join("site \"packages\"")];
    let report = write_repository(&repo, &o).unwrap();
    let (_, sha) = ExportManifest::load(&export).unwrap();
    assert_eq!(report.export_sha256, sha);
    assert_eq!(
        report.models,
        ["c3_roundtrip", "c3_compress", "c3_decompress"]
    );
    let abs = export.canonicalize().unwrap();
    assert_eq!(report.export_dir, abs.to_str().unwrap());
    for model in Model::ALL {
        let config = read(repo.join(model.name()).join("config.pbtxt"));
        assert_eq!(
            config,
            config_pbtxt(
                model,
                &ConfigParams {
                    export_dir: report.export_dir.clone(),
                    provider: Provider::Cpu,
                    instances: 1,
                    max_batch: 16,
                    max_queue: 64,
                    threads: 0,
                    export_sha256: sha.clone(),
                }
            )
        );
        let py = read(repo.join(model.name()).join("1/model.py"));
        assert!(!py.contains("@C3_PYTHON_PATH@"));
        // A JSON string list is a Python list literal.
        let site = tmp.path().join("site \\\"packages\\\"");
        assert!(
            py.contains(&format!("C3_PYTHON_PATH = [\"{}\"]\n", site.display())),
            "{py}"
        );
    }
    let marker: serde_json::Value = serde_json::from_str(&read(repo.join(MARKER_FILE))).unwrap();
    assert_eq!(marker["format"], FORMAT);
    assert_eq!(marker["export_sha256"], sha.as_str());
    // Nothing but the models and the marker: Triton takes every folder for a model.
    let mut names: Vec<String> = std::fs::read_dir(&repo)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "c3-triton.json",
            "c3_compress",
            "c3_decompress",
            "c3_roundtrip"
        ]
    );
}

#[test]
fn copy_export_makes_a_self_contained_repository_with_one_copy_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let export = export(tmp.path());
    let repo = tmp.path().join("repo");
    let o = RepoOptions {
        copy_export: true,
        ..RepoOptions::new(&export)
    };
    let report = write_repository(&repo, &o).unwrap();
    assert_eq!(report.export_dir, EXPORT_COPY_DIR);
    let (_, sha) = ExportManifest::load(&export).unwrap();
    let first = repo.join("c3_roundtrip").join(EXPORT_COPY_DIR);
    for model in Model::ALL {
        let copy = repo.join(model.name()).join(EXPORT_COPY_DIR);
        assert_eq!(ExportManifest::load(&copy).unwrap().1, sha);
        assert!(
            read(repo.join(model.name()).join("config.pbtxt")).contains("string_value: \"export\"")
        );
        let a = std::fs::metadata(first.join(MANIFEST_FILE_NAME)).unwrap();
        let b = std::fs::metadata(copy.join(MANIFEST_FILE_NAME)).unwrap();
        assert_eq!(a.ino(), b.ino(), "{} is not a hard link", copy.display());
    }
}

const MANIFEST_FILE_NAME: &str = c3_core::MANIFEST_FILE;

#[test]
fn an_existing_repository_is_replaced_only_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let export = export(tmp.path());
    let repo = tmp.path().join("repo");
    write_repository(&repo, &RepoOptions::new(&export)).unwrap();
    let err = write_repository(&repo, &RepoOptions::new(&export)).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    let o = RepoOptions {
        force: true,
        provider: Provider::Cuda,
        ..RepoOptions::new(&export)
    };
    write_repository(&repo, &o).unwrap();
    assert!(read(repo.join("c3_roundtrip/config.pbtxt")).contains("kind: KIND_GPU"));
    // A folder that is not a repository is never replaced, even with force.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep").unwrap();
    let err = write_repository(&other, &o).unwrap_err();
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(read(other.join("notes.txt")), "keep");
}

#[test]
fn bad_options_and_exports_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let err = write_repository(&repo, &RepoOptions::new(tmp.path().join("nope"))).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = write_repository(&repo, &RepoOptions::new(tmp.path())).unwrap_err();
    assert!(err.to_string().contains("c3-export.json"), "{err}");
    let export = export(tmp.path());
    for (o, msg) in [
        (
            RepoOptions {
                instances: 0,
                ..RepoOptions::new(&export)
            },
            "--instances",
        ),
        (
            RepoOptions {
                max_batch: 0,
                ..RepoOptions::new(&export)
            },
            "--max-batch",
        ),
        (
            RepoOptions {
                max_queue: 0,
                ..RepoOptions::new(&export)
            },
            "--max-queue",
        ),
    ] {
        let err = write_repository(&repo, &o).unwrap_err();
        assert!(err.to_string().contains(msg), "{err}");
    }
    assert!(!repo.exists());
    assert!(
        Provider::parse("rocm")
            .unwrap_err()
            .to_string()
            .contains("cpu, cuda or tensorrt")
    );
}
