//! A whole GAN step (one D update, then one G update) on both backends gives
//! the same parameters.

mod common;

use common::*;
use rand::Rng;
use shadergan::cpu::CpuPlan;
use shadergan::gan::{GanConfig, GanPlan, InitialParams, ModelSpec, TrainingData, build_gan_plan};
use shadergan::gpu::GpuPlan;
use shadergan::nn::NetworkBuffers;
use shadergan::plan::{Activation, AdamHyper};

const TOL: f64 = 1e-4;

fn image_data(rows: usize) -> TrainingData {
    let mut r = rng(21);
    TrainingData::U8 {
        rows,
        cols: 784,
        bytes: (0..rows * 784).map(|_| r.random::<u8>()).collect(),
    }
}

fn ring_data(rows: usize) -> TrainingData {
    let values = (0..rows)
        .flat_map(|i| {
            let a = i as f32 * std::f32::consts::TAU / 8.0;
            [a.cos(), a.sin()]
        })
        .collect();
    TrainingData::F32 {
        rows,
        cols: 2,
        values,
    }
}

/// Compares every parameter tensor of `net` (norm-wise) and checks it moved.
fn compare_network(
    name: &str,
    net: &NetworkBuffers,
    cpu: &CpuPlan,
    gpu: &GpuPlan,
    initial: &[f32],
) {
    let got = read_gpu(gpu, net.params);
    let want = cpu.f32s(net.params);
    let layout = &net.layout;
    for (l, (w, b)) in layout.weights.iter().zip(&layout.biases).enumerate() {
        for (kind, r) in [("weight", w), ("bias", b)] {
            let range = r.offset..r.offset + r.len;
            let err = norm_rel_err(&got[range.clone()], &want[range.clone()]);
            eprintln!("{name} layer {l} {kind}: GPU vs CPU relative error {err:.2e}");

            assert_close(err, TOL, &format!("{name} layer {l} {kind}"));
            let moved = want[range.clone()]
                .iter()
                .zip(&initial[range])
                .any(|(a, b)| a != b);
            assert!(
                moved,
                "{name} layer {l} {kind} did not change: the step did nothing"
            );
        }
    }
}

fn check_steps(cfg: &GanConfig, data: &TrainingData, steps: usize) {
    let GanPlan {
        plan,
        generator,
        discriminator,
        stats,
        d_input,
        ..
    } = build_gan_plan(cfg, data, InitialParams::default()).expect("plan");
    let g0 = match &plan.decl(generator.params.buffer).init {
        shadergan::plan::Init::F32(v) => v.clone(),
        _ => unreachable!(),
    };
    let d0 = match &plan.decl(discriminator.params.buffer).init {
        shadergan::plan::Init::F32(v) => v.clone(),
        _ => unreachable!(),
    };
    let Some(ctx) = gpu() else {
        return;
    };
    let mut cpu = CpuPlan::new(plan.clone()).unwrap();
    let gpu_plan = GpuPlan::new(ctx, plan).unwrap();
    for step in 0..steps {
        cpu.run(&["d_step", "g_step"]).unwrap();
        gpu_plan.run(ctx, &["d_step", "g_step"]).unwrap();
        // The real half of the D input is gathered by device-drawn indices: identical.
        let real = d_input.sub(0, cfg.batch * data.cols());
        assert_eq!(
            read_gpu(&gpu_plan, real),
            cpu.f32s(real),
            "step {step}: real batch"
        );
        let got = read_gpu(&gpu_plan, stats);
        let err = max_rel_err(&got, cpu.f32s(stats));
        assert_close(
            err,
            TOL,
            &format!("step {step}: losses and D outputs {got:?}"),
        );
    }
    compare_network("D", &discriminator, &cpu, &gpu_plan, &d0);
    compare_network("G", &generator, &cpu, &gpu_plan, &g0);
    assert_eq!(read_gpu_u32(&gpu_plan, generator.step), vec![steps as u32]);
    assert_eq!(cpu.u32s(discriminator.step), &[steps as u32]);
}

