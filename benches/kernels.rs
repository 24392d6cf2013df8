//! Criterion benches: the cases of `shadergan bench` (src/bench/cases.rs) on
//! the GPU and on the CPU backend, side by side in one run.
//! `cargo bench` (set SHADERGAN_ADAPTER to pick a GPU).
//!
//! GPU timings here include submit and wait (what a caller sees for one
//! launch, or one GAN step); `shadergan bench` adds device times from
//! timestamp queries and many launches per submit.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shadergan::bench::cases::{self, Case, Unit};
use shadergan::cpu::CpuPlan;
use shadergan::gpu::{GpuContext, GpuPlan};

fn bench_cases(c: &mut Criterion, group: &str, list: Vec<Case>, ctx: Option<&GpuContext>) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    for case in list {
        match case.unit {
            Unit::Gflops => g.throughput(Throughput::Elements(case.work as u64)),
            Unit::GBps => g.throughput(Throughput::Bytes(case.work as u64)),
            Unit::StepsPerSecond | Unit::SeedStepsPerSecond => {
                g.throughput(Throughput::Elements(case.work as u64))
            }
        };
        let mut cpu = CpuPlan::new(case.plan.clone()).expect("the case builds");
        g.bench_function(BenchmarkId::new("cpu", &case.name), |b| {
            b.iter(|| cpu.run(&case.phases).unwrap())
        });
        if let Some(ctx) = ctx {
            let gpu = GpuPlan::new(ctx, case.plan.clone()).expect("the case builds");
            g.bench_function(BenchmarkId::new("gpu", &case.name), |b| {
                b.iter(|| {
                    gpu.run(ctx, &case.phases).unwrap();
                    ctx.wait_idle().unwrap();
                })
            });
        }
    }
    g.finish();
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
    let ctx = ctx.as_ref();
    let mut matmuls: Vec<Case> = [64, 256, 1024]
        .iter()
        .map(|&n| cases::matmul(&format!("{n}³"), n, n, n))
        .collect();
    matmuls.push(cases::matmul("64×784→128 (D layer 1)", 64, 128, 784));
    matmuls.push(cases::matmul_dw("dW 128×784, K=64", 64, 128, 784));
    bench_cases(c, "matmul", matmuls, ctx);
    let mut elementwise = cases::elementwise(1 << 20);
    elementwise.push(cases::adam(1 << 20));
    bench_cases(c, "elementwise", elementwise, ctx);
    let steps = [64, 256, 1024]
        .iter()
        .map(|&b| cases::gan_step(b, 128).expect("the step builds"))
        .collect();
    bench_cases(c, "gan_step", steps, ctx);
}

criterion_group!(kernels, benches);
criterion_main!(kernels);
