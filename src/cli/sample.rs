//! `shadergan sample`: draw from a checkpoint's generator into a PNG.

use std::path::PathBuf;

use clap::Args;
use rand::SeedableRng;
use shadergan::backend::Executor;
use shadergan::data::{DataKind, Mixture};
use shadergan::gan::bn_stats::sampling_state;
use shadergan::gan::{build_sampler_plan, fixed_noise, trainer::render_samples};
use shadergan::io::{atomic::write_atomic, checkpoint};

use super::DeviceArgs;

#[derive(Args, Clone, Debug)]
pub struct SampleArgs {
    /// A checkpoint.safetensors written by `train`.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: PathBuf,
    /// How many samples.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The PNG to write (refused if it exists, unless --overwrite).
    #[arg(long, value_name = "FILE", default_value = "samples.png")]
    pub out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    pub overwrite: bool,
    /// BatchNorm statistics of a layer-list generator's samples.
    #[arg(long, value_enum, default_value_t = super::BnStatsArg::Running)]
    pub bn_stats: super::BnStatsArg,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// What the generated rows look like, from the checkpoint's dataset and size.
fn data_kind(dataset: &str, data_dim: usize) -> anyhow::Result<DataKind> {
    match dataset {
        "ring" | "grid" => {
            anyhow::ensure!(
                data_dim == 2,
                "its dataset is '{dataset}' (2-D points) but its generator makes \
                 {data_dim}-dimensional samples"
            );
            Ok(DataKind::Points(
                Mixture::named(dataset).expect("ring and grid are mixtures"),
            ))
        }
        _ => {
            let side = (data_dim as f64).sqrt().round() as usize;
            anyhow::ensure!(
                side * side == data_dim,
                "cannot draw {data_dim}-dimensional samples of '{dataset}' as square images"
            );
            Ok(DataKind::Images {
                rows: side,
                cols: side,
            })
        }
    }
}

pub fn run(a: &SampleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.n > 0, "--n must be at least 1");
    anyhow::ensure!(a.n <= 100_000, "--n {} is more than 100000 samples", a.n);
    anyhow::ensure!(
        a.overwrite || !a.out.exists(),
        "{} already exists; choose another --out or pass --overwrite",
        a.out.display()
    );
    let ck = checkpoint::load(&a.checkpoint)?;
    let kind = data_kind(&ck.dataset, ck.model.data_dim())
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.checkpoint.display()))?;
    let z = fixed_noise(a.seed, a.n, ck.model.z_dim());
    let averaged = ck.generator_ema.is_some();
    let selected = a.device.select()?;
    let g_state = sampling_state(
        selected.gpu.as_ref(),
        &ck.model,
        ck.sampling_generator(),
        a.bn_stats.into(),
    )?;
    let (plan, out) = build_sampler_plan(&ck.model, g_state, z)?;
    let mut exec = Executor::new(selected.gpu, plan, vec![])?;
    exec.run(&["sample"], None)?;
    let values = exec.read(out)?;
    let background: Vec<[f32; 2]> = match &kind {
        DataKind::Points(m) => m
            .sample(2000, &mut rand::rngs::StdRng::seed_from_u64(0))
            .chunks_exact(2)
            .map(|p| [p[0], p[1]])
            .collect(),
        DataKind::Images { .. } => Vec::new(),
    };
    write_atomic(&a.out, &render_samples(&values, &kind, &background)?)?;
    println!(
        "wrote {} samples of {} (step {}{}) to {}",
        a.n,
        a.checkpoint.display(),
        ck.step,
        if averaged { ", G's moving average" } else { "" },
        a.out.display()
    );
    Ok(())
}
