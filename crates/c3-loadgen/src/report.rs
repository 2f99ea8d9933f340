//! What a run measured: per-level samples, their summaries, the ratios to the
//! lowest concurrency, the JSON report and the text table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::client::{Failure, Sample};
use crate::stats::Distribution;

/// Raw samples of one level, filled as requests finish.
#[derive(Debug, Default)]
pub struct Samples {
    latencies: Vec<f64>,
    ttfts: Vec<f64>,
    itls: Vec<f64>,
    tokens: u64,
    ok: u64,
    pieces: u64,
    mismatches: u64,
    errors: BTreeMap<String, ErrorCount>,
}

/// Failed requests of one kind, with the first message seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    pub count: u64,
    pub example: String,
}

impl Samples {
    /// Adds one request's outcome.
    pub fn record(&mut self, outcome: Result<Sample, Failure>) {
        match outcome {
            Ok(s) => {
                self.ok += 1;
                self.tokens += s.tokens;
                self.pieces += s.pieces;
                self.mismatches += u64::from(s.text_mismatch);
                self.latencies.push(s.latency.as_secs_f64());
                self.ttfts.extend(s.ttft.map(|d| d.as_secs_f64()));
                self.itls.extend(s.itl.iter().map(Duration::as_secs_f64));
            }
            Err(f) => {
                self.errors
                    .entry(f.kind())
                    .or_insert_with(|| ErrorCount {
                        count: 0,
                        example: f.message(),
                    })
                    .count += 1;
            }
        }
    }

    /// The level's summary; `wall` is its measured phase's wall time.
    pub fn into_report(self, concurrency: usize, wall: Duration, interrupted: bool) -> LevelReport {
        let errors = self.errors.values().map(|e| e.count).sum();
        let secs = wall.as_secs_f64();
        let per_second = |x: u64| if secs > 0.0 { x as f64 / secs } else { 0.0 };
        LevelReport {
            concurrency,
            interrupted,
            requests: self.ok + errors,
            ok: self.ok,
            errors,
            rejected_429: self.errors.get("http_429").map_or(0, |e| e.count),
            errors_by_kind: self.errors,
            wall_seconds: secs,
            generated_tokens: self.tokens,
            tokens_per_second: per_second(self.tokens),
            requests_per_second: per_second(self.ok),
            latency_seconds: Distribution::of(self.latencies),
            ttft_seconds: Distribution::of(self.ttfts),
            itl_seconds: Distribution::of(self.itls),
            pieces: self.pieces,
            piece_text_mismatches: self.mismatches,
        }
    }
}

/// One concurrency level's results. Latency, TTFT and ITL come from successful
/// requests only; throughput is over the level's wall time (from the first request
/// after warm-up to the end of the last).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LevelReport {
    pub concurrency: usize,
    /// Cut short by Ctrl-C: only the requests finished by then are counted.
    pub interrupted: bool,
    /// Finished requests: `ok + errors`.
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// HTTP 429 (the server's queue was full); also in `errors` and `errors_by_kind`.
    pub rejected_429: u64,
    /// By `http_<status>`, `stream_<status>` (an `event: error` naming a status) or
    /// `stream_error`, `transport`, `timeout`, `incomplete`, `bad_response`.
    pub errors_by_kind: BTreeMap<String, ErrorCount>,
    pub wall_seconds: f64,
    /// Sum of `output_ids` lengths of the successful requests.
    pub generated_tokens: u64,
    pub tokens_per_second: f64,
    /// Successful requests per second.
    pub requests_per_second: f64,
    /// Request sent to `done` event.
    pub latency_seconds: Distribution,
    /// Request sent to the first `piece` event.
    pub ttft_seconds: Distribution,
    /// Between consecutive `piece` events of a request.
    pub itl_seconds: Distribution,
    pub pieces: u64,
    /// Successful streams whose pieces joined differ from the summary's `text`.
    pub piece_text_mismatches: u64,
}

/// The whole run, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The command line that produced the report.
    pub command: String,
    pub url: String,
    /// The server's `GET /healthz` answer before the run.
    pub healthz: Value,
    pub documents: usize,
    pub requests_per_level: Option<u64>,
    pub duration_seconds: Option<f64>,
    pub warmup_per_loop: u32,
    pub max_new_tokens: Option<u32>,
    /// How percentiles are computed.
    pub percentiles: &'static str,
    /// The run was cut short by Ctrl-C.
    pub interrupted: bool,
    pub levels: Vec<LevelReport>,
    /// See [`ratios`].
    pub ratios: Value,
}

/// How [`crate::stats::percentile`] works, for the report.
pub const PERCENTILES: &str =
    "exact nearest-rank over all samples: the sorted sample at rank ceil(p/100*n)";

/// Throughput and p50 TTFT of each level divided by the lowest-concurrency level's
/// (normally concurrency 1): `{"baseline_concurrency", "tokens_per_second":
/// {"1": 1.0, "4": ..}, "ttft_p50": {..}}`. A ratio is `null` when either side has
/// no value.
pub fn ratios(levels: &[LevelReport]) -> Value {
    let Some(base) = levels.iter().min_by_key(|l| l.concurrency) else {
        return Value::Null;
    };
    let ratio = |x: Option<f64>, b: Option<f64>| match (x, b) {
        (Some(x), Some(b)) if b > 0.0 => Value::from(x / b),
        _ => Value::Null,
    };
    let mut tps = Map::new();
    let mut ttft = Map::new();
    for l in levels {
        let key = l.concurrency.to_string();
        tps.insert(
            key.clone(),
            ratio(Some(l.tokens_per_second), Some(base.tokens_per_second)),
        );
        ttft.insert(key, ratio(l.ttft_seconds.p50, base.ttft_seconds.p50));
    }
    let mut out = Map::new();
    out.insert("baseline_concurrency".into(), base.concurrency.into());
    out.insert("tokens_per_second".into(), Value::Object(tps));
    out.insert("ttft_p50".into(), Value::Object(ttft));
    Value::Object(out)
}

