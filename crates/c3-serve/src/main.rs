//! `c3-serve`: the C3 cascade as an HTTP service (docs/serve.md).
//!
//! A thin wrapper around the library: flags, logging, loading the export, the
//! listening line, signals. Exit codes: 0 after a graceful shutdown, 2 when the
//! export cannot be used, 1 for anything else (flags, ONNX Runtime, the address).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use c3_runtime::{C3Runtime, Provider, RuntimeOptions, SchedulerOptions};
use c3_serve::{AppState, ServeOptions};
use clap::Parser;

/// Serve an export (made by `c3 export`) over HTTP: round trips, compress,
/// decompress, health and Prometheus metrics, with continuous batching.
#[derive(Parser, Debug)]
#[command(name = "c3-serve", version)]
struct Args {
    /// Export folder (made by `c3 export`); or give it as `--model EXPORT`, as the
    /// `c3` commands take it.
    #[arg(required_unless_present = "model", conflicts_with = "model")]
    export: Option<PathBuf>,
    /// Export folder (the same as the positional argument).
    #[arg(long, value_name = "EXPORT")]
    model: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the listening line names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Execution provider: cpu, cuda or tensorrt.
    #[arg(long, default_value = "cpu")]
    provider: String,
    /// Folder of the CUDA libraries for --provider cuda|tensorrt (also $C3_CUDA_LIBS;
    /// by default the Python packages' nvidia/*/lib folders are searched).
    #[arg(long)]
    cuda_libs: Option<PathBuf>,
    /// Rows (windows) decoded together at most; the KV cache for them is allocated at
    /// start.
    #[arg(long, default_value_t = 16)]
    max_batch: usize,
    /// Requests waiting (encoder or a free row) at most; one more is answered 429.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Windows encoded and new rows prefilled per decode step at most: a burst of
    /// arrivals is taken in groups, so running rows keep stepping and the first
    /// arrivals start decoding early.
    #[arg(long, default_value_t = 4)]
    admit_per_step: usize,
    /// Largest request body: bytes, or with a KiB/MiB/GiB suffix; 413 past it.
    #[arg(long, default_value = "8MiB", value_parser = parse_bytes)]
    max_body: usize,
    /// Memory an encoder run's activations may take: concurrent documents are
    /// encoded together as far as it allows (estimated from the encoder's shapes).
    #[arg(long, default_value = "1GiB", value_parser = parse_bytes)]
    encoder_memory: usize,
    /// Hash every file of the export at start, the weights included (by default the
    /// graphs and tokenizer are hashed and weight files checked by size).
    #[arg(long)]
    verify_files: bool,
    /// Seconds a request may run; past it the answer is 504 and its rows are freed.
    #[arg(long, default_value = "120", value_parser = parse_seconds)]
    request_timeout: Duration,
    /// Window length in model tokens (default: the export's).
    #[arg(long)]
    window: Option<usize>,
    /// Longest /v1/roundtrip text in model tokens (its precision metric is quadratic
    /// in the length).
    #[arg(long, default_value_t = 8192)]
    max_text_tokens: usize,
    /// A file of API keys, one a line (`#` comments): every request must carry one as
    /// `Authorization: Bearer KEY`, or gets 401. Terminate TLS in front of the
    /// service (docs/serve.md): a key sent in the clear is given away.
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// With --api-key-file: `/healthz` answers without a key (load-balancer probes).
    #[arg(long, requires = "api_key_file")]
    open_healthz: bool,
    /// With --api-key-file: `/metrics` answers without a key (a scraper inside the
    /// network).
    #[arg(long, requires = "api_key_file")]
    open_metrics: bool,
    /// Intra-op threads per ONNX Runtime session (0: ONNX Runtime's choice).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// glibc malloc arenas at most (default: two per core; 0: glibc's own default,
    /// eight per core). Fewer arenas hold less memory, too few make threads wait in
    /// malloc (docs/serve.md, "Memory"). MALLOC_ARENA_MAX in the environment wins.
    #[arg(long)]
    malloc_arenas: Option<usize>,
    /// Seconds between handing freed memory back to the kernel (glibc's
    /// malloc_trim; default 0: never). Lowers the resident memory at some cost in
    /// throughput (docs/serve.md, "Memory").
    #[arg(long, default_value = "0", value_parser = parse_seconds_or_zero)]
    malloc_trim: Duration,
    /// ONNX Runtime library to load (default: $ORT_DYLIB_PATH, beside the binary, its
    /// ../lib, this checkout's .deps, then the system loader path).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
}

/// `8388608`, `512KiB`, `8MiB`, `1GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB`: all
/// binary multiples) in bytes.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a byte count such as 8388608 or 8MiB"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        u => return Err(format!("`{s}`: unknown unit `{u}` (use KiB, MiB or GiB)")),
    };
    match n.checked_mul(mult) {
        Some(0) => Err("must be at least 1 byte".into()),
        Some(b) => Ok(b),
        None => Err(format!("`{s}` is too large")),
    }
}

