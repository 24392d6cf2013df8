//! Finite differences: the backward pass of a 3-layer MLP with a BCE loss,
//! checked against central differences of an f64 forward pass on the CPU,
//! for every parameter and every input; then the GPU's gradients against the
//! CPU's.

mod common;

use common::*;
use shadergan::cpu::CpuPlan;
use shadergan::gpu::GpuPlan;
use shadergan::nn::mlp::{Dropout, backward_with_dropout, forward_with_dropout};
use shadergan::nn::{BackwardTargets, Mlp, NetworkBuffers, Workspace};
use shadergan::plan::{Activation, Elem, Init, Op, Plan, Slice};

const ROWS: usize = 5;

struct Case {
    mlp: Mlp,
    params: Vec<f32>,
    x: Vec<f32>,
    targets: Vec<f32>,
}

fn case() -> Case {
    let mlp = Mlp {
        layers: vec![
            shadergan::nn::Dense {
                inputs: 7,
                outputs: 33,
                act: Activation::Tanh,
            },
            shadergan::nn::Dense {
                inputs: 33,
                outputs: 17,
                act: Activation::LeakyRelu(0.2),
            },
            shadergan::nn::Dense {
                inputs: 17,
                outputs: 1,
                act: Activation::Identity,
            },
        ],
    };
    let mut r = rng(11);
    let params = mlp.init_params(&mut r);
    let x = uniform(&mut r, ROWS * 7, -1.0, 1.0);
    let targets = vec![1.0, 0.0, 0.9, 1.0, 0.0];
    Case {
        mlp,
        params,
        x,
        targets,
    }
}

/// The loss `(1/ROWS)·Σ BCE(mlp(x)_i, t_i)` in f64.
fn loss_f64(c: &Case, params: &[f64], x: &[f64]) -> f64 {
    loss_f64_dropped(c, params, x, &[])
}

/// The loss with each hidden layer's output multiplied by `masks[l]` (dropout).
fn loss_f64_dropped(c: &Case, params: &[f64], x: &[f64], masks: &[Vec<f64>]) -> f64 {
    let layout = c.mlp.layout();
    let mut a: Vec<f64> = x.to_vec();
    for (l, layer) in c.mlp.layers.iter().enumerate() {
        let w = &params[layout.weights[l].offset..];
        let b = &params[layout.biases[l].offset..];
        let mut out = vec![0.0; ROWS * layer.outputs];
        for r in 0..ROWS {
            for o in 0..layer.outputs {
                let mut s = b[o];
                for i in 0..layer.inputs {
                    s += a[r * layer.inputs + i] * w[o * layer.inputs + i];
                }
                out[r * layer.outputs + o] = match layer.act {
                    Activation::Tanh => s.tanh(),
                    Activation::LeakyRelu(k) => {
                        if s > 0.0 {
                            s
                        } else {
                            f64::from(k) * s
                        }
                    }
                    Activation::Identity => s,
                    other => panic!("not used here: {other:?}"),
                };
            }
        }
        if let Some(mask) = masks.get(l) {
            for (v, m) in out.iter_mut().zip(mask) {
                *v *= m;
            }
        }
        a = out;
    }
    a.iter()
        .zip(&c.targets)
        .map(|(&z, &t)| {
            let t = f64::from(t);
            z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()
        })
        .sum::<f64>()
        / ROWS as f64
}

struct Grads {
    params: Slice,
    input: Slice,
}

/// Dropout of the dropout test: keep 0.7, masks from stream 100 + l at step 3.
const KEEP: f32 = 0.7;

/// Forward, loss and backward (weights and input) as one plan phase.
fn gradient_plan(c: &Case) -> (Plan, Grads) {
    gradient_plan_with(c, false)
}

