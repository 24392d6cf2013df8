//! The fused kernels of a GAN step (`draw_batch`, `bce_means`) against the
//! ops they replace, on the CPU (bitwise) and on the GPU, and the GPU against
//! the CPU reference: random inputs, awkward shapes, non-zero offsets and
//! NaN-poisoned outputs.

mod common;

use common::*;
use shadergan::cpu::CpuPlan;
use shadergan::plan::{Activation, Op, Plan, ProbMeans, RandomSource, RowFormat, Slice};

const BATCHES: [usize; 4] = [1, 7, 33, 300];
const TOL: f64 = 1e-5;

/// The outputs of one batch draw.
#[derive(Clone, Copy)]
struct Draw {
    indices: Slice,
    dst: Slice,
    noise: Slice,
    more: Option<Slice>,
}

/// Outputs for a draw; with `more` > 0, a second noise of that length in the
/// noise buffer, two poisoned words after the first.
fn draw_outputs(
    plan: &mut Plan,
    tag: &str,
    batch: usize,
    cols: usize,
    noise: usize,
    more: usize,
) -> Draw {
    let both = output_f32(plan, &format!("noise_{tag}"), noise + 2 + more);
    Draw {
        indices: output_u32(plan, &format!("idx_{tag}"), batch),
        dst: output_f32(plan, &format!("dst_{tag}"), batch * cols),
        noise: both.sub(0, noise),
        more: (more > 0).then(|| both.sub(noise + 2, more)),
    }
}

/// A plan with phase `fused` (one draw_batch) and phase `separate` (the
/// random_index, gather_rows and random_normal it replaces), into their own outputs.
fn draw_plan(batch: usize, cols: usize, z_dim: usize, u8_rows: bool) -> (Plan, Draw, Draw) {
    let mut r = rng(batch as u64 * 1000 + cols as u64);
    let src_rows = 2 * batch + 5;
    let mut plan = Plan::default();
    let (src, format) = if u8_rows {
        let bytes: Vec<u8> = (0..src_rows * cols).map(|i| (i * 29 % 256) as u8).collect();
        let words = shadergan::cpu::kernels::pack_bytes(&bytes);
        let format = RowFormat::U8 {
            center: 127.5,
            scale: 2.0 / 255.0,
        };
        (input_u32(&mut plan, "src", &words), format)
    } else {
        let values = uniform(&mut r, src_rows * cols, -3.0, 3.0);
        (input_f32(&mut plan, "src", &values), RowFormat::F32)
    };
    let counter = input_u32(&mut plan, "counter", &[batch as u32 * 7 + 3]);
    let source = RandomSource {
        seed: 0x1234_5678_9ABC_DEF0 ^ cols as u64,
        stream: 0,
        counter,
    };
    let noise_stream = 1;
    // Half the shapes also draw a second noise (an odd length, with its own
    // counter and stream), as the D step draws the G step's.
    let more_len = if (batch + cols).is_multiple_of(2) {
        batch * 3 + 1
    } else {
        0
    };
    let more_source = RandomSource {
        stream: 5,
        counter: input_u32(&mut plan, "counter2", &[batch as u32 * 5 + 1]),
        ..source
    };
    let fused = draw_outputs(&mut plan, "fused", batch, cols, batch * z_dim, more_len);
    let sep = draw_outputs(&mut plan, "sep", batch, cols, batch * z_dim, more_len);
    let bound = src_rows as u32;
    plan.add_phase(
        "fused",
        vec![Op::DrawBatch {
            src,
            format,
            cols,
            bound,
            source,
            noise_stream,
            indices: fused.indices,
            dst: fused.dst,
            noise: fused.noise,
            more_noise: fused.more.map(|out| (out, more_source)),
        }],
    );
    plan.add_phase(
        "separate",
        vec![
            Op::RandomIndex {
                out: sep.indices,
                bound,
                source,
            },
            Op::GatherRows {
                src,
                format,
                indices: sep.indices,
                dst: sep.dst,
                cols,
            },
            Op::RandomNormal {
                out: sep.noise,
                source: RandomSource {
                    stream: noise_stream,
                    ..source
                },
            },
        ]
        .into_iter()
        .chain(sep.more.map(|out| Op::RandomNormal {
            out,
            source: more_source,
        }))
        .collect(),
    );
    (plan, fused, sep)
}

