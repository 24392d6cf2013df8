//! Each example's main path, run small, so a broken example fails CI: on the
//! CPU backend, and on the GPU adapter when there is one (llvmpipe in CI,
//! where SHADERGAN_REQUIRE_GPU=1 makes a missing adapter a failure). Each
//! test checks what its example claims, not only that it ran.

mod common;

use common::scratch;

#[allow(dead_code)]
#[path = "../examples/hello_plan.rs"]
mod hello_plan;

#[allow(dead_code)]
#[path = "../examples/custom_kernel.rs"]
mod custom_kernel;

#[allow(dead_code)]
#[path = "../examples/train_ring.rs"]
mod train_ring;

#[allow(dead_code)]
#[path = "../examples/matmul_study.rs"]
mod matmul_study;

use std::collections::HashMap;
use std::path::Path;

use shadergan::eval::report::{Request, evaluate};
use shadergan::gan::recipe::Recipe;
use shadergan::gan::trainer::Stats;
use shadergan::io::checkpoint;

/// hello_plan: the CPU backend computes the layer as written out by hand, and
/// the GPU backend agrees with it (at the example's shape and an awkward one).
#[test]
fn hello_plan_backends_agree_on_a_dense_layer() {
    use hello_plan::{forward, max_rel_err, random_layer};
    assert!(max_rel_err(&[f32::NAN, 1.0], &[1.0, 1.0]).is_nan());
    assert!(max_rel_err(&[1.5, 2.0], &[1.0, 2.0]) == 0.25);
    for (m, n, k) in [(64, 128, 784), (7, 33, 65)] {
        let layer = random_layer(m, n, k, 1);
        let cpu = forward(None, &layer).unwrap();
        let mut by_hand = vec![0.0f32; m * n];
        for (i, out) in by_hand.iter_mut().enumerate() {
            let (row, col) = (i / n, i % n);
            let x = &layer.x[row * k..(row + 1) * k];
            let w = &layer.w[col * k..(col + 1) * k];
            let dot: f32 = x.iter().zip(w).map(|(a, b)| a * b).sum();
            *out = (dot + layer.b[col]).max(0.0);
        }
        common::assert_close(max_rel_err(&cpu, &by_hand), 1e-5, "cpu vs by hand");
        if let Some(ctx) = common::gpu() {
            let gpu = forward(Some(ctx.clone()), &layer).unwrap();
            common::assert_close(
                max_rel_err(&gpu, &cpu),
                1e-4,
                &format!("gpu vs cpu {m}x{n}x{k}"),
            );
        }
    }
}

/// custom_kernel: the WGSL validates, and on the GPU matches its reference at
/// every awkward size without writing past the end of y.
#[test]
fn custom_kernel_validates_and_matches_its_reference() {
    custom_kernel::validate_with_naga().unwrap();
    let mut y = vec![1.0, 2.0];
    custom_kernel::scale_add_reference(3.0, &[1.0, -1.0], &mut y);
    assert_eq!(y, [4.0, -1.0]);
    let Some(ctx) = common::gpu() else { return };
    let errors = custom_kernel::check(ctx, &custom_kernel::SIZES, 7).unwrap();
    assert_eq!(errors.len(), custom_kernel::SIZES.len());
    for (n, err) in errors {
        common::assert_close(err, 1e-6, &format!("scale_add n={n}"));
    }
}

/// `losses.csv` as step → stats.
fn losses(dir: &Path) -> HashMap<u64, Stats> {
    let text = std::fs::read_to_string(dir.join("losses.csv")).unwrap();
    let rows = text.lines().skip(1).map(|line| {
        let v: Vec<f32> = line.split(',').map(|s| s.parse().unwrap()).collect();
        let stats = Stats {
            d_loss: v[1],
            g_loss: v[2],
            d_real: v[3],
            d_fake: v[4],
        };
        (v[0] as u64, stats)
    });
    rows.collect()
}

