//! Every GPU kernel against its CPU reference, on fresh random inputs and
//! awkward shapes (1, odd sizes, sizes that are not multiples of the tile),
//! at non-zero buffer offsets, with NaN-poisoned outputs.

mod common;

use common::*;
use shadergan::plan::{
    Activation, AdamHyper, Elem, Init, Op, Plan, RandomSource, RowFormat, Slice,
};

const SIZES: [usize; 5] = [1, 7, 33, 127, 300];
const ELEMENTWISE_TOL: f64 = 1e-5;
const MATMUL_TOL: f64 = 1e-4;

const ACTIVATIONS: [Activation; 5] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Tanh,
    Activation::Sigmoid,
];

/// (m, n, k) triples drawn from SIZES: every size appears in every position.
fn matmul_shapes() -> Vec<(usize, usize, usize)> {
    let mut shapes = Vec::new();
    for (i, &m) in SIZES.iter().enumerate() {
        shapes.push((m, SIZES[(i + 1) % 5], SIZES[(i + 3) % 5]));
        shapes.push((m, SIZES[(i + 2) % 5], SIZES[(i + 4) % 5]));
        shapes.push((m, m, m));
    }
    shapes.push((64, 64, 64));
    shapes.push((65, 63, 17));
    shapes
}

#[test]
fn matmul_bias_act_matches_cpu() {
    let mut r = rng(1);
    for (case, (m, n, k)) in matmul_shapes().into_iter().enumerate() {
        let act = ACTIVATIONS[case % ACTIVATIONS.len()];
        let with_bias = case % 4 != 3;
        let mut plan = Plan::default();
        let x = input_f32(&mut plan, "x", &uniform(&mut r, m * k, -1.0, 1.0));
        let w = input_f32(&mut plan, "w", &uniform(&mut r, n * k, -1.0, 1.0));
        let b = with_bias.then(|| input_f32(&mut plan, "b", &uniform(&mut r, n, -1.0, 1.0)));
        let y = output_f32(&mut plan, "y", m * n);
        plan.add_phase(
            "op",
            vec![Op::MatmulBiasAct {
                x,
                w,
                b,
                y,
                m,
                n,
                k,
                act,
            }],
        );
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        let want = cpu.f32s(y).to_vec();
        if want.iter().all(|v| *v == 0.0) {
            // relu of a single all-negative element: nothing to compare relatively.
            assert!(read_gpu(&gpu, y).iter().all(|v| *v == 0.0));
            continue;
        }
        let err = norm_rel_err(&read_gpu(&gpu, y), &want);
        assert_close(
            err,
            MATMUL_TOL,
            &format!(
                "matmul_bias_act m={m} n={n} k={k} {} bias={with_bias}",
                act.name()
            ),
        );
    }
}

#[test]
fn matmul_dx_matches_cpu() {
    let mut r = rng(2);
    for (m, n, k) in matmul_shapes() {
        let mut plan = Plan::default();
        let dy = input_f32(&mut plan, "dy", &uniform(&mut r, m * n, -1.0, 1.0));
        let w = input_f32(&mut plan, "w", &uniform(&mut r, n * k, -1.0, 1.0));
        let dx = output_f32(&mut plan, "dx", m * k);
        plan.add_phase(
            "op",
            vec![Op::MatmulDx {
                dy,
                w,
                dx,
                m,
                n,
                k,
                act_grad: None,
            }],
        );
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        let err = norm_rel_err(&read_gpu(&gpu, dx), cpu.f32s(dx));
        assert_close(err, MATMUL_TOL, &format!("matmul_dx m={m} n={n} k={k}"));
    }
}

#[test]
fn matmul_dw_matches_cpu() {
    let mut r = rng(3);
    for (m, n, k) in matmul_shapes() {
        let mut plan = Plan::default();
        let dy = input_f32(&mut plan, "dy", &uniform(&mut r, m * n, -1.0, 1.0));
        let x = input_f32(&mut plan, "x", &uniform(&mut r, m * k, -1.0, 1.0));
        let dw = output_f32(&mut plan, "dw", n * k);
        plan.add_phase(
            "op",
            vec![Op::MatmulDw {
                dy,
                x,
                dw,
                m,
                n,
                k,
                db: None,
            }],
        );
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        let err = norm_rel_err(&read_gpu(&gpu, dw), cpu.f32s(dw));
        assert_close(err, MATMUL_TOL, &format!("matmul_dw m={m} n={n} k={k}"));
    }
}

/// `y = act(z)` for random z: a valid activation output for the derivative epilogue.
fn activation_outputs(r: &mut rand::rngs::StdRng, len: usize, act: Activation) -> Vec<f32> {
    let z = uniform(r, len, -3.0, 3.0);
    z.iter()
        .map(|&z| shadergan::cpu::kernels::activate(z, act))
        .collect()
}

/// dw and db in one NaN-poisoned buffer (as in a network's gradient buffer),
/// a few words apart.
fn weight_and_bias_grads(plan: &mut Plan, dw_len: usize, db_len: usize) -> (Slice, Slice) {
    let grads = output_f32(plan, "grads", dw_len + 5 + db_len);
    (grads.sub(0, dw_len), grads.sub(dw_len + 5, db_len))
}

/// The derivative epilogue: one dispatch writes `dx ⊙ act'(y)`, what a
/// product then an activation backward give (bitwise so on the CPU).
#[test]
fn matmul_dx_with_activation_gradient_matches_cpu() {
    let mut r = rng(40);
    for (case, (m, n, k)) in matmul_shapes().into_iter().enumerate() {
        let act = ACTIVATIONS[case % ACTIVATIONS.len()];
        let mut plan = Plan::default();
        let dy = input_f32(&mut plan, "dy", &uniform(&mut r, m * n, -1.0, 1.0));
        let w = input_f32(&mut plan, "w", &uniform(&mut r, n * k, -1.0, 1.0));
        let y = input_f32(&mut plan, "y", &activation_outputs(&mut r, m * k, act));
        let dz = output_f32(&mut plan, "dz", m * k);
        let (dx, dz_ref) = (
            output_f32(&mut plan, "dx", m * k),
            output_f32(&mut plan, "dz_ref", m * k),
        );
        plan.add_phase(
            "op",
            vec![Op::MatmulDx {
                dy,
                w,
                dx: dz,
                m,
                n,
                k,
                act_grad: Some((y, act)),
            }],
        );
        plan.add_phase(
            "unfused",
            vec![
                Op::MatmulDx {
                    dy,
                    w,
                    dx,
                    m,
                    n,
                    k,
                    act_grad: None,
                },
                Op::ActivationBackward {
                    y,
                    dy: dx,
                    dx: dz_ref,
                    act,
                },
            ],
        );
        let mut cpu = shadergan::cpu::CpuPlan::new(plan.clone()).expect("valid plan");
        cpu.run(&["op", "unfused"]).expect("cpu run");
        let what = format!("matmul_dx·{}' m={m} n={n} k={k}", act.name());
        assert!(
            cpu.f32s(dz)
                .iter()
                .map(|v| v.to_bits())
                .eq(cpu.f32s(dz_ref).iter().map(|v| v.to_bits())),
            "{what}: the CPU's fused op is not bitwise the unfused pair"
        );
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        let want = cpu.f32s(dz).to_vec();
        if want.iter().all(|v| *v == 0.0) {
            // relu' of a single non-positive output: nothing to compare relatively.
            assert!(read_gpu(&gpu, dz).iter().all(|v| *v == 0.0), "{what}");
            continue;
        }
        assert_close(norm_rel_err(&read_gpu(&gpu, dz), &want), MATMUL_TOL, &what);
    }
}

