//! Checkpoint I/O: bit-exact round trips in every dtype and layout, and clear
//! errors for missing, misshaped and corrupt tensors.

use std::borrow::Cow;

use super::*;
use crate::presets::{Preset, init_checkpoint};

fn tiny(dir: &Path, dtype: DType) -> C3Config {
    init_checkpoint(Preset::Tiny, 7, dtype, dir, false).unwrap()
}

/// Re-saves every tensor of `src` into `dst` with the given sharding.
fn resave(src: &Checkpoint, dst: &Path, shard_bytes: Option<u64>) {
    fn collect(store: &TensorStore) -> Vec<WriteTensor<'_>> {
        store
            .names()
            .into_iter()
            .map(|n| {
                let t = store.get(n).unwrap();
                WriteTensor::borrowed(n, t.dtype, t.shape.to_vec(), t.data)
            })
            .collect()
    }
    let opts = SaveOptions {
        shard_bytes,
        root_files: vec![],
        overwrite: false,
    };
    save_checkpoint(
        dst,
        &src.config,
        &collect(&src.root),
        &collect(&src.llm1),
        &opts,
    )
    .unwrap();
}

fn assert_same(a: &Checkpoint, b: &Checkpoint) {
    assert_eq!(a.config, b.config);
    for (x, y) in [(&a.root, &b.root), (&a.llm1, &b.llm1)] {
        assert_eq!(x.names(), y.names());
        for n in x.names() {
            let (p, q) = (x.get(n).unwrap(), y.get(n).unwrap());
            assert_eq!((p.dtype, p.shape), (q.dtype, q.shape), "{n}");
            assert!(p.data == q.data, "{n} differs");
        }
    }
}

#[test]
fn round_trip_is_bit_exact_in_every_dtype_and_layout() {
    let tmp = tempfile::tempdir().unwrap();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let a = tmp.path().join(format!("a-{dtype}"));
        tiny(&a, dtype);
        let ca = Checkpoint::open(&a).unwrap();
        assert_eq!(ca.dtype(), dtype);
        for (tag, shard) in [("single", None), ("sharded", Some(40_000))] {
            let b = tmp.path().join(format!("b-{dtype}-{tag}"));
            resave(&ca, &b, shard);
            assert_eq!(b.join(INDEX_FILE).exists(), shard.is_some());
            assert_same(&ca, &Checkpoint::open(&b).unwrap());
        }
    }
}

#[test]
fn tied_and_untied_heads_follow_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny(tmp.path().join("t").as_path(), DType::F32);
    let ck = Checkpoint::open(&tmp.path().join("t")).unwrap();
    assert_eq!(
        ck.root.contains("lm_head.weight"),
        !cfg.decoder.tie_word_embeddings
    );
    assert_eq!(
        ck.llm1.contains("lm_head.weight"),
        !cfg.encoder.tie_word_embeddings
    );
}

/// Rewrites one folder of a checkpoint with `edit` applied to its tensor list.
fn tamper(dir: &Path, edit: impl Fn(&mut Vec<(String, DType, Vec<usize>, Vec<u8>)>)) {
    let store = TensorStore::open(dir).unwrap();
    let mut ts: Vec<_> = store
        .names()
        .into_iter()
        .map(|n| {
            let t = store.get(n).unwrap();
            (n.to_string(), t.dtype, t.shape.to_vec(), t.data.to_vec())
        })
        .collect();
    drop(store);
    edit(&mut ts);
    let w: Vec<_> = ts
        .iter()
        .map(|(n, d, s, b)| WriteTensor::borrowed(n.clone(), *d, s.clone(), b))
        .collect();
    let items = w.iter().map(|t| (t.name.as_str(), t));
    safetensors::serialize_to_file(items, None, &dir.join(WEIGHTS_FILE)).unwrap();
}

#[test]
fn missing_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("c");
    tiny(&d, DType::F32);
    tamper(&d, |ts| ts.retain(|t| t.0 != "model.Q.weight"));
    let e = Checkpoint::open(&d).err().unwrap().to_string();
    assert!(e.contains("model.Q.weight") && e.contains("missing"), "{e}");
}

#[test]
fn misshaped_tensor_is_named_with_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("c");
    tiny(&d, DType::F32);
    tamper(&d.join("llm1"), |ts| {
        let t = ts.iter_mut().find(|t| t.0 == "model.norm.weight").unwrap();
        t.2 = vec![t.2[0] / 2, 2];
    });
    let e = Checkpoint::open(&d).err().unwrap().to_string();
    assert!(
        e.contains("model.norm.weight") && e.contains("llm1/model.safetensors"),
        "{e}"
    );
}

#[test]
fn truncated_file_is_refused_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("c");
    tiny(&d, DType::F32);
    let f = d.join(WEIGHTS_FILE);
    let len = std::fs::metadata(&f).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
    file.set_len(len - 100).unwrap();
    let e = Checkpoint::open(&d).err().unwrap().to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("not a valid safetensors"),
        "{e}"
    );
}

#[test]
fn interrupted_write_leaves_nothing_that_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    tiny(&src, DType::F32);
    let ck = Checkpoint::open(&src).unwrap();
    let dst = tmp.path().join("dst");
    // The second tensor's producer dies mid-save, like a crash while writing.
    let root: Vec<WriteTensor> = ck
        .root
        .names()
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let t = ck.root.get(n).unwrap();
            WriteTensor::lazy(n, t.dtype, t.shape.to_vec(), move || {
                if i == 1 {
                    panic!("simulated crash");
                }
                Cow::Borrowed(t.data)
            })
        })
        .collect();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        save_checkpoint(&dst, &ck.config, &root, &[], &SaveOptions::default())
    }));
    assert!(r.is_err());
    assert!(
        !dst.exists(),
        "a half checkpoint appeared under the final name"
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "staging folder not cleaned: {leftovers:?}"
    );
}

#[test]
fn overwrite_replaces_atomically_and_refuses_without_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("c");
    tiny(&d, DType::F32);
    let e = init_checkpoint(Preset::Tiny, 7, DType::F32, &d, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    init_checkpoint(Preset::Tiny, 8, DType::BF16, &d, true).unwrap();
    assert_eq!(Checkpoint::open(&d).unwrap().dtype(), DType::BF16);
}
