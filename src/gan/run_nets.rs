//! The networks a training run keeps on the device, an MLP pair or two
//! layer lists: what the trainer reads back for checkpoints and divergence
//! reports, and writes when it resumes.
//!
//! A network's state as a checkpoint holds it is one flat vector: an MLP's
//! parameters; a layer list's `[params | running_mean | running_var |
//! num_batches_tracked]` ([`crate::nn::sequential::Sequential::state_words`]),
//! which are the buffers of [`SeqBuffers::state_parts`] end to end.

use crate::backend::Executor;
use crate::io::checkpoint::TrainingState;
use crate::nn::NetworkBuffers;
use crate::nn::sequential::SeqBuffers;
use crate::plan::Slice;

/// The device buffers of a run's two networks.
// One per run: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum RunNets {
    Mlp {
        generator: NetworkBuffers,
        discriminator: NetworkBuffers,
        /// The moving average of G's weights, with `g_ema`.
        generator_ema: Option<Slice>,
    },
    Layers {
        generator: SeqBuffers,
        discriminator: SeqBuffers,
        /// G's moving average, parameters and running statistics, with `g_ema`.
        generator_ema: Option<SeqBuffers>,
    },
}

/// One network's optimizer buffers: Adam's moments and its update counter
/// (a u32 word: both Adam's t and the step of its random streams).
struct Optimizer {
    m: Slice,
    v: Slice,
    step: Slice,
}

impl RunNets {
    /// The same networks with every slice passed through `at` (seed s's
    /// copies in a seed-batched plan: `SeedLayout::at`).
    pub fn moved(&self, at: impl Fn(Slice) -> Slice) -> RunNets {
        match self {
            RunNets::Mlp {
                generator,
                discriminator,
                generator_ema,
            } => RunNets::Mlp {
                generator: generator.moved(&at),
                discriminator: discriminator.moved(&at),
                generator_ema: generator_ema.map(&at),
            },
            RunNets::Layers {
                generator,
                discriminator,
                generator_ema,
            } => RunNets::Layers {
                generator: generator.moved(&at),
                discriminator: discriminator.moved(&at),
                generator_ema: generator_ema.as_ref().map(|e| e.moved(&at)),
            },
        }
    }

    /// `[G, D]` parameter buffers.
    pub fn params(&self) -> [Slice; 2] {
        match self {
            RunNets::Mlp {
                generator,
                discriminator,
                ..
            } => [generator.params, discriminator.params],
            RunNets::Layers {
                generator,
                discriminator,
                ..
            } => [generator.params, discriminator.params],
        }
    }

    /// The generator that samples and is observed: G's average when there is one.
    pub fn sampling(&self) -> Slice {
        match self {
            RunNets::Mlp {
                generator_ema: Some(avg),
                ..
            } => *avg,
            RunNets::Layers {
                generator_ema: Some(avg),
                ..
            } => avg.params,
            _ => self.params()[0],
        }
    }

    fn optimizers(&self) -> [Optimizer; 2] {
        let of = |m, v, step| Optimizer { m, v, step };
        match self {
            RunNets::Mlp {
                generator: g,
                discriminator: d,
                ..
            } => [
                of(g.adam_m, g.adam_v, g.step),
                of(d.adam_m, d.adam_v, d.step),
            ],
            RunNets::Layers {
                generator: g,
                discriminator: d,
                ..
            } => [
                of(g.adam_m, g.adam_v, g.step),
                of(d.adam_m, d.adam_v, d.step),
            ],
        }
    }

    /// `[G, D]` flat states, as a checkpoint holds them.
    pub fn read_states(&self, exec: &Executor) -> anyhow::Result<[Vec<f32>; 2]> {
        match self {
            RunNets::Mlp { .. } => {
                let [g, d] = self.params();
                Ok([exec.read(g)?, exec.read(d)?])
            }
            RunNets::Layers {
                generator,
                discriminator,
                ..
            } => Ok([
                read_parts(exec, generator)?,
                read_parts(exec, discriminator)?,
            ]),
        }
    }

