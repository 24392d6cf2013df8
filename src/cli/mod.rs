//! The subcommands.

pub mod classifier;
pub mod eval;
pub mod info;
pub mod sample;
pub mod train;

use clap::ValueEnum;
use shadergan::backend::BackendChoice;

/// `--backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// A hardware GPU if there is one, else the CPU backend.
    Auto,
    /// The WGSL kernels on a GPU adapter (an error if there is none).
    Gpu,
    /// The reference kernels in Rust on the CPU.
    Cpu,
}

impl From<BackendArg> for BackendChoice {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Gpu => BackendChoice::Gpu,
            BackendArg::Cpu => BackendChoice::Cpu,
        }
    }
}
