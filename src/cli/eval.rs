//! `shadergan eval`: score one checkpoint with the published protocols, or
//! over several noise draws of a mixture checkpoint's modes.

use std::path::PathBuf;

use clap::Args;
use shadergan::eval::draws;
use shadergan::eval::report::{Request, check_data_dim, evaluate};
use shadergan::io::checkpoint;

use super::DeviceArgs;
use super::report::print_report;

#[derive(Args, Clone, Debug)]
pub struct EvalArgs {
    /// The checkpoint.safetensors to score.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: PathBuf,
    /// Score as this dataset [default: the checkpoint's].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder with the dataset's train-* and t10k-* files (MNIST format).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Seed of the noise the samples are drawn from.
    #[arg(long, default_value_t = 1)]
    pub noise_seed: u64,
    /// Score K draws of a mixture checkpoint's modes (noise seeds S..S+K, S = --noise-seed)
    /// and report mean ± standard error over the draws; the published protocol is one draw.
    #[arg(long, value_name = "K")]
    pub noise_seeds: Option<u64>,
    /// Skip the Parzen estimate (the slowest protocol).
    #[arg(long)]
    pub no_parzen: bool,
    /// BatchNorm statistics of a layer-list generator's samples.
    #[arg(long, value_enum, default_value_t = super::BnStatsArg::Running)]
    pub bn_stats: super::BnStatsArg,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn run(a: &EvalArgs) -> anyhow::Result<()> {
    // A bad checkpoint is reported before anything else is printed.
    let ck = checkpoint::load(&a.checkpoint)?;
    let dataset = a.dataset.clone().unwrap_or(ck.dataset.clone());
    check_data_dim(&ck.model, &dataset)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.checkpoint.display()))?;
    if let Some(count) = a.noise_seeds {
        // Refused before a device is opened.
        draws::check(&dataset, a.noise_seed, count).map_err(super::settings::in_flags)?;
        let gpu = a.device.select()?.gpu;
        let sweep = draws::score_draws(
            gpu.as_ref(),
            &ck.model,
            ck.sampling_generator(),
            &dataset,
            ck.step,
            a.noise_seed,
            count,
        )?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&sweep)?);
        } else {
            sweep.lines().iter().for_each(|l| println!("{l}"));
        }
        return Ok(());
    }
    let gpu = a.device.select()?.gpu;
    let report = evaluate(
        gpu.as_ref(),
        &ck.model,
        ck.sampling_generator(),
        &Request {
            dataset: &dataset,
            step: ck.step,
            noise_seed: a.noise_seed,
            data_dir: a.data.as_deref(),
            with_parzen: !a.no_parzen,
            bn_stats: a.bn_stats.into(),
        },
    )
    .map_err(super::settings::any_in_flags)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}
