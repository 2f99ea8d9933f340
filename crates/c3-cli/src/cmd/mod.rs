//! One module per subcommand.

pub mod eval;
pub mod init;
pub mod inspect;
pub mod roundtrip;
pub mod tokenizer;
pub mod train;
