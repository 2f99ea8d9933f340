//! `c3-loadgen`: drives a running C3 service with concurrent streamed roundtrips and
//! reports throughput and latency percentiles per concurrency level.
//!
//! ```text
//! c3-serve exports/c3-tiny --addr 127.0.0.1:8080 &
//! c3-loadgen --url http://127.0.0.1:8080 --concurrency 1,4,16 \
//!     --documents corpus/docs.txt --requests 64 --max-new-tokens 128 --json > bench.json
//! ```
//!
//! The levels run one after the other in one invocation. The table (or with
//! `--json` one JSON object: every level, `ratios` to the lowest concurrency, the
//! command line and the server's `/healthz`) goes to stdout; progress to stderr.
//! Ctrl-C stops at once and prints what was measured so far (exit 130). Failures
//! before the run print one `error:` line: exit 1 for bad flags or documents, 3 when
//! the server is unreachable or not ready. A run in which no request succeeded
//! prints its report and exits 1.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use c3_loadgen::{Client, LevelReport, Observer, Plan, Report, Stop, read_documents, run_levels};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Load generator for the C3 HTTP service: concurrent streamed `/v1/roundtrip`
/// requests; throughput, latency, time to first token and inter-token latency.
#[derive(Parser, Debug)]
#[command(name = "c3-loadgen", version, about)]
struct Args {
    /// The service's base URL (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrency levels, comma-separated, run one after the other.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    concurrency: Vec<usize>,
    /// A text file (one document per paragraph, paragraphs separated by blank lines)
    /// or a folder of .txt files (one document each). Requests cycle over them.
    #[arg(long, value_name = "FILE_OR_DIR")]
    documents: PathBuf,
    /// Requests per level, over all its client loops [default: 64].
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    requests: Option<u64>,
    /// Seconds per level instead of a request count: no request starts after this,
    /// those running finish and count.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// `max_new_tokens` sent with each request (default: the server's).
    #[arg(long, value_name = "K")]
    max_new_tokens: Option<u32>,
    /// Requests each client loop sends before a level's measurement starts (not counted).
    #[arg(long, value_name = "N", default_value_t = 1)]
    warmup: u32,
    /// Seconds before one request counts as a `timeout` error.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    timeout: f64,
    /// Poll `/healthz` up to this many seconds for the server to be ready.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    wait_ready: f64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

const DEFAULT_REQUESTS: u64 = 64;

fn main() {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("C3_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let code = match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', "; "));
            if e.downcast_ref::<c3_loadgen::Error>()
                .is_some_and(|e| matches!(e, c3_loadgen::Error::Server { .. }))
            {
                3
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

fn run(args: Args) -> Result<i32> {
    let plan = plan(&args)?;
    let documents: Arc<[String]> = read_documents(&args.documents)?.into();
    let timeout = Duration::from_secs_f64(args.timeout);
    let max_conc = plan.concurrency.iter().copied().max().unwrap_or(1);

    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let client = Client::new(&args.url, timeout, max_conc)?;
        let healthz = wait_ready(&client, args.wait_ready).await?;
        let (tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(true);
            }
        });
        let bars = Arc::new(Bars::new());
        let levels = run_levels(&client, documents.clone(), &plan, bars.clone(), stop).await;
        bars.bar.finish_and_clear();
        let report = report(&args, &plan, healthz, documents.len(), levels);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.table());
        }
        if report.interrupted {
            return Ok(130);
        }
        if report.levels.iter().all(|l| l.ok == 0) {
            eprintln!("error: no request succeeded");
            return Ok(1);
        }
        Ok(0)
    })
}