/// The bias-gradient output: the weight-gradient dispatch also writes
/// `db = Σ_m dy[m, :]`, what a column sum gives (bitwise so on the CPU).
#[test]
fn matmul_dw_with_bias_gradient_matches_cpu() {
    use shadergan::gpu::lowering::matmul_entry;
    let mut r = rng(41);
    let mut entries = std::collections::BTreeSet::new();
    let mut shapes = matmul_shapes();
    // A long batch (K of the product) over a small layer takes the small-output
    // kernel; a wide layer over a short batch the 64-tile one.
    shapes.extend([(300, 33, 7), (1001, 1, 65), (3, 800, 700)]);
    for (m, n, k) in shapes {
        entries.insert(matmul_entry(n, k, m).0);
        let mut plan = Plan::default();
        let dy = input_f32(&mut plan, "dy", &uniform(&mut r, m * n, -1.0, 1.0));
        let x = input_f32(&mut plan, "x", &uniform(&mut r, m * k, -1.0, 1.0));
        let (dw, db) = weight_and_bias_grads(&mut plan, n * k, n);
        let db_ref = output_f32(&mut plan, "db_ref", n);
        plan.add_phase(
            "op",
            vec![Op::MatmulDw {
                dy,
                x,
                dw,
                m,
                n,
                k,
                db: Some(db),
            }],
        );
        plan.add_phase(
            "column_sum",
            vec![Op::ColumnSum {
                x: dy,
                out: db_ref,
                rows: m,
                cols: n,
            }],
        );
        let mut cpu = shadergan::cpu::CpuPlan::new(plan.clone()).expect("valid plan");
        cpu.run(&["op", "column_sum"]).expect("cpu run");
        let what = format!("matmul_dw+db m={m} n={n} k={k}");
        assert_eq!(
            cpu.f32s(db),
            cpu.f32s(db_ref),
            "{what}: CPU db is not the column sum"
        );
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        assert_close(
            norm_rel_err(&read_gpu(&gpu, dw), cpu.f32s(dw)),
            MATMUL_TOL,
            &what,
        );
        assert_close(
            norm_rel_err(&read_gpu(&gpu, db), cpu.f32s(db)),
            MATMUL_TOL,
            &what,
        );
    }
    assert!(entries.contains("matmul_bias_act_small") && entries.contains("matmul_bias_act"));
}

/// db must share dw's buffer (one binding writes both), and may not overlap it.
#[test]
fn matmul_dw_bias_gradient_outside_dw_buffer_or_overlapping_is_rejected() {
    let (m, n, k) = (5, 3, 4);
    let build = |split: bool, overlap: bool| {
        let mut plan = Plan::default();
        let dy = plan.f32_buffer("dy", m * n);
        let x = plan.f32_buffer("x", m * k);
        let grads = plan.f32_buffer("grads", n * k + n);
        let dw = grads.sub(0, n * k);
        let db = if split {
            plan.f32_buffer("db", n)
        } else {
            grads.sub(if overlap { n * k - 1 } else { n * k }, n)
        };
        let op = Op::MatmulDw {
            dy,
            x,
            dw,
            m,
            n,
            k,
            db: Some(db),
        };
        plan.add_phase("op", vec![op]);
        plan.validate()
    };
    assert!(build(false, false).is_ok());
    let err = build(true, false).unwrap_err().to_string();
    assert!(err.contains("db must lie in dw's buffer"), "{err}");
    let err = build(false, true).unwrap_err().to_string();
    assert!(err.contains("two outputs"), "{err}");
}

/// Lengths for elementwise kernels: the awkward sizes plus one spanning many workgroups.
fn lengths() -> Vec<usize> {
    let mut v = SIZES.to_vec();
    v.push(70_001);
    v
}

#[test]
fn activations_forward_and_backward_match_cpu() {
    let mut r = rng(4);
    for act in ACTIVATIONS {
        for len in lengths() {
            let xs = uniform(&mut r, len, -4.0, 4.0);
            let ys: Vec<f32> = xs
                .iter()
                .map(|&x| shadergan::cpu::kernels::activate(x, act))
                .collect();
            let mut plan = Plan::default();
            let x = input_f32(&mut plan, "x", &xs);
            let y_in = input_f32(&mut plan, "y_in", &ys);
            let dy = input_f32(&mut plan, "dy", &uniform(&mut r, len, -1.0, 1.0));
            let y = output_f32(&mut plan, "y", len);
            let dx = output_f32(&mut plan, "dx", len);
            plan.add_phase(
                "op",
                vec![
                    Op::ActivationForward { x, y, act },
                    Op::ActivationBackward {
                        y: y_in,
                        dy,
                        dx,
                        act,
                    },
                ],
            );
            let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
                return;
            };
            let what = format!("{} len={len}", act.name());
            if cpu.f32s(y).iter().any(|v| *v != 0.0) {
                let err = max_rel_err(&read_gpu(&gpu, y), cpu.f32s(y));
                assert_close(err, ELEMENTWISE_TOL, &format!("forward {what}"));
            }
            if cpu.f32s(dx).iter().any(|v| *v != 0.0) {
                let err = max_rel_err(&read_gpu(&gpu, dx), cpu.f32s(dx));
                assert_close(err, ELEMENTWISE_TOL, &format!("backward {what}"));
            }
        }
    }
}

#[test]
fn tanh_and_sigmoid_stay_finite_at_extremes() {
    let xs = vec![-1e4, -100.0, -44.5, -15.0, 15.0, 44.5, 100.0, 1e4];
    for act in [Activation::Tanh, Activation::Sigmoid] {
        let mut plan = Plan::default();
        let x = input_f32(&mut plan, "x", &xs);
        let y = output_f32(&mut plan, "y", xs.len());
        plan.add_phase("op", vec![Op::ActivationForward { x, y, act }]);
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        let got = read_gpu(&gpu, y);
        let want = cpu.f32s(y);
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(g.is_finite(), "{} at x={} gave {g}", act.name(), xs[i]);
            assert!(
                (g - w).abs() <= 1e-6,
                "{} at x={}: {g} vs {w}",
                act.name(),
                xs[i]
            );
        }
    }
}