    /// G's moving average, when the run keeps one.
    pub fn read_generator_ema(&self, exec: &Executor) -> anyhow::Result<Option<Vec<f32>>> {
        match self {
            RunNets::Mlp {
                generator_ema: Some(avg),
                ..
            } => Ok(Some(exec.read(*avg)?)),
            RunNets::Layers {
                generator_ema: Some(avg),
                ..
            } => Ok(Some(read_parts(exec, avg)?)),
            _ => Ok(None),
        }
    }

    /// Writes a checkpoint's `[G, D]` states and G's average into a
    /// layer-list run's buffers (running statistics and batch counts
    /// included). An MLP run takes its parameters when its plan is built,
    /// so this writes nothing for one.
    pub fn write_states(
        &self,
        exec: &mut Executor,
        states: [&[f32]; 2],
        generator_average: Option<&[f32]>,
    ) -> anyhow::Result<()> {
        if let RunNets::Layers {
            generator,
            discriminator,
            generator_ema,
        } = self
        {
            write_parts(exec, generator, states[0])?;
            write_parts(exec, discriminator, states[1])?;
            match (generator_ema, generator_average) {
                (Some(avg), Some(state)) => write_parts(exec, avg, state)?,
                (None, None) => {}
                _ => anyhow::bail!(
                    "the checkpoint and the run disagree on keeping G's average (g_ema)"
                ),
            }
        }
        Ok(())
    }

    /// Puts a checkpoint's optimizer state (Adam's moments and update
    /// counters of both networks) into the buffers.
    pub fn restore_training(&self, exec: &mut Executor, t: &TrainingState) -> anyhow::Result<()> {
        let [g, d] = self.optimizers();
        let moments = [&t.generator_adam, &t.discriminator_adam];
        let counters = [t.generator_updates, t.discriminator_updates];
        for ((opt, (m, v)), count) in [g, d].iter().zip(moments).zip(counters) {
            exec.write(opt.m, m)?;
            exec.write(opt.v, v)?;
            // The step counters are u32 words; the write takes their bits.
            exec.write(opt.step, &[f32::from_bits(count)])?;
        }
        Ok(())
    }

    /// The optimizer state a checkpoint keeps for `--resume`.
    pub fn training_state(
        &self,
        exec: &Executor,
        recipe: String,
        run_id: String,
    ) -> anyhow::Result<TrainingState> {
        let [g, d] = self.optimizers();
        let counter = |s| -> anyhow::Result<u32> { Ok(exec.read(s)?[0].to_bits()) };
        Ok(TrainingState {
            recipe,
            generator_adam: (exec.read(g.m)?, exec.read(g.v)?),
            discriminator_adam: (exec.read(d.m)?, exec.read(d.v)?),
            generator_updates: counter(g.step)?,
            discriminator_updates: counter(d.step)?,
            run_id: Some(run_id),
        })
    }
}

/// A layer list's state: its buffers end to end.
fn read_parts(exec: &Executor, bufs: &SeqBuffers) -> anyhow::Result<Vec<f32>> {
    let mut state = Vec::new();
    for part in bufs.state_parts() {
        state.extend(exec.read(part)?);
    }
    Ok(state)
}

/// Splits a layer list's state over its buffers.
fn write_parts(exec: &mut Executor, bufs: &SeqBuffers, state: &[f32]) -> anyhow::Result<()> {
    let parts = bufs.state_parts();
    let words: usize = parts.iter().map(|p| p.len).sum();
    anyhow::ensure!(
        state.len() == words,
        "a network state of {} words where the architecture has {words}",
        state.len()
    );
    let mut at = 0;
    for part in parts {
        exec.write(part, &state[at..at + part.len])?;
        at += part.len;
    }
    Ok(())
}
