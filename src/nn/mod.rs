//! Neural-network building blocks expressed as plan ops.

pub mod layers;
pub mod mlp;

pub use mlp::{
    BackwardTargets, Dense, Mlp, NetworkBuffers, ParamLayout, Workspace, backward, forward,
};
