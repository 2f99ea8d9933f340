//! Documents longer than one window, on the exported tiny fixture: the same
//! document decodes to the same output through `roundtrip`, through `compress` +
//! latent file + `decompress`, and batched with other documents; the latent file's
//! window index is validated on load (an index that does not match its latents,
//! non-finite values, truncated bytes are each refused in one line).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use c3_core::{Cascade, GenerationConfig};
use c3_export::ExportOptions;
use c3_runtime::{C3Runtime, RuntimeOptions, latent_file};
use safetensors::{Dtype, SafeTensors, serialize, tensor::TensorView};

fn export(out: &Path) -> C3Runtime {
    let args = ExportOptions::new(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny"),
        out.to_path_buf(),
    );
    c3_export::run(&args).unwrap();
    let options = RuntimeOptions {
        window: Some(WINDOW),
        ..RuntimeOptions::default()
    };
    C3Runtime::load(out, options).unwrap()
}

fn cfg(rt: &C3Runtime) -> GenerationConfig {
    GenerationConfig {
        no_repeat_ngram_size: 0,
        ..rt.reference_generation()
    }
}

const DOC: &str = "Windows: a document longer than one window is split on token boundaries, \
every window is compressed to its own latents, and the decoded windows are joined.";
const WINDOW: usize = 24;

#[test]
fn a_long_document_decodes_the_same_every_way() {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"));
    let ids = rt.document_ids(DOC).unwrap();
    assert!(
        ids.len() > 3 * WINDOW,
        "the document must span several windows"
    );

    let r = rt.roundtrip(DOC, rt.prompt(), &cfg(&rt), Some(30)).unwrap();
    assert_eq!(r.windows.len(), ids.len().div_ceil(WINDOW));
    assert_eq!(r.text_ids, ids);

    // Alone, through a latent file.
    let c = rt.compress_documents(std::slice::from_ref(&ids)).unwrap();
    let path = dir.path().join("doc.latents");
    latent_file::save(&path, &rt, &c, &["doc".into()]).unwrap();
    let back = latent_file::load(&path, &rt).unwrap();
    assert_eq!(back.compressed, c);
    let back = rt
        .decompress(&back.compressed, rt.prompt(), &cfg(&rt), Some(30))
        .unwrap();
    let (docs, reports) = (back.docs, back.reports);
    assert_eq!(docs[0], r.generation.ids);
    assert_eq!(reports, r.windows);

    // Batched with shorter and longer documents: windows of all three decode together.
    let short = rt.document_ids("short one").unwrap();
    let long = rt.document_ids(&DOC.repeat(2)).unwrap();
    let batch = [short, ids.clone(), long];
    let c = rt.compress_documents(&batch).unwrap();
    let docs = rt
        .decompress(&c, rt.prompt(), &cfg(&rt), Some(30))
        .unwrap()
        .docs;
    assert_eq!(docs[1], r.generation.ids);
}

/// Rewrites a latent file's metadata and/or values.
fn rewrite(
    bytes: &[u8],
    edit_meta: impl FnOnce(&mut HashMap<String, String>),
    edit_vals: impl FnOnce(&mut Vec<f32>, &mut Vec<usize>),
) -> Vec<u8> {
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta = meta.metadata().clone().unwrap();
    let st = SafeTensors::deserialize(bytes).unwrap();
    let t = st.tensor("latents").unwrap();
    let mut shape = t.shape().to_vec();
    let mut vals: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    edit_meta(&mut meta);
    edit_vals(&mut vals, &mut shape);
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, shape, &data).unwrap();
    serialize([("latents", view)], Some(meta)).unwrap()
}

#[test]
fn a_latent_file_whose_index_lies_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rt = export(&dir.path().join("export"));
    let docs = [
        rt.document_ids(DOC).unwrap(),
        rt.document_ids("second document").unwrap(),
    ];
    let c = rt.compress_documents(&docs).unwrap();
    let good = latent_file::to_bytes(&rt, &c, &["a".into(), "b".into()]).unwrap();
    let back = latent_file::from_bytes(&good, &rt).unwrap();
    assert_eq!(back.compressed, c);
    // Reproducible bytes: the same documents give the same file (the header's keys
    // in a fixed order, not a hash map's), and it is a plain safetensors file.
    for _ in 0..4 {
        assert_eq!(
            latent_file::to_bytes(&rt, &c, &["a".into(), "b".into()]).unwrap(),
            good
        );
    }
    let st = SafeTensors::deserialize(&good).unwrap();
    assert_eq!(
        st.tensor("latents").unwrap().shape(),
        [c.latents.len(), rt.n_latents(), rt.manifest.hidden]
    );
    let windows: Vec<serde_json::Value> = serde_json::from_str(&c3_windows(&good)).unwrap();
    let set_windows = |ws: Vec<serde_json::Value>| {
        move |m: &mut HashMap<String, String>| {
            m.insert("c3.windows".into(), serde_json::to_string(&ws).unwrap());
        }
    };
    let keep = |_: &mut Vec<f32>, _: &mut Vec<usize>| {};
    let err = |b: &[u8]| format!("{:#}", latent_file::from_bytes(b, &rt).unwrap_err());

    // One window dropped from the index: rows and index disagree.
    let mut fewer = windows.clone();
    fewer.remove(1);
    assert!(err(&rewrite(&good, set_windows(fewer), keep)).contains("windows, the tensor has"));
    // A window moved so the document has a gap.
    let mut gap = windows.clone();
    gap[1]["start"] = serde_json::json!(gap[1]["start"].as_u64().unwrap() + 1);
    assert!(err(&rewrite(&good, set_windows(gap), keep)).contains("does not continue"));
    // A window claiming a document that does not exist.
    let mut ghost = windows.clone();
    let last = ghost.len() - 1;
    ghost[last]["doc"] = serde_json::json!(7);
    assert!(err(&rewrite(&good, set_windows(ghost), keep)).contains("document 7"));
    // A padding count that would overflow is refused, not wrapped.
    let mut huge = windows.clone();
    huge[0]["pad"] = serde_json::json!(u64::MAX);
    assert!(err(&rewrite(&good, set_windows(huge), keep)).contains("encoder's limit"));
    // Token counts that disagree with the windows.
    let tokens = |m: &mut HashMap<String, String>| {
        m.insert("c3.text_tokens".into(), "[5, 3]".into());
    };
    assert!(err(&rewrite(&good, tokens, keep)).contains("window"));
    // A NaN among the values.
    let nan = |v: &mut Vec<f32>, _: &mut Vec<usize>| v[3] = f32::NAN;
    assert!(err(&rewrite(&good, |_| {}, nan)).contains("not finite"));
    // Truncated bytes.
    assert!(err(&good[..good.len() - 9]).contains("not a latent file"));
    // Each refusal is one line, and the caller's fault (an upload would get a 400).
    assert!(!err(&good[..good.len() - 9]).contains('\n'));
    let e = latent_file::from_bytes(&rewrite(&good, |_| {}, nan), &rt).unwrap_err();
    assert!(e.is_client_error(), "{e}");
}

fn c3_windows(bytes: &[u8]) -> String {
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    meta.metadata().as_ref().unwrap()["c3.windows"].clone()
}
