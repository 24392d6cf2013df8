//! Where a GAN step's time goes on the GPU: per-kernel device times from
//! timestamp queries, and steps/s when many steps go in one submit.
//!
//!     cargo run --release --example step_profile -- [batch] [hidden]
//!     cargo run --release --example step_profile -- dcgan [batch]
//!     cargo run --release --example step_profile -- seeds K [batch] [hidden]
//!
//! The seed model's step (hidden width `hidden`), the TensorFlow
//! tutorial's DCGAN, or K seed models in one seed-batched step. Uses random 8-bit 28×28 rows (no dataset needed); set
//! SHADERGAN_ADAPTER to pick a GPU.

use std::time::Instant;

use shadergan::gpu::{GpuContext, GpuPlan, profile};

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let kind = match args.first().map(String::as_str) {
        Some(k @ ("dcgan" | "seeds")) => {
            let k = k.to_string();
            args.remove(0);
            k
        }
        _ => "seed".to_string(),
    };
    let mut sizes: Vec<usize> = args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    let seeds = if kind == "seeds" { sizes.remove(0) } else { 1 };
    let batch = sizes.first().copied().unwrap_or(64);
    let hidden = sizes.get(1).copied().unwrap_or(128);
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    // The same steps as `shadergan bench`'s step cases.
    let case = match kind.as_str() {
        "dcgan" => shadergan::bench::cases::dcgan_step(batch)?,
        "seeds" => shadergan::bench::cases::seed_batched_step(batch, hidden, seeds)?,
        _ => shadergan::bench::cases::gan_step(batch, hidden)?,
    };
    let plan = GpuPlan::new(&ctx, case.plan)?;
    let step = ["d_step", "g_step"];

    // Latency: one step per submit, waiting for each.
    plan.run(&ctx, &step)?;
    ctx.wait_idle()?;
    let n = 50;
    let t = Instant::now();
    for _ in 0..n {
        plan.run(&ctx, &step)?;
        ctx.wait_idle()?;
    }
    let latency = t.elapsed().as_secs_f64() / n as f64;

    // Throughput: many steps recorded into each submit, one wait at the end.
    let per_submit = 25;
    let submits = 20;
    let phases: Vec<&str> = step.iter().copied().cycle().take(2 * per_submit).collect();
    let t = Instant::now();
    for _ in 0..submits {
        plan.run(&ctx, &phases)?;
    }
    ctx.wait_idle()?;
    let throughput = (per_submit * submits) as f64 / t.elapsed().as_secs_f64();
    println!(
        "{}: {:.3} ms/step with a wait per step; {throughput:.1} steps/s with {per_submit} steps per submit",
        case.name,
        latency * 1e3
    );

    let times = profile(&ctx, &plan, &step, 20)?;
    let total: f64 = times.iter().map(|k| k.mean_ns).sum();
    println!(
        "per-kernel device time (mean of 20 profiled steps), total {:.1} us:",
        total / 1e3
    );
    for k in &times {
        println!(
            "  {:7} {:2} {:20} {:9.1} us {:5.1}%",
            k.phase,
            k.index,
            k.kernel,
            k.mean_ns / 1e3,
            100.0 * k.mean_ns / total
        );
    }
    Ok(())
}
