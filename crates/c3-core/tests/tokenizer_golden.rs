//! Tokenizer ids against the goldens of `tests/golden/gen_golden.py` (Python
//! tiktoken on the release's `qwen.tiktoken`, and HF tokenizers on Qwen2.5's
//! `tokenizer.json`): English, Chinese, digits, whitespace runs, accents, emoji,
//! and special-token strings inside text, which must stay ordinary text.

use std::path::PathBuf;

use c3_core::C3Tokenizer;
use serde_json::Value;

fn golden() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/golden/tokenizer_golden.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn tiktoken_ids_and_specials_match_the_goldens() {
    let tok = C3Tokenizer::from_tiktoken(&c3_core::deps::qwen_tiktoken().unwrap()).unwrap();
    let g = golden();
    for case in g["texts"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let got = tok.encode(text).unwrap();
        assert_eq!(got, ids(&case["tiktoken_ids"]), "{}", case["name"]);
        assert_eq!(
            tok.decode(&got).unwrap(),
            case["nfc_text"].as_str().unwrap()
        );
    }
    for (name, id) in g["special_tokens"].as_object().unwrap() {
        assert_eq!(tok.decode(&[id.as_u64().unwrap() as u32]).unwrap(), *name);
    }
    let sp = tok.specials();
    assert_eq!(
        (
            sp.endoftext,
            sp.im_end,
            sp.img_start,
            sp.img_end,
            sp.img_pad
        ),
        (151643, 151645, 151857, 151858, 151859)
    );
    assert_eq!(tok.vocab_size(), 151860);
}

/// Qwen2.5's tokenizer.json with the C3 special tokens added (as a C3 user would).
fn qwen_json_with_c3_specials(dir: &std::path::Path) -> PathBuf {
    let src = c3_core::deps::qwen_tokenizer_json().unwrap();
    let mut j: Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
    let added = j["added_tokens"].as_array_mut().unwrap();
    for (i, name) in ["<img>", "</img>", "<imgpad>"].iter().enumerate() {
        added.push(
            serde_json::json!({"id": 151857 + i, "content": name, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}),
        );
    }
    let p = dir.join("tokenizer.json");
    std::fs::write(&p, j.to_string()).unwrap();
    p
}

#[test]
fn hf_tokenizer_json_gives_the_same_ids_even_on_special_strings() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = C3Tokenizer::from_tokenizer_json(&qwen_json_with_c3_specials(tmp.path())).unwrap();
    for case in golden()["texts"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["tiktoken_ids"]);
        assert_eq!(tok.encode(text).unwrap(), want, "{}", case["name"]);
        if !case["hf_ids"].is_null() {
            assert_eq!(ids(&case["hf_ids"]), want, "{}", case["name"]);
        }
    }
    // The specials exist as ids of their own, above every ordinary id.
    assert!(tok.specials().img_pad >= 151643);
}