#[test]
fn seed_gan_step_matches_between_backends() {
    // The seed tutorial's networks (z 100, 128-128 ReLU, tanh output) on 8-bit 28×28 rows.
    let cfg = GanConfig {
        batch: 8,
        seed: 3,
        ..GanConfig::default()
    };
    check_steps(&cfg, &image_data(50), 1);
}

/// A D step wide and long enough for split weight gradients (768-wide
/// hidden layers, D on 2·512 rows: `matmul_dw_splits` gives 4): the split
/// products and their sums agree between backends, gradient by gradient.
/// (G's gradients at this width differ by up to 2e-3 between backends with
/// or without splits, through D's input gradients; D's agree to 1e-6.)
#[test]
fn a_d_step_with_split_weight_gradients_matches_between_backends() {
    let cfg = GanConfig {
        batch: 512,
        seed: 5,
        model: ModelSpec {
            hidden: vec![768, 768],
            ..ModelSpec::seed_images()
        },
        ..GanConfig::default()
    };
    assert_eq!(shadergan::plan::matmul_dw_splits(1024, 768, 768), 4);
    let gan = build_gan_plan(&cfg, &image_data(600), InitialParams::default()).expect("plan");
    let d_step = gan.plan.phase("d_step").expect("a D step");
    assert!(
        d_step
            .ops
            .iter()
            .any(|op| op.kernel_name() == "matmul_dw_split")
    );
    let Some((cpu, gpu)) = run_both(gan.plan.clone(), &["d_step"]) else {
        return;
    };
    let d = &gan.discriminator;
    for (what, s) in [("D's gradients", d.grads), ("D's parameters", d.params)] {
        let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
        assert_close(err, 1e-5, what);
    }
}

#[test]
fn small_gan_matches_over_several_steps_with_label_smoothing() {
    let cfg = GanConfig {
        model: ModelSpec {
            z_dim: 3,
            data_dim: 2,
            hidden: vec![33, 7],
            hidden_act: Activation::LeakyRelu(0.2),
            output_act: Activation::Identity,
            pack: 2,
        },
        batch: 7,
        seed: 0xFEED,
        d_adam: AdamHyper {
            lr: 1e-3,
            ..AdamHyper::default()
        },
        g_adam: AdamHyper {
            lr: 1e-3,
            weight_decay: 1e-4,
            ..AdamHyper::default()
        },
        real_label: 0.9,
        sample_rows: 5,
        d_dropout: 0.0,
        g_ema: 0.0,
    };
    check_steps(&cfg, &ring_data(40), 3);
}

/// Dropout in D: the masks (drawn on each backend from the same Philox
/// streams) and the steps through them agree between backends.
#[test]
fn gan_with_dropout_in_d_matches_between_backends() {
    let cfg = GanConfig {
        model: ModelSpec {
            z_dim: 3,
            data_dim: 2,
            hidden: vec![33, 17],
            hidden_act: Activation::Relu,
            output_act: Activation::Identity,
            pack: 1,
        },
        batch: 9,
        seed: 77,
        d_dropout: 0.3,
        ..GanConfig::default()
    };
    check_steps(&cfg, &ring_data(40), 3);
}

#[test]
fn scalars_come_back_without_stalling_the_steps() {
    let cfg = GanConfig {
        model: ModelSpec {
            z_dim: 3,
            data_dim: 2,
            hidden: vec![16],
            hidden_act: Activation::Relu,
            output_act: Activation::Identity,
            pack: 1,
        },
        batch: 4,
        ..GanConfig::default()
    };
    let gp = build_gan_plan(&cfg, &ring_data(16), InitialParams::default()).unwrap();
    let Some(ctx) = gpu() else {
        return;
    };
    let plan = GpuPlan::new(ctx, gp.plan).unwrap();
    // Two slots: with five steps submitted back to back the ring grows
    // rather than losing a report; an older report that arrives after a
    // newer one is dropped, but every report that arrives is whole.
    let mut readback = shadergan::gpu::ScalarReadback::new(ctx, vec![gp.stats], 2);
    let mut reports = Vec::new();
    for step in 0..5u64 {
        plan.run_with_readback(ctx, &["d_step", "g_step"], Some((&mut readback, step)))
            .unwrap();
        reports.extend(readback.collect(ctx, false).unwrap());
    }
    reports.extend(readback.collect(ctx, true).unwrap());
    assert!(!reports.is_empty());
    let tags: Vec<u64> = reports.iter().map(|(t, _)| *t).collect();
    assert!(
        tags.windows(2).all(|w| w[0] < w[1]),
        "reports out of order: {tags:?}"
    );
    for (_, values) in &reports {
        assert_eq!(values.len(), 4);
        assert!(values.iter().all(|v| v.is_finite()));
    }
    // After waiting, the newest report is the last step's, and the final state.
    let (last_tag, last) = reports.last().unwrap();
    assert_eq!(*last_tag, 4, "the last step's report was lost");
    assert_eq!(last, &read_gpu(&plan, gp.stats));
}

