//! The GAN: configuration and the plan of one alternating D/G training step.

pub mod step;

pub use step::{GanConfig, GanPlan, TrainingData, build_gan_plan};
