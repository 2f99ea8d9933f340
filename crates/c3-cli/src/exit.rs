//! How a failed `c3` command ends: one `error:` line on stderr, an exit code by kind
//! (1 usage or input, 2 verification mismatch, 3 environment: a missing library or
//! device), and with `--json` one `{"error", "kind"}` object on stdout.

use c3_export::error::error_json;
use c3_export::{ErrorKind, ExportError};

/// The kind of a command's error, from every cause in its chain.
pub fn kind(e: &anyhow::Error) -> ErrorKind {
    let trt_env = e
        .chain()
        .filter_map(|c| c.downcast_ref::<c3_trt::Error>())
        .any(c3_trt::Error::is_environment);
    if trt_env {
        return ErrorKind::Environment;
    }
    ErrorKind::of_chain(e.chain())
}

/// Whether `--json` is on the command line (before any `--`): every subcommand that
/// has the flag then gets its failure as JSON too.
fn json_requested() -> bool {
    std::env::args()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// `e` and its causes on one line, each cause once: many error types print their
/// source inside their own message (`{path}: {source}`) and also report it as
/// their source, which `{:#}` would repeat.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(text.trim()) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(text.trim());
        }
    }
    msg.replace('\n', "; ")
}

/// Reports `e` and returns the exit code.
pub fn fail(e: &anyhow::Error) -> i32 {
    let msg = one_line(e);
    eprintln!("error: {msg}");
    let kind = kind(e);
    if json_requested() {
        let verify = e
            .downcast_ref::<ExportError>()
            .and_then(ExportError::verify_report);
        println!("{}", error_json(&msg, kind, verify));
    }
    kind.exit_code()
}

/// Help and version exit 0; usage errors exit 1 (clap's own 2 would read as a
/// verification mismatch), with the JSON object under `--json`.
pub fn usage_error(e: clap::Error) -> ! {
    let _ = e.print();
    if !e.use_stderr() {
        std::process::exit(0);
    }
    if json_requested() {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or("invalid arguments");
        println!(
            "{}",
            error_json(first.trim_start_matches("error: "), ErrorKind::Input, None)
        );
    }
    std::process::exit(ErrorKind::Input.exit_code());
}
