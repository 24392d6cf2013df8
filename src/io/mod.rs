//! Files the tool writes and reads: checkpoints (safetensors), image grids,
//! plots, and the atomic write they all go through.

pub mod atomic;
pub mod checkpoint;
pub mod grid;
pub mod plot;