/// The flags as a [`Plan`], checked.
fn plan(args: &Args) -> Result<Plan> {
    let c = &args.concurrency;
    if c.is_empty() || c.contains(&0) {
        bail!("--concurrency takes levels of at least 1 (e.g. 1,4,16)");
    }
    if let Some(d) = c
        .iter()
        .enumerate()
        .find_map(|(i, x)| c[..i].contains(x).then_some(x))
    {
        bail!("--concurrency lists {d} twice");
    }
    let stop = match (args.requests, args.duration) {
        (Some(0), _) => bail!("--requests must be at least 1"),
        (_, Some(d)) if !(d > 0.0 && d.is_finite()) => bail!("--duration must be positive"),
        (_, Some(d)) => Stop::Duration(Duration::from_secs_f64(d)),
        (n, None) => Stop::Requests(n.unwrap_or(DEFAULT_REQUESTS)),
    };
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout must be positive");
    }
    if !(args.wait_ready >= 0.0 && args.wait_ready.is_finite()) {
        bail!("--wait-ready must be 0 or more");
    }
    if args.max_new_tokens == Some(0) {
        bail!("--max-new-tokens must be at least 1");
    }
    Ok(Plan {
        concurrency: c.clone(),
        stop,
        warmup: args.warmup,
        max_new_tokens: args.max_new_tokens,
    })
}

/// `/healthz`, retried every 250 ms for up to `secs`.
async fn wait_ready(client: &Client, secs: f64) -> Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        match client.healthz().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(anyhow::Error::new(e).context("the server is not ready"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn report(
    args: &Args,
    plan: &Plan,
    healthz: serde_json::Value,
    documents: usize,
    levels: Vec<LevelReport>,
) -> Report {
    let (requests_per_level, duration_seconds) = match plan.stop {
        Stop::Requests(n) => (Some(n), None),
        Stop::Duration(d) => (None, Some(d.as_secs_f64())),
    };
    Report {
        command: command_line(),
        url: args.url.clone(),
        healthz,
        documents,
        requests_per_level,
        duration_seconds,
        warmup_per_loop: plan.warmup,
        max_new_tokens: plan.max_new_tokens,
        percentiles: c3_loadgen::report::PERCENTILES,
        interrupted: levels.iter().any(|l| l.interrupted),
        ratios: c3_loadgen::ratios(&levels),
        levels,
    }
}

/// This process's arguments, quoted for a POSIX shell where needed.
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Progress on stderr (drawn only when stderr is a terminal).
struct Bars {
    bar: ProgressBar,
    errors: AtomicU64,
    concurrency: AtomicU64,
}

impl Bars {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Self {
            bar,
            errors: AtomicU64::new(0),
            concurrency: AtomicU64::new(0),
        }
    }
}

impl Observer for Bars {
    fn warmup_started(&self, concurrency: usize, requests: u64) {
        self.bar.reset();
        self.bar
            .set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap());
        self.bar.set_message(format!(
            "concurrency {concurrency}: warm-up ({requests} requests)"
        ));
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn level_started(&self, concurrency: usize, stop: Stop) {
        self.errors.store(0, Ordering::Relaxed);
        self.concurrency
            .store(concurrency as u64, Ordering::Relaxed);
        self.bar.reset();
        let template = match stop {
            Stop::Requests(n) => {
                self.bar.set_length(n);
                "{msg} [{bar:30}] {pos}/{len} {elapsed}"
            }
            Stop::Duration(_) => {
                self.bar.unset_length();
                "{spinner} {msg}: {pos} requests {elapsed}"
            }
        };
        self.bar
            .set_style(ProgressStyle::with_template(template).unwrap());
        self.bar.set_message(format!("concurrency {concurrency}"));
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn request_finished(&self, ok: bool) {
        self.bar.inc(1);
        if !ok {
            let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
            let c = self.concurrency.load(Ordering::Relaxed);
            self.bar.set_message(format!("concurrency {c}, {n} errors"));
        }
    }

    fn level_finished(&self, l: &LevelReport) {
        let ms = |x: Option<f64>| x.map_or_else(|| "-".into(), |s| format!("{:.1} ms", s * 1e3));
        self.bar.suspend(|| {
            eprintln!(
                "concurrency {}: {} requests ({} errors, {} x 429) in {:.1} s, {:.1} tokens/s, \
                 latency p50 {}, TTFT p50 {}{}",
                l.concurrency,
                l.requests,
                l.errors,
                l.rejected_429,
                l.wall_seconds,
                l.tokens_per_second,
                ms(l.latency_seconds.p50),
                ms(l.ttft_seconds.p50),
                if l.interrupted { " (interrupted)" } else { "" },
            );
        });
    }
}
