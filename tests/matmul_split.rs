//! The split dense-layer weight gradient (`Op::MatmulDwSplit`, the 128-tile
//! kernel's split launch, then `Op::SumSplits`): GPU against the CPU
//! reference at awkward shapes with the partials poisoned, the splits adding
//! up to the unsplit gradient, and the lowering's choice for the large step.

mod common;

use common::*;
use shadergan::plan::{Op, Plan, matmul_dw_splits, matmul_split_stretch};

/// `[m, n, k]` = (rows, outputs, inputs): 1s, odd sizes, sides that are not
/// multiples of the 128-tile, and more than one 128-tile on each side.
const SHAPES: [[usize; 3]; 5] = [
    [1, 1, 1],
    [7, 3, 5],
    [300, 33, 17],
    [129, 130, 7],
    [517, 131, 257],
];

fn check(mnk: [usize; 3], splits: usize, seed: u64) {
    let [m, n, k] = mnk;
    let mut r = rng(seed);
    let mut plan = Plan::default();
    let dy = input_f32(&mut plan, "dy", &uniform(&mut r, m * n, -1.0, 1.0));
    let x = input_f32(&mut plan, "x", &uniform(&mut r, m * k, -1.0, 1.0));
    let partials = output_f32(&mut plan, "partials", splits * (n * k + n));
    let grads = output_f32(&mut plan, "grads", 2 * (n * k + n));
    let (dw, db) = (grads.sub(0, n * k), grads.sub(n * k, n));
    let (whole_dw, whole_db) = (grads.sub(n * k + n, n * k), grads.sub(2 * n * k + n, n));
    let weights = splits * n * k;
    let ops = vec![
        Op::MatmulDwSplit {
            dy,
            x,
            partials,
            m,
            n,
            k,
            splits,
            with_db: true,
        },
        Op::SumSplits {
            partials: partials.sub(0, weights),
            out: dw,
            splits,
        },
        Op::SumSplits {
            partials: partials.sub(weights, splits * n),
            out: db,
            splits,
        },
        Op::MatmulDw {
            dy,
            x,
            dw: whole_dw,
            m,
            n,
            k,
            db: Some(whole_db),
        },
    ];
    plan.add_phase("ops", ops);
    assert!(matmul_split_stretch(m, splits).is_multiple_of(16));
    let what = format!("{mnk:?}, {splits} splits");
    let mut cpu = shadergan::cpu::CpuPlan::new(plan.clone()).unwrap();
    cpu.run(&["ops"]).unwrap();
    for (split, whole) in [(dw, whole_dw), (db, whole_db)] {
        let err = norm_rel_err(cpu.f32s(split), cpu.f32s(whole));
        assert_close(err, 1e-5, &format!("{what}: against the whole, on the CPU"));
    }
    let Some((cpu, gpu)) = run_both(plan, &["ops"]) else {
        return;
    };
    for (name, s) in [("partials", partials), ("dw", dw), ("db", db)] {
        let err = norm_rel_err(&read_gpu(&gpu, s), cpu.f32s(s));
        assert_close(err, 1e-4, &format!("{what}: {name}"));
    }
}

/// 1, 2, 3, 7 and 19 splits (19: the last ones empty, and added in eight
/// lanes on the GPU).
#[test]
fn split_weight_gradients_match_the_cpu_and_the_whole() {
    for (i, &mnk) in SHAPES.iter().enumerate() {
        for splits in [1, 2, 3, 7, 19] {
            check(mnk, splits, 40 + i as u64);
        }
    }
}

/// The large step's weight gradients (batch 4096, hidden 1024) split 4
/// ways onto the 128-tile kernel; the `mnist` preset's at batch 64 and
/// outputs that already fill the card do not split.
#[test]
fn the_large_steps_weight_gradients_split() {
    use shadergan::gpu::lowering::lower;
    assert_eq!(matmul_dw_splits(4096, 1024, 1024), 4);
    assert_eq!(matmul_dw_splits(4096, 784, 1024), 4);
    assert_eq!(matmul_dw_splits(64, 1024, 1024), 1);
    assert_eq!(matmul_dw_splits(4096, 4096, 4096), 1);
    let mut plan = Plan::default();
    let dy = plan.f32_buffer("dy", 4096 * 1024);
    let x = plan.f32_buffer("x", 4096 * 1024);
    let partials = plan.f32_buffer("partials", 4 * (1024 * 1024 + 1024));
    let call = lower(&Op::MatmulDwSplit {
        dy,
        x,
        partials,
        m: 4096,
        n: 1024,
        k: 1024,
        splits: 4,
        with_db: true,
    });
    assert_eq!(
        (call.entry, call.workgroups),
        ("matmul_bias_act_128", [8, 8, 4])
    );
}

/// The large GAN step (batch 4096, hidden 1024,1024) as `bench` builds it
/// runs its 1024-wide weight gradients split.
#[test]
fn the_large_step_plan_uses_split_weight_gradients() {
    let case = shadergan::bench::cases::gan_step(4096, 1024).expect("the large step");
    let d_step = case.plan.phase("d_step").expect("a D step");
    let names: Vec<_> = d_step.ops.iter().map(|op| op.kernel_name()).collect();
    assert!(names.contains(&"matmul_dw_split"), "{names:?}");
}
