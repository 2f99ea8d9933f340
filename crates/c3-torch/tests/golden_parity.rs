//! Parity with HF transformers' Qwen2 (goldens from `tests/golden/gen_golden.py`):
//! encoder latents, projected latents and prefill logits within 1e-4 in fp32,
//! greedy tokens identical, batched encoding equal to unbatched, KV-cached steps
//! equal to full recomputation.

use std::collections::HashMap;
use std::path::PathBuf;

use c3_core::prompt::encoder_input;
use c3_core::{C3Tokenizer, Checkpoint, DecoderPrompt, GenerationConfig, PromptTemplate};
use c3_torch::tch::{Device, Kind, Tensor};
use c3_torch::{C3Model, EncoderBatch, KvCache, generate, load_model};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

struct Golden {
    t: HashMap<String, Tensor>,
}

impl Golden {
    fn load() -> Self {
        let path = fixtures().join("golden/tiny_golden.safetensors");
        let t = Tensor::read_safetensors(&path)
            .unwrap()
            .into_iter()
            .collect();
        Golden { t }
    }
    fn get(&self, k: &str) -> &Tensor {
        self.t
            .get(k)
            .unwrap_or_else(|| panic!("golden {k} missing"))
    }
    fn ids(&self, k: &str) -> Vec<u32> {
        Vec::<i64>::try_from(self.get(k))
            .unwrap()
            .into_iter()
            .map(|x| x as u32)
            .collect()
    }
}