fn gradient_plan_with(c: &Case, with_dropout: bool) -> (Plan, Grads) {
    let mut plan = Plan::default();
    let net = NetworkBuffers::declare(&mut plan, "net", &c.mlp, c.params.clone());
    let ws = if with_dropout {
        Workspace::with_dropout(&mut plan, "net", &c.mlp, ROWS)
    } else {
        Workspace::declare(&mut plan, "net", &c.mlp, ROWS)
    };
    let counter = plan.buffer("counter", Elem::U32, 1, Init::U32(vec![3]));
    let dropout = with_dropout.then_some(Dropout {
        keep: KEEP,
        seed: 5,
        stream: 100,
        counter,
    });
    let x = plan.buffer("x", Elem::F32, c.x.len(), Init::F32(c.x.clone()));
    let t = plan.buffer("t", Elem::F32, ROWS, Init::F32(c.targets.clone()));
    let loss = plan.f32_buffer("loss", ROWS);
    let dlogits = plan.f32_buffer("dlogits", ROWS);
    let dx = plan.f32_buffer("dx", c.x.len());
    let logits = ws.output(&c.mlp, 2, ROWS);
    let mut ops = forward_with_dropout(&net, &ws, x, ROWS, None, dropout.as_ref());
    ops.push(Op::BceWithLogits {
        logits,
        targets: t,
        loss,
        grad: dlogits,
        grad_scale: 1.0 / ROWS as f32,
    });
    ops.extend(backward_with_dropout(
        &net,
        &ws,
        x,
        logits,
        dlogits,
        ROWS,
        BackwardTargets {
            weight_grads: true,
            input_grad: Some(dx),
            input_act: None,
        },
        dropout.as_ref(),
    ));
    plan.add_phase("grad", ops);
    (
        plan,
        Grads {
            params: net.grads,
            input: dx,
        },
    )
}

/// Central differences of `loss_f64` with respect to every entry of `v`.
fn finite_differences(v: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let h = 1e-6;
    let mut v = v.to_vec();
    (0..v.len())
        .map(|i| {
            let keep = v[i];
            v[i] = keep + h;
            let up = f(&v);
            v[i] = keep - h;
            let down = f(&v);
            v[i] = keep;
            (up - down) / (2.0 * h)
        })
        .collect()
}

fn norm_rel_err_f64(got: &[f32], want: &[f64]) -> f64 {
    let mut diff = 0.0;
    let mut norm = 0.0;
    for (g, w) in got.iter().zip(want) {
        diff += (f64::from(*g) - w).powi(2);
        norm += w * w;
    }
    assert!(norm > 0.0);
    (diff / norm).sqrt()
}

#[test]
fn cpu_backward_matches_finite_differences() {
    let c = case();
    let (plan, grads) = gradient_plan(&c);
    let mut cpu = CpuPlan::new(plan).unwrap();
    cpu.run(&["grad"]).unwrap();

    let p64: Vec<f64> = c.params.iter().map(|&v| f64::from(v)).collect();
    let x64: Vec<f64> = c.x.iter().map(|&v| f64::from(v)).collect();
    let fd_params = finite_differences(&p64, |p| loss_f64(&c, p, &x64));
    let fd_input = finite_differences(&x64, |x| loss_f64(&c, &p64, x));

    let layout = c.mlp.layout();
    let analytic = cpu.f32s(grads.params);
    for (l, (w, b)) in layout.weights.iter().zip(&layout.biases).enumerate() {
        for (name, r) in [("weight", w), ("bias", b)] {
            let got = &analytic[r.offset..r.offset + r.len];
            let want = &fd_params[r.offset..r.offset + r.len];
            let err = norm_rel_err_f64(got, want);
            assert_close(
                err,
                1e-4,
                &format!("layer {l} {name} gradient vs finite differences"),
            );
        }
    }
    let err = norm_rel_err_f64(cpu.f32s(grads.input), &fd_input);
    assert_close(err, 1e-4, "input gradient vs finite differences");
    // Padding between tensors never receives a gradient.
    let mut covered = vec![false; layout.total];
    for r in layout.weights.iter().chain(&layout.biases) {
        covered[r.offset..r.offset + r.len].fill(true);
    }
    for (i, g) in analytic.iter().enumerate() {
        if !covered[i] {
            assert_eq!(*g, 0.0, "padding word {i} was written");
        }
    }
}

#[test]
fn gpu_backward_matches_cpu_backward() {
    let c = case();
    let (plan, grads) = gradient_plan(&c);
    let mut cpu = CpuPlan::new(plan.clone()).unwrap();
    cpu.run(&["grad"]).unwrap();
    let Some(ctx) = gpu() else {
        return;
    };
    let g = GpuPlan::new(ctx, plan).unwrap();
    g.run(ctx, &["grad"]).unwrap();
    let layout = c.mlp.layout();
    let got = read_gpu(&g, grads.params);
    let want = cpu.f32s(grads.params);
    for (l, (w, b)) in layout.weights.iter().zip(&layout.biases).enumerate() {
        for (name, r) in [("weight", w), ("bias", b)] {
            let range = r.offset..r.offset + r.len;
            let err = norm_rel_err(&got[range.clone()], &want[range]);
            assert_close(err, 1e-4, &format!("layer {l} {name} gradient, GPU vs CPU"));
        }
    }
    let err = norm_rel_err(&read_gpu(&g, grads.input), cpu.f32s(grads.input));
    assert_close(err, 1e-4, "input gradient, GPU vs CPU");
}

