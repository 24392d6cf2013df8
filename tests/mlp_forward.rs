//! The fused MLP forward (`Op::MlpForward`, `shaders/mlp_forward.wgsl`)
//! against one reference dense layer per layer: the CPU backend bit for bit,
//! the GPU kernel within a relative error, on awkward shapes (rows that are not
//! a multiple of the row block, widths of 1 and of the 256 maximum, inputs and
//! outputs of 784), every activation, NaN-poisoned outputs at non-zero offsets.

mod common;

use common::*;
use shadergan::cpu::CpuPlan;
use shadergan::gpu::GpuPlan;
use shadergan::nn::{Mlp, NetworkBuffers, Workspace, forward};
use shadergan::plan::{
    Activation, FusedLayer, MLP_FUSED_MAX_HIDDEN, MLP_FUSED_MAX_LAYERS, MLP_FUSED_MIN_ROWS, Op,
    Plan, Slice, align_words,
};

const ROWS: [usize; 4] = [1, 7, 33, 300];
const HIDDEN: [usize; 4] = [1, 7, 127, 256];
const INPUTS: [usize; 2] = [2, 784];
const OUTPUTS: [usize; 3] = [1, 784, 7];
const TOL: f64 = 1e-4;

const ACTIVATIONS: [Activation; 5] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Tanh,
    Activation::Sigmoid,
];

/// One test network: its widths (input first) and per-layer activations.
struct Case {
    rows: usize,
    widths: Vec<usize>,
    acts: Vec<Activation>,
}

/// 1 to 4 layers; every row count, hidden width, input, output and
/// activation appears, in shifting combinations.
fn cases() -> Vec<Case> {
    (0..16)
        .map(|i| {
            let layers = 1 + i % 4;
            let mut widths = vec![INPUTS[i % 2]];
            widths.extend((1..layers).map(|l| HIDDEN[(i + l) % 4]));
            widths.push(OUTPUTS[i % 3]);
            Case {
                rows: ROWS[(i / 4 + i) % 4],
                acts: (0..layers).map(|l| ACTIVATIONS[(i + l) % 5]).collect(),
                widths,
            }
        })
        .collect()
}

/// A flat parameter buffer laid out as `Mlp::layout` does (aligned tensors),
/// and the layers of the fused op over it.
fn layers_and_params(case: &Case, r: &mut rand::rngs::StdRng) -> (Vec<FusedLayer>, Vec<f32>) {
    let mut at = 0;
    let mut layers = Vec::new();
    for (l, pair) in case.widths.windows(2).enumerate() {
        let (inputs, outputs) = (pair[0], pair[1]);
        let weight = at;
        let bias = align_words(weight + inputs * outputs);
        at = align_words(bias + outputs);
        layers.push(FusedLayer {
            inputs,
            outputs,
            act: case.acts[l],
            weight,
            bias,
        });
    }
    let mut params = vec![0.0; at];
    for layer in &layers {
        // nn.Linear's scale keeps every layer's output of order one.
        let bound = 1.0 / (layer.inputs as f32).sqrt();
        let n = layer.inputs * layer.outputs;
        params[layer.weight..layer.weight + n].copy_from_slice(&uniform(r, n, -bound, bound));
        params[layer.bias..layer.bias + layer.outputs].copy_from_slice(&uniform(
            r,
            layer.outputs,
            -bound,
            bound,
        ));
    }
    (layers, params)
}

/// Phase "fused": the op under test; phase "unfused": one MatmulBiasAct per
/// layer into separate buffers. Returns both sets of outputs.
fn build(case: &Case, r: &mut rand::rngs::StdRng) -> (Plan, Vec<Slice>, Vec<Slice>) {
    let rows = case.rows;
    let (layers, params) = layers_and_params(case, r);
    let mut plan = Plan::default();
    let x = input_f32(
        &mut plan,
        "x",
        &uniform(r, rows * case.widths[0], -1.0, 1.0),
    );
    let params = input_f32(&mut plan, "params", &params);
    let fused: Vec<Slice> = (0..layers.len())
        .map(|l| output_f32(&mut plan, &format!("a{l}"), rows * layers[l].outputs))
        .collect();
    let unfused: Vec<Slice> = (0..layers.len())
        .map(|l| output_f32(&mut plan, &format!("ref{l}"), rows * layers[l].outputs))
        .collect();
    let mut input = x;
    let mut reference = Vec::new();
    for (layer, &y) in layers.iter().zip(&unfused) {
        reference.push(Op::MatmulBiasAct {
            x: input,
            w: params.sub(layer.weight, layer.inputs * layer.outputs),
            b: Some(params.sub(layer.bias, layer.outputs)),
            y,
            m: rows,
            n: layer.outputs,
            k: layer.inputs,
            act: layer.act,
        });
        input = y;
    }
    plan.add_phase("unfused", reference);
    plan.add_phase(
        "fused",
        vec![Op::MlpForward {
            x,
            params,
            layers,
            outputs: fused.clone(),
            rows,
        }],
    );
    (plan, fused, unfused)
}

fn describe(case: &Case) -> String {
    let acts: Vec<&str> = case.acts.iter().map(|a| a.name()).collect();
    format!("rows {} widths {:?} acts {acts:?}", case.rows, case.widths)
}

#[test]
fn cpu_fused_forward_is_bitwise_the_per_layer_reference() {
    let mut r = rng(41);
    for case in cases() {
        let (plan, fused, unfused) = build(&case, &mut r);
        let mut cpu = CpuPlan::new(plan).expect("valid plan");
        cpu.run(&["unfused", "fused"]).expect("cpu run");
        for (l, (f, u)) in fused.iter().zip(&unfused).enumerate() {
            let (f, u) = (cpu.f32s(*f), cpu.f32s(*u));
            assert!(
                f.iter().zip(u).all(|(a, b)| a.to_bits() == b.to_bits()),
                "layer {l} differs: {}",
                describe(&case)
            );
        }
    }
}

