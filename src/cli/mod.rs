//! The subcommands.

pub mod bench;
pub mod classifier;
pub mod eval;
pub mod info;
pub mod report;
pub mod run_folder;
pub mod sample;
pub mod settings;
pub mod signals;
pub mod summarize;
pub mod sweep;
pub mod train;

use clap::{Args, ValueEnum};
use shadergan::backend::{self, BackendChoice, Selected};
use shadergan::gan::bn_stats::BnStats;
use shadergan::gpu::{GpuContext, MatmulPrecision};

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

/// `--bn-stats`: the BatchNorm statistics a layer-list generator samples with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BnStatsArg {
    /// The running statistics the checkpoint holds, as PyTorch's `model.eval()`.
    Running,
    /// Statistics recomputed for the final weights over 2048 noise rows.
    Recomputed,
}

impl From<BnStatsArg> for BnStats {
    fn from(b: BnStatsArg) -> Self {
        match b {
            BnStatsArg::Running => BnStats::Running,
            BnStatsArg::Recomputed => BnStats::Recomputed,
        }
    }
}

/// `--backend` and `--adapter`, shared by every command that runs a plan.
#[derive(Args, Clone, Debug)]
pub struct DeviceArgs {
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// The GPU adapter: its number in `shadergan info`, or text its name contains (else
    /// SHADERGAN_ADAPTER, else the best). `sweep` also takes a list, e.g. 0,1.
    #[arg(long, value_name = "N|NAME")]
    pub adapter: Option<String>,
    /// The dense layers' products: f32 (the default), or f16-tensor-cores (f16 inputs,
    /// f32 accumulation, through wgpu's experimental cooperative matrices; GPU only,
    /// refused on an adapter without them: `shadergan info` says)
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub matmul_precision: PrecisionArg,
}

/// `--matmul-precision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    F32,
    F16TensorCores,
}

impl From<PrecisionArg> for MatmulPrecision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => MatmulPrecision::F32,
            PrecisionArg::F16TensorCores => MatmulPrecision::F16TensorCores,
        }
    }
}

impl DeviceArgs {
    /// Opens the backend asked for, printing the one-line note when it falls back.
    pub fn select(&self) -> anyhow::Result<Selected> {
        if let Some(list) = self.adapter.as_deref().filter(|a| a.contains(',')) {
            anyhow::bail!(
                "--adapter {list} names several adapters; only `sweep` spreads over several"
            );
        }
        anyhow::ensure!(
            self.backend != BackendArg::Cpu || self.matmul_precision == PrecisionArg::F32,
            "--matmul-precision f16-tensor-cores needs the GPU; --backend cpu computes in f32"
        );
        let precision = self.matmul_precision.into();
        let selected = backend::select_at(self.backend.into(), self.adapter.as_deref(), precision)?;
        if let Some(note) = &selected.notice {
            // The one notice: `auto` fell back from a software adapter to the CPU.
            eprintln!("note: {note} (--backend gpu)");
        }
        Ok(selected)
    }

    /// The devices a sweep spreads its seeds over: one per adapter of a
    /// comma-separated `--adapter` list (each its own wgpu device and queue),
    /// else the one [`DeviceArgs::select`] opens (`None`: the CPU backend).
    pub fn select_each(&self) -> anyhow::Result<Vec<Option<GpuContext>>> {
        let Some(list) = self.adapter.as_deref().filter(|a| a.contains(',')) else {
            return Ok(vec![self.select()?.gpu]);
        };
        anyhow::ensure!(
            self.backend != BackendArg::Cpu,
            "--adapter {list} names GPU adapters but --backend cpu uses none"
        );
        list.split(',')
            .map(|one| {
                let one = one.trim();
                anyhow::ensure!(!one.is_empty(), "--adapter {list} has an empty entry");
                let precision = self.matmul_precision.into();
                Ok(Some(GpuContext::with_precision(Some(one), precision)?))
            })
            .collect()
    }
}
