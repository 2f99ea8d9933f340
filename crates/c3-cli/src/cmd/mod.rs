//! One module per subcommand.

pub mod bench;
pub mod build;
pub mod compress;
pub mod eval;
pub mod export;
pub mod init;
pub mod inspect;
#[cfg(feature = "torch")]
pub mod reference;
pub mod roundtrip;
pub mod tokenizer;
#[cfg(feature = "torch")]
pub mod train;
pub mod triton;
#[cfg(not(feature = "torch"))]
pub mod without_torch;
