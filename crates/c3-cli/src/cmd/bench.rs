//! `c3 bench`: one run, one report: this runtime (ONNX Runtime) and the tch reference
//! on the same weights — documents/s compressed, time to first token, decode tokens/s
//! at batch 1 and 8, peak RSS and one document's encoder activations — plus the
//! decoder prefill given N latents vs given the full text (what compression saves a
//! downstream task). DeepSeek-OCR's published figures are printed beside ours,
//! labelled as published.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use c3_core::GenerationConfig;
use c3_runtime::bench::memory::{self, reset_peak_rss};
use c3_runtime::bench::zero_embeds;
use c3_runtime::{C3Runtime, Latents};
use serde_json::{Value, json};

#[cfg(feature = "torch")]
mod tch;

#[derive(clap::Args)]
pub struct Args {
    /// Export folder (made by `c3 export`).
    #[arg(long)]
    model: PathBuf,
    /// Checkpoint for the tch comparison (default: the path the export was made from,
    /// from its provenance.json, if that folder exists here).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Skip the tch reference.
    #[arg(long)]
    no_reference: bool,
    /// Execution provider: cpu, cuda or tensorrt.
    #[arg(long, default_value = "cpu")]
    provider: String,
    #[arg(long)]
    allow_fallback: bool,
    /// Folder of the CUDA libraries for --provider cuda|tensorrt (see `c3 roundtrip`).
    #[arg(long)]
    cuda_libs: Option<PathBuf>,
    /// Documents compressed for the throughput figure.
    #[arg(long, default_value_t = 32)]
    docs: usize,
    /// Tokens per benchmark document (default: min(64, encoder limit)).
    #[arg(long)]
    doc_tokens: Option<usize>,
    /// Tokens generated per decode measurement.
    #[arg(long, default_value_t = 64)]
    new_tokens: usize,
    /// Repetitions (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Skip measuring this machine's limits (memory bandwidth, matmul throughput;
    /// a few seconds) and the percent-of-floor figures.
    #[arg(long)]
    no_limits: bool,
    #[arg(long)]
    json: bool,
}

const SAMPLE: &str = include_str!("../../../../models/sample.txt");

/// Median wall time of `f` over `n` runs, after one untimed warm-up run (first
/// runs of a new shape pay for ONNX Runtime's memory planning and allocations).
pub(crate) fn median_secs(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut t = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// Whether to run another timed decode run: at least `r`, and more until two seconds
/// have been spent (at most 1000), so a small model's millisecond runs are not at the
/// mercy of one scheduler hiccup. The median over runs is reported.
pub(crate) fn enough_runs(done: usize, r: usize, start: Instant) -> bool {
    done < r.max(1) || (done < 1000 && start.elapsed().as_secs_f64() < 2.0)
}

const MIB: f64 = (1u64 << 20) as f64;

/// Generation that runs exactly `k` tokens: no stop ids, no n-gram ban.
pub(crate) fn fixed(k: usize) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: k,
        no_repeat_ngram_size: 0,
        stop_ids: vec![],
    }
}

/// Benchmark documents: the sample text's ids, cycled into `count` documents of `len`.
fn documents(ids: &[u32], count: usize, len: usize) -> Vec<Vec<u32>> {
    (0..count)
        .map(|d| (0..len).map(|j| ids[(d * 7 + j) % ids.len()]).collect())
        .collect()
}