#[test]
fn column_sum_matches_cpu() {
    let mut r = rng(5);
    for &rows in &SIZES {
        for &cols in &SIZES {
            let mut plan = Plan::default();
            // Positive entries: the sums cannot cancel, so a relative error is meaningful.
            let x = input_f32(&mut plan, "x", &uniform(&mut r, rows * cols, 0.5, 1.5));
            let out = output_f32(&mut plan, "out", cols);
            plan.add_phase("op", vec![Op::ColumnSum { x, out, rows, cols }]);
            let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
                return;
            };
            let err = max_rel_err(&read_gpu(&gpu, out), cpu.f32s(out));
            assert_close(err, ELEMENTWISE_TOL, &format!("column_sum {rows}x{cols}"));
        }
    }
}

#[test]
fn mean_matches_cpu() {
    let mut r = rng(6);
    let mut lens = lengths();
    lens.push(1_000_000);
    for len in lens {
        let mut plan = Plan::default();
        let x = input_f32(&mut plan, "x", &uniform(&mut r, len, 0.5, 1.5));
        let out = output_f32(&mut plan, "out", 1);
        plan.add_phase("op", vec![Op::Mean { x, out, scale: 2.0 }]);
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        let err = max_rel_err(&read_gpu(&gpu, out), cpu.f32s(out));
        assert_close(err, ELEMENTWISE_TOL, &format!("mean len={len}"));
    }
}

#[test]
fn bce_with_logits_matches_cpu_including_large_logits() {
    let mut r = rng(7);
    for len in lengths() {
        let mut logits = uniform(&mut r, len, -8.0, 8.0);
        // Large |z| where the naive formula overflows or cancels.
        let extremes = [-30.0, 80.0, -80.0, 30.0, 17.5, -17.5, 0.0];
        for (i, e) in extremes.iter().enumerate().take(len) {
            logits[i] = *e;
        }
        let targets: Vec<f32> = (0..len)
            .map(|i| match i % 4 {
                0 => 1.0,
                1 => 0.0,
                2 => 0.9,
                _ => r_f32(&mut r),
            })
            .collect();
        let mut plan = Plan::default();
        let z = input_f32(&mut plan, "z", &logits);
        let t = input_f32(&mut plan, "t", &targets);
        let loss = output_f32(&mut plan, "loss", len);
        let grad = output_f32(&mut plan, "grad", len);
        plan.add_phase(
            "op",
            vec![Op::BceWithLogits {
                logits: z,
                targets: t,
                loss,
                grad,
                grad_scale: 0.25,
            }],
        );
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        let got_loss = read_gpu(&gpu, loss);
        assert!(got_loss.iter().all(|v| v.is_finite() && *v >= 0.0));
        assert_close(
            max_rel_err(&got_loss, cpu.f32s(loss)),
            ELEMENTWISE_TOL,
            &format!("bce loss len={len}"),
        );
        // Targets 0 and 1 (real and fake labels): the gradient is a product,
        // compared elementwise. Other targets: σ(z) − t cancels when σ(z) ≈ t,
        // so the error is taken relative to the operands' size, max(σ(z), t).
        let got_grad = read_gpu(&gpu, grad);
        for i in 0..len {
            let (g, w, t) = (got_grad[i], cpu.f32s(grad)[i], targets[i]);
            let scale = if t == 0.0 || t == 1.0 {
                w.abs()
            } else {
                0.25 * shadergan::cpu::kernels::stable_sigmoid(logits[i]).max(t)
            };
            let err = if scale == 0.0 && g == 0.0 {
                0.0
            } else {
                f64::from((g - w).abs()) / f64::from(scale)
            };
            assert_close(
                err,
                ELEMENTWISE_TOL,
                &format!("bce grad z={} t={t}", logits[i]),
            );
        }
    }
}

fn r_f32(r: &mut rand::rngs::StdRng) -> f32 {
    use rand::Rng;
    r.random_range(0.0..1.0)
}

/// Adam against the CPU at every length; the cases with `arrivals` (the
/// launch advances the step counter itself) run the phase three times, so
/// the counter must come back advanced by exactly 3 with the parameters of
/// steps t, t+1, t+2, and the arrivals word back at 0.
#[test]
fn adam_matches_cpu() {
    let mut r = rng(8);
    for len in lengths() {
        for (step_count, weight_decay, decay_steps, advance) in [
            (0u32, 0.0f32, 0u32, false),
            (9, 0.01, 0, false),
            (9, 0.0, 20, false),
            (4, 0.01, 20, true),
        ] {
            // Parameters away from zero, so a relative error compares like with like.
            let params: Vec<f32> = uniform(&mut r, len, 0.5, 1.5)
                .into_iter()
                .enumerate()
                .map(|(i, v)| if i % 2 == 0 { v } else { -v })
                .collect();
            let mut plan = Plan::default();
            let p = plan
                .buffer(
                    "p",
                    Elem::F32,
                    len + LEAD,
                    Init::F32([vec![0.0; LEAD], params].concat()),
                )
                .sub(LEAD, len);
            let g = input_f32(&mut plan, "g", &uniform(&mut r, len, -1.0, 1.0));
            let m = plan
                .buffer(
                    "m",
                    Elem::F32,
                    len + LEAD,
                    Init::F32([vec![0.0; LEAD], uniform(&mut r, len, -0.1, 0.1)].concat()),
                )
                .sub(LEAD, len);
            let v = plan
                .buffer(
                    "v",
                    Elem::F32,
                    len + LEAD,
                    Init::F32([vec![0.0; LEAD], uniform(&mut r, len, 0.0, 0.1)].concat()),
                )
                .sub(LEAD, len);
            let step = input_u32(&mut plan, "step", &[step_count]);
            let hyper = AdamHyper {
                lr: 1e-3,
                weight_decay,
                decay_steps,
                ..AdamHyper::default()
            };
            let arrivals = advance.then(|| input_u32(&mut plan, "arrivals", &[0]));
            plan.add_phase(
                "op",
                vec![Op::Adam {
                    params: p,
                    grads: g,
                    m,
                    v,
                    step,
                    hyper,
                    arrivals,
                }],
            );
            let runs: &[&str] = if advance { &["op"; 3] } else { &["op"] };
            let Some((cpu, gpu)) = run_both(plan, runs) else {
                return;
            };
            for (name, s) in [("params", p), ("m", m), ("v", v)] {
                let err = max_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
                assert_close(
                    err,
                    ELEMENTWISE_TOL,
                    &format!(
                        "adam {name} len={len} t={} advance={advance}",
                        step_count + 1
                    ),
                );
            }
            let counter = step_count + if advance { 3 } else { 0 };
            assert_eq!(cpu.u32s(step), [counter], "CPU step counter, len={len}");
            assert_eq!(
                read_gpu_u32(&gpu, step),
                [counter],
                "GPU step counter, len={len}"
            );
            if let Some(a) = arrivals {
                assert_eq!(read_gpu_u32(&gpu, a), [0], "arrivals left, len={len}");
            }
        }
    }
}

