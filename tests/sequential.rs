//! `nn::sequential`: a layer list's forward and backward ops. Gradients of
//! small conv nets with BatchNorm (a discriminator-like one: Conv2d,
//! LeakyReLU, Dropout-free BatchNorm2d, Flatten, Linear; a generator-like
//! one: Linear, BatchNorm1d, Reshape, ConvTranspose2d, Tanh) against central
//! differences of an f64 forward written here, for every parameter and
//! every input; the GPU against the CPU on the same plans; and an all-Linear
//! list against the MLP path.

mod common;

use common::*;
use shadergan::cpu::CpuPlan;
use shadergan::nn::layers::Layer;
use shadergan::nn::sequential::{
    InputGrad, Mode, SeqBuffers, SeqWorkspace, Sequential, UnitKind, backward, forward,
};
use shadergan::plan::{Activation, ConvGeom, Plan, Slice};

const ROWS: usize = 3;

fn discriminator_like() -> (Vec<usize>, Vec<Layer>) {
    let layers = vec![
        Layer::Conv2d {
            out_channels: 3,
            kernel: 3,
            stride: 2,
            padding: 1,
            bias: true,
        },
        Layer::LeakyReLU { slope: 0.2 },
        Layer::BatchNorm2d,
        Layer::Tanh,
        Layer::Flatten,
        Layer::Linear { out: 2, bias: true },
    ];
    (vec![2, 5, 5], layers)
}

/// A view between a product and the activation fused into the one below:
/// the gradient crosses the Flatten with LeakyReLU′ applied once.
fn view_after_activation() -> (Vec<usize>, Vec<Layer>) {
    let layers = vec![
        Layer::Conv2d {
            out_channels: 2,
            kernel: 3,
            stride: 1,
            padding: 0,
            bias: true,
        },
        Layer::LeakyReLU { slope: 0.2 },
        Layer::Flatten,
        Layer::Linear { out: 1, bias: true },
    ];
    (vec![1, 4, 5], layers)
}

fn generator_like() -> (Vec<usize>, Vec<Layer>) {
    let layers = vec![
        Layer::Linear {
            out: 2 * 3 * 3,
            bias: false,
        },
        Layer::BatchNorm1d,
        Layer::LeakyReLU { slope: 0.3 },
        Layer::Reshape {
            shape: vec![2, 3, 3],
        },
        Layer::ConvTranspose2d {
            out_channels: 2,
            kernel: 3,
            stride: 2,
            padding: 1,
            output_padding: 1,
            bias: false,
        },
        Layer::Tanh,
    ];
    (vec![4], layers)
}

fn act_f64(v: f64, act: Activation) -> f64 {
    match act {
        Activation::Identity => v,
        Activation::Relu => v.max(0.0),
        Activation::LeakyRelu(s) => {
            if v > 0.0 {
                v
            } else {
                f64::from(s) * v
            }
        }
        Activation::Tanh => v.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
    }
}

