//! BatchNorm (`Op::BatchNorm`, `Op::BatchNormEval`, `Op::BatchNormBackward`):
//! batchnorm.wgsl against the CPU reference over 1-d and 2-d shapes with
//! poisoned outputs; the reference backward against central differences of
//! an f64 forward written here; PyTorch's running-statistics update by hand;
//! and the refused shapes.

mod common;

use common::*;
use shadergan::cpu::norm;
use shadergan::plan::{Activation, Elem, Init, NormShape, Op, Plan, RunningStats, Slice};

const TOL: f64 = 1e-4;

/// BatchNorm1d over [batch, features] (inner 1) and BatchNorm2d over
/// [batch, C, H, W]: 3 values per channel (with 2 the output is ±1 and dx 0),
/// odd sizes, more channels than a workgroup's threads, more values per
/// channel than its threads; BatchNorm1d's groups of 32 features per
/// workgroup with a part-filled last group and more rows than the group's
/// threads per feature (8), and sums whose four-load steps leave a tail.
fn shapes() -> Vec<NormShape> {
    let s = |outer, channels, inner| NormShape {
        outer,
        channels,
        inner,
    };
    vec![
        s(3, 1, 1),
        s(7, 3, 1),
        s(33, 300, 1),
        s(1, 3, 4),
        s(3, 5, 49),
        s(2, 65, 9),
        s(5, 2, 196),
        s(300, 37, 1),
        s(1030, 5, 3),
    ]
}

fn values_in(plan: &mut Plan, name: &str, v: Vec<f32>) -> Slice {
    input_f32(plan, name, &v)
}

/// Training mode with running statistics, evaluation mode, and the
/// backward pass with and without an activation's derivative, on both
/// backends.
#[test]
fn batch_norm_matches_the_cpu_reference() {
    let leaky = Activation::LeakyRelu(0.2);
    for (i, shape) in shapes().into_iter().enumerate() {
        let mut r = rng(400 + i as u64);
        let (n, c) = (shape.len(), shape.channels);
        let mut plan = Plan::default();
        // Inputs off zero mean, so the statistics matter.
        let x = values_in(&mut plan, "x", uniform(&mut r, n, -1.0, 3.0));
        let gamma = values_in(&mut plan, "gamma", uniform(&mut r, c, 0.5, 1.5));
        let beta = values_in(&mut plan, "beta", uniform(&mut r, c, -0.5, 0.5));
        let dy = values_in(&mut plan, "dy", uniform(&mut r, n, -1.0, 1.0));
        let y = output_f32(&mut plan, "y", n);
        let y_eval = output_f32(&mut plan, "y_eval", n);
        let saved = output_f32(&mut plan, "saved", 2 * c);
        let running = RunningStats {
            mean: values_in(&mut plan, "rmean", uniform(&mut r, c, -0.2, 0.2)),
            var: values_in(&mut plan, "rvar", uniform(&mut r, c, 0.5, 1.5)),
            batches: input_u32(&mut plan, "batches", &[5]),
            momentum: 0.1,
        };
        let dx = output_f32(&mut plan, "dx", n);
        let dx_act = output_f32(&mut plan, "dx_act", n);
        let grads = output_f32(&mut plan, "grads", 4 * c + 1);
        let (dgamma, dbeta) = (grads.sub(0, c), grads.sub(c + 1, c));
        let (dgamma2, dbeta2) = (grads.sub(2 * c + 1, c), grads.sub(3 * c + 1, c));
        let backward = |dx, dgamma, dbeta, act_grad| Op::BatchNormBackward {
            dy,
            x,
            gamma,
            saved,
            dx,
            dgamma,
            dbeta,
            shape,
            act_grad,
        };
        plan.add_phase(
            "ops",
            vec![
                Op::BatchNorm {
                    x,
                    gamma,
                    beta,
                    y,
                    saved,
                    running: Some(running),
                    shape,
                    eps: 1e-5,
                    act: leaky,
                },
                Op::BatchNormEval {
                    x,
                    gamma,
                    beta,
                    mean: running.mean,
                    var: running.var,
                    y: y_eval,
                    shape,
                    eps: 1e-3,
                    act: Activation::Tanh,
                },
                backward(dx, dgamma, dbeta, None),
                backward(dx_act, dgamma2, dbeta2, Some((y, leaky))),
            ],
        );
        let Some((cpu, gpu)) = run_both(plan, &["ops"]) else {
            return;
        };
        let outs = [
            ("y", y),
            ("saved", saved),
            ("running mean", running.mean),
            ("running var", running.var),
            ("eval y", y_eval),
            ("dx", dx),
            ("dx through act", dx_act),
            ("dgamma", dgamma),
            ("dbeta", dbeta),
            ("dgamma through act", dgamma2),
            ("dbeta through act", dbeta2),
        ];
        for (name, s) in outs {
            let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
            assert_close(err, TOL, &format!("{name} at {shape:?}"));
        }
        assert_eq!(cpu.u32s(running.batches), [6], "CPU batches");
        assert_eq!(read_gpu_u32(&gpu, running.batches), [6], "GPU batches");
    }
}