/// `g_ema`: after every G step the average follows avg ← β·avg + (1 − β)·G,
/// starting from G's initial weights; the `sample` phase draws from the
/// average; and the GPU's average matches the CPU's.
#[test]
fn the_generator_average_follows_its_recurrence_and_feeds_the_samples() {
    let beta = 0.9f32;
    let cfg = GanConfig {
        model: ModelSpec {
            z_dim: 3,
            data_dim: 2,
            hidden: vec![17, 9],
            hidden_act: Activation::Relu,
            output_act: Activation::Identity,
            pack: 1,
        },
        batch: 6,
        seed: 5,
        g_ema: beta,
        sample_rows: 11,
        d_adam: AdamHyper {
            lr: 1e-2,
            ..AdamHyper::default()
        },
        g_adam: AdamHyper {
            lr: 1e-2,
            ..AdamHyper::default()
        },
        ..GanConfig::default()
    };
    let gp = build_gan_plan(&cfg, &ring_data(30), InitialParams::default()).unwrap();
    let avg_slice = gp.generator_ema.expect("g_ema > 0 declares the average");
    let mut cpu = CpuPlan::new(gp.plan.clone()).unwrap();
    let mut avg = cpu.f32s(gp.generator.params).to_vec();
    assert_eq!(cpu.f32s(avg_slice), avg.as_slice(), "starts at G's weights");
    for _ in 0..4 {
        cpu.run(&["d_step", "g_step"]).unwrap();
        for (a, &p) in avg.iter_mut().zip(cpu.f32s(gp.generator.params)) {
            *a = beta * *a + (1.0 - beta) * p;
        }
        assert_eq!(cpu.f32s(avg_slice), avg.as_slice());
    }
    assert_ne!(avg.as_slice(), cpu.f32s(gp.generator.params));

    // The sample phase equals a sampler built on the average's weights.
    cpu.run(&["sample"]).unwrap();
    let z = shadergan::gan::fixed_noise(cfg.seed, cfg.sample_rows, cfg.model.z_dim);
    let (plan, out) = shadergan::gan::build_sampler_plan(
        &shadergan::gan::Architecture::Mlp(cfg.model.clone()),
        avg.clone(),
        z,
    )
    .unwrap();
    let mut sampler = CpuPlan::new(plan).unwrap();
    sampler.run(&["sample"]).unwrap();
    assert_eq!(cpu.f32s(gp.samples), sampler.f32s(out));

    let Some(ctx) = gpu() else {
        return;
    };
    let gpu_plan = GpuPlan::new(ctx, gp.plan).unwrap();
    for _ in 0..4 {
        gpu_plan.run(ctx, &["d_step", "g_step"]).unwrap();
    }
    let err = norm_rel_err(&read_gpu(&gpu_plan, avg_slice), &avg);
    assert_close(err, TOL, "the generator average, GPU against CPU");
}

