//! shadergan: train GANs with hand-written WGSL compute shaders through wgpu.
//!
//! A training step is a [`plan::Plan`]: named buffers and flat lists of kernel
//! launches. The GPU backend ([`gpu::GpuPlan`]) records a plan into command
//! buffers; the CPU backend ([`cpu::CpuPlan`]) interprets the same plan with
//! reference kernels. [`nn`] builds dense layers into plans and [`gan`] builds
//! the alternating D/G updates of a GAN.

pub mod backend;
pub mod bench;
pub mod cpu;
pub mod data;
pub mod eval;
pub mod fault;
pub mod gan;
pub mod gpu;
pub mod io;
pub mod nn;
pub mod plan;
pub mod profile;
pub mod shaders;