#[test]
fn ema_matches_cpu() {
    let mut r = rng(18);
    for len in lengths() {
        for beta in [0.0f32, 0.9, 0.999] {
            // Values away from zero and of one sign per element on both sides,
            // so the average cannot cancel to near zero.
            let sign = |i: usize| if i.is_multiple_of(2) { 1.0 } else { -1.0 };
            let params: Vec<f32> = uniform(&mut r, len, 0.5, 1.5)
                .into_iter()
                .enumerate()
                .map(|(i, v)| sign(i) * v)
                .collect();
            let start: Vec<f32> = uniform(&mut r, len, 0.5, 1.5)
                .into_iter()
                .enumerate()
                .map(|(i, v)| sign(i) * v)
                .collect();
            let mut plan = Plan::default();
            let p = input_f32(&mut plan, "p", &params);
            let avg = plan
                .buffer(
                    "avg",
                    Elem::F32,
                    len + LEAD,
                    Init::F32([vec![f32::NAN; LEAD], start.clone()].concat()),
                )
                .sub(LEAD, len);
            plan.add_phase(
                "op",
                vec![Op::Ema {
                    params: p,
                    avg,
                    beta,
                }],
            );
            let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
                return;
            };
            let want: Vec<f32> = start
                .iter()
                .zip(&params)
                .map(|(a, p)| {
                    (f64::from(beta) * f64::from(*a) + (1.0 - f64::from(beta)) * f64::from(*p))
                        as f32
                })
                .collect();
            let what = format!("ema len={len} beta={beta}");
            assert_close(max_rel_err(cpu.f32s(avg), &want), ELEMENTWISE_TOL, &what);
            assert_close(
                max_rel_err(&read_gpu(&gpu, avg), cpu.f32s(avg)),
                ELEMENTWISE_TOL,
                &what,
            );
        }
    }
}

#[test]
fn random_kernels_match_cpu() {
    for len in lengths() {
        for (seed, stream, step) in [(0u64, 0u32, 0u32), (0xDEAD_BEEF_1234_5678, 5, 77)] {
            let mut plan = Plan::default();
            let counter = input_u32(&mut plan, "counter", &[step]);
            let source = RandomSource {
                seed,
                stream,
                counter,
            };
            let normal = output_f32(&mut plan, "normal", len);
            let unif = output_f32(&mut plan, "uniform", len);
            let index = output_u32(&mut plan, "index", len);
            let bound = 1 + (len as u32) * 3;
            plan.add_phase(
                "op",
                vec![
                    Op::RandomNormal {
                        out: normal,
                        source,
                    },
                    Op::RandomUniform { out: unif, source },
                    Op::RandomIndex {
                        out: index,
                        bound,
                        source,
                    },
                ],
            );
            let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
                return;
            };
            // Integer paths and the uniform conversion are exact: identical bits.
            assert_eq!(
                read_gpu_u32(&gpu, index),
                cpu.u32s(index),
                "index len={len}"
            );
            assert!(cpu.u32s(index).iter().all(|&i| i < bound));
            assert_eq!(read_gpu(&gpu, unif), cpu.f32s(unif), "uniform len={len}");
            // Normals go through log/cos/sin, whose last bits differ between
            // libm and the driver; Box–Muller output near zero (cos θ ≈ 0)
            // amplifies those bits, so the error is taken relative to max(|x|, σ = 1).
            let got = read_gpu(&gpu, normal);
            for (g, w) in got.iter().zip(cpu.f32s(normal)) {
                let err = f64::from((g - w).abs()) / f64::from(w.abs().max(1.0));
                assert_close(err, ELEMENTWISE_TOL, &format!("normal len={len}"));
            }
        }
    }
}

#[test]
fn gather_rows_match_cpu() {
    let mut r = rng(9);
    for &cols in &SIZES {
        let src_rows = 301;
        let batch = 33;
        let idx: Vec<u32> = (0..batch)
            .map(|i| ((i * 37 + 5) % src_rows) as u32)
            .collect();
        let values = uniform(&mut r, src_rows * cols, -1.0, 1.0);
        let bytes: Vec<u8> = (0..src_rows * cols).map(|i| (i * 7 % 256) as u8).collect();
        let mut plan = Plan::default();
        let src = input_f32(&mut plan, "src", &values);
        let packed = input_u32(
            &mut plan,
            "packed",
            &shadergan::cpu::kernels::pack_bytes(&bytes),
        );
        let indices = input_u32(&mut plan, "idx", &idx);
        let dst_f32 = output_f32(&mut plan, "dst_f32", batch * cols);
        let dst_u8 = output_f32(&mut plan, "dst_u8", batch * cols);
        plan.add_phase(
            "op",
            vec![
                Op::GatherRows {
                    src,
                    format: RowFormat::F32,
                    indices,
                    dst: dst_f32,
                    cols,
                },
                Op::GatherRows {
                    src: packed,
                    format: RowFormat::U8 {
                        center: 127.5,
                        scale: 2.0 / 255.0,
                    },
                    indices,
                    dst: dst_u8,
                    cols,
                },
            ],
        );
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        assert_eq!(
            read_gpu(&gpu, dst_f32),
            cpu.f32s(dst_f32),
            "gather f32 cols={cols}"
        );
        assert_eq!(
            read_gpu(&gpu, dst_u8),
            cpu.f32s(dst_u8),
            "gather u8 cols={cols}"
        );
        // The CPU reference itself: row r is source row idx[r].
        for (row, &i) in idx.iter().enumerate() {
            assert_eq!(
                &cpu.f32s(dst_f32)[row * cols..(row + 1) * cols],
                &values[i as usize * cols..(i as usize + 1) * cols]
            );
        }
    }
}

#[test]
fn fill_and_increment_cover_a_two_dimensional_grid() {
    // More than 65535 workgroups of 256: the grid folds into a second dimension.
    let len = 65_535 * 256 + 300;
    let mut plan = Plan::default();
    let dst = output_f32(&mut plan, "dst", len);
    let counter = input_u32(&mut plan, "counter", &[41]);
    plan.add_phase(
        "op",
        vec![Op::Fill { dst, value: 2.5 }, Op::Increment { counter }],
    );
    let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
        return;
    };
    let got = read_gpu(&gpu, dst);
    assert!(got.iter().all(|v| *v == 2.5), "fill missed elements");
    assert_eq!(cpu.f32s(dst), &got[..]);
    assert_eq!(read_gpu_u32(&gpu, counter), vec![42]);
    assert_eq!(cpu.u32s(counter), &[42]);
}