/// train_ring: training in legs equals one uninterrupted `train_recipe` call
/// (bitwise on the CPU, within 1e-5 on the GPU), each leg reports the losses
/// `losses.csv` holds for its last step, and the score is `eval`'s protocol
/// applied to the final checkpoint.
#[test]
fn train_ring_legs_equal_one_run_and_score_the_checkpoint() {
    let mut backends = vec![("cpu", None, 120)];
    if let Some(ctx) = common::gpu() {
        backends.push(("gpu", Some(ctx.clone()), 40));
    }
    for (backend, gpu, steps) in backends {
        let recipe = Recipe {
            steps,
            batch: 32,
            hidden: vec![32, 32],
            ..Recipe::preset("ring").unwrap()
        };
        let (legs_dir, whole_dir) = (
            scratch(&format!("ring-legs-{backend}")),
            scratch(&format!("ring-whole-{backend}")),
        );
        let mut legs = Vec::new();
        let score = train_ring::train_in_legs(&recipe, 4, gpu.clone(), &legs_dir, |s| {
            legs.push((s.steps, s.last))
        })
        .unwrap();
        let ends: Vec<u64> = legs.iter().map(|l| l.0).collect();
        assert_eq!(ends, [1, 2, 3, 4].map(|i| steps * i / 4), "{backend}");
        let logged = losses(&legs_dir);
        for (step, stats) in &legs {
            assert_eq!(
                logged.get(step),
                Some(stats),
                "{backend}: leg ending at {step}"
            );
        }
        let whole_score =
            train_ring::train_in_legs(&recipe, 1, gpu.clone(), &whole_dir, |_| {}).unwrap();
        let load = |d: &Path| checkpoint::load(&d.join("checkpoint.safetensors")).unwrap();
        let (a, b) = (load(&legs_dir), load(&whole_dir));
        assert_eq!(a.step, steps);
        if gpu.is_none() {
            assert!(
                a.generator == b.generator && a.discriminator == b.discriminator,
                "legs differ from one run"
            );
            assert_eq!(score, whole_score);
        } else {
            common::assert_close(
                common::norm_rel_err(&a.generator, &b.generator),
                1e-5,
                "gpu: G, legs vs one run",
            );
        }
        let request = Request {
            dataset: "ring",
            step: a.step,
            noise_seed: train_ring::NOISE_SEED,
            data_dir: None,
            with_parzen: false,
            bn_stats: Default::default(),
        };
        let report = evaluate(gpu.as_ref(), &a.model, a.sampling_generator(), &request).unwrap();
        assert_eq!(
            report.modes.as_ref(),
            Some(&score),
            "{backend}: the example's score is eval's"
        );
        assert_eq!((score.modes_total, score.samples), (8, 2500));
    }
}

/// matmul_study: every rung (and a variant file) matches the CPU backend at
/// awkward shapes, and the lowering's pick is marked once per shape.
#[test]
fn matmul_ladder_rungs_match_the_cpu() {
    let Some(ctx) = common::gpu() else { return };
    let variant = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/matmul.wgsl").to_string();
    let rungs = matmul_study::rungs(&[variant], false).unwrap();
    assert_eq!(rungs.len(), 8);
    // small vec4, small (K odd), small (K not a multiple of 4), 64-tile and
    // 128-tile picks; K below, at and above a slab of 16.
    let shapes = [
        (3, 7, 300),
        (65, 63, 17),
        (33, 130, 70),
        (700, 1000, 20),
        (2048, 2048, 3),
    ];
    let lines = matmul_study::ladder(ctx, &shapes, &rungs, 0.0, |_| {}).unwrap();
    let runnable = |s| rungs.iter().filter(|r| r.runs(s)).count();
    assert_eq!(
        lines.len(),
        shapes.iter().map(|&s| runnable(s)).sum::<usize>()
    );
    for l in &lines {
        common::assert_close(l.rel_err, 1e-4, &format!("{} at {:?}", l.rung, l.shape));
    }
    for (m, n, k) in shapes {
        let picked: Vec<&str> = lines
            .iter()
            .filter(|l| l.shape == (m, n, k) && l.picked)
            .map(|l| l.rung.as_str())
            .collect();
        let case = shadergan::bench::cases::matmul("", m, n, k);
        let entry = shadergan::gpu::lowering::lower(&case.plan.phases[0].ops[0]).entry;
        let want = rungs
            .iter()
            .find(|r| r.lowered && r.entry == entry)
            .map(|r| r.name.as_str());
        assert_eq!(picked, want.into_iter().collect::<Vec<_>>(), "{m}x{n}x{k}");
    }
}