/// `conv(x, w)` in f64 (per sample), or its transpose.
fn conv_f64(x: &[f64], w: &[f64], g: &ConvGeom, transposed: bool) -> Vec<f64> {
    let (kh, kw) = g.kernel;
    let mut out = vec![0.0; if transposed { g.x_len() } else { g.y_len() }];
    for o in 0..g.out_ch {
        for c in 0..g.in_ch {
            for p in 0..g.out_h {
                for q in 0..g.out_w {
                    for i in 0..kh {
                        for j in 0..kw {
                            let h = (p * g.stride.0 + i) as isize - g.pad.0 as isize;
                            let v = (q * g.stride.1 + j) as isize - g.pad.1 as isize;
                            if h < 0 || v < 0 || h as usize >= g.in_h || v as usize >= g.in_w {
                                continue;
                            }
                            let xi = (c * g.in_h + h as usize) * g.in_w + v as usize;
                            let yi = (o * g.out_h + p) * g.out_w + q;
                            let wv = w[((o * g.in_ch + c) * kh + i) * kw + j];
                            if transposed {
                                out[xi] += x[yi] * wv;
                            } else {
                                out[yi] += x[xi] * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// The network's output for all rows, in f64, training-mode BatchNorm.
fn forward_f64(net: &Sequential, params: &[f64], x: &[f64]) -> Vec<f64> {
    let mut a = x.to_vec();
    for u in &net.units {
        let w = u.weight.map(|(o, n)| &params[o..o + n]);
        let b = u.bias.map(|(o, n)| &params[o..o + n]);
        let mut out = vec![0.0; ROWS * u.out_len];
        match u.kind {
            UnitKind::Linear { inputs, outputs } => {
                for r in 0..ROWS {
                    for o in 0..outputs {
                        let mut s = b.map_or(0.0, |b| b[o]);
                        for i in 0..inputs {
                            s += a[r * inputs + i] * w.unwrap()[o * inputs + i];
                        }
                        out[r * outputs + o] = act_f64(s, u.act);
                    }
                }
            }
            UnitKind::Conv(g) | UnitKind::ConvT(g) => {
                let transposed = matches!(u.kind, UnitKind::ConvT(_));
                let plane = u.out_len / if transposed { g.in_ch } else { g.out_ch };
                for r in 0..ROWS {
                    let y = conv_f64(
                        &a[r * u.in_len..(r + 1) * u.in_len],
                        w.unwrap(),
                        &g,
                        transposed,
                    );
                    for (e, v) in y.iter().enumerate() {
                        let bias = b.map_or(0.0, |b| b[e / plane]);
                        out[r * u.out_len + e] = act_f64(v + bias, u.act);
                    }
                }
            }
            UnitKind::BatchNorm { channels, inner } => {
                let n = (ROWS * inner) as f64;
                for c in 0..channels {
                    let idx: Vec<usize> = (0..ROWS)
                        .flat_map(|r| (0..inner).map(move |i| (r * channels + c) * inner + i))
                        .collect();
                    let mean = idx.iter().map(|&e| a[e]).sum::<f64>() / n;
                    let var = idx.iter().map(|&e| (a[e] - mean).powi(2)).sum::<f64>() / n;
                    for &e in &idx {
                        let z = w.unwrap()[c] * (a[e] - mean) / (var + 1e-5).sqrt() + b.unwrap()[c];
                        out[e] = act_f64(z, u.act);
                    }
                }
            }
            UnitKind::Act => out = a.iter().map(|&v| act_f64(v, u.act)).collect(),
            UnitKind::View | UnitKind::Dropout { .. } => out = a.clone(),
        }
        a = out;
    }
    a
}

struct Built {
    net: Sequential,
    plan: Plan,
    bufs: SeqBuffers,
    x: Slice,
    dx: Slice,
    out: Slice,
    params: Vec<f32>,
    xs: Vec<f32>,
    r: Vec<f32>,
}

/// Forward and backward of `L = Σ r·net(x)` in one phase "step".
fn build((shape, layers): (Vec<usize>, Vec<Layer>), seed: u64) -> Built {
    let net = Sequential::new(&shape, &layers).expect("a valid network");
    let mut rg = rng(seed);
    let params = net.init_params(&mut rg);
    let xs = uniform(&mut rg, ROWS * net.input_len(), -1.0, 1.0);
    let r = uniform(&mut rg, ROWS * net.output_len(), -1.0, 1.0);
    let mut plan = Plan::default();
    let bufs = SeqBuffers::declare(&mut plan, "net", &net, params.clone());
    let x = input_f32(&mut plan, "x", &xs);
    let out_grad = input_f32(&mut plan, "r", &r);
    let dx = output_f32(&mut plan, "dx", xs.len());
    let ws = SeqWorkspace::declare(&mut plan, "ws", &net, ROWS, x, None);
    let train = Mode::Train {
        running_momentum: Some(0.1),
        dropout: None,
    };
    let mut ops = forward(&net, &bufs, &ws, x, ROWS, train);
    let input_grad = Some(InputGrad { dx, act_grad: None });
    ops.extend(backward(
        &net, &bufs, &ws, x, ROWS, out_grad, false, true, input_grad, None,
    ));
    plan.add_phase("step", ops);
    let out = ws.output(&net, net.units.len() - 1, ROWS);
    Built {
        net,
        plan,
        bufs,
        x,
        dx,
        out,
        params,
        xs,
        r,
    }
}

/// Every parameter's and input's gradient against central differences.
fn check_finite_differences(b: &Built, what: &str) {
    let mut cpu = CpuPlan::new(b.plan.clone()).expect("valid plan");
    cpu.run(&["step"]).expect("cpu run");
    let f64s = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<f64>>();
    let (p64, x64, r64) = (f64s(&b.params), f64s(&b.xs), f64s(&b.r));
    let loss = |p: &[f64], x: &[f64]| -> f64 {
        forward_f64(&b.net, p, x)
            .iter()
            .zip(&r64)
            .map(|(y, r)| y * r)
            .sum()
    };
    let y = forward_f64(&b.net, &p64, &x64);
    let out_err = norm_rel_err(
        cpu.f32s(b.out),
        &y.iter().map(|&v| v as f32).collect::<Vec<_>>(),
    );
    assert_close(out_err, 1e-5, &format!("{what}: forward against f64"));
    let h = 1e-5;
    let grads = cpu.f32s(b.bufs.grads).to_vec();
    let params_used: Vec<usize> = b
        .net
        .units
        .iter()
        .flat_map(|u| [u.weight, u.bias].into_iter().flatten())
        .flat_map(|(o, n)| o..o + n)
        .collect();
    let mut worst = 0.0f64;
    for &i in &params_used {
        let mut p = p64.clone();
        p[i] += h;
        let up = loss(&p, &x64);
        p[i] -= 2.0 * h;
        let fd = (up - loss(&p, &x64)) / (2.0 * h);
        worst = worst.max((f64::from(grads[i]) - fd).abs() / fd.abs().max(1e-2));
    }
    assert!(
        worst < 2e-3,
        "{what}: parameter gradients off by {worst:e} relative"
    );
    let dx = cpu.f32s(b.dx).to_vec();
    let mut worst = 0.0f64;
    for i in 0..x64.len() {
        let mut x = x64.clone();
        x[i] += h;
        let up = loss(&p64, &x);
        x[i] -= 2.0 * h;
        let fd = (up - loss(&p64, &x)) / (2.0 * h);
        worst = worst.max((f64::from(dx[i]) - fd).abs() / fd.abs().max(1e-2));
    }
    assert!(
        worst < 2e-3,
        "{what}: input gradients off by {worst:e} relative"
    );
}

#[test]
fn conv_nets_with_batch_norm_match_finite_differences() {
    check_finite_differences(&build(discriminator_like(), 1), "conv, batch norm, linear");
    check_finite_differences(
        &build(generator_like(), 2),
        "linear, batch norm, transposed conv",
    );
    check_finite_differences(
        &build(view_after_activation(), 4),
        "conv, leaky relu, flatten, linear",
    );
}

#[test]
fn conv_nets_with_batch_norm_agree_on_both_backends() {
    for (i, spec) in [discriminator_like(), generator_like()]
        .into_iter()
        .enumerate()
    {
        let b = build(spec, 10 + i as u64);
        let Some((cpu, gpu)) = run_both(b.plan.clone(), &["step"]) else {
            return;
        };
        let mut outs = vec![("output", b.out), ("dx", b.dx), ("x", b.x)];
        outs.extend(b.bufs.running_mean.iter().map(|&s| ("running mean", s)));
        outs.extend(b.bufs.running_var.iter().map(|&s| ("running var", s)));
        for u in &b.net.units {
            for (o, n) in [u.weight, u.bias].into_iter().flatten() {
                outs.push(("a parameter gradient", b.bufs.grads.sub(o, n)));
            }
        }
        for (name, s) in outs {
            let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
            assert_close(err, 1e-4, &format!("network {i}: {name}"));
        }
    }
}

/// The ops a layer list emits: views cost nothing, activations fuse into
/// the layer before, and the input gradient carries G's output tanh.
#[test]
fn views_are_free_and_activations_fuse() {
    let (shape, layers) = generator_like();
    let net = Sequential::new(&shape, &layers).unwrap();
    let kinds: Vec<_> = net.units.iter().map(|u| (u.kind, u.act)).collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert_eq!(kinds[1].1, Activation::LeakyRelu(0.3));
    assert_eq!(kinds[2].0, UnitKind::View);
    assert_eq!(kinds[3].1, Activation::Tanh);
    let b = build(generator_like(), 3);
    let names: Vec<&str> = b
        .plan
        .phase("step")
        .unwrap()
        .ops
        .iter()
        .map(|o| o.kernel_name())
        .collect();
    assert_eq!(
        names,
        [
            "matmul_bias_act",
            "batchnorm",
            "conv2d_input_grad",
            "activation_backward",
            "conv2d",
            "conv2d_weight_grad",
            "batchnorm_backward",
            "matmul_dx",
            "matmul_dw"
        ]
    );
    let refused = Sequential::new(
        &[2, 3, 3],
        &[Layer::ConvTranspose2d {
            out_channels: 1,
            kernel: 3,
            stride: 1,
            padding: 1,
            output_padding: 0,
            bias: true,
        }],
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("layer 0 (ConvTranspose2d)")
    );
}