/// The f64 forward `L = Σ r·act(gamma·x̂ + beta)` of one channel layout.
fn loss_f64(x: &[f64], gamma: &[f64], beta: &[f64], r: &[f64], s: &NormShape, slope: f64) -> f64 {
    let n = s.per_channel() as f64;
    let mut loss = 0.0;
    for c in 0..s.channels {
        let vals: Vec<f64> = (0..s.per_channel()).map(|k| x[s.at(c, k)]).collect();
        let mean = vals.iter().sum::<f64>() / n;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        for k in 0..s.per_channel() {
            let z = gamma[c] * (x[s.at(c, k)] - mean) / (var + 1e-5).sqrt() + beta[c];
            loss += r[s.at(c, k)] * if z > 0.0 { z } else { slope * z };
        }
    }
    loss
}

/// The reference backward (through a leaky ReLU) against central
/// differences of the f64 forward, for x, gamma and beta.
#[test]
fn the_batch_norm_backward_matches_finite_differences() {
    let slope = 0.2;
    for (i, shape) in [
        NormShape {
            outer: 5,
            channels: 3,
            inner: 1,
        },
        NormShape {
            outer: 2,
            channels: 2,
            inner: 6,
        },
    ]
    .into_iter()
    .enumerate()
    {
        let mut rg = rng(500 + i as u64);
        let n = shape.len();
        let x = uniform(&mut rg, n, -1.0, 3.0);
        let gamma = uniform(&mut rg, shape.channels, 0.5, 1.5);
        let beta = uniform(&mut rg, shape.channels, -0.5, 0.5);
        let r = uniform(&mut rg, n, -1.0, 1.0);
        let act = Activation::LeakyRelu(slope as f32);
        let (mut y, mut saved) = (vec![0.0; n], vec![0.0; 2 * shape.channels]);
        norm::batchnorm(&x, &gamma, &beta, &mut y, &mut saved, &shape, 1e-5, act);
        let (mut dx, mut dg, mut db) = (
            vec![0.0; n],
            vec![0.0; shape.channels],
            vec![0.0; shape.channels],
        );
        norm::batchnorm_backward(
            &r,
            &x,
            &gamma,
            &saved,
            &mut dx,
            &mut dg,
            &mut db,
            &shape,
            Some((&y, act)),
        );

        let f64s = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
        let (x64, g64, b64, r64) = (f64s(&x), f64s(&gamma), f64s(&beta), f64s(&r));
        let h = 1e-6;
        let diff = |which: usize, at: usize| {
            let mut args = [x64.clone(), g64.clone(), b64.clone()];
            args[which][at] += h;
            let up = loss_f64(&args[0], &args[1], &args[2], &r64, &shape, slope);
            args[which][at] -= 2.0 * h;
            let down = loss_f64(&args[0], &args[1], &args[2], &r64, &shape, slope);
            (up - down) / (2.0 * h)
        };
        for (which, name, got) in [(0, "x", &dx), (1, "gamma", &dg), (2, "beta", &db)] {
            let want: Vec<f64> = (0..got.len()).map(|e| diff(which, e)).collect();
            let num: f64 = got
                .iter()
                .zip(&want)
                .map(|(&g, w)| (f64::from(g) - w).powi(2))
                .sum();
            let den: f64 = want.iter().map(|w| w * w).sum();
            let err = (num / den.max(1e-30)).sqrt();
            assert!(err < 1e-3, "d{name} at {shape:?}: relative error {err:e}");
        }
    }
}

