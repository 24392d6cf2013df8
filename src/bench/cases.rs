//! The benchmark cases: each one a [`Plan`] that runs unchanged on both
//! backends, with the work one run of its phases does (flops, bytes or steps).

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::gan::{GanConfig, InitialParams, ModelSpec, TrainingData, build_gan_plan};
use crate::plan::{
    Activation, AdamHyper, Elem, Init, Op, Plan, RandomSource, RowFormat, WeightGrad,
    matmul_dw_splits,
};

/// What a case's figure counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Unit {
    /// 10⁹ floating-point operations per second (a multiply-add is two).
    #[serde(rename = "GFLOP/s")]
    Gflops,
    /// 10⁹ bytes read plus written per second.
    #[serde(rename = "GB/s")]
    GBps,
    /// Whole GAN training steps (one D update and one G update) per second.
    #[serde(rename = "steps/s")]
    StepsPerSecond,
    /// Whole steps per second summed over the seeds of a seed-batched plan.
    #[serde(rename = "seed-steps/s")]
    SeedStepsPerSecond,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::Gflops => "GFLOP/s",
            Unit::GBps => "GB/s",
            Unit::StepsPerSecond => "steps/s",
            Unit::SeedStepsPerSecond => "seed-steps/s",
        }
    }

    /// Work units per figure unit (flops and bytes are reported in 10⁹).
    pub fn scale(self) -> f64 {
        match self {
            Unit::Gflops | Unit::GBps => 1e9,
            Unit::StepsPerSecond | Unit::SeedStepsPerSecond => 1.0,
        }
    }
}

/// One benchmark: a plan, the phases one repetition runs, and the work they do.
pub struct Case {
    /// `matmul`, `conv`, `elementwise` or `step`.
    pub group: &'static str,
    pub name: String,
    pub unit: Unit,
    /// Flops, bytes or steps in one run of `phases`.
    pub work: f64,
    pub phases: Vec<&'static str>,
    pub plan: Plan,
    /// Whether the CPU backend runs it too (not where its reference kernels
    /// would take minutes per repetition: the DCGAN step).
    pub cpu_too: bool,
}

/// The suite: matmul sizes 64…4096 and the GAN's own layer shapes, the
/// DCGAN's convolutions, the elementwise kernels and Adam, and whole steps of the seed and a large
/// configuration. `quick` keeps the small sizes (a smoke test in seconds).
pub fn suite(quick: bool) -> anyhow::Result<Vec<Case>> {
    let mut cases = Vec::new();
    let sizes: &[usize] = if quick {
        &[64, 128]
    } else {
        &[64, 128, 256, 512, 1024, 2048, 4096]
    };
    for &n in sizes {
        cases.push(matmul(&format!("{n}³"), n, n, n));
    }
    // The seed model's largest layers at batch 64: forward of D's first layer,
    // its weight gradient (K = the batch), and G's output layer.
    cases.push(matmul("64×784→128 (D layer 1)", 64, 128, 784));
    cases.push(matmul_dw("dW 128×784, K=64 (D layer 1)", 64, 128, 784));
    if !quick {
        // The large step's hidden layer (batch 4096, hidden 1024).
        cases.push(matmul_dw("dW 1024×1024, K=4096", 4096, 1024, 1024));
    }
    cases.push(matmul("64×128→784 (G output)", 64, 784, 128));

    if quick {
        let g = crate::plan::ConvGeom::conv([2, 3, 9, 9], 8, (5, 5), (2, 2), (2, 2));
        cases.extend(super::conv::conv_cases(
            "3→8, 9→5",
            &g.expect("valid"),
            true,
        ));
    } else {
        for (label, g) in super::conv::dcgan_layers(64) {
            cases.extend(super::conv::conv_cases(label, &g, true));
        }
        // The training preset's batch: GPU only (a few seconds a launch on 2 cores).
        for (label, g) in super::conv::dcgan_layers(256) {
            cases.extend(super::conv::conv_cases(label, &g, false));
        }
    }

    let n = if quick { 1 << 16 } else { 1 << 24 };
    cases.extend(elementwise(n));
    cases.push(adam(if quick { 1 << 16 } else { 1 << 22 }));

    let step_configs: &[(usize, usize)] = if quick {
        &[(64, 128)]
    } else {
        &[(64, 128), (256, 128), (1024, 128), (4096, 1024)]
    };
    for &(batch, hidden) in step_configs {
        cases.push(gan_step(batch, hidden)?);
    }
    let seed_counts: &[usize] = if quick { &[1, 3] } else { &[1, 4, 10, 32] };
    for &seeds in seed_counts {
        cases.push(seed_batched_step(64, 128, seeds)?);
    }
    if !quick {
        for batch in [64, 256] {
            cases.push(dcgan_step(batch)?);
        }
    }
    Ok(cases)
}

pub(super) fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
}