fn draw_shapes() -> Vec<(usize, usize, usize, bool)> {
    let mut shapes = Vec::new();
    for (i, &batch) in BATCHES.iter().enumerate() {
        for cols in [2, 7, 784] {
            // z_dim 100 (images), 2 (points) and 3 (a partial last Philox block).
            let z_dim = [100, 2, 3][i % 3];
            shapes.push((batch, cols, z_dim, (i + cols) % 2 == 0));
            shapes.push((batch, cols, z_dim, (i + cols) % 2 == 1));
        }
    }
    shapes
}

#[test]
fn draw_batch_on_the_cpu_is_the_three_ops_bit_for_bit() {
    for (batch, cols, z_dim, u8_rows) in draw_shapes() {
        let (plan, fused, sep) = draw_plan(batch, cols, z_dim, u8_rows);
        let mut cpu = CpuPlan::new(plan).expect("valid plan");
        cpu.run(&["fused", "separate"]).expect("cpu run");
        let what = format!("batch={batch} cols={cols} z_dim={z_dim} u8={u8_rows}");
        assert_eq!(cpu.u32s(fused.indices), cpu.u32s(sep.indices), "{what}");
        let bits = |s: Slice| cpu.u32s(s).to_vec();
        assert_eq!(bits(fused.dst), bits(sep.dst), "{what}");
        assert_eq!(bits(fused.noise), bits(sep.noise), "{what}");
        if let (Some(f), Some(s)) = (fused.more, sep.more) {
            assert_eq!(bits(f), bits(s), "second noise, {what}");
        }
        assert!(cpu.f32s(fused.dst).iter().all(|v| v.is_finite()), "{what}");
    }
}

#[test]
fn draw_batch_matches_the_three_ops_and_the_cpu_on_the_gpu() {
    for (batch, cols, z_dim, u8_rows) in draw_shapes() {
        let (plan, fused, sep) = draw_plan(batch, cols, z_dim, u8_rows);
        let Some((cpu, gpu)) = run_both(plan, &["fused", "separate"]) else {
            return;
        };
        let what = format!("batch={batch} cols={cols} z_dim={z_dim} u8={u8_rows}");
        // Integer paths and the gather are exact: identical bits everywhere.
        let idx = read_gpu_u32(&gpu, fused.indices);
        assert_eq!(idx, read_gpu_u32(&gpu, sep.indices), "{what}");
        assert_eq!(idx, cpu.u32s(fused.indices), "{what}");
        let dst = read_gpu_u32(&gpu, fused.dst);
        assert_eq!(dst, read_gpu_u32(&gpu, sep.dst), "{what}");
        assert_eq!(dst, cpu.u32s(fused.dst), "{what}");
        // The same Box–Muller code as random_normal on the same device.
        let noise = read_gpu(&gpu, fused.noise);
        assert_eq!(noise, read_gpu(&gpu, sep.noise), "{what}");
        if let (Some(f), Some(s)) = (fused.more, sep.more) {
            let more = read_gpu(&gpu, f);
            assert_eq!(more, read_gpu(&gpu, s), "second noise, {what}");
            for (g, w) in more.iter().zip(cpu.f32s(f)) {
                let err = f64::from((g - w).abs()) / f64::from(w.abs().max(1.0));
                assert_close(err, TOL, &format!("second noise {what}"));
            }
        }
        // Against libm: relative to max(|x|, σ = 1), as random_kernels_match_cpu.
        for (g, w) in noise.iter().zip(cpu.f32s(fused.noise)) {
            let err = f64::from((g - w).abs()) / f64::from(w.abs().max(1.0));
            assert_close(err, TOL, &format!("noise {what}"));
        }
    }
}

/// The outputs of one BCE pass with its means.
#[derive(Clone, Copy)]
struct Loss {
    loss: Slice,
    grad: Slice,
    stats: Slice,
}

