//! Which BatchNorm statistics a layer-list generator samples with.
//!
//! In training, BatchNorm normalises with each batch's statistics and keeps
//! running ones, `r ← 0.9·r + 0.1·batch`, for evaluation mode. Those
//! running statistics average the last ten or so batches of a generator
//! that moved between them, so they lag the weights they are used with;
//! with G's moving average (`--g-ema`) they belong to other weights
//! altogether. [`BnStats::Recomputed`] replaces them before sampling by the
//! statistics of the final weights, as "precise BN" (Wu & Johnson 2021) and
//! BigGAN's "standing statistics" do:
//!
//! ```text
//!   z ~ N(0, I), CALIBRATION_ROWS rows (Philox stream STREAM_BN_CALIBRATION)
//!   one forward of G in training mode over z, each BatchNorm normalising
//!   with its batch statistics and writing them as its running ones
//!   (momentum 1: mean ← batch mean, var ← batch variance · n/(n − 1))
//! ```
//!
//! Sampling then runs in evaluation mode on those statistics. It is a pure
//! function of G's parameters, run on the same backend as the sampling;
//! checkpoints keep PyTorch's running statistics, so resume is unchanged.

use super::model::{Architecture, LayerModel};
use super::seq_step::generator_for_state;
use crate::backend::Executor;
use crate::gpu::GpuContext;
use crate::nn::sequential::{Mode, SeqBuffers, SeqWorkspace, forward};
use crate::plan::{Elem, Init, Plan};

/// How many noise rows the statistics are recomputed over (per BatchNorm
/// channel that is 2048·H·W values; per feature of a BatchNorm1d, 2048).
pub const CALIBRATION_ROWS: usize = 2048;

/// The Philox stream of the calibration noise (apart from the streams of
/// training and of the fixed sampling noise).
pub const STREAM_BN_CALIBRATION: u32 = 5;

/// The statistics BatchNorm layers of G use when sampling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BnStats {
    /// The running statistics the checkpoint holds (PyTorch's `model.eval()`).
    #[default]
    Running,
    /// Statistics recomputed for the final weights over 2048 noise rows.
    Recomputed,
}

impl BnStats {
    pub fn name(self) -> &'static str {
        match self {
            BnStats::Running => "running",
            BnStats::Recomputed => "recomputed",
        }
    }
}

/// G's state to sample with: `g_state` itself, or (for a layer list with
/// BatchNorm and [`BnStats::Recomputed`]) `g_state` with its running means
/// and variances replaced by recomputed ones; its batch counts are kept.
pub fn sampling_state(
    gpu: Option<&GpuContext>,
    model: &Architecture,
    g_state: &[f32],
    stats: BnStats,
) -> anyhow::Result<Vec<f32>> {
    match (model, stats) {
        (Architecture::Layers(m), BnStats::Recomputed) => recompute(gpu, m, g_state),
        _ => Ok(g_state.to_vec()),
    }
}

/// [`sampling_state`] for a layer list: the calibration forward above.
pub fn recompute(
    gpu: Option<&GpuContext>,
    model: &LayerModel,
    g_state: &[f32],
) -> anyhow::Result<Vec<f32>> {
    let g = generator_for_state(model, g_state)?;
    if g.stat_slots().is_empty() {
        return Ok(g_state.to_vec());
    }
    let rows = CALIBRATION_ROWS;
    let mut noise = vec![0.0; rows * model.z_dim];
    crate::cpu::philox::fill_normal(&mut noise, 0, STREAM_BN_CALIBRATION, 0);
    let mut plan = Plan::default();
    let bufs = SeqBuffers::declare_from_state(&mut plan, "G", &g, g_state);
    let z = plan.buffer("z", Elem::F32, noise.len(), Init::F32(noise));
    let ws = SeqWorkspace::declare(&mut plan, "G", &g, rows, z, None);
    let mode = Mode::Train {
        running_momentum: Some(1.0),
        dropout: None,
    };
    plan.add_phase("calibrate", forward(&g, &bufs, &ws, z, rows, mode));
    plan.validate()?;
    let mut exec = Executor::new(gpu.cloned(), plan, vec![])?;
    exec.run(&["calibrate"], None)?;
    let mut state = g_state[..g.param_words].to_vec();
    state.extend(exec.read(bufs.stats_mean)?);
    state.extend(exec.read(bufs.stats_var)?);
    state.extend_from_slice(&g_state[state.len()..]);
    Ok(state)
}