/// `y[m,n] = relu(x[m,k]·w[n,k]ᵀ + b)`.
pub fn matmul(name: &str, m: usize, n: usize, k: usize) -> Case {
    let mut plan = Plan::default();
    let x = plan.buffer("x", Elem::F32, m * k, Init::F32(random(m * k, 1)));
    let w = plan.buffer("w", Elem::F32, n * k, Init::F32(random(n * k, 2)));
    let b = plan.buffer("b", Elem::F32, n, Init::F32(random(n, 3)));
    let y = plan.f32_buffer("y", m * n);
    plan.add_phase(
        "op",
        vec![Op::MatmulBiasAct {
            x,
            w,
            b: Some(b),
            y,
            m,
            n,
            k,
            act: Activation::Relu,
        }],
    );
    Case {
        group: "matmul",
        name: format!("matmul {name}"),
        unit: Unit::Gflops,
        work: 2.0 * (m * n * k) as f64,
        phases: vec!["op"],
        plan,
        cpu_too: true,
    }
}

/// `dw[n,k] = Σ_m dy[m,n]·x[m,k]`: a weight gradient, reduced over the
/// batch, split and summed as the training step runs it
/// ([`WeightGrad::split_ops`]).
pub fn matmul_dw(name: &str, m: usize, n: usize, k: usize) -> Case {
    let mut plan = Plan::default();
    let dy = plan.buffer("dy", Elem::F32, m * n, Init::F32(random(m * n, 4)));
    let x = plan.buffer("x", Elem::F32, m * k, Init::F32(random(m * k, 5)));
    let dw = plan.f32_buffer("dw", n * k);
    let grad = WeightGrad {
        dy,
        x,
        dw,
        m,
        n,
        k,
        db: None,
    };
    let splits = matmul_dw_splits(m, n, k);
    let partials = (splits > 1).then(|| plan.f32_buffer("partials", splits * n * k));
    plan.add_phase("op", grad.split_ops(partials));
    let label = match splits {
        1 => format!("matmul {name}"),
        s => format!("matmul {name} ({s} splits)"),
    };
    Case {
        group: "matmul",
        name: label,
        unit: Unit::Gflops,
        work: 2.0 * (m * n * k) as f64,
        phases: vec!["op"],
        plan,
        cpu_too: true,
    }
}

fn one_op(name: String, bytes: f64, plan_with: impl FnOnce(&mut Plan) -> Op) -> Case {
    let mut plan = Plan::default();
    let op = plan_with(&mut plan);
    plan.add_phase("op", vec![op]);
    Case {
        group: "elementwise",
        name,
        unit: Unit::GBps,
        work: bytes,
        phases: vec!["op"],
        plan,
        cpu_too: true,
    }
}

/// Activations, the bias-gradient reduction, the noise and the batch gather, over `n` elements.
pub fn elementwise(n: usize) -> Vec<Case> {
    let f = 4.0;
    let nf = n as f64;
    let cols = 1024;
    let batch_rows = n / 784;
    vec![
        one_op(format!("tanh forward ({n})"), 2.0 * f * nf, |p| {
            let x = p.buffer("x", Elem::F32, n, Init::F32(random(n, 6)));
            Op::ActivationForward {
                x,
                y: p.f32_buffer("y", n),
                act: Activation::Tanh,
            }
        }),
        one_op(format!("relu backward ({n})"), 3.0 * f * nf, |p| {
            let y = p.buffer("y", Elem::F32, n, Init::F32(random(n, 7)));
            let dy = p.buffer("dy", Elem::F32, n, Init::F32(random(n, 8)));
            Op::ActivationBackward {
                y,
                dy,
                dx: p.f32_buffer("dx", n),
                act: Activation::Relu,
            }
        }),
        one_op(format!("column_sum ({}×{cols})", n / cols), f * nf, |p| {
            let x = p.buffer("x", Elem::F32, n, Init::F32(random(n, 9)));
            Op::ColumnSum {
                x,
                out: p.f32_buffer("out", cols),
                rows: n / cols,
                cols,
            }
        }),
        one_op(format!("random_normal ({n})"), f * nf, |p| {
            let counter = p.buffer("counter", Elem::U32, 1, Init::Zeros);
            Op::RandomNormal {
                out: p.f32_buffer("z", n),
                source: RandomSource {
                    seed: 1,
                    stream: 0,
                    counter,
                },
            }
        }),
        one_op(
            format!("gather u8 rows ({batch_rows}×784)"),
            // A byte in, an f32 out per element, and the row indices.
            (1.0 + f) * (batch_rows * 784) as f64 + f * batch_rows as f64,
            |p| {
                let source_rows = 10_000;
                let mut r = StdRng::seed_from_u64(10);
                let bytes: Vec<u8> = (0..source_rows * 784).map(|_| r.random()).collect();
                let words = crate::cpu::kernels::pack_bytes(&bytes);
                let src = p.buffer("data", Elem::U32, words.len(), Init::U32(words));
                let idx: Vec<u32> = (0..batch_rows)
                    .map(|_| r.random_range(0..source_rows as u32))
                    .collect();
                let indices = p.buffer("idx", Elem::U32, batch_rows, Init::U32(idx));
                Op::GatherRows {
                    src,
                    format: RowFormat::U8 {
                        center: 127.5,
                        scale: 2.0 / 255.0,
                    },
                    indices,
                    dst: p.f32_buffer("rows", batch_rows * 784),
                    cols: 784,
                }
            },
        ),
    ]
}