const STATS: usize = 6;
const LOSS_SLOT: usize = 4;
const FIRST_SLOT: usize = 1;
const SECOND_SLOT: usize = 2;

fn loss_outputs(plan: &mut Plan, tag: &str, rows: usize) -> Loss {
    Loss {
        loss: output_f32(plan, &format!("loss_{tag}"), rows),
        grad: output_f32(plan, &format!("grad_{tag}"), rows),
        stats: output_f32(plan, &format!("stats_{tag}"), STATS),
    }
}

/// Phase `fused` (one bce_means) and phase `separate` (bce_with_logits, a
/// sigmoid and the means it replaces), into their own outputs.
fn loss_plan(rows: usize, split: Option<usize>) -> (Plan, Loss, Loss) {
    let mut r = rng(rows as u64 + 77);
    let mut logits = uniform(&mut r, rows, -8.0, 8.0);
    for (i, e) in [-30.0, 80.0, -80.0, 0.0].iter().enumerate().take(rows / 3) {
        logits[3 * i] = *e;
    }
    // Real rows (before the split) have target 0.9 or 1, fake rows 0.
    let cut = split.unwrap_or(rows);
    let targets: Vec<f32> = (0..rows)
        .map(|i| match (i < cut, i % 2) {
            (true, 0) => 1.0,
            (true, _) => 0.9,
            (false, _) => 0.0,
        })
        .collect();
    let mut plan = Plan::default();
    let logits = input_f32(&mut plan, "logits", &logits);
    let targets = input_f32(&mut plan, "targets", &targets);
    let probs = output_f32(&mut plan, "probs", rows);
    let fused = loss_outputs(&mut plan, "fused", rows);
    let sep = loss_outputs(&mut plan, "sep", rows);
    let grad_scale = 1.0 / cut.max(1) as f32;
    let prob_means = split.map(|split| ProbMeans {
        split,
        first_slot: FIRST_SLOT,
        second_slot: SECOND_SLOT,
    });
    plan.add_phase(
        "fused",
        vec![Op::BceMeans {
            logits,
            targets,
            loss: fused.loss,
            grad: fused.grad,
            grad_scale,
            stats: fused.stats,
            loss_slot: LOSS_SLOT,
            loss_scale: 2.0,
            prob_means,
            head: None,
        }],
    );
    let mut ops = vec![
        Op::BceWithLogits {
            logits,
            targets,
            loss: sep.loss,
            grad: sep.grad,
            grad_scale,
        },
        Op::Mean {
            x: sep.loss,
            out: sep.stats.sub(LOSS_SLOT, 1),
            scale: 2.0,
        },
    ];
    if let Some(split) = split {
        ops.push(Op::ActivationForward {
            x: logits,
            y: probs,
            act: Activation::Sigmoid,
        });
        for (slot, start, len) in [(FIRST_SLOT, 0, split), (SECOND_SLOT, split, rows - split)] {
            ops.push(Op::Mean {
                x: probs.sub(start, len),
                out: sep.stats.sub(slot, 1),
                scale: 1.0,
            });
        }
    }
    plan.add_phase("separate", ops);
    (plan, fused, sep)
}

/// (rows, split): D's 2B rows split in half, G's B rows without σ means,
/// one-sided splits and a few thousand rows.
fn loss_shapes() -> Vec<(usize, Option<usize>)> {
    let mut shapes = Vec::new();
    for b in BATCHES {
        shapes.push((2 * b, Some(b)));
        shapes.push((b, None));
    }
    shapes.extend([
        (7, Some(0)),
        (7, Some(7)),
        (33, Some(5)),
        (8192, Some(4096)),
    ]);
    shapes
}

fn written_slots(split: Option<usize>) -> Vec<usize> {
    match split {
        Some(_) => vec![LOSS_SLOT, FIRST_SLOT, SECOND_SLOT],
        None => vec![LOSS_SLOT],
    }
}

