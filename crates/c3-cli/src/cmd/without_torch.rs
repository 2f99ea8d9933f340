//! The commands that need libtorch, in a `c3` built without it
//! (`--no-default-features`): they stay on the command line and say so in one line,
//! rather than vanishing into clap's "unrecognized subcommand".

use anyhow::{Result, bail};

/// Whatever flags were given; none is read.
#[derive(clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _rest: Vec<String>,
}

pub fn run(command: &str, _: Args) -> Result<()> {
    bail!(
        "`c3 {command}` needs libtorch, and this c3 was built without it (cargo build -p c3-cli --no-default-features); use a default build"
    )
}
