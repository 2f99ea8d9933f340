//! `c3-export`: the exporter as its own binary for release pipelines; same arguments
//! as `c3 export`. Exit codes: 0 ok, 1 usage or input, 2 verification mismatch,
//! 3 environment (README, "Export in release pipelines").

use std::sync::Arc;

use c3_export::ErrorKind;
use c3_export::error::error_json;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "c3-export",
    version,
    about = "Export a C3 checkpoint to ONNX (encoder, KV-cache decoder, token embedding)"
)]
struct Cli {
    #[command(flatten)]
    args: c3_export::ExportArgs,
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (please report): {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    let progress = Arc::new(c3_export::bars::StderrProgress::new());
    match c3_export::run_with(&cli.args.options(), progress) {
        Ok(report) => c3_export::export::print_report(&report, cli.args.json),
        Err(e) => std::process::exit(c3_export::export::print_error(&e, cli.args.json)),
    }
}

/// Help and version exit 0; a usage error exits 1 (clap's own 2 would read as a
/// verification mismatch), with the JSON object when `--json` was on the line.
fn usage_error(e: clap::Error) -> ! {
    if !e.use_stderr() {
        let _ = e.print();
        std::process::exit(0);
    }
    let _ = e.print();
    if std::env::args().any(|a| a == "--json") {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or("invalid arguments");
        let msg = first.trim_start_matches("error: ");
        println!("{}", error_json(msg, ErrorKind::Input, None));
    }
    std::process::exit(ErrorKind::Input.exit_code());
}
