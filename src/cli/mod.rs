//! The subcommands.

pub mod bench;
pub mod classifier;
pub mod eval;
pub mod info;
pub mod sample;
pub mod train;

use clap::{Args, ValueEnum};
use shadergan::backend::{self, BackendChoice, Selected};

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

/// `--backend` and `--adapter`, shared by every command that runs a plan.
#[derive(Args, Clone, Debug)]
pub struct DeviceArgs {
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// The GPU adapter: its number in `shadergan info`, or text its name contains (else SHADERGAN_ADAPTER, else the best).
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
}

impl DeviceArgs {
    /// Opens the backend asked for, printing the one-line note when it falls back.
    pub fn select(&self) -> anyhow::Result<Selected> {
        let selected = backend::select(self.backend.into(), self.adapter.as_deref())?;
        if let Some(note) = &selected.notice {
            eprintln!("note: {note}");
        }
        Ok(selected)
    }
}