fn setup() -> (C3Model, C3Tokenizer, Golden) {
    let dir = fixtures().join("tiny");
    let ck = Checkpoint::open(&dir).unwrap();
    let (vs, model) = load_model(&ck, Device::Cpu, Kind::Float).unwrap();
    std::mem::forget(vs); // variables are shared with the model's tensors
    let tok = C3Tokenizer::from_dir(&dir).unwrap();
    (model, tok, Golden::load())
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn encode(model: &C3Model, tok: &C3Tokenizer, docs: &[Vec<u32>]) -> Tensor {
    let n = model.config.n_latents();
    let seqs: Vec<Vec<u32>> = docs
        .iter()
        .map(|d| encoder_input(d, n, tok.specials()))
        .collect();
    let batch = EncoderBatch::new(&seqs, tok.specials().endoftext, Device::Cpu).unwrap();
    tch::no_grad(|| model.encode(&batch))
}

#[test]
fn latents_and_projection_match_hf() {
    let (model, tok, g) = setup();
    for i in 0..3 {
        let ids = g.ids(&format!("doc{i}.text_ids"));
        let lat = encode(&model, &tok, &[ids]).squeeze_dim(0);
        let d = max_abs(&lat, g.get(&format!("doc{i}.latents")));
        assert!(d <= 1e-4, "doc{i} latents differ by {d}");
        let proj = tch::no_grad(|| model.project(&lat));
        let d = max_abs(&proj, g.get(&format!("doc{i}.projected")));
        assert!(d <= 1e-4, "doc{i} projected differ by {d}");
    }
}

#[test]
fn batched_left_padded_encoding_equals_unbatched() {
    let (model, tok, g) = setup();
    let docs: Vec<Vec<u32>> = (0..3).map(|i| g.ids(&format!("doc{i}.text_ids"))).collect();
    let batched = encode(&model, &tok, &docs);
    for (i, d) in docs.iter().enumerate() {
        let single = encode(&model, &tok, std::slice::from_ref(d)).squeeze_dim(0);
        let diff = max_abs(&batched.get(i as i64), &single);
        assert!(diff <= 1e-5, "doc{i}: batched differs by {diff}");
    }
}

#[test]
fn prompt_ids_and_prefill_logits_match_hf() {
    let (model, tok, g) = setup();
    let prompt = DecoderPrompt::build(&tok, 4, &PromptTemplate::default()).unwrap();
    assert_eq!(prompt.ids, g.ids("doc0.prompt_ids"));
    let lat = encode(&model, &tok, &[g.ids("doc0.text_ids")]);
    let logits = tch::no_grad(|| {
        let mut cache = KvCache::new(model.model.layers.len());
        let h = model.decode_hidden(
            &model.prompt_embeds(&prompt, &model.project(&lat)),
            &mut cache,
        );
        model.logits(&h).squeeze_dim(0)
    });
    let d = max_abs(&logits, g.get("doc0.prefill_logits"));
    assert!(d <= 1e-4, "prefill logits differ by {d}");
}

#[test]
fn greedy_tokens_identical_to_hf() {
    let (model, tok, g) = setup();
    let prompt = DecoderPrompt::build(&tok, 4, &PromptTemplate::default()).unwrap();
    let runs = [
        ("doc0", 20, "greedy_ngram20"),
        ("doc1", 20, "greedy_ngram20"),
        ("doc2", 20, "greedy_ngram20"),
        ("doc0", 3, "greedy_ngram3"),
    ];
    for (doc, n, key) in runs {
        let lat = encode(&model, &tok, &[g.ids(&format!("{doc}.text_ids"))]);
        let cfg = GenerationConfig {
            max_new_tokens: 40,
            no_repeat_ngram_size: n,
            stop_ids: tok.specials().stop_ids(),
        };
        let out = generate(&model, &prompt, &tch::no_grad(|| model.project(&lat)), &cfg).unwrap();
        assert_eq!(out[0].ids, g.ids(&format!("{doc}.{key}")), "{doc} n={n}");
    }
}

#[test]
fn batched_generation_equals_one_by_one() {
    let (model, tok, g) = setup();
    let prompt = DecoderPrompt::build(&tok, 4, &PromptTemplate::default()).unwrap();
    let docs: Vec<Vec<u32>> = (0..3).map(|i| g.ids(&format!("doc{i}.text_ids"))).collect();
    let cfg = GenerationConfig {
        max_new_tokens: 40,
        no_repeat_ngram_size: 20,
        stop_ids: tok.specials().stop_ids(),
    };
    let proj = tch::no_grad(|| model.project(&encode(&model, &tok, &docs)));
    let together = generate(&model, &prompt, &proj, &cfg).unwrap();
    for (i, d) in docs.iter().enumerate() {
        let p = tch::no_grad(|| model.project(&encode(&model, &tok, std::slice::from_ref(d))));
        assert_eq!(
            together[i],
            generate(&model, &prompt, &p, &cfg).unwrap()[0],
            "doc{i}"
        );
    }
}

#[test]
fn kv_cached_steps_equal_full_recompute() {
    let (model, tok, g) = setup();
    let prompt = DecoderPrompt::build(&tok, 4, &PromptTemplate::default()).unwrap();
    let proj = tch::no_grad(|| model.project(&encode(&model, &tok, &[g.ids("doc2.text_ids")])));
    let steps: Vec<i64> = g
        .ids("doc2.greedy_ngram20")
        .iter()
        .take(12)
        .map(|&x| x as i64)
        .collect();
    tch::no_grad(|| {
        let mut cache = KvCache::new(model.model.layers.len());
        let embeds = model.prompt_embeds(&prompt, &proj);
        let _ = model.decode_hidden(&embeds, &mut cache);
        let mut last = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        for &t in &steps {
            let e = model.embed_decoder(&Tensor::from_slice(&[t]).view([1, 1]));
            last = model
                .logits(&model.decode_hidden(&e, &mut cache))
                .view([-1]);
        }
        let tail = model.embed_decoder(&Tensor::from_slice(&steps).view([1, -1]));
        let full = Tensor::cat(&[embeds, tail], 1);
        let h = model.decode_hidden(&full, &mut KvCache::new(model.model.layers.len()));
        let ref_last = model.logits(&h.narrow(1, h.size()[1] - 1, 1)).view([-1]);
        let d = max_abs(&last, &ref_last);
        assert!(d <= 1e-4, "cached vs full differ by {d}");
    });
}