/// Seconds, optionally fractional, with an optional `s` suffix.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("`{s}`: expected seconds such as 120 or 0.5"))?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("`{s}`: must be a positive number of seconds"));
    }
    Duration::try_from_secs_f64(v).map_err(|e| format!("`{s}`: {e}"))
}

/// [`parse_seconds`], or 0 for "never".
fn parse_seconds_or_zero(s: &str) -> Result<Duration, String> {
    match s.trim().trim_end_matches('s').parse::<f64>() {
        Ok(v) if v == 0.0 => Ok(Duration::ZERO),
        _ => parse_seconds(s),
    }
}

/// A load failure's exit code: 1 for ONNX Runtime itself (library, provider), 2 for
/// the export (manifest, hashes, tokenizer, models).
fn load_exit_code<E: 'static>(e: &E) -> u8 {
    match (e as &dyn std::any::Any).downcast_ref::<c3_runtime::Error>() {
        Some(c3_runtime::Error::Ort(_)) => 1,
        _ => 2,
    }
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("c3-serve: {}", msg.to_string().trim().replace('\n', "; "));
    ExitCode::from(code)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // No colour codes in log files and journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            // Help and version exit 0; a usage error is 1 (2 means a bad export).
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    // Before any thread starts: arenas already made are not undone.
    let arenas = c3_serve::malloc::limit_arenas(match args.malloc_arenas {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(c3_serve::malloc::default_arenas()),
    });
    let trimming = c3_serve::malloc::start_trimming(args.malloc_trim);
    if let Some(p) = args.ort_lib.clone() {
        c3_onnx::ort_env::set_dylib_path(p);
    }
    // Before the (slow) load: a bad key file is refused at once.
    let api_keys = match &args.api_key_file {
        Some(f) => match c3_serve::auth::ApiKeys::load(f) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => return fail(1, e),
        },
        None => None,
    };
    let provider = match Provider::parse(&args.provider) {
        Ok(p) => p,
        Err(e) => return fail(1, format_args!("--provider: {e}")),
    };
    if args.max_batch == 0 || args.max_queue == 0 {
        return fail(1, "--max-batch and --max-queue must be at least 1");
    }
    // ONNX Runtime first: a missing library is the environment's fault (exit 1) and
    // its message names every place tried; what fails after is the export's.
    if let Err(e) = c3_onnx::ort_env::init_ort() {
        return fail(1, e);
    }
    let options = RuntimeOptions {
        provider,
        threads: args.threads,
        encoder_memory: args.encoder_memory as u64,
        verify_files: args.verify_files,
        cuda_libs: args.cuda_libs.clone(),
        window: args.window,
        ..RuntimeOptions::default()
    };
    // clap requires one of the two.
    let export = args
        .export
        .clone()
        .or(args.model.clone())
        .unwrap_or_default();
    let rt = match C3Runtime::load(&export, options) {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            let code = load_exit_code(&e);
            return fail(code, format_args!("{}: {e:#}", export.display()));
        }
    };
    let scheduler = SchedulerOptions {
        max_batch: args.max_batch,
        max_queue: args.max_queue,
        admit_per_step: args.admit_per_step,
        ..SchedulerOptions::default()
    };
    let serve = ServeOptions {
        max_body: args.max_body,
        request_timeout: args.request_timeout,
        max_text_tokens: args.max_text_tokens,
        api_keys,
        open_healthz: args.open_healthz,
        open_metrics: args.open_metrics,
    };
    let state = match AppState::new(rt, scheduler, serve) {
        Ok(s) => Arc::new(s),
        Err(e) if e.is_client_error() => return fail(1, e),
        Err(e) => return fail(1, format_args!("starting the scheduler: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(1, format_args!("starting the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!(
            "c3-serve: listening on http://{local} (model {}, max batch {}, malloc arenas {}, trim {})",
            export.display(),
            args.max_batch,
            arenas.map_or_else(|| "glibc's default".to_string(), |n| n.to_string()),
            if trimming { format!("every {:?}", args.malloc_trim) } else { "off".into() },
        );
        c3_serve::serve(listener, state.clone(), shutdown_signal())
            .await
            .map_err(|e| format!("serving: {e}"))
    });
    // Joins the scheduler thread (every request has ended: connections are closed).
    drop(state);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, e),
    }
}

/// Ctrl-C or SIGTERM (what container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("8MiB"), Ok(8 << 20));
        assert_eq!(parse_bytes("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("8 parsecs").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("99999999999999999999GiB").is_err());
    }

    #[test]
    fn timeouts_parse_in_seconds() {
        assert_eq!(parse_seconds("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_seconds("0.5s"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "nan", "inf", "soon"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
