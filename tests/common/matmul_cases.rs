//! The dense-layer weight-gradient cases both matmul split test binaries
//! run (`tests/matmul_split.rs` with the lowering's kernels,
//! `tests/matmul_plain128.rs` with the plain 128-tile kernel forced).

use super::*;
use shadergan::plan::{Op, Plan, matmul_split_stretch};

/// `[m, n, k]` = (rows, outputs, inputs): 1s, odd sizes, sides that are not
/// multiples of the 128-tile, and more than one 128-tile on each side.
pub const SHAPES: [[usize; 3]; 5] = [
    [1, 1, 1],
    [7, 3, 5],
    [300, 33, 17],
    [129, 130, 7],
    [517, 131, 257],
];

/// `Op::MatmulDwSplit` with `splits` splits and its sums at `mnk`: the CPU's
/// against its unsplit gradient, and the GPU's (partials poisoned) against
/// the CPU's.
pub fn check_split_dw(mnk: [usize; 3], splits: usize, seed: u64) {
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
