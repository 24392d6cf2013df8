//! The counter-based RNG on the device: statistics, determinism, and fresh
//! numbers for every seed, stream and step.

mod common;

use common::*;
use shadergan::gpu::GpuPlan;
use shadergan::plan::{Op, Plan, RandomSource, Slice};

const N: usize = 1_000_000;

/// Draws `N` normals and `N` uniforms on the GPU for one (seed, stream, step).
fn draw(seed: u64, stream: u32, step: u32) -> Option<(Vec<f32>, Vec<f32>)> {
    let mut plan = Plan::default();
    let counter = input_u32(&mut plan, "counter", &[step]);
    let source = RandomSource {
        seed,
        stream,
        counter,
    };
    let normal = output_f32(&mut plan, "normal", N);
    let unif = output_f32(&mut plan, "uniform", N);
    plan.add_phase(
        "draw",
        vec![
            Op::RandomNormal {
                out: normal,
                source,
            },
            Op::RandomUniform { out: unif, source },
        ],
    );
    let ctx = gpu()?;
    let g = GpuPlan::new(ctx, plan).expect("plan");
    g.run(ctx, &["draw"]).expect("run");
    Some((read_gpu(&g, normal), read_gpu(&g, unif)))
}

fn mean_var(x: &[f32]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    (mean, var)
}

#[test]
fn a_million_normals_have_mean_zero_and_variance_one() {
    let Some((normal, unif)) = draw(12345, 1, 0) else {
        return;
    };
    assert!(normal.iter().all(|v| v.is_finite()));
    let n = N as f64;
    // Five standard errors: mean ~ N(0, 1/n); sample variance ~ N(1, 2/n).
    let (m, v) = mean_var(&normal);
    assert!(m.abs() < 5.0 / n.sqrt(), "normal mean {m}");
    assert!(
        (v - 1.0).abs() < 5.0 * (2.0 / n).sqrt(),
        "normal variance {v}"
    );
    // Uniform [0, 1): mean 1/2 ± 5·sqrt(1/12n), variance 1/12 ± 5·sqrt(1/180n).
    assert!(unif.iter().all(|&u| (0.0..1.0).contains(&u)));
    let (m, v) = mean_var(&unif);
    assert!(
        (m - 0.5).abs() < 5.0 * (1.0 / (12.0 * n)).sqrt(),
        "uniform mean {m}"
    );
    assert!(
        (v - 1.0 / 12.0).abs() < 5.0 * (1.0 / (180.0 * n)).sqrt(),
        "uniform variance {v}"
    );
    // Tails: P(|z| > 3) = 0.0027.
    let tail = normal.iter().filter(|z| z.abs() > 3.0).count() as f64 / n;
    assert!(
        (tail - 0.0027).abs() < 5.0 * (0.0027 / n).sqrt(),
        "tail mass {tail}"
    );
}

#[test]
fn same_seed_same_numbers_different_seed_different_numbers() {
    let (Some(a), Some(b)) = (draw(7, 0, 3), draw(7, 0, 3)) else {
        return;
    };
    assert_eq!(
        a, b,
        "the same seed, stream and step must give identical bits"
    );
    for (seed, stream, step) in [(8, 0, 3), (7, 1, 3), (7, 0, 4), (7 | 1 << 40, 0, 3)] {
        let c = draw(seed, stream, step).expect("a GPU");
        let same = a.0.iter().zip(&c.0).filter(|(x, y)| x == y).count();
        assert!(
            same < N / 1000,
            "seed {seed} stream {stream} step {step}: {same} of {N} normals equal to the base draw"
        );
    }
}

#[test]
fn the_device_counter_gives_each_step_fresh_numbers() {
    let mut plan = Plan::default();
    let counter: Slice = input_u32(&mut plan, "counter", &[0]);
    let out = output_f32(&mut plan, "out", 1000);
    plan.add_phase(
        "step",
        vec![
            Op::RandomNormal {
                out,
                source: RandomSource {
                    seed: 1,
                    stream: 0,
                    counter,
                },
            },
            Op::Increment { counter },
        ],
    );
    let Some(ctx) = gpu() else {
        return;
    };
    let g = GpuPlan::new(ctx, plan).expect("plan");
    g.run(ctx, &["step"]).unwrap();
    let first = read_gpu(&g, out);
    g.run(ctx, &["step"]).unwrap();
    let second = read_gpu(&g, out);
    assert_ne!(first, second);
    assert_eq!(read_gpu_u32(&g, counter), vec![2]);
}