#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    let (rows, classes) = (5, 7);
    let mut r = rng(12);
    let logits = uniform(&mut r, rows * classes, -3.0, 3.0);
    let labels: Vec<f32> = (0..rows).map(|i| ((i * 3) % classes) as f32).collect();
    let mut plan = Plan::default();
    let z = plan.buffer("z", Elem::F32, logits.len(), Init::F32(logits.clone()));
    let y = plan.buffer("y", Elem::F32, rows, Init::F32(labels.clone()));
    let loss = plan.f32_buffer("loss", rows);
    let grad = plan.f32_buffer("grad", rows * classes);
    plan.add_phase(
        "ce",
        vec![Op::SoftmaxCrossEntropy {
            logits: z,
            labels: y,
            loss,
            grad,
            classes,
            grad_scale: 1.0 / rows as f32,
        }],
    );
    let mut cpu = CpuPlan::new(plan).unwrap();
    cpu.run(&["ce"]).unwrap();
    // Mean cross-entropy in f64.
    let mean_ce = |z: &[f64]| {
        (0..rows)
            .map(|i| {
                let row = &z[i * classes..(i + 1) * classes];
                let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                lse - row[labels[i] as usize]
            })
            .sum::<f64>()
            / rows as f64
    };
    let z64: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
    let fd = finite_differences(&z64, mean_ce);
    let err = norm_rel_err_f64(cpu.f32s(grad), &fd);
    assert_close(
        err,
        1e-4,
        "softmax cross-entropy gradient vs finite differences",
    );
}

/// Dropout on the hidden layers: the backward pass through the masks (the
/// same Philox draws as the forward pass) against finite differences of the
/// f64 loss with those masks fixed.
#[test]
fn cpu_backward_through_dropout_matches_finite_differences() {
    let c = case();
    let (plan, grads) = gradient_plan_with(&c, true);
    let mut cpu = CpuPlan::new(plan.clone()).unwrap();
    cpu.run(&["grad"]).unwrap();
    let masks: Vec<Vec<f64>> = c.mlp.layers[..2]
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let mut u = vec![0.0f32; ROWS * layer.outputs];
            shadergan::cpu::philox::fill_uniform(&mut u, 5, 100 + l as u32, 3);
            u.iter()
                .map(|&u| if u < KEEP { 1.0 / f64::from(KEEP) } else { 0.0 })
                .collect()
        })
        .collect();
    let dropped = masks.iter().flatten().filter(|m| **m == 0.0).count();
    assert!(
        dropped > 0,
        "no unit was dropped: the test would not test dropout"
    );
    let p64: Vec<f64> = c.params.iter().map(|&v| f64::from(v)).collect();
    let x64: Vec<f64> = c.x.iter().map(|&v| f64::from(v)).collect();
    let fd_params = finite_differences(&p64, |p| loss_f64_dropped(&c, p, &x64, &masks));
    let fd_input = finite_differences(&x64, |x| loss_f64_dropped(&c, &p64, x, &masks));
    let layout = c.mlp.layout();
    let analytic = cpu.f32s(grads.params);
    for (l, (w, b)) in layout.weights.iter().zip(&layout.biases).enumerate() {
        for (name, r) in [("weight", w), ("bias", b)] {
            let err = norm_rel_err_f64(
                &analytic[r.offset..r.offset + r.len],
                &fd_params[r.offset..r.offset + r.len],
            );
            assert_close(err, 1e-4, &format!("dropout: layer {l} {name} gradient"));
        }
    }
    let err = norm_rel_err_f64(cpu.f32s(grads.input), &fd_input);
    assert_close(err, 1e-4, "dropout: input gradient");
    // The GPU takes the same masks and gives the same gradients.
    let Some(ctx) = gpu() else {
        return;
    };
    let g = GpuPlan::new(ctx, plan).unwrap();
    g.run(ctx, &["grad"]).unwrap();
    let err = norm_rel_err(&read_gpu(&g, grads.params), cpu.f32s(grads.params));
    assert_close(err, 1e-5, "dropout: GPU parameter gradients vs CPU");
}