/// One Adam step over `n` parameters: reads p, g, m, v; writes p, m, v.
pub fn adam(n: usize) -> Case {
    let mut case = one_op(format!("adam ({n} params)"), 7.0 * 4.0 * n as f64, |p| {
        Op::Adam {
            params: p.buffer("p", Elem::F32, n, Init::F32(random(n, 11))),
            grads: p.buffer("g", Elem::F32, n, Init::F32(random(n, 12))),
            m: p.f32_buffer("m", n),
            v: p.f32_buffer("v", n),
            step: p.buffer("step", Elem::U32, 1, Init::Zeros),
            hyper: AdamHyper::default(),
            arrivals: None,
        }
    });
    case.group = "optimizer";
    case
}

/// Random 8-bit 28×28 rows, at least `batch` of them.
fn random_images(batch: usize, seed: u64) -> TrainingData {
    let rows = 10_000.max(batch);
    let mut r = StdRng::seed_from_u64(seed);
    TrainingData::U8 {
        rows,
        cols: 784,
        bytes: (0..rows * 784).map(|_| r.random::<u8>()).collect(),
    }
}

/// The seed model (z 100, `hidden`×2 ReLU, 784 tanh) at `batch`, weights from `seed`.
fn seed_model(batch: usize, hidden: usize, seed: u64) -> GanConfig {
    GanConfig {
        batch,
        seed,
        model: ModelSpec {
            hidden: vec![hidden, hidden],
            ..ModelSpec::seed_images()
        },
        ..GanConfig::default()
    }
}

/// A whole D + G step of the seed model (z 100, `hidden`×2 ReLU, 784 tanh) at `batch`,
/// on random 8-bit rows resident on the device.
pub fn gan_step(batch: usize, hidden: usize) -> anyhow::Result<Case> {
    let data = random_images(batch, 13);
    let cfg = seed_model(batch, hidden, 0);
    let plan = build_gan_plan(&cfg, &data, InitialParams::default())?.plan;
    Ok(Case {
        group: "step",
        name: format!("GAN step, batch {batch}, hidden {hidden},{hidden}"),
        unit: Unit::StepsPerSecond,
        work: 1.0,
        phases: vec!["d_step", "g_step"],
        plan,
        cpu_too: true,
    })
}

/// A whole step of `seeds` seed models at once (seeds 0, 1, …, one
/// seed-batched plan over the same rows): the figure counts seed-steps.
pub fn seed_batched_step(batch: usize, hidden: usize, seeds: usize) -> anyhow::Result<Case> {
    let data = random_images(batch, 13);
    let plans = (0..seeds as u64)
        .map(|s| {
            Ok(build_gan_plan(
                &seed_model(batch, hidden, s),
                &data,
                InitialParams::default(),
            )?
            .plan)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (plan, _) = crate::plan::batch_seeds(plans)?;
    Ok(Case {
        group: "seeds",
        name: format!(
            "{seeds} seed{} in one step, batch {batch}, hidden {hidden},{hidden}",
            if seeds == 1 { "" } else { "s" }
        ),
        unit: Unit::SeedStepsPerSecond,
        work: seeds as f64,
        phases: vec!["d_step", "g_step"],
        plan,
        cpu_too: true,
    })
}

/// A whole D + G step of the TensorFlow tutorial's DCGAN at `batch`, on
/// random 8-bit 28×28 images resident on the device.
pub fn dcgan_step(batch: usize) -> anyhow::Result<Case> {
    let rows = 10_000.max(batch);
    let mut r = StdRng::seed_from_u64(14);
    let data = TrainingData::U8 {
        rows,
        cols: 784,
        bytes: (0..rows * 784).map(|_| r.random::<u8>()).collect(),
    };
    let cfg = crate::gan::seq_step::SeqGanConfig::tf_dcgan(batch, 0);
    let plan = crate::gan::seq_step::build_seq_gan_plan(&cfg, &data)?.plan;
    Ok(Case {
        group: "step",
        name: format!("DCGAN step, batch {batch}"),
        unit: Unit::StepsPerSecond,
        work: 1.0,
        phases: vec!["d_step", "g_step"],
        plan,
        // About 30 GFLOP a step at batch 64: a minute per step on the
        // reference convolutions.
        cpu_too: false,
    })
}
