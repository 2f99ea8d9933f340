//! `c3 export`: the same exporter as the `c3-export` binary (crates/c3-export), with
//! progress on stderr; failures carry their kind to the exit code (crate::exit).

use std::sync::Arc;

use anyhow::Result;

pub fn run(a: c3_export::ExportArgs) -> Result<()> {
    // `--verify` finds the reference (`c3 reference`) beside the running binary: this one.
    let progress = Arc::new(c3_export::bars::StderrProgress::new());
    let report = c3_export::run_with(&a.options(), progress)?;
    c3_export::export::print_report(&report, a.json);
    Ok(())
}
