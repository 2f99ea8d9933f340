//! Latency of the deployed cascade: encoder by text length, one decode step at
//! positions 16 / 256 / 1024 (batch 1 and 8; shared-buffer and concat KV caches), and
//! one document end to end.
//! Run: `cargo bench -p c3-benches` (results in target/criterion/).

use c3_benches::tiny_export;
use c3_core::GenerationConfig;
use c3_runtime::RuntimeOptions;
use std::hint::black_box;
use std::time::{Duration, Instant};

use c3_export::KvCacheChoice;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn options() -> RuntimeOptions {
    // Intra-op threads fixed so numbers compare across runs on the same machine.
    RuntimeOptions {
        threads: 2,
        ..Default::default()
    }
}

fn doc(len: usize) -> Vec<u32> {
    (0..len).map(|i| 32 + (i * 7 % 90) as u32).collect()
}

fn encoder(c: &mut Criterion) {
    let f = tiny_export(options(), KvCacheChoice::Auto);
    let mut g = c.benchmark_group("encoder");
    for len in [16, 64, 256, 1000] {
        let d = vec![doc(len)];
        g.throughput(Throughput::Elements(len as u64));
        g.bench_with_input(BenchmarkId::new("text_tokens", len), &d, |b, d| {
            b.iter(|| f.runtime.compress(d).expect("compress"))
        });
    }
    g.finish();
}

/// One decode step (embedding in, logits out) at a fixed position, for both cache
/// contracts in the same run: the cache is filled once by a prefill of `pos` zero
/// positions, then each timed step is preceded by an untimed truncate back to `pos`.
fn decode_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_step");
    for kv in [KvCacheChoice::SharedBuffer, KvCacheChoice::Concat] {
        let f = tiny_export(options(), kv);
        let rt = &f.runtime;
        let name = rt.manifest.kv_cache.name();
        for batch in [1, 8] {
            for pos in [16, 256, 1024] {
                let id = BenchmarkId::new(format!("{name}/batch{batch}"), pos);
                g.throughput(Throughput::Elements(batch as u64));
                g.bench_function(id, |b| {
                    let mut state = rt.decode_state(batch, pos + 1).expect("state");
                    state
                        .forward(rt.zero_embeds(batch, pos).expect("embeds"), pos)
                        .expect("fill");
                    b.iter_custom(|iters| {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            state.truncate(pos).expect("truncate");
                            let embeds = rt.zero_embeds(batch, 1).expect("embeds");
                            let t = Instant::now();
                            state.forward(embeds, 1).expect("step");
                            black_box(&state);
                            spent += t.elapsed();
                        }
                        spent
                    })
                });
            }
        }
    }
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let f = tiny_export(options(), KvCacheChoice::Auto);
    let rt = &f.runtime;
    let cfg = GenerationConfig {
        max_new_tokens: 32,
        no_repeat_ngram_size: 0,
        stop_ids: vec![],
    };
    let d = vec![doc(64)];
    c.bench_function("end_to_end/64_tokens_in_32_out", |b| {
        b.iter(|| {
            let lat = rt.compress(&d).expect("compress");
            rt.generate(&[&lat[0]], rt.prompt(), &cfg, &mut |_, _| {})
                .expect("generate")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = encoder, decode_step, end_to_end
}
criterion_main!(benches);