#[test]
fn softmax_cross_entropy_matches_cpu() {
    let mut r = rng(10);
    for &rows in &SIZES {
        for classes in [1usize, 2, 10, 33] {
            let mut logits = uniform(&mut r, rows * classes, -6.0, 6.0);
            logits[0] = 60.0; // a large logit: the log-sum-exp must not overflow
            let labels: Vec<f32> = (0..rows).map(|i| ((i * 7 + 3) % classes) as f32).collect();
            let mut plan = Plan::default();
            let z = input_f32(&mut plan, "z", &logits);
            let y = input_f32(&mut plan, "y", &labels);
            let loss = output_f32(&mut plan, "loss", rows);
            let grad = output_f32(&mut plan, "grad", rows * classes);
            plan.add_phase(
                "op",
                vec![Op::SoftmaxCrossEntropy {
                    logits: z,
                    labels: y,
                    loss,
                    grad,
                    classes,
                    grad_scale: 0.5,
                }],
            );
            let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
                return;
            };
            let what = format!("rows={rows} classes={classes}");
            if cpu.f32s(loss).iter().any(|v| *v != 0.0) {
                // Norm-wise: a row's loss is log-sum-exp minus its logit, so a
                // confident row's small loss carries the rounding of the
                // larger terms (2e-5 of it on NVIDIA's exp and log).
                let err = norm_rel_err(&read_gpu(&gpu, loss), cpu.f32s(loss));
                assert_close(err, ELEMENTWISE_TOL, &format!("ce loss {what}"));
            }
            if classes > 1 {
                // Gradients are probabilities minus one-hots: compare against the row scale.
                let got = read_gpu(&gpu, grad);
                for (g, w) in got.iter().zip(cpu.f32s(grad)) {
                    let err = f64::from((g - w).abs()) / 0.5;
                    assert_close(err, ELEMENTWISE_TOL, &format!("ce grad {what}"));
                }
            }
        }
    }
}

#[test]
fn parzen_log_density_matches_cpu() {
    let mut r = rng(11);
    for (rows, samples, dim) in [
        (1usize, 1usize, 1usize),
        (7, 33, 5),
        (33, 300, 17),
        (127, 7, 784),
    ] {
        let x = uniform(&mut r, rows * dim, 0.0, 1.0);
        let s = uniform(&mut r, samples * dim, 0.0, 1.0);
        for sigma in [0.1f32, 0.3, 1.0] {
            let mut plan = Plan::default();
            let xs = input_f32(&mut plan, "x", &x);
            let ss = input_f32(&mut plan, "s", &s);
            let gram = output_f32(&mut plan, "gram", rows * samples);
            let xn = output_f32(&mut plan, "xn", rows);
            let sn = output_f32(&mut plan, "sn", samples);
            let out = output_f32(&mut plan, "out", rows);
            plan.add_phase(
                "op",
                vec![
                    Op::MatmulBiasAct {
                        x: xs,
                        w: ss,
                        b: None,
                        y: gram,
                        m: rows,
                        n: samples,
                        k: dim,
                        act: Activation::Identity,
                    },
                    Op::RowSqNorm {
                        x: xs,
                        out: xn,
                        rows,
                        cols: dim,
                    },
                    Op::RowSqNorm {
                        x: ss,
                        out: sn,
                        rows: samples,
                        cols: dim,
                    },
                    Op::ParzenLogDensity {
                        gram,
                        x_norms: xn,
                        s_norms: sn,
                        out,
                        dim,
                        sigma,
                    },
                ],
            );
            let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
                return;
            };
            let what = format!("rows={rows} samples={samples} dim={dim} sigma={sigma}");
            assert_close(
                max_rel_err(&read_gpu(&gpu, xn), cpu.f32s(xn)),
                ELEMENTWISE_TOL,
                &format!("row_sq_norm {what}"),
            );
            // The log-density is a sum of large terms of both signs (‖x−s‖²/2σ² against
            // the normaliser); its error is measured against the size of those terms.
            let got = read_gpu(&gpu, out);
            for (i, (g, w)) in got.iter().zip(cpu.f32s(out)).enumerate() {
                let scale = (0.5
                    * dim as f64
                    * (std::f64::consts::TAU * f64::from(sigma).powi(2))
                        .ln()
                        .abs())
                .max(f64::from(w.abs()))
                .max(1.0);
                let err = f64::from((g - w).abs()) / scale;
                assert_close(
                    err,
                    MATMUL_TOL,
                    &format!("parzen {what} row {i}: {g} vs {w}"),
                );
            }
        }
    }
}

/// Outputs with enough 128×128 tiles run `matmul_bias_act_128_prefetch`; odd sizes on
/// every edge (not multiples of 128, 16 or 4) check its bounds, for the forward
/// product and a weight gradient.
#[test]
fn large_outputs_take_the_128_tile_kernel_and_match_cpu() {
    use shadergan::gpu::lowering::matmul_entry;
    let (m, n, k) = (2049, 2047, 19);
    assert_eq!(matmul_entry(m, n, k).0, "matmul_bias_act_128_prefetch");
    let mut r = rng(30);
    let mut plan = Plan::default();
    let x = input_f32(&mut plan, "x", &uniform(&mut r, m * k, -1.0, 1.0));
    let w = input_f32(&mut plan, "w", &uniform(&mut r, n * k, -1.0, 1.0));
    let b = input_f32(&mut plan, "b", &uniform(&mut r, n, -1.0, 1.0));
    let y = output_f32(&mut plan, "y", m * n);
    // A weight gradient dw = dyᵀ·x2 over a batch of 33 rows, with an n×n2
    // output large enough for the 128 tiles (dy and x2 read transposed).
    let (batch, n2) = (33, 2050);
    assert_eq!(matmul_entry(n, n2, batch).0, "matmul_bias_act_128_prefetch");
    let dy = input_f32(&mut plan, "dy", &uniform(&mut r, batch * n, -1.0, 1.0));
    let x2 = input_f32(&mut plan, "x2", &uniform(&mut r, batch * n2, -1.0, 1.0));
    let (dw, db) = weight_and_bias_grads(&mut plan, n * n2, n);
    // An input gradient dz = (dy2·w2) ⊙ tanh'(y2) with an m×n2 output.
    assert_eq!(matmul_entry(m, n2, k).0, "matmul_bias_act_128_prefetch");
    let dy2 = input_f32(&mut plan, "dy2", &uniform(&mut r, m * k, -1.0, 1.0));
    let w2 = input_f32(&mut plan, "w2", &uniform(&mut r, k * n2, -1.0, 1.0));
    let y2 = input_f32(
        &mut plan,
        "y2",
        &activation_outputs(&mut r, m * n2, Activation::Tanh),
    );
    let dz = output_f32(&mut plan, "dz", m * n2);
    plan.add_phase(
        "op",
        vec![
            Op::MatmulBiasAct {
                x,
                w,
                b: Some(b),
                y,
                m,
                n,
                k,
                act: Activation::Tanh,
            },
            Op::MatmulDw {
                dy,
                x: x2,
                dw,
                m: batch,
                n,
                k: n2,
                db: Some(db),
            },
            Op::MatmulDx {
                dy: dy2,
                w: w2,
                dx: dz,
                m,
                n: k,
                k: n2,
                act_grad: Some((y2, Activation::Tanh)),
            },
        ],
    );
    let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
        return;
    };
    let err = norm_rel_err(&read_gpu(&gpu, y), cpu.f32s(y));
    assert_close(
        err,
        MATMUL_TOL,
        &format!("matmul_bias_act_128_prefetch {m}×{n}×{k}"),
    );
    let err = norm_rel_err(&read_gpu(&gpu, dw), cpu.f32s(dw));
    assert_close(
        err,
        MATMUL_TOL,
        &format!("matmul_dw via the 128 tile {n}×{n2}, K={batch}"),
    );
    let err = norm_rel_err(&read_gpu(&gpu, db), cpu.f32s(db));
    assert_close(err, MATMUL_TOL, &format!("db via the 128 tile, K={batch}"));
    let err = norm_rel_err(&read_gpu(&gpu, dz), cpu.f32s(dz));
    assert_close(
        err,
        MATMUL_TOL,
        &format!("dx·tanh' via the 128 tile {m}×{n2}"),
    );
}

