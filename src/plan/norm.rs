//! The shapes of BatchNorm (`Op::BatchNorm`, `Op::BatchNormEval`,
//! `Op::BatchNormBackward`): which elements share a channel's statistics,
//! and the running statistics a training-mode BatchNorm updates.

use super::Slice;

/// A tensor viewed as `[outer, channels, inner]`: channel `c`'s elements are
/// `x[(o·channels + c)·inner + i]` for every `o < outer`, `i < inner`.
/// BatchNorm1d over `[batch, features]`: outer = batch, inner = 1;
/// BatchNorm2d over `[batch, C, H, W]`: outer = batch, inner = H·W.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormShape {
    pub outer: usize,
    pub channels: usize,
    pub inner: usize,
}

impl NormShape {
    /// Elements of the tensor.
    pub fn len(&self) -> usize {
        self.outer * self.channels * self.inner
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements per channel (the statistics' count).
    pub fn per_channel(&self) -> usize {
        self.outer * self.inner
    }

    /// Index of element `k < per_channel()` of channel `c`.
    pub fn at(&self, c: usize, k: usize) -> usize {
        (k / self.inner * self.channels + c) * self.inner + k % self.inner
    }

    pub fn check(&self) -> Result<(), String> {
        if self.is_empty() {
            return Err(format!("batch norm over an empty tensor ({self:?})"));
        }
        Ok(())
    }
}

/// The running statistics of a training-mode BatchNorm, updated as
/// PyTorch's: `mean ← (1 − momentum)·mean + momentum·batch mean`,
/// `var ← (1 − momentum)·var + momentum·batch variance·n/(n − 1)` (n the
/// elements per channel), and the u32 word `batches` (PyTorch's
/// `num_batches_tracked`) advanced by one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunningStats {
    pub mean: Slice,
    pub var: Slice,
    pub batches: Slice,
    pub momentum: f32,
}
