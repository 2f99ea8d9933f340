//! Latency of the deployed cascade: encoder by text length, one decode step at
//! positions 16 / 256 / 1024 (batch 1 and 8), and one document end to end.
//! Run: `cargo bench -p c3-benches` (results in target/criterion/).

use c3_benches::tiny_export;
use c3_core::GenerationConfig;
use c3_runtime::RuntimeOptions;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

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
    let f = tiny_export(options());
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

fn decode_step(c: &mut Criterion) {
    let f = tiny_export(options());
    let rt = &f.runtime;
    let mut g = c.benchmark_group("decode_step");
    for batch in [1, 8] {
        for pos in [16, 256, 1024] {
            g.bench_function(BenchmarkId::new(format!("batch{batch}"), pos), |b| {
                b.iter_batched(
                    || rt.synthetic_decoder_inputs(batch, 1, pos).expect("inputs"),
                    |inputs| rt.run_decoder(inputs).expect("step"),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

fn end_to_end(c: &mut Criterion) {
    let f = tiny_export(options());
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
            rt.generate(&[&lat[0]], &cfg, &mut |_, _| {})
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
