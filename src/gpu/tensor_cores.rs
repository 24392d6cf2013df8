//! The opt-in tensor-core path: which products run on `matmul_coop.wgsl`
//! (f16 inputs, f32 accumulation, through wgpu's cooperative matrices), and
//! what an adapter must offer for it.
//!
//! The lowering first picks the f32 kernel as always ([`lower`]); with
//! [`MatmulPrecision::F16TensorCores`] the tiled dense products (the 64- and
//! 128-tile kernels, split launches included) are then moved to
//! `matmul_coop_f16`, which takes the same uniform words, bindings and
//! 128-tile grid. The small-output kernels (`matmul_bias_act_small*`,
//! `splitk`), the fused MLP forward and the convolutions stay f32.

use super::lowering::{KernelCall, MATMUL_BIG_TILE, lower};
use crate::plan::Op;
use crate::shaders::Shader;

/// The arithmetic of the dense products.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulPrecision {
    /// f32 FMA on the shader cores (the default).
    #[default]
    F32,
    /// f16 inputs, f32 accumulation, on tensor cores.
    F16TensorCores,
}

/// The matrix shape `matmul_coop.wgsl` is written for: 16×16×16, f16 inputs,
/// f32 accumulators, in subgroups of 32.
const FRAGMENT: u32 = 16;
const SUBGROUP: u32 = 32;

/// The uniform word of matmul.wgsl's Params that holds `a_scale`.
const A_SCALE_WORD: usize = 17;

/// Why `adapter` cannot run the tensor-core path, or `None` if it can.
pub fn unsupported_reason(adapter: &wgpu::Adapter) -> Option<String> {
    let features = adapter.features();
    if !features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        return Some("it does not offer EXPERIMENTAL_COOPERATIVE_MATRIX".into());
    }
    if !features.contains(wgpu::Features::SHADER_F16) {
        return Some("it does not offer SHADER_F16".into());
    }
    let info = adapter.get_info();
    if (info.subgroup_min_size, info.subgroup_max_size) != (SUBGROUP, SUBGROUP) {
        return Some(format!(
            "its subgroups are {}–{} wide; the kernel needs exactly {SUBGROUP}",
            info.subgroup_min_size, info.subgroup_max_size
        ));
    }
    let f16_in_f32_acc = |c: &wgpu::CooperativeMatrixProperties| {
        (c.m_size, c.n_size, c.k_size) == (FRAGMENT, FRAGMENT, FRAGMENT)
            && c.ab_type == wgpu::CooperativeScalarType::F16
            && c.cr_type == wgpu::CooperativeScalarType::F32
    };
    if !adapter
        .cooperative_matrix_properties()
        .iter()
        .any(f16_in_f32_acc)
    {
        return Some("it has no 16×16×16 F16→F32 cooperative-matrix configuration".into());
    }
    None
}

/// The device features the tensor-core path needs.
pub fn required_features() -> wgpu::Features {
    wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16
}

/// `op`'s kernel launch at `precision`.
pub fn lower_at(op: &Op, precision: MatmulPrecision) -> KernelCall {
    let call = lower(op);
    match precision {
        MatmulPrecision::F32 => call,
        MatmulPrecision::F16TensorCores => on_tensor_cores(op, call),
    }
}

/// The power of two A is scaled by before its f16 rounding: 1 for forward
/// products (A = activations), else the batch size rounded to a power of
/// two (A = a gradient of a batch-mean loss, each row about 1/batch of a
/// per-example gradient, below f16's normal range at large batches).
fn a_scale(op: &Op) -> Option<f32> {
    let batch_scale = |rows: usize| (rows.max(1).next_power_of_two() as f32).min(65536.0);
    match *op {
        Op::MatmulBiasAct { .. } => Some(1.0),
        Op::MatmulDx { m, .. } | Op::MatmulDw { m, .. } | Op::MatmulDwSplit { m, .. } => {
            Some(batch_scale(m))
        }
        _ => None,
    }
}

fn on_tensor_cores(op: &Op, mut call: KernelCall) -> KernelCall {
    let tiled = matches!(
        call.entry,
        "matmul_bias_act" | "matmul_bias_act_128" | "matmul_bias_act_128_prefetch"
    );
    let Some(scale) = a_scale(op).filter(|_| tiled) else {
        return call;
    };
    let (m, n) = (call.params[0], call.params[1]);
    call.shader = Shader::MatmulCoop;
    call.entry = "matmul_coop_f16";
    call.params[A_SCALE_WORD] = scale.to_bits();
    call.workgroups = [
        n.div_ceil(MATMUL_BIG_TILE),
        m.div_ceil(MATMUL_BIG_TILE),
        call.workgroups[2],
    ];
    call
}
