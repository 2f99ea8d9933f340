//! One module per subcommand.

pub mod bench;
pub mod build;
pub mod compress;
pub mod eval;
pub mod export;
pub mod init;
pub mod inspect;
pub mod reference;
pub mod roundtrip;
pub mod tokenizer;
pub mod train;
pub mod triton;
