//! The GAN: configuration and the plan of one alternating D/G training step.

pub mod bn_stats;
pub mod footprint;
pub mod model;
pub mod observer;
pub mod recipe;
pub mod run_nets;
pub mod seq_step;
pub mod setting;
pub mod step;
pub mod stop;
pub mod trainer;

pub use model::{Architecture, LayerModel, ModelSpec};
pub use setting::SettingError;
pub use step::{
    GanConfig, GanPlan, InitialParams, TrainingData, build_gan_plan, build_sampler_plan,
    fixed_noise,
};