pub fn run(a: Args) -> Result<()> {
    let opts = crate::backend::ModelArgs {
        checkpoint: None,
        model: Some(a.model.clone()),
        provider: a.provider.clone(),
        allow_fallback: a.allow_fallback,
        engine: None,
        verify_files: false,
        cuda_libs: a.cuda_libs.clone(),
        device: "cpu".into(),
    }
    .runtime_options(None)?;
    let _ = reset_peak_rss();
    // What a service start costs: the load, then the first document's first token
    // (its first run also touches the weights ONNX Runtime mapped at load).
    let t0 = Instant::now();
    let rt = C3Runtime::load(&a.model, opts)?;
    let load_s = t0.elapsed().as_secs_f64();
    let sample_ids = rt.tokenizer.encode(SAMPLE)?;
    let first = rt.compress(std::slice::from_ref(&sample_ids))?;
    rt.generate(&[&first[0]], rt.prompt(), &fixed(1), &mut |_, _| {})?;
    let load_to_first_token_s = t0.elapsed().as_secs_f64();
    let m = &rt.manifest;
    let len = a.doc_tokens.unwrap_or(64).min(m.max_text_tokens);
    ensure!(
        len > 0 && a.new_tokens > 1 && a.docs > 0,
        "--docs, --doc-tokens and --new-tokens (> 1) must be positive"
    );
    let docs = documents(&sample_ids, a.docs, len);
    let k = a
        .new_tokens
        .min(m.max_context.saturating_sub(m.prompt.ids.len() + 1));
    ensure!(
        k > 1,
        "the decoder context ({}) leaves no room to time decode steps after the {}-token prompt",
        m.max_context,
        m.prompt.ids.len()
    );
    let r = a.repeat;

    let ort = {
        // What encoding one document adds to memory at its peak, measured on the
        // first run at this length (ONNX Runtime's arena keeps what a run grew it
        // to, so later runs of the same shape add nothing): activations (anonymous
        // memory) apart from the weight pages it maps in. Measuring resets the
        // peak-RSS counter, so the peak so far is kept aside.
        let peak_so_far = memory::peak_rss();
        let (encoded, growth) = memory::peak_growth(|| rt.compress(&docs[..1]));
        encoded?;
        let compress = median_secs(r, || Ok(rt.compress(&docs).map(drop)?))?;
        let one = &docs[..1];
        let lat: Vec<Latents> = rt.compress(one)?;
        let ttft = median_secs(r, || {
            let l = rt.compress(one)?;
            Ok(rt
                .generate(&[&l[0]], rt.prompt(), &fixed(1), &mut |_, _| {})
                .map(drop)?)
        })?;
        // Per-step time from the streamed tokens' timestamps (row 0): the prefills are
        // excluded, everything a step does (embedding, decoder, greedy) is included.
        // Rows are prefilled one after another and each yields its first token at once,
        // so row 0's steps are timed only from the moment every row has its first
        // token: before that, the other rows' prefills would be counted as steps.
        // Batch 1 and batch 8 runs take turns, so their ratio is not skewed by a slow
        // phase of the machine landing on one of them.
        let step_run = |b: usize| -> Result<f64> {
            let rows: Vec<&Latents> = (0..b).map(|_| &lat[0]).collect();
            let mut first: Vec<Option<Instant>> = vec![None; b];
            let mut stamps = Vec::with_capacity(k);
            rt.generate(&rows, rt.prompt(), &fixed(k), &mut |row, _| {
                let now = Instant::now();
                first[row].get_or_insert(now);
                if row == 0 {
                    stamps.push(now);
                }
            })?;
            let start = first.iter().flatten().max().copied();
            let steps: Vec<Instant> = stamps
                .into_iter()
                .filter(|t| start.is_none_or(|s| *t >= s))
                .collect();
            if steps.len() < 2 {
                bail!(
                    "--new-tokens {k} leaves no decode step to time at batch {b} after the prefills: give more"
                );
            }
            Ok((steps[steps.len() - 1] - steps[0]).as_secs_f64() / (steps.len() - 1) as f64)
        };
        let (mut per1, mut per8) = (Vec::new(), Vec::new());
        let t0 = Instant::now();
        while enough_runs(per1.len(), r, t0) {
            per1.push(step_run(1)?);
            per8.push(step_run(8)?);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (step1, step8) = (median(per1), median(per8));
        let plen = m.prompt.ids.len();
        let full_len = plen - m.n_latents + len;
        // One decoder step at a fixed cache length (each cache filled once, truncated
        // back before every timed step): how a step's cost grows with position. The
        // positions take turns, so a slow phase of the machine hits all of them alike.
        let positions: Vec<usize> = [16, 256, 1024]
            .into_iter()
            .filter(|&p| p < m.max_context)
            .collect();
        let mut states = Vec::new();
        for &p in &positions {
            let mut st = rt.decode_state(1, p + 1)?;
            st.forward(zero_embeds(&rt, 1, p)?, p)?;
            states.push(st);
        }
        let mut times = vec![Vec::new(); positions.len()];
        for round in 0..=r.max(50) {
            for ((st, &p), t) in states.iter_mut().zip(&positions).zip(&mut times) {
                st.truncate(p)?;
                let embeds = zero_embeds(&rt, 1, 1)?;
                let t0 = Instant::now();
                st.forward(embeds, 1)?;
                if round > 0 {
                    t.push(t0.elapsed().as_secs_f64());
                }
            }
        }
        drop(states);
        let mut by_pos = serde_json::Map::new();
        for (p, mut t) in positions.iter().zip(times) {
            t.sort_by(f64::total_cmp);
            by_pos.insert(p.to_string(), json!(t[t.len() / 2] * 1e3));
        }
        let step_ratio = match (positions.first(), positions.last()) {
            (Some(a), Some(b)) if a != b => {
                json!({"from": a, "to": b, "ratio": by_pos[&b.to_string()].as_f64().unwrap_or(f64::NAN) / by_pos[&a.to_string()].as_f64().unwrap_or(f64::NAN)})
            }
            _ => Value::Null,
        };
        // The decoder alone on `seq` zero positions with an empty cache.
        let prefill = |seq: usize| {
            median_secs(r, || {
                let embeds = zero_embeds(&rt, 1, seq)?;
                Ok(rt.decode_state(1, seq)?.forward(embeds, seq)?)
            })
        };
        let step16 = by_pos
            .values()
            .next()
            .and_then(Value::as_f64)
            .map(|ms| ms / 1e3);
        let prefill_latents = prefill(plen)?;
        // What a request's prefill costs end to end (prompt embeddings with the
        // latents spliced in, decoder, last-position logits): the whole prompt, and
        // the rest of it after the prompt-prefix cache. Taking turns, as above.
        let (mut whole, mut reused) = (Vec::new(), Vec::new());
        rt.prefill_logits(&lat[0], true)?; // builds the prefix cache, once per model
        for _ in 0..r.max(5) {
            for (reuse, t) in [(false, &mut whole), (true, &mut reused)] {
                let t0 = Instant::now();
                rt.prefill_logits(&lat[0], reuse)?;
                t.push(t0.elapsed().as_secs_f64());
            }
        }
        let (whole, reused) = (median(whole), median(reused));
        let floors = match a.no_limits {
            true => Value::Null,
            false => floors(
                &rt,
                &a.model,
                step16,
                prefill_latents,
                plen,
                opts_threads(&rt),
            )?,
        };
        json!({
            "backend": "onnxruntime", "provider": a.provider, "kv_cache": m.kv_cache.name(),
            "limits": floors,
            "docs_per_second": a.docs as f64 / compress,
            "time_to_first_token_ms": ttft * 1e3,
            "load_s": load_s,
            "load_to_first_token_s": load_to_first_token_s,
            "decode_tokens_per_second_b1": 1.0 / step1,
            "decode_tokens_per_second_b8": 8.0 / step8,
            "batch8_over_batch1": step1 * 8.0 / step8,
            "prefill_ms_with_latents": prefill_latents * 1e3,
            "prefill_tokens_with_latents": plen,
            "prefill_ms_with_full_text": prefill(full_len)? * 1e3,
            "request_prefill_ms_whole_prompt": whole * 1e3,
            "request_prefill_ms_reusing_prefix": reused * 1e3,
            "prompt_prefix_tokens": m.prompt.latent_start,
            "prefix_reuse_ratio": reused / whole,
            "prefill_tokens_with_full_text": full_len,
            "decode_step_ms_by_position": by_pos,
            "decode_step_growth": step_ratio,
            "encoder_activations_mib": growth.map(|g| g.anon as f64 / MIB),
            "encoder_weight_pages_mib": growth.map(|g| g.file as f64 / MIB),
            "peak_rss_mib": peak_so_far.max(memory::peak_rss()).map(|b| b as f64 / MIB),
        })
    };
    drop(rt);

    let ckpt = a.checkpoint.clone().or_else(|| {
        // The manifest holds only the folder's name (reproducible bytes); older
        // manifests held the path.
        let p = c3_export::provenance::checkpoint_path(&a.model)
            .or_else(|| m_source(&a.model).map(PathBuf::from))?;
        p.is_dir().then_some(p)
    });
    let tch: Option<Value> = match (&ckpt, a.no_reference) {
        #[cfg(feature = "torch")]
        (Some(c), false) => Some(
            tch::bench_tch(c, &docs, k, r)
                .with_context(|| format!("tch reference on {}", c.display()))?,
        ),
        #[cfg(not(feature = "torch"))]
        (Some(_), false) => {
            eprintln!("note: this c3 was built without libtorch; the tch reference is skipped");
            None
        }
        _ => None,
    };
    let ratio = tch.as_ref().map(|t| {
        json!({
            "decode_b1_ort_over_tch": ort["decode_tokens_per_second_b1"].as_f64().unwrap_or(0.0) / t["decode_tokens_per_second_b1"].as_f64().unwrap_or(f64::NAN),
            "docs_per_second_ort_over_tch": ort["docs_per_second"].as_f64().unwrap_or(0.0) / t["docs_per_second"].as_f64().unwrap_or(f64::NAN),
        })
    });
    let report = json!({
        "machine": machine(),
        "export": a.model, "doc_tokens": len, "docs": a.docs, "new_tokens": k, "repeat": r,
        "n_latents": rt_n(&a.model),
        "runtime": ort, "reference": tch, "ratios": ratio,
        "deepseek_ocr_published": {
            "note": "published by DeepSeek, not measured here",
            "pages_per_day_one_a100_40g": "200k+",
            "tokens_per_second_vllm_a100_40g": 2500,
            "vision_tokens_per_page": {"tiny_512px": 64, "small_640px": 100, "base_1024px": 256, "large_1280px": 400},
        },
    });
    if a.json {
        println!("{report}");
    } else {
        print_human(&report);
    }
    Ok(())
}

/// Intra-op threads the runtime's sessions use (what the limits are measured with).
fn opts_threads(rt: &C3Runtime) -> usize {
    match rt.options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// This machine's limits and the runtime's figures beside them: a batch-1 decode
/// step against reading the decoder's weights once at the measured bandwidth, the
/// prefill against its matmul FLOPs at ONNX Runtime's best fp32 MatMul throughput.
fn floors(
    rt: &C3Runtime,
    export: &std::path::Path,
    step: Option<f64>,
    prefill: f64,
    plen: usize,
    threads: usize,
) -> Result<Value> {
    let limits = c3_runtime::bench::limits::measure(threads, std::time::Duration::from_secs(2))?;
    let m = &rt.manifest;
    let dec = &m.models.decoder;
    // Every weight of the decoder file is read once per step (the files hold
    // nothing else of size).
    let mut bytes = std::fs::metadata(export.join(&dec.file))?.len();
    if let Some(data) = &dec.data_file {
        bytes += std::fs::metadata(export.join(data))?.len();
    }
    let cfg: c3_core::Qwen2Config =
        serde_json::from_value(m.config.root.clone()).context("the manifest's decoder config")?;
    let (t, h, vocab) = (plen as f64, cfg.hidden_size as f64, cfg.vocab_size as f64);
    // Weight matmuls for every position, the LM head once (last position only),
    // attention scores and values over the causal half.
    let attn = 2.0
        * (cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim()) as f64
        * t
        * (t + 1.0)
        / 2.0;
    let flops = 2.0 * (cfg.layer_macs_per_token() as f64 * t + h * vocab) + 2.0 * attn;
    let read_floor = limits.read_floor(bytes as f64);
    let flop_floor = limits.flop_floor(flops);
    Ok(json!({
        "threads": limits.threads,
        "read_gb_per_second": limits.read_bytes_per_second / 1e9,
        "matmul_gflop_per_second": limits.matmul_flops_per_second / 1e9,
        "decoder_weight_bytes": bytes,
        "decode_step_floor_ms": read_floor * 1e3,
        "decode_step_percent_of_floor": step.map(|s| 100.0 * read_floor / s),
        "prefill_gflop": flops / 1e9,
        "prefill_floor_ms": flop_floor * 1e3,
        "prefill_percent_of_floor": 100.0 * flop_floor / prefill,
    }))
}

fn m_source(export: &std::path::Path) -> Option<String> {
    c3_core::ExportManifest::load(export)
        .ok()
        .map(|(m, _)| m.source.checkpoint)
}

fn rt_n(export: &std::path::Path) -> Option<usize> {
    c3_core::ExportManifest::load(export)
        .ok()
        .map(|(m, _)| m.n_latents)
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
    });
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    json!({"cpu": cpu, "cores": cores, "os": std::env::consts::OS})
}