impl Report {
    /// The text table: one row per level, times in milliseconds, then the errors.
    pub fn table(&self) -> String {
        let ms = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |s| format!("{:.1}", s * 1e3));
        let x = |v: &Value| {
            v.as_f64()
                .map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"))
        };
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:>5} {:>6} {:>6} {:>6} {:>5} {:>9} {:>6} {:>7} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>6} | {:>7} {:>7}",
            "conc",
            "reqs",
            "ok",
            "errors",
            "429",
            "tok/s",
            "x",
            "req/s",
            "lat p50",
            "p95",
            "p99",
            "ttft p50",
            "p95",
            "p99",
            "x",
            "itl p50",
            "p95",
        );
        for l in &self.levels {
            let key = l.concurrency.to_string();
            let _ = writeln!(
                t,
                "{:>5} {:>6} {:>6} {:>6} {:>5} {:>9.1} {:>6} {:>7.2} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>6} | {:>7} {:>7}{}",
                l.concurrency,
                l.requests,
                l.ok,
                l.errors,
                l.rejected_429,
                l.tokens_per_second,
                x(&self.ratios["tokens_per_second"][&key]),
                l.requests_per_second,
                ms(l.latency_seconds.p50),
                ms(l.latency_seconds.p95),
                ms(l.latency_seconds.p99),
                ms(l.ttft_seconds.p50),
                ms(l.ttft_seconds.p95),
                ms(l.ttft_seconds.p99),
                x(&self.ratios["ttft_p50"][&key]),
                ms(l.itl_seconds.p50),
                ms(l.itl_seconds.p95),
                if l.interrupted { "  (interrupted)" } else { "" },
            );
        }
        let _ = writeln!(
            t,
            "times in ms; x: ratio to concurrency {}; percentiles {PERCENTILES}",
            self.ratios["baseline_concurrency"]
        );
        for l in &self.levels {
            for (kind, e) in &l.errors_by_kind {
                let _ = writeln!(
                    t,
                    "concurrency {}: {} x {kind} (first: {})",
                    l.concurrency, e.count, e.example
                );
            }
            if l.piece_text_mismatches > 0 {
                let _ = writeln!(
                    t,
                    "concurrency {}: {} streams whose pieces joined differ from the final text",
                    l.concurrency, l.piece_text_mismatches
                );
            }
        }
        if self.interrupted {
            let _ = writeln!(t, "interrupted (Ctrl-C): the last level is partial");
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64, ttft_ms: u64, tokens: u64) -> Sample {
        Sample {
            latency: Duration::from_millis(ms),
            ttft: Some(Duration::from_millis(ttft_ms)),
            itl: vec![Duration::from_millis(10), Duration::from_millis(30)],
            tokens,
            pieces: 3,
            text_mismatch: false,
        }
    }

    fn level(concurrency: usize, tokens: u64, ttft_ms: u64) -> LevelReport {
        let mut s = Samples::default();
        s.record(Ok(sample(100, ttft_ms, tokens)));
        s.into_report(concurrency, Duration::from_secs(1), false)
    }

    #[test]
    fn samples_summarise_and_count_errors_by_kind() {
        let mut s = Samples::default();
        s.record(Ok(sample(200, 50, 7)));
        s.record(Ok(sample(100, 40, 5)));
        for _ in 0..2 {
            s.record(Err(Failure::Status {
                code: 429,
                message: "queue full".into(),
            }));
        }
        s.record(Err(Failure::Timeout));
        let r = s.into_report(4, Duration::from_secs(2), false);
        assert_eq!((r.requests, r.ok, r.errors, r.rejected_429), (5, 2, 3, 2));
        assert_eq!(r.generated_tokens, 12);
        assert_eq!(r.tokens_per_second, 6.0);
        assert_eq!(r.requests_per_second, 1.0);
        assert_eq!(r.latency_seconds.p50, Some(0.1));
        assert_eq!(r.ttft_seconds.p99, Some(0.05));
        assert_eq!(r.itl_seconds.count, 4);
        assert_eq!(r.errors_by_kind["http_429"].example, "HTTP 429: queue full");
        assert_eq!(r.errors_by_kind["timeout"].count, 1);
    }

    #[test]
    fn ratios_are_to_the_lowest_concurrency() {
        let levels = [level(4, 300, 30), level(1, 100, 20), level(16, 500, 0)];
        let r = ratios(&levels);
        assert_eq!(r["baseline_concurrency"], 1);
        assert_eq!(r["tokens_per_second"]["4"], 3.0);
        assert_eq!(r["tokens_per_second"]["1"], 1.0);
        assert_eq!(r["ttft_p50"]["4"], 1.5);
        assert_eq!(r["ttft_p50"]["16"], 0.0);
        let keys: Vec<_> = r["ttft_p50"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["4", "1", "16"]);
        assert_eq!(ratios(&[]), Value::Null);
    }
}
