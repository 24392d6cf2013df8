//! The split dense-layer weight gradient (`Op::MatmulDwSplit`, the 128-tile
//! kernel's split launch, then `Op::SumSplits`): GPU against the CPU
//! reference at awkward shapes with the partials poisoned, the splits adding
//! up to the unsplit gradient, and the lowering's choice for the large step.

mod common;

use common::matmul_cases::{SHAPES, check_split_dw};
use shadergan::plan::{Op, Plan, matmul_dw_splits};

/// 1, 2, 3, 7 and 19 splits (19: the last ones empty, and added in eight
/// lanes on the GPU).
#[test]
fn split_weight_gradients_match_the_cpu_and_the_whole() {
    for (i, &mnk) in SHAPES.iter().enumerate() {
        for splits in [1, 2, 3, 7, 19] {
            check_split_dw(mnk, splits, 40 + i as u64);
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
        ("matmul_bias_act_128_prefetch", [8, 8, 4])
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
