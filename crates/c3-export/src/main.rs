//! `c3-export`: the exporter as its own binary for release pipelines; same arguments
//! as `c3 export`.

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
    let cli = Cli::parse();
    match c3_export::run(&cli.args) {
        Ok(report) => c3_export::export::print_report(&report, cli.args.json),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