#[test]
fn gpu_fused_forward_matches_the_per_layer_reference() {
    let mut r = rng(42);
    for case in cases() {
        let (plan, fused, unfused) = build(&case, &mut r);
        let Some(ctx) = gpu() else {
            return;
        };
        let mut cpu = CpuPlan::new(plan.clone()).expect("valid plan");
        cpu.run(&["unfused"]).expect("cpu run");
        let gpu_plan = GpuPlan::new(ctx, plan).expect("gpu plan");
        gpu_plan.run(ctx, &["fused"]).expect("gpu run");
        for (l, (f, u)) in fused.iter().zip(&unfused).enumerate() {
            let got = read_gpu(&gpu_plan, *f);
            let want = cpu.f32s(*u);
            let what = format!("layer {l} of {}", describe(&case));
            if want.iter().all(|v| *v == 0.0) {
                // relu of a width-1 layer can be all zero: nothing to compare relatively.
                assert!(got.iter().all(|v| *v == 0.0), "{what}: {got:?}");
                continue;
            }
            assert_close(norm_rel_err(&got, want), TOL, &what);
        }
    }
}

/// A plan holding one fused op over fresh buffers, `edit` applied to the op first.
fn validate_edited(edit: impl FnOnce(&mut Vec<FusedLayer>, &mut Vec<Slice>)) -> String {
    let case = Case {
        rows: 3,
        widths: vec![4, 5, 2],
        acts: vec![Activation::Relu, Activation::Identity],
    };
    let (mut layers, params) = layers_and_params(&case, &mut rng(43));
    let mut plan = Plan::default();
    let x = input_f32(&mut plan, "x", &[0.0; 12]);
    let params = input_f32(&mut plan, "params", &params);
    let mut outputs = vec![
        output_f32(&mut plan, "a0", 15),
        output_f32(&mut plan, "a1", 6),
    ];
    edit(&mut layers, &mut outputs);
    plan.add_phase(
        "p",
        vec![Op::MlpForward {
            x,
            params,
            layers,
            outputs,
            rows: 3,
        }],
    );
    match plan.validate() {
        Ok(()) => "valid".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fused_forward_shapes_are_validated() {
    assert_eq!(validate_edited(|_, _| {}), "valid");
    let e = validate_edited(|layers, _| layers[1].inputs = 4);
    assert!(
        e.contains("layer 1 takes 4 inputs but layer 0 gives 5"),
        "{e}"
    );
    let e = validate_edited(|layers, _| layers[1].bias = 1 << 20);
    assert!(e.contains("layer 1's parameters lie outside params"), "{e}");
    let e = validate_edited(|_, outputs| outputs[1] = outputs[1].sub(0, 5));
    assert!(e.contains("output 1 has 5 elements, expected 6"), "{e}");
    let e = validate_edited(|_, outputs| {
        outputs.pop();
    });
    assert!(e.contains("1 outputs for 2 layers"), "{e}");
    let e = validate_edited(|layers, outputs| {
        layers.clear();
        outputs.clear();
    });
    assert!(e.contains("0 layers"), "{e}");
    let e = validate_edited(|layers, outputs| {
        let wide = MLP_FUSED_MAX_HIDDEN + 1;
        layers[0].outputs = wide;
        layers[1].inputs = wide;
        layers[1].weight = 0;
        layers[1].bias = 0;
        layers[0].weight = 0;
        layers[0].bias = 0;
        outputs[0] = Slice {
            len: 3 * wide,
            ..outputs[0]
        };
    });
    assert!(e.contains("hidden layer 0 is 257 wide"), "{e}");
}

/// The ops `nn::forward` emits for `mlp` over `rows` rows.
fn forward_ops_over(mlp: &Mlp, rows: usize) -> Vec<Op> {
    let mut plan = Plan::default();
    let init = vec![0.0; mlp.layout().total];
    let net = NetworkBuffers::declare(&mut plan, "net", mlp, init);
    let ws = Workspace::declare(&mut plan, "net", mlp, rows);
    let x = plan.f32_buffer("x", rows * mlp.input_size());
    forward(&net, &ws, x, rows, None)
}

/// The ops `nn::forward` emits for `mlp` over a batch large enough to fuse.
fn forward_ops(mlp: &Mlp) -> Vec<Op> {
    forward_ops_over(mlp, MLP_FUSED_MIN_ROWS)
}

#[test]
fn forward_fuses_networks_that_fit_and_only_those() {
    let (relu, tanh) = (Activation::Relu, Activation::Tanh);
    let seed_g = Mlp::new(100, &[128, 128], 784, relu, tanh);
    let ops = forward_ops(&seed_g);
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].kernel_name(), "mlp_forward");
    // A small batch stays per layer: too few row blocks to fill a card.
    let small = forward_ops_over(&seed_g, MLP_FUSED_MIN_ROWS - 1);
    assert_eq!(small.len(), 3);

    let wide = Mlp::new(100, &[MLP_FUSED_MAX_HIDDEN + 1], 784, relu, tanh);
    let names: Vec<_> = forward_ops(&wide).iter().map(Op::kernel_name).collect();
    assert_eq!(names, ["matmul_bias_act"; 2]);

    let deep = Mlp::new(2, &[16; MLP_FUSED_MAX_LAYERS], 2, relu, tanh);
    assert_eq!(forward_ops(&deep).len(), MLP_FUSED_MAX_LAYERS + 1);
}
