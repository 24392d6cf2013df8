//! Hello, plan: one dense layer forward, `y = relu(x·Wᵀ + b)`, written as a
//! plan (named buffers plus a phase holding one op), run on the GPU backend
//! (WGSL through wgpu) and on the CPU backend (the Rust reference kernels),
//! and the two results compared.
//!
//!     cargo run --release --example hello_plan
//!
//! Without a GPU adapter it says so and runs the CPU backend alone. Any
//! adapter counts here, Mesa's software llvmpipe included; set
//! SHADERGAN_ADAPTER to pick one.

use std::process::ExitCode;

use rand::{Rng, SeedableRng, rngs::StdRng};
use shadergan::backend::Executor;
use shadergan::gpu::{GpuContext, GpuError};
use shadergan::plan::{Activation, Elem, Init, Op, Plan, Slice};

/// A dense layer's inputs: `x[m,k]`, `w[n,k]` (as `nn.Linear` stores it), `b[n]`.
pub struct Layer {
    pub x: Vec<f32>,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// A layer of `m` rows, `k` inputs and `n` outputs, uniform in [−1, 1].
pub fn random_layer(m: usize, n: usize, k: usize, seed: u64) -> Layer {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut draw = |len: usize| (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (x, w, b) = (draw(m * k), draw(n * k), draw(n));
    Layer { x, w, b, m, n, k }
}

/// The plan: three input buffers, an output poisoned with NaN (an element the
/// kernel never wrote would show), and a phase "forward" of one op.
pub fn dense_plan(layer: &Layer) -> (Plan, Op, Slice) {
    let mut plan = Plan::default();
    let mut input =
        |name: &str, v: &[f32]| plan.buffer(name, Elem::F32, v.len(), Init::F32(v.to_vec()));
    let (x, w, b) = (
        input("x", &layer.x),
        input("w", &layer.w),
        input("b", &layer.b),
    );
    let len = layer.m * layer.n;
    let y = plan.buffer("y", Elem::F32, len, Init::F32(vec![f32::NAN; len]));
    let op = Op::MatmulBiasAct {
        x,
        w,
        b: Some(b),
        y,
        m: layer.m,
        n: layer.n,
        k: layer.k,
        act: Activation::Relu,
    };
    plan.add_phase("forward", vec![op.clone()]);
    (plan, op, y)
}

/// Runs the layer on the GPU when `gpu` is given, else on the CPU, and reads `y` back.
pub fn forward(gpu: Option<GpuContext>, layer: &Layer) -> anyhow::Result<Vec<f32>> {
    let (plan, _, y) = dense_plan(layer);
    // The executor validates the plan, then builds it once: pipelines and
    // bind groups on the GPU, plain buffers on the CPU.
    let mut exec = Executor::new(gpu, plan, vec![])?;
    exec.run(&["forward"], None)?;
    exec.read(y)
}

/// `max |got − want| / max |want|`: the worst error relative to the largest
/// output (relative to each element, an output that cancels to near zero
/// would dominate). A NaN anywhere gives NaN.
pub fn max_rel_err(got: &[f32], want: &[f32]) -> f64 {
    let scale = want.iter().fold(0.0f32, |s, v| s.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| f64::from((g - w).abs() / scale));
    worst.fold(0.0, |m, e| if e > m || e.is_nan() { e } else { m })
}

fn main() -> ExitCode {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn run() -> anyhow::Result<()> {
    // A batch of 64 rows of 784 inputs (an MNIST image each) through 128 units.
    let layer = random_layer(64, 128, 784, 0);
    let (plan, op, _) = dense_plan(&layer);
    let (buffers, kernel) = (plan.buffers.len(), op.kernel_name());
    let (m, n, k) = (layer.m, layer.n, layer.k);
    println!("plan: {buffers} buffers; phase \"forward\": {kernel} {m}x{n}x{k}, relu");
    let cpu = forward(None, &layer)?;
    println!("cpu: y[0, 0..4] = {:?}", &cpu[..4]);
    let ctx = match GpuContext::new() {
        Err(GpuError::NoAdapter) => {
            println!("gpu: no adapter found, so the CPU backend ran alone");
            return Ok(());
        }
        other => other?,
    };
    let entry = shadergan::gpu::lowering::lower(&op).entry;
    println!("gpu: {} runs the WGSL entry point {entry}", ctx.describe());
    let gpu = forward(Some(ctx), &layer)?;
    println!("gpu: y[0, 0..4] = {:?}", &gpu[..4]);
    let (err, outputs) = (max_rel_err(&gpu, &cpu), cpu.len());
    println!("max |gpu − cpu| / max |cpu| = {err:.1e} over {outputs} outputs");
    anyhow::ensure!(err <= 1e-4, "the backends disagree (tolerance 1e-4)");
    Ok(())
}