/// Small outputs run `matmul_bias_act_small` (sixteen K-groups per 16×16
/// tile); odd sizes check its bounds, K not a multiple of the sixteen
/// stretches nor of the four-k unrolling, and all three products.
#[test]
fn small_outputs_take_the_small_kernel_and_match_cpu() {
    use shadergan::gpu::lowering::matmul_entry;
    let mut r = rng(31);
    for (case, &(m, n, k)) in [
        (64, 128, 784),
        (1, 1, 300),
        (33, 70, 1001),
        (127, 65, 257),
        (7, 3, 5),
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            matmul_entry(m, n, k).0,
            "matmul_bias_act_small",
            "{m}×{n}×{k}"
        );
        let act = ACTIVATIONS[case % ACTIVATIONS.len()];
        let mut plan = Plan::default();
        let x = input_f32(&mut plan, "x", &uniform(&mut r, m * k, -1.0, 1.0));
        let w = input_f32(&mut plan, "w", &uniform(&mut r, n * k, -1.0, 1.0));
        let b = input_f32(&mut plan, "b", &uniform(&mut r, n, -1.0, 1.0));
        let y = output_f32(&mut plan, "y", m * n);
        // dx = dy·w: output m×k' with the contraction over n' (long).
        let (dm, dn, dk) = (m, k, n);
        let dy = input_f32(&mut plan, "dy", &uniform(&mut r, dm * dn, -1.0, 1.0));
        let w2 = input_f32(&mut plan, "w2", &uniform(&mut r, dn * dk, -1.0, 1.0));
        let dx = output_f32(&mut plan, "dx", dm * dk);
        let act_grad = (case % 2 == 1).then(|| {
            let y2 = activation_outputs(&mut r, dm * dk, act);
            (input_f32(&mut plan, "y2", &y2), act)
        });
        // dw = dy3ᵀ·x3 with a small n'×k' output over a long batch m' = k.
        let (wm, wn, wk) = (k, n, m);
        assert_eq!(matmul_entry(wn, wk, wm).0, "matmul_bias_act_small");
        let dy3 = input_f32(&mut plan, "dy3", &uniform(&mut r, wm * wn, -1.0, 1.0));
        let x3 = input_f32(&mut plan, "x3", &uniform(&mut r, wm * wk, -1.0, 1.0));
        let (dw, db) = weight_and_bias_grads(&mut plan, wn * wk, wn);
        plan.add_phase(
            "op",
            vec![
                Op::MatmulBiasAct {
                    x,
                    w,
                    b: Some(b),
                    y,
                    m,
                    n,
                    k,
                    act,
                },
                Op::MatmulDx {
                    dy,
                    w: w2,
                    dx,
                    m: dm,
                    n: dn,
                    k: dk,
                    act_grad,
                },
                Op::MatmulDw {
                    dy: dy3,
                    x: x3,
                    dw,
                    m: wm,
                    n: wn,
                    k: wk,
                    db: Some(db),
                },
            ],
        );
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        let want = cpu.f32s(y).to_vec();
        if want.iter().any(|v| *v != 0.0) {
            let err = norm_rel_err(&read_gpu(&gpu, y), &want);
            assert_close(
                err,
                MATMUL_TOL,
                &format!("small {m}×{n}×{k} {}", act.name()),
            );
        }
        let want = cpu.f32s(dx).to_vec();
        if want.iter().any(|v| *v != 0.0) {
            let err = norm_rel_err(&read_gpu(&gpu, dx), &want);
            let with = act_grad.map_or("", |(_, a)| a.name());
            assert_close(
                err,
                MATMUL_TOL,
                &format!("small dx {dm}×{dk} over {dn} {with}"),
            );
        }
        let err = norm_rel_err(&read_gpu(&gpu, dw), cpu.f32s(dw));
        assert_close(err, MATMUL_TOL, &format!("small dw {wn}×{wk} over {wm}"));
        let err = norm_rel_err(&read_gpu(&gpu, db), cpu.f32s(db));
        assert_close(err, MATMUL_TOL, &format!("small db over {wm}"));
    }
}

/// An input after 4 words of padding: vec4-aligned, unlike [`input_f32`]'s.
fn aligned_input(plan: &mut Plan, name: &str, values: &[f32]) -> Slice {
    let mut v = vec![0.0; 4];
    v.extend_from_slice(values);
    plan.buffer(name, Elem::F32, v.len(), Init::F32(v))
        .sub(4, values.len())
}

