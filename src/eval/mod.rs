//! Measuring what a GAN learned: mode coverage on 2-D mixtures, the Parzen
//! window log-likelihood, and scores from our own classifier (Fréchet
//! distance and a classifier "inception score").

pub mod classifier;
pub mod draws;
pub mod frechet;
pub mod mode_trace;
pub mod modes;
pub mod parzen;
pub mod report;
pub mod sweep;
