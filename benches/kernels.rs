//! Criterion benches: GPU kernels and whole GAN steps against the CPU backend,
//! side by side in one run. `cargo bench` (set SHADERGAN_ADAPTER to pick a GPU).
//!
//! GPU timings include submit and wait (what a caller sees for one launch);
//! the `bench` command and the profiler give per-kernel device times.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng, rngs::StdRng};
use shadergan::cpu::CpuPlan;
use shadergan::gan::{GanConfig, InitialParams, TrainingData, build_gan_plan};
use shadergan::gpu::{GpuContext, GpuPlan};
use shadergan::plan::{Activation, Elem, Init, Op, Plan};

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
}

fn matmul_plan(size: usize) -> Plan {
    let mut plan = Plan::default();
    let n2 = size * size;
    let x = plan.buffer("x", Elem::F32, n2, Init::F32(random(n2, 1)));
    let w = plan.buffer("w", Elem::F32, n2, Init::F32(random(n2, 2)));
    let b = plan.buffer("b", Elem::F32, size, Init::F32(random(size, 3)));
    let y = plan.f32_buffer("y", n2);
    plan.add_phase(
        "op",
        vec![Op::MatmulBiasAct {
            x,
            w,
            b: Some(b),
            y,
            m: size,
            n: size,
            k: size,
            act: Activation::Relu,
        }],
    );
    plan
}

fn bench_matmul(c: &mut Criterion, ctx: Option<&GpuContext>) {
    let mut group = c.benchmark_group("matmul_bias_act");
    group.sample_size(10);
    for size in [64usize, 256, 512] {
        group.throughput(Throughput::Elements((2 * size * size * size) as u64));
        let mut cpu = CpuPlan::new(matmul_plan(size)).unwrap();
        group.bench_with_input(BenchmarkId::new("cpu", size), &size, |b, _| {
            b.iter(|| cpu.run(&["op"]).unwrap())
        });
        if let Some(ctx) = ctx {
            let gpu = GpuPlan::new(ctx, matmul_plan(size)).unwrap();
            group.bench_with_input(BenchmarkId::new("gpu", size), &size, |b, _| {
                b.iter(|| {
                    gpu.run(ctx, &["op"]).unwrap();
                    ctx.wait_idle().unwrap();
                })
            });
        }
    }
    group.finish();
}

fn bench_gan_step(c: &mut Criterion, ctx: Option<&GpuContext>) {
    let mut group = c.benchmark_group("gan_step_seed_config");
    group.sample_size(10);
    let mut r = StdRng::seed_from_u64(4);
    let data = TrainingData::U8 {
        rows: 1000,
        cols: 784,
        bytes: (0..1000 * 784).map(|_| r.random::<u8>()).collect(),
    };
    for batch in [64usize, 256] {
        let cfg = GanConfig {
            batch,
            ..GanConfig::default()
        };
        let plan = build_gan_plan(&cfg, &data, InitialParams::default())
            .unwrap()
            .plan;
        let mut cpu = CpuPlan::new(plan.clone()).unwrap();
        group.bench_with_input(BenchmarkId::new("cpu", batch), &batch, |b, _| {
            b.iter(|| cpu.run(&["d_step", "g_step"]).unwrap())
        });
        if let Some(ctx) = ctx {
            let gpu = GpuPlan::new(ctx, plan).unwrap();
            group.bench_with_input(BenchmarkId::new("gpu", batch), &batch, |b, _| {
                b.iter(|| {
                    gpu.run(ctx, &["d_step", "g_step"]).unwrap();
                    ctx.wait_idle().unwrap();
                })
            });
        }
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => {
            eprintln!("GPU: {}", ctx.describe());
            Some(ctx)
        }
        Err(e) => {
            eprintln!("no GPU benches: {e}");
            None
        }
    };
    bench_matmul(c, ctx.as_ref());
    bench_gan_step(c, ctx.as_ref());
}

criterion_group!(kernels, benches);
criterion_main!(kernels);
