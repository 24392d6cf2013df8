//! Neural-network building blocks expressed as plan ops.

pub mod layers;
pub mod mlp;
pub mod sequential;

pub use mlp::{
    BackwardTargets, Dense, Mlp, NetworkBuffers, ParamLayout, Workspace, backward, forward,
};
