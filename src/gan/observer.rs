//! A watcher of a training run. The loop calls it every `--eval-every`
//! steps and where the run ends, with the parameters of the generator that
//! samples (G's average when there is one), so a protocol above the trainer
//! (the mode trace of `eval::mode_trace`) can score the run as it goes
//! without the trainer knowing the protocol.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::Architecture;
use crate::backend::Executor;
use crate::gpu::GpuContext;
use crate::plan::Slice;

/// Something that looks at the generator at chosen steps of a run.
pub trait StepObserver: Send {
    /// The generator `model` with flat parameters `generator` at `step`;
    /// `gpu` is the device the run trains on (none on the CPU backend).
    fn observe(
        &mut self,
        step: u64,
        model: &Architecture,
        generator: &[f32],
        gpu: Option<&GpuContext>,
    ) -> anyhow::Result<()>;
}

/// A shared handle to a [`StepObserver`], so the loop's options stay
/// cloneable and printable.
#[derive(Clone)]
pub struct Observer(Arc<Mutex<dyn StepObserver>>);

impl Observer {
    pub fn new(observer: impl StepObserver + 'static) -> Observer {
        Observer(Arc::new(Mutex::new(observer)))
    }

    /// Reads the generator in `exec`'s `generator` slice and hands it to the observer.
    pub fn observe(
        &self,
        exec: &Executor,
        generator: Slice,
        model: &Architecture,
        step: u64,
    ) -> anyhow::Result<()> {
        let params = exec.read(generator)?;
        let mut observer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        observer.observe(step, model, &params, exec.gpu())
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}