/// The `check_params` phase: its four sums are finite for finite parameters
/// and turn non-finite for one NaN or Inf anywhere in either network, in the
/// 1024-wide body or in the tail, on both backends.
#[test]
fn the_parameter_check_sees_one_non_finite_value_anywhere() {
    let cfg = GanConfig {
        model: ModelSpec {
            z_dim: 5,
            data_dim: 2,
            hidden: vec![40, 30],
            hidden_act: Activation::Relu,
            output_act: Activation::Identity,
            pack: 1,
        },
        batch: 4,
        ..GanConfig::default()
    };
    let gp = build_gan_plan(&cfg, &ring_data(16), InitialParams::default()).unwrap();
    let ctx = gpu();
    for (net, name) in [(&gp.generator, "G"), (&gp.discriminator, "D")] {
        let len = net.params.len;
        assert!(
            len > 1024 && len % 1024 != 0,
            "{name}: {len} has a body and a tail"
        );
        for (at, bad) in [(0, f32::NAN), (len / 2, f32::INFINITY), (len - 1, f32::NAN)] {
            let mut cpu = CpuPlan::new(gp.plan.clone()).unwrap();
            cpu.run(&["check_params"]).unwrap();
            assert!(cpu.f32s(gp.param_sums).iter().all(|v| v.is_finite()));
            let mut poisoned = cpu.f32s(net.params).to_vec();
            poisoned[at] = bad;
            cpu.write(net.params, &poisoned);
            cpu.run(&["check_params"]).unwrap();
            let sums = cpu.f32s(gp.param_sums).to_vec();
            assert!(
                sums.iter().any(|v| !v.is_finite()),
                "CPU, {name}[{at}] = {bad}: {sums:?}"
            );
            if let Some(ctx) = ctx {
                let g = GpuPlan::new(ctx, gp.plan.clone()).unwrap();
                g.write(ctx, net.params, &poisoned);
                g.run(ctx, &["check_params"]).unwrap();
                let sums = read_gpu(&g, gp.param_sums);
                assert!(
                    sums.iter().any(|v| !v.is_finite()),
                    "GPU, {name}[{at}] = {bad}: {sums:?}"
                );
            }
        }
    }
}

/// The seed step's launches, by kernel, as `train --profile` counts them:
/// 21 at batch 64 (per-layer small matmuls), 15 from 1024 rows (the fused
/// forward), and every fusion of the step in place: one draw for both
/// noises, one G forward over both fake batches, the loss with the logit
/// layer's input gradient, one weight-gradient launch per network, and
/// Adam advancing its own counter (no `increment`, no `random_normal`).
#[test]
fn the_seed_step_launches_what_the_fusions_leave() {
    for (batch, want) in [(64, 19), (1024, 13)] {
        let cfg = GanConfig {
            batch,
            ..GanConfig::default()
        };
        let gp = build_gan_plan(&cfg, &image_data(batch + 3), InitialParams::default()).unwrap();
        let names: Vec<&str> = ["d_step", "g_step"]
            .iter()
            .flat_map(|p| {
                gp.plan
                    .phase(p)
                    .unwrap()
                    .ops
                    .iter()
                    .map(|op| op.kernel_name())
            })
            .collect();
        assert_eq!(names.len(), want, "batch {batch}: {names:?}");
        let count = |name: &str| names.iter().filter(|n| **n == name).count();
        assert_eq!(count("draw_batch"), 1, "batch {batch}");
        assert_eq!(
            count("random_normal") + count("increment"),
            0,
            "batch {batch}"
        );
        assert_eq!(count("bce_means"), 2, "batch {batch}");
        assert_eq!(count("matmul_dw_group_adam"), 2, "batch {batch}");
        assert_eq!(count("adam") + count("matmul_dw_group"), 0, "batch {batch}");
        let forwards = if batch >= 1024 { 3 } else { 0 };
        assert_eq!(count("mlp_forward"), forwards, "batch {batch}");
        let heads = ["d_step", "g_step"]
            .iter()
            .flat_map(|p| gp.plan.phase(p).unwrap().ops.iter())
            .filter(|op| matches!(op, shadergan::plan::Op::BceMeans { head: Some(_), .. }))
            .count();
        assert_eq!(
            heads, 2,
            "batch {batch}: both losses carry the logit layer's input gradient"
        );
    }
}
