//! A GAN on the 8-Gaussian ring, trained through library calls (no CLI): the
//! `ring` recipe over fewer steps, printing the losses as it goes, then the
//! mode coverage of 2,500 samples (modes covered, high-quality fraction).
//!
//!     cargo run --release --example train_ring -- [OUT_DIR] [--steps N]
//!
//! 12,000 steps by default (the preset takes 32,000): 11 s of CPU time on a
//! 2-core x86-64 machine without a GPU, 2026-12-01 (the CPU backend; a
//! hardware GPU is used when there is one). The run folder (losses,
//! sample scatters, checkpoint) goes to OUT_DIR, which must be new or empty,
//! else to a fresh folder under the system's temporary directory.
//!
//! `train_recipe` trains up to a step count; resuming from the checkpoint it
//! wrote continues exactly (bitwise on the CPU backend), so the run goes in
//! legs and prints the losses after each.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use shadergan::backend::{BackendChoice, select};
use shadergan::data::{DatasetName, Mixture};
use shadergan::eval::modes::{self, ModeScore, center_label, score_modes};
use shadergan::gan::recipe::Recipe;
use shadergan::gan::trainer::{LoopOptions, Summary, train_recipe};
use shadergan::gpu::GpuContext;
use shadergan::io::checkpoint;

/// Seed of the weights, the minibatches and the mixture's points.
pub const SEED: u64 = 0;
/// Seed of the noise the final samples are drawn with (the one `train` scores with).
pub const NOISE_SEED: u64 = 1;

/// Trains `recipe` on the ring in `legs` legs into the new folder `out`,
/// handing each leg's summary (steps so far, last losses) to `on_leg`; returns
/// the final mode score.
pub fn train_in_legs(
    recipe: &Recipe,
    legs: u64,
    gpu: Option<GpuContext>,
    out: &Path,
    mut on_leg: impl FnMut(&Summary),
) -> anyhow::Result<ModeScore> {
    let dataset = shadergan::data::load(DatasetName::Ring, None, SEED)?.dataset;
    let legs = legs.clamp(1, recipe.steps);
    let mut resume = None;
    for leg in 1..=legs {
        // No sample_every: a scatter of samples at the end of each leg only.
        let opts = LoopOptions {
            steps: recipe.steps * leg / legs,
            resume: resume.take(),
            ..LoopOptions::for_recipe(recipe)
        };
        let summary = train_recipe(recipe, &dataset, SEED, gpu.clone(), &opts, out)?;
        on_leg(&summary);
        resume = Some(checkpoint::load(&out.join("checkpoint.safetensors"))?);
    }
    // Score the generator that samples (G's average when the recipe keeps one).
    let ck = resume.expect("at least one leg");
    let samples = shadergan::eval::report::generate(
        gpu.as_ref(),
        &ck.model,
        ck.sampling_generator(),
        modes::SAMPLES,
        NOISE_SEED,
    )?;
    let ring = Mixture::ring();
    Ok(score_modes(&samples, &ring.centers, ring.std))
}

/// The folder given, refused if it holds anything, or a fresh one under the temporary directory.
fn run_folder(given: Option<String>) -> anyhow::Result<PathBuf> {
    let Some(dir) = given.map(PathBuf::from) else {
        let dir = std::env::temp_dir().join(format!("shadergan-train-ring-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir); // a folder left by an earlier process of this id
        return Ok(dir);
    };
    let used = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
    anyhow::ensure!(!used, "{} is not empty: give a new folder", dir.display());
    Ok(dir)
}

fn run() -> anyhow::Result<()> {
    let (mut steps, mut folder) = (12_000, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--steps" => steps = args.next().and_then(|s| s.parse().ok()).unwrap_or(0),
            _ if a.starts_with('-') => {
                anyhow::bail!("unknown option {a} (usage: train_ring [OUT_DIR] [--steps N])")
            }
            _ => folder = Some(a),
        }
    }
    anyhow::ensure!(steps > 0, "--steps needs a number above 0");
    let out = run_folder(folder)?;
    let selected = select(BackendChoice::Auto, None)?;
    if let Some(notice) = &selected.notice {
        eprintln!("note: {notice}");
    }
    println!(
        "training the ring recipe for {steps} steps into {}",
        out.display()
    );
    let (mut done, mut backend) = (0, String::new());
    // The ring preset (ReLU 128-128, z 2, PacGAN2, lr 1e-3 decayed to 0) over `steps`.
    let recipe = Recipe {
        steps,
        ..Recipe::preset("ring").expect("ring is a preset")
    };
    let s = train_in_legs(&recipe, 6, selected.gpu, &out, |leg| {
        let l = leg.last;
        let rate = (leg.steps - done) as f64 / leg.seconds;
        println!(
            "step {:6}  D loss {:.3}  G loss {:.3}  D(x) {:.2}  D(G(z)) {:.2}  ({rate:.0} steps/s)",
            leg.steps, l.d_loss, l.g_loss, l.d_real, l.d_fake
        );
        (done, backend) = (leg.steps, leg.backend.clone());
    })?;
    println!(
        "{} of {} modes covered, {:.1}% high-quality samples, reverse KL {:.4} ({} samples; {backend})",
        s.modes_covered,
        s.modes_total,
        100.0 * s.high_quality_fraction,
        s.reverse_kl,
        s.samples
    );
    if !s.missed.is_empty() {
        let missed: Vec<String> = s.missed.iter().map(|c| center_label(*c)).collect();
        println!("missed: {}", missed.join(" "));
    }
    println!(
        "run folder: {} (losses.csv, losses.png, samples/, checkpoint.safetensors)",
        out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