fn print_human(r: &Value) {
    let f = |v: &Value, k: &str| {
        v[k].as_f64()
            .map(|x| format!("{x:.2}"))
            .unwrap_or_else(|| "-".into())
    };
    let (o, t) = (&r["runtime"], &r["reference"]);
    println!(
        "machine: {} ({} cores)",
        r["machine"]["cpu"].as_str().unwrap_or("?"),
        r["machine"]["cores"]
    );
    println!(
        "{} documents of {} tokens, {} new tokens, median of >= {} runs (decode: more until 2 s)",
        r["docs"], r["doc_tokens"], r["new_tokens"], r["repeat"]
    );
    println!("{:<34} {:>14} {:>14}", "", "onnxruntime", "tch");
    for (label, key) in [
        ("documents/s compressed", "docs_per_second"),
        ("time to first token (ms)", "time_to_first_token_ms"),
        ("decode tokens/s, batch 1", "decode_tokens_per_second_b1"),
        ("decode tokens/s, batch 8", "decode_tokens_per_second_b8"),
        ("peak RSS (MiB)", "peak_rss_mib"),
    ] {
        println!("{label:<34} {:>14} {:>14}", f(o, key), f(t, key));
    }
    println!(
        "load: {} s; load to the first token of a first document: {} s",
        f(o, "load_s"),
        f(o, "load_to_first_token_s")
    );
    println!(
        "encoding one document of {} tokens: {} MiB of activations (and {} MiB of weight pages mapped in)",
        r["doc_tokens"],
        f(o, "encoder_activations_mib"),
        f(o, "encoder_weight_pages_mib")
    );
    if let Some(x) = r["ratios"]["decode_b1_ort_over_tch"].as_f64() {
        println!("decode batch 1: onnxruntime / tch = {x:.2}x");
    }
    println!(
        "batch 8 / batch 1 decode throughput = {}x",
        f(o, "batch8_over_batch1")
    );
    if let Some(steps) = o["decode_step_ms_by_position"].as_object() {
        let mut steps: Vec<(usize, f64)> = steps
            .iter()
            .map(|(p, v)| (p.parse().unwrap_or(0), v.as_f64().unwrap_or(f64::NAN)))
            .collect();
        steps.sort_by_key(|s| s.0);
        let list: Vec<String> = steps
            .iter()
            .map(|(p, v)| format!("{v:.3} ms @{p}"))
            .collect();
        println!(
            "decode step ({} cache): {}",
            o["kv_cache"].as_str().unwrap_or("?"),
            list.join(", ")
        );
    }
    let g = &o["decode_step_growth"];
    if let Some(x) = g["ratio"].as_f64() {
        println!("step @{} / step @{} = {x:.2}x", g["to"], g["from"]);
    }
    let l = &o["limits"];
    if l.is_object() {
        println!(
            "machine limits ({} threads): streaming read {} GB/s, ONNX Runtime fp32 MatMul {} GFLOP/s",
            l["threads"],
            f(l, "read_gb_per_second"),
            f(l, "matmul_gflop_per_second")
        );
        println!(
            "decode step at batch 1 vs reading the decoder's {:.0} MB once: floor {} ms, step at {}% of the floor's speed",
            l["decoder_weight_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            f(l, "decode_step_floor_ms"),
            f(l, "decode_step_percent_of_floor")
        );
        println!(
            "prefill with N latents vs its {} GFLOP: floor {} ms, prefill at {}% of the floor's speed",
            f(l, "prefill_gflop"),
            f(l, "prefill_floor_ms"),
            f(l, "prefill_percent_of_floor")
        );
    }
    println!(
        "decoder prefill: {} ms for {} tokens with N latents vs {} ms for {} tokens with the full text",
        f(o, "prefill_ms_with_latents"),
        o["prefill_tokens_with_latents"],
        f(o, "prefill_ms_with_full_text"),
        o["prefill_tokens_with_full_text"]
    );
    println!(
        "request prefill: {} ms reusing the {}-token prompt-prefix cache vs {} ms for the whole prompt ({}x)",
        f(o, "request_prefill_ms_reusing_prefix"),
        o["prompt_prefix_tokens"],
        f(o, "request_prefill_ms_whole_prompt"),
        f(o, "prefix_reuse_ratio")
    );
    println!(
        "DeepSeek-OCR (published, not measured here): 200k+ pages/day on one A100-40G, ~2500 tokens/s with vLLM"
    );
}