/// Small products whose operands are whole vec4s run
/// `matmul_bias_act_small_vec4`: every layout it reads (A along k and along
/// m, B along k and along n), rows and columns that end mid-tile (M = 7,
/// N = 33), K = 4 (one vector per group) and a bias gradient, each against
/// the CPU with poisoned outputs.
#[test]
fn small_products_of_whole_vectors_take_the_vec4_kernel_and_match_cpu() {
    use shadergan::gpu::lowering::lower;
    let mut r = rng(43);
    for (case, &(m, n, k)) in [(64, 128, 784), (7, 33, 100), (5, 12, 4), (128, 1, 128)]
        .iter()
        .enumerate()
    {
        let act = ACTIVATIONS[case % ACTIVATIONS.len()];
        let mut plan = Plan::default();
        let mut input = |plan: &mut Plan, name: &str, len| {
            aligned_input(plan, name, &uniform(&mut r, len, -1.0, 1.0))
        };
        // forward: x [m,k] and W [n,k], both along k.
        let (x, w) = (input(&mut plan, "x", m * k), input(&mut plan, "w", n * k));
        let b = input(&mut plan, "b", n);
        let y = output_f32(&mut plan, "y", m * n);
        // dx = dz·W2: dz [m,k] along k, W2 [k,n] along n; the product is m×n over k.
        let (dz, w2) = (input(&mut plan, "dz", m * k), input(&mut plan, "w2", k * n));
        let dx = output_f32(&mut plan, "dx", m * n);
        // dW = dzᵀ·x over a batch of k rows: dz [k,m'] with m' = 4·⌈m/4⌉ along m, x [k,n] along n.
        let wm = m.next_multiple_of(4);
        let (dz3, x3) = (
            input(&mut plan, "dz3", k * wm),
            input(&mut plan, "x3", k * n),
        );
        let (dw, db) = weight_and_bias_grads(&mut plan, wm * n, wm);
        let ops = vec![
            Op::MatmulBiasAct {
                x,
                w,
                b: Some(b),
                y,
                m,
                n,
                k,
                act,
            },
            Op::MatmulDx {
                dy: dz,
                w: w2,
                dx,
                m,
                n: k,
                k: n,
                act_grad: None,
            },
            Op::MatmulDw {
                dy: dz3,
                x: x3,
                dw,
                m: k,
                n: wm,
                k: n,
                db: Some(db),
            },
        ];
        for op in &ops {
            let picked = lower(op).entry;
            let vec4 = picked == "matmul_bias_act_small_vec4";
            // dx's B (W [k, n]) and dW's B (x3 [k, n]) are read along n:
            // whole vectors only when n is a multiple of 4.
            let expect = matches!(op, Op::MatmulBiasAct { .. }) || n.is_multiple_of(4);
            assert_eq!(vec4, expect, "{m}×{n}×{k}: {op:?} took {picked}");
        }
        plan.add_phase("op", ops);
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        for (name, s) in [("y", y), ("dx", dx), ("dw", dw), ("db", db)] {
            let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
            assert_close(err, MATMUL_TOL, &format!("vec4 {name} {m}×{n}×{k}"));
        }
    }
}

/// The CPU backend's tanh (the GPU's formula) against f64 tanh, densely over
/// [−20, 20] and at tiny arguments.
#[test]
fn cpu_tanh_is_within_a_few_ulps_of_the_exact_value() {
    let mut worst = 0.0f64;
    let mut at = 0.0f32;
    let tiny = (1..200).map(|i| 1e-30f32 * 1.5f32.powi(i));
    for x in (-200_000..=200_000)
        .map(|i| i as f32 * 1e-4)
        .chain(tiny.clone())
        .chain(tiny.map(|v| -v))
    {
        if x == 0.0 {
            assert_eq!(shadergan::cpu::kernels::tanh(x), 0.0);
            continue;
        }
        let exact = (x as f64).tanh();
        let err = ((shadergan::cpu::kernels::tanh(x) as f64 - exact) / exact).abs();
        if err > worst {
            worst = err;
            at = x;
        }
    }
    eprintln!("worst tanh relative error {worst:e} at x = {at}");
    assert!(worst < 3e-7, "tanh relative error {worst:e} at x = {at}");
}

/// The CPU SGEMM splits large products over threads by rows of C; the result
/// must equal a plain f64 triple loop at a size that splits unevenly.
#[test]
fn cpu_sgemm_split_over_threads_matches_a_plain_loop() {
    let (m, n, k) = (257, 301, 401); // 31M multiply-adds: past the threading threshold
    let mut r = rng(32);
    let x = uniform(&mut r, m * k, -1.0, 1.0);
    let w = uniform(&mut r, n * k, -1.0, 1.0);
    let mut y = vec![f32::NAN; m * n];
    shadergan::cpu::kernels::matmul_bias_act(&x, &w, None, &mut y, m, n, k, Activation::Identity);
    let mut want = vec![0.0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|t| x[i * k + t] as f64 * w[j * k + t] as f64)
                .sum();
            want[i * n + j] = s as f32;
        }
    }
    assert_close(norm_rel_err(&y, &want), 1e-6, "threaded CPU sgemm");
}

/// Dropout: the same mask on both backends at awkward lengths, about `keep`
/// of the units kept, kept units scaled by 1/keep, and a second run with the
/// same source (the backward pass) applying the same mask.
#[test]
fn dropout_matches_cpu_and_reuses_its_mask() {
    let mut r = rng(33);
    for (i, len) in lengths().into_iter().enumerate() {
        let keep = [0.5f32, 0.7, 0.9][i % 3];
        let mut plan = Plan::default();
        let x = input_f32(&mut plan, "x", &uniform(&mut r, len, 0.5, 1.5));
        let g = input_f32(&mut plan, "g", &uniform(&mut r, len, 0.5, 1.5));
        let counter = input_u32(&mut plan, "counter", &[9]);
        let y = output_f32(&mut plan, "y", len);
        let dg = output_f32(&mut plan, "dg", len);
        let source = shadergan::plan::RandomSource {
            seed: 21,
            stream: 4,
            counter,
        };
        plan.add_phase(
            "op",
            vec![
                Op::Dropout {
                    x,
                    out: y,
                    keep,
                    source,
                },
                Op::Dropout {
                    x: g,
                    out: dg,
                    keep,
                    source,
                },
            ],
        );
        let Some((cpu, gpu)) = run_both(plan, &["op"]) else {
            return;
        };
        let (want, got) = (cpu.f32s(y).to_vec(), read_gpu(&gpu, y));
        for (a, b) in want.iter().zip(&got) {
            assert_eq!(*a == 0.0, *b == 0.0, "masks differ (len {len})");
        }
        assert_close(
            norm_rel_err(&got, &want),
            1e-6,
            &format!("dropout len {len}"),
        );
        let same_mask = cpu
            .f32s(y)
            .iter()
            .zip(cpu.f32s(dg))
            .all(|(a, b)| (*a == 0.0) == (*b == 0.0));
        assert!(same_mask, "the second application used another mask");
        let x_in = cpu.f32s(x);
        for (v, xv) in want.iter().zip(x_in) {
            if *v != 0.0 {
                assert!(
                    ((v - xv / keep) / v).abs() < 1e-6,
                    "kept units scale by 1/keep"
                );
            }
        }
        if len >= 10_000 {
            let kept = want.iter().filter(|v| **v != 0.0).count() as f64 / len as f64;
            assert!(
                (kept - keep as f64).abs() < 0.01,
                "kept {kept} of {len}, keep {keep}"
            );
        }
    }
}

