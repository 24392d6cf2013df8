//! shadergan: train GANs with hand-written WGSL compute shaders through wgpu.
//!
//! A training step is a [`plan::Plan`]: named buffers and flat lists of kernel
//! launches. The GPU backend ([`gpu::GpuPlan`]) records a plan into command
//! buffers; the CPU backend ([`cpu::CpuPlan`]) interprets the same plan with
//! reference kernels. [`nn`] builds dense layers into plans and [`gan`] builds
//! the alternating D/G updates of a GAN.
//!
//! # Example
//!
//! A dense layer forward, `y = relu(x·Wᵀ + b)`, as a plan of one phase, run
//! on the CPU backend. Given a [`gpu::GpuContext`] instead of `None`,
//! [`backend::Executor::new`] runs the same plan with the WGSL kernels.
//!
//! ```
//! use shadergan::backend::Executor;
//! use shadergan::plan::{Activation, Elem, Init, Op, Plan};
//!
//! # fn main() -> anyhow::Result<()> {
//! let (m, k, n) = (2, 3, 2); // 2 rows of 3 inputs; 2 outputs
//! let mut plan = Plan::default();
//! let rows = vec![1.0, 2.0, 3.0, -1.0, -2.0, -3.0];
//! let x = plan.buffer("x", Elem::F32, m * k, Init::F32(rows));
//! // W[out, in], as in PyTorch's nn.Linear.
//! let weights = vec![1.0, 0.0, 0.0, 0.0, 1.0, 1.0];
//! let w = plan.buffer("w", Elem::F32, n * k, Init::F32(weights));
//! let b = plan.buffer("b", Elem::F32, n, Init::F32(vec![0.5, -1.0]));
//! let y = plan.f32_buffer("y", m * n);
//! let act = Activation::Relu;
//! let layer = Op::MatmulBiasAct { x, w, b: Some(b), y, m, n, k, act };
//! plan.add_phase("forward", vec![layer]);
//!
//! let mut cpu = Executor::new(None, plan, Vec::new())?;
//! cpu.run(&["forward"], None)?;
//! // Row 1: 1 + 0.5 and 2 + 3 − 1; row 2: both negative, so 0 after ReLU.
//! assert_eq!(cpu.read(y)?, [1.5, 4.0, 0.0, 0.0]);
//! # Ok(())
//! # }
//! ```

pub mod backend;
pub mod bench;
pub mod cpu;
pub mod data;
pub mod eval;
/// The fault-injection hook the tests drive (`SHADERGAN_FAULT`); not an API.
#[doc(hidden)]
pub mod fault;
pub mod gan;
pub mod gpu;
pub mod io;
pub mod nn;
pub mod plan;
pub mod profile;
pub mod shaders;