#[test]
fn bce_means_on_the_cpu_is_the_separate_ops_bit_for_bit() {
    for (rows, split) in loss_shapes() {
        let (plan, fused, sep) = loss_plan(rows, split);
        let mut cpu = CpuPlan::new(plan).expect("valid plan");
        cpu.run(&["fused", "separate"]).expect("cpu run");
        let what = format!("rows={rows} split={split:?}");
        for s in [
            (fused.loss, sep.loss),
            (fused.grad, sep.grad),
            (fused.stats, sep.stats),
        ] {
            assert_eq!(cpu.u32s(s.0), cpu.u32s(s.1), "{what}");
        }
        // Exactly the slots are written; the others keep their poison.
        for slot in 0..STATS {
            let v = cpu.f32s(fused.stats)[slot];
            assert_eq!(
                v.is_nan(),
                !written_slots(split).contains(&slot),
                "{what} slot {slot}"
            );
        }
    }
}

#[test]
fn bce_means_matches_the_cpu_on_the_gpu() {
    for (rows, split) in loss_shapes() {
        let (plan, fused, _) = loss_plan(rows, split);
        let Some((cpu, gpu)) = run_both(plan, &["fused"]) else {
            return;
        };
        let what = format!("rows={rows} split={split:?}");
        let loss = read_gpu(&gpu, fused.loss);
        assert_close(
            max_rel_err(&loss, cpu.f32s(fused.loss)),
            TOL,
            &format!("loss {what}"),
        );
        // Targets 0 and 1 are exact products; 0.9 rows cancel near σ = 0.9, so
        // the gradient is compared norm-wise.
        let grad = read_gpu(&gpu, fused.grad);
        assert_close(
            norm_rel_err(&grad, cpu.f32s(fused.grad)),
            TOL,
            &format!("grad {what}"),
        );
        let stats = read_gpu(&gpu, fused.stats);
        for (slot, (&g, &w)) in stats.iter().zip(cpu.f32s(fused.stats)).enumerate() {
            if written_slots(split).contains(&slot) && w == 0.0 {
                assert_eq!(g, 0.0, "{what}: the mean over no rows is 0");
            } else if written_slots(split).contains(&slot) {
                assert_close(max_rel_err(&[g], &[w]), TOL, &format!("stat {slot} {what}"));
            } else {
                assert!(g.is_nan(), "{what}: slot {slot} was written");
            }
        }
    }
}