/// The helpers for a kernel of the caller's own (`GpuContext::compile`,
/// `buffer_from`, `bind_group`, `gpu::time_launches`): an error in the WGSL
/// comes back as an error naming the kernel, and a kernel built with them
/// runs as many times as asked.
#[test]
fn helpers_for_a_callers_kernel_return_wgsl_errors_and_launch_reps_times() {
    let Some(ctx) = gpu() else { return };
    const ADD: &str = "
        @group(0) @binding(0) var<storage, read> x: array<f32>;
        @group(0) @binding(1) var<storage, read_write> y: array<f32>;
        @compute @workgroup_size(64)
        fn add(@builtin(global_invocation_id) g: vec3<u32>) {
            if (g.x < arrayLength(&y)) { y[g.x] += x[g.x]; }
        }";
    let err = ctx.compile("broken", "fn add( {", "add").unwrap_err();
    assert!(err.to_string().contains("broken"), "{err}");
    assert!(ctx.compile("no such entry", ADD, "sub").is_err());
    ctx.check_lost().unwrap();
    let pipeline = ctx.compile("add", ADD, "add").unwrap();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let x = ctx.buffer_from("x", &[1.0f32, 2.0, -3.0], usage);
    let y = ctx.buffer_from("y", &[0.5f32; 3], usage);
    let group = ctx.bind_group("add", &pipeline, &[(0, &x), (1, &y)]);
    let seconds = shadergan::gpu::time_launches(ctx, &pipeline, &group, [1, 1, 1], 4).unwrap();
    assert!(seconds.is_finite() && seconds >= 0.0, "{seconds}");
    let encoder = ctx.device.create_command_encoder(&Default::default());
    let raw = ctx.submit_and_read(encoder, &y, 0, 12).unwrap();
    assert_eq!(
        bytemuck::pod_collect_to_vec::<u8, f32>(&raw),
        [4.5, 8.5, -11.5]
    );
    // An empty slice still gives a buffer that can be bound: one zeroed word.
    assert_eq!(ctx.buffer_from::<f32>("empty", &[], usage).size(), 4);
}

/// `Op::MatmulDwGroup`: up to three weight gradients (with bias gradients)
/// in one launch against one `MatmulDw` per part on the CPU, at awkward
/// shapes: batches of 1, 7, 33 and 300 rows, layers 1, 7, 127 and 256 wide
/// over inputs of 2 and 784, parts of different sizes side by side, every
/// output poisoned.
#[test]
fn weight_gradient_groups_match_one_product_per_part() {
    use shadergan::gpu::lowering::lower;
    use shadergan::plan::WeightGrad;
    let mut r = rng(47);
    let groups: [&[(usize, usize)]; 4] = [
        &[(1, 2)],
        &[(7, 784), (127, 7)],
        &[(256, 2), (1, 127), (33, 256)],
        &[(128, 784), (128, 128), (1, 128)],
    ];
    for (case, layers) in groups.iter().enumerate() {
        let batch = [1, 7, 33, 300][case];
        let mut plan = Plan::default();
        let total: usize = layers.iter().map(|&(n, k)| n * k + 3 + n).sum();
        let grads = output_f32(&mut plan, "grads", total);
        let mut at = 0;
        let mut parts = Vec::new();
        for (i, &(n, k)) in layers.iter().enumerate() {
            let dy = input_f32(
                &mut plan,
                &format!("dy{i}"),
                &uniform(&mut r, batch * n, -1.0, 1.0),
            );
            let x = input_f32(
                &mut plan,
                &format!("x{i}"),
                &uniform(&mut r, batch * k, -1.0, 1.0),
            );
            let dw = grads.sub(at, n * k);
            let db = grads.sub(at + n * k + 3, n);
            at += n * k + 3 + n;
            parts.push(WeightGrad {
                dy,
                x,
                dw,
                m: batch,
                n,
                k,
                db: Some(db),
            });
        }
        let group = Op::MatmulDwGroup {
            parts: parts.clone(),
            adam: None,
        };
        assert_eq!(lower(&group).entry, "matmul_dw_group");
        plan.add_phase("group", vec![group]);
        plan.add_phase("each", parts.iter().map(WeightGrad::op).collect());
        let mut cpu_each = shadergan::cpu::CpuPlan::new(plan.clone()).expect("valid plan");
        cpu_each.run(&["each"]).expect("cpu run");
        let Some((cpu, gpu)) = run_both(plan, &["group"]) else {
            return;
        };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let same = bits(cpu.f32s(grads)) == bits(cpu_each.f32s(grads));
        assert!(
            same,
            "group {case}: the CPU group is not its parts bit for bit"
        );
        for (i, p) in parts.iter().enumerate() {
            for (what, s) in [("dw", p.dw), ("db", p.db.unwrap())] {
                let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
                assert_close(err, MATMUL_TOL, &format!("group {case} part {i} {what}"));
            }
        }
    }
}

/// A group of no parts, of more than three, or with outputs in two buffers
/// is refused when the plan is built, naming the problem.
#[test]
fn weight_gradient_groups_are_validated() {
    use shadergan::plan::{MATMUL_DW_GROUP_MAX, WeightGrad};
    let refused = |parts: Vec<WeightGrad>| {
        let mut plan = Plan::default();
        plan.add_phase("op", vec![Op::MatmulDwGroup { parts, adam: None }]);
        plan.validate().expect_err("an invalid group").to_string()
    };
    let mut plan = Plan::default();
    let dy = plan.f32_buffer("dy", 6);
    let x = plan.f32_buffer("x", 6);
    let grads = plan.f32_buffer("grads", 20);
    let other = plan.f32_buffer("other", 20);
    let part = |dw: Slice| WeightGrad {
        dy,
        x,
        dw,
        m: 2,
        n: 3,
        k: 3,
        db: None,
    };
    let with = |parts: Vec<WeightGrad>| {
        let mut p = plan.clone();
        p.add_phase("op", vec![Op::MatmulDwGroup { parts, adam: None }]);
        p.validate().expect_err("an invalid group").to_string()
    };
    assert!(refused(vec![]).contains("0 parts"));
    let four = vec![part(grads.sub(0, 9)); MATMUL_DW_GROUP_MAX + 1];
    assert!(with(four).contains("4 parts"));
    let split = vec![part(grads.sub(0, 9)), part(other.sub(0, 9))];
    assert!(with(split).contains("not in part 0's buffer"));
    let overlap = vec![part(grads.sub(0, 9)), part(grads.sub(5, 9))];
    assert!(with(overlap).contains("two outputs"));
}
