//! Files the tool writes and reads: checkpoints (safetensors), image grids,
//! plots, the per-step CSVs read back on resume, and the atomic write they
//! all go through.

pub mod atomic;
pub mod checkpoint;
pub mod grid;
pub mod plot;
pub mod run_lock;
pub mod step_csv;
