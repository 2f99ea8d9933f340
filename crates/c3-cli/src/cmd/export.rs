//! `c3 export`: the same exporter as the `c3-export` binary (crates/c3-export).

use anyhow::Result;

pub fn run(a: c3_export::ExportArgs) -> Result<()> {
    // `--verify` finds the reference (`c3 reference`) beside the running binary: this one.
    let report = c3_export::run(&a)?;
    c3_export::export::print_report(&report, a.json);
    Ok(())
}