/// PyTorch's update by hand: one channel of [1, 3] (mean 2, biased var 1,
/// unbiased 2), running (0, 1), momentum 0.1 → (0.2, 1.1).
#[test]
fn running_statistics_follow_pytorch() {
    let shape = NormShape {
        outer: 2,
        channels: 1,
        inner: 1,
    };
    let (mut y, mut saved) = ([0.0; 2], [0.0; 2]);
    let vars = norm::batchnorm(
        &[1.0, 3.0],
        &[1.0],
        &[0.0],
        &mut y,
        &mut saved,
        &shape,
        0.0,
        Activation::Identity,
    );
    assert_eq!(saved, [2.0, 1.0]);
    assert_eq!(y, [-1.0, 1.0]);
    let (mut mean, mut var) = ([0.0], [1.0]);
    norm::update_running(&mut mean, &mut var, &saved, &vars, 2, 0.1);
    assert!(
        (mean[0] - 0.2).abs() < 1e-7 && (var[0] - 1.1).abs() < 1e-6,
        "{mean:?} {var:?}"
    );
}

/// One value per channel in training mode, an empty tensor, and gradients
/// of gamma and beta in two buffers are refused.
#[test]
fn bad_batch_norms_are_refused() {
    let validate = |shape: NormShape, split: bool| {
        let mut plan = Plan::default();
        let (n, c) = (shape.len().max(1), shape.channels);
        let x = plan.f32_buffer("x", n);
        let gamma = plan.f32_buffer("gamma", c);
        let y = plan.f32_buffer("y", n);
        let saved = plan.f32_buffer("saved", 2 * c);
        let dx = plan.f32_buffer("dx", n);
        let grads = plan.buffer("grads", Elem::F32, 2 * c, Init::Zeros);
        let other = plan.f32_buffer("other", c);
        let dbeta = if split { other } else { grads.sub(c, c) };
        let forward = Op::BatchNorm {
            x,
            gamma,
            beta: gamma,
            y,
            saved,
            running: None,
            shape,
            eps: 1e-5,
            act: Activation::Identity,
        };
        let backward = Op::BatchNormBackward {
            dy: y,
            x,
            gamma,
            saved,
            dx,
            dgamma: grads.sub(0, c),
            dbeta,
            shape,
            act_grad: None,
        };
        plan.add_phase("op", vec![forward, backward]);
        plan.validate().map_err(|e| e.to_string())
    };
    let one = NormShape {
        outer: 1,
        channels: 4,
        inner: 1,
    };
    let err = validate(one, false).expect_err("one value per channel");
    assert!(err.contains("more than one value per channel"), "{err}");
    let empty = NormShape {
        outer: 0,
        channels: 4,
        inner: 1,
    };
    let err = validate(empty, false).expect_err("an empty tensor");
    assert!(err.contains("empty tensor"), "{err}");
    let fine = NormShape {
        outer: 3,
        channels: 4,
        inner: 1,
    };
    validate(fine, false).expect("a valid batch norm");
    let err = validate(fine, true).expect_err("split gradients");
    assert!(err.contains("one buffer"), "{err}");
}