#[test]
fn fused_ops_refuse_bad_shapes() {
    let (mut plan, fused, _) = loss_plan(7, Some(3));
    let Op::BceMeans {
        logits, targets, ..
    } = plan.phase("fused").unwrap().ops[0].clone()
    else {
        unreachable!()
    };
    let bad = |loss_slot: usize, split: usize| Op::BceMeans {
        logits,
        targets,
        loss: fused.loss,
        grad: fused.grad,
        grad_scale: 1.0,
        stats: fused.stats,
        loss_slot,
        loss_scale: 1.0,
        prob_means: Some(ProbMeans {
            split,
            first_slot: 0,
            second_slot: 1,
        }),
        head: None,
    };
    plan.add_phase("slot", vec![bad(STATS, 3)]);
    let e = plan.validate().unwrap_err().to_string();
    assert!(e.contains("stat slot 6 is outside"), "{e}");
    plan.phases.pop();
    plan.add_phase("split", vec![bad(0, 8)]);
    let e = plan.validate().unwrap_err().to_string();
    assert!(e.contains("split 8 is past the 7 rows"), "{e}");

    let (mut plan, fused, _) = draw_plan(7, 2, 3, false);
    let Op::DrawBatch { src, source, .. } = plan.phase("fused").unwrap().ops[0].clone() else {
        unreachable!()
    };
    // src holds 2·7 + 5 = 19 rows of 2: a bound of 20 would read past it.
    plan.add_phase(
        "bound",
        vec![Op::DrawBatch {
            src,
            format: RowFormat::F32,
            cols: 2,
            bound: 20,
            source,
            noise_stream: 1,
            indices: fused.indices,
            dst: fused.dst,
            noise: fused.noise,
            more_noise: None,
        }],
    );
    let e = plan.validate().unwrap_err().to_string();
    assert!(e.contains("20 rows of 2 do not fit"), "{e}");
    // A second noise outside the first one's buffer, or overlapping it.
    let elsewhere = output_f32(&mut plan, "elsewhere", 4);
    for (more, want) in [
        (elsewhere, "more_noise must lie in noise's buffer"),
        (fused.noise.sub(1, 4), "two outputs"),
    ] {
        plan.phases.pop();
        plan.add_phase(
            "more",
            vec![Op::DrawBatch {
                src,
                format: RowFormat::F32,
                cols: 2,
                bound: 19,
                source,
                noise_stream: 1,
                indices: fused.indices,
                dst: fused.dst,
                noise: fused.noise,
                more_noise: Some((more, source)),
            }],
        );
        let e = plan.validate().unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}

/// `bce_means_head`: the loss with the input gradient of the logit layer in
/// the same launch, against the loss then a `MatmulDx` (n = 1) on both
/// backends, bit for bit on the CPU, at awkward shapes: 1 to 600 rows,
/// layers 1, 7, 128 and 256 wide, every activation derivative and none
/// (as through a dropout), outputs poisoned; `fuse_loss_heads` builds it.
#[test]
fn loss_heads_match_the_loss_then_the_input_gradient() {
    use shadergan::plan::fuse_loss_heads;
    let acts = [
        None,
        Some(Activation::Relu),
        Some(Activation::LeakyRelu(0.2)),
        Some(Activation::Tanh),
        Some(Activation::Sigmoid),
    ];
    for (case, (rows, k)) in [(1, 7), (7, 1), (128, 128), (600, 256), (33, 7)]
        .into_iter()
        .enumerate()
    {
        let mut r = rng(900 + case as u64);
        let (mut plan, fused, sep) = loss_plan(rows, Some(rows / 2));
        let w = input_f32(&mut plan, "w", &uniform(&mut r, k, -1.0, 1.0));
        let act_grad = acts[case % acts.len()].map(|act| {
            let y = uniform(&mut r, rows * k, 0.05, 0.95);
            (input_f32(&mut plan, "y", &y), act)
        });
        let (dx_fused, dx_sep) = (
            output_f32(&mut plan, "dxf", rows * k),
            output_f32(&mut plan, "dxs", rows * k),
        );
        let dx_op = |dy: Slice, dx: Slice| Op::MatmulDx {
            dy,
            w,
            dx,
            m: rows,
            n: 1,
            k,
            act_grad,
        };
        // The fused phase through the pass that builds heads.
        let mut fused_ops = plan.phase("fused").unwrap().ops.clone();
        fused_ops.push(dx_op(fused.grad, dx_fused));
        let fused_ops = fuse_loss_heads(fused_ops);
        assert_eq!(fused_ops.len(), 1, "one launch");
        assert!(matches!(fused_ops[0], Op::BceMeans { head: Some(_), .. }));
        plan.phases.retain(|p| p.name != "fused");
        plan.add_phase("fused", fused_ops);
        let mut sep_ops = plan.phase("separate").unwrap().ops.clone();
        sep_ops.push(dx_op(sep.grad, dx_sep));
        plan.phases.retain(|p| p.name != "separate");
        plan.add_phase("separate", sep_ops);
        let what = format!("rows={rows} k={k} act={act_grad:?}");
        let mut cpu = CpuPlan::new(plan.clone()).expect("valid plan");
        cpu.run(&["fused", "separate"]).expect("cpu run");
        let bits = |s: Slice| cpu.u32s(s).to_vec();
        assert_eq!(bits(dx_fused), bits(dx_sep), "CPU, {what}");
        let Some((cpu, gpu)) = run_both(plan, &["fused", "separate"]) else {
            return;
        };
        let err = norm_rel_err(&read_gpu(&gpu, dx_fused), cpu.f32s(dx_sep));
        assert_close(err, TOL, &format!("GPU dx, {what}"));
        let err = norm_rel_err(&read_gpu(&gpu, fused.grad), cpu.f32s(sep.grad));
        assert_close(err, TOL, &format!("GPU grad, {what}"));
    }
}
