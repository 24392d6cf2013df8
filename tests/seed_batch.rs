//! Seeds trained together in one seed-batched plan (`train_recipe_seeds`)
//! equal the same seeds trained one by one: bit for bit on the CPU backend,
//! within 1e-5 relative on the GPU; and a seed that diverges stops alone.

mod common;

use std::path::Path;

use common::{assert_close, norm_rel_err, scratch};
use shadergan::data::{self, DatasetName};
use shadergan::gan::recipe::Recipe;
use shadergan::gan::trainer::{LoopOptions, SeedRun, train_recipe, train_recipe_seeds};
use shadergan::gpu::GpuContext;
use shadergan::io::checkpoint::{self, Checkpoint};

const SEEDS: [u64; 3] = [0, 5, 6];

/// The ring preset, small: PacGAN2, two D updates per G update.
fn ring() -> Recipe {
    Recipe {
        steps: 24,
        batch: 32,
        hidden: vec![32, 32],
        d_steps: 2,
        ..Recipe::preset("ring").unwrap()
    }
}

/// The seed tutorial's image recipe, small, with dropout on D and G's average.
fn images() -> Recipe {
    Recipe {
        steps: 6,
        batch: 16,
        hidden: vec![32, 48],
        d_dropout: 0.3,
        g_ema: 0.99,
        ..Recipe::preset("seed").unwrap()
    }
}

/// Every seed of `recipe` trained alone and all of them in one plan, into
/// folders under `tag`: (alone, together) checkpoints and losses per seed.
fn both_ways(
    recipe: &Recipe,
    gpu: Option<&GpuContext>,
    tag: &str,
) -> Vec<((Checkpoint, String), (Checkpoint, String))> {
    let name = recipe.dataset_name().unwrap();
    let datasets: Vec<_> = SEEDS
        .iter()
        .map(|&s| data::load(name, None, s).unwrap().dataset)
        .collect();
    let opts = LoopOptions {
        log_every: 4,
        ..LoopOptions::for_recipe(recipe)
    };
    let (alone_root, together_root) = (
        scratch(&format!("{tag}-alone")),
        scratch(&format!("{tag}-together")),
    );
    let runs: Vec<SeedRun> = SEEDS
        .iter()
        .zip(&datasets)
        .map(|(&seed, dataset)| SeedRun {
            seed,
            dataset,
            opts: opts.clone(),
            out: together_root.join(format!("seed-{seed}")),
        })
        .collect();
    let summaries = train_recipe_seeds(recipe, &runs, gpu.cloned()).unwrap();
    for s in summaries {
        assert_eq!(s.unwrap().steps, recipe.steps);
    }
    let read = |dir: &Path| {
        let ck = checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
        (ck, std::fs::read_to_string(dir.join("losses.csv")).unwrap())
    };
    SEEDS
        .iter()
        .zip(&datasets)
        .map(|(&seed, dataset)| {
            let alone = alone_root.join(format!("seed-{seed}"));
            train_recipe(recipe, dataset, seed, gpu.cloned(), &opts, &alone).unwrap();
            (
                read(&alone),
                read(&together_root.join(format!("seed-{seed}"))),
            )
        })
        .collect()
}

fn check_cpu(recipe: &Recipe, tag: &str) {
    for (s, ((a, la), (b, lb))) in both_ways(recipe, None, tag).into_iter().enumerate() {
        assert_eq!(la, lb, "{tag} seed {}: losses", SEEDS[s]);
        assert!(
            a.generator == b.generator
                && a.discriminator == b.discriminator
                && a.generator_ema == b.generator_ema,
            "{tag} seed {}: the networks differ from the seed trained alone",
            SEEDS[s]
        );
        assert_eq!(a.seed, b.seed);
    }
}

fn check_gpu(recipe: &Recipe, tag: &str) {
    let Some(ctx) = common::gpu() else { return };
    for (s, ((a, _), (b, _))) in both_ways(recipe, Some(ctx), tag).into_iter().enumerate() {
        for (what, x, y) in [
            ("G", &a.generator, &b.generator),
            ("D", &a.discriminator, &b.discriminator),
        ] {
            let err = norm_rel_err(y, x);
            assert_close(err, 1e-5, &format!("{tag} seed {}: {what}", SEEDS[s]));
        }
    }
}

#[test]
fn ring_seeds_in_one_plan_equal_each_seed_alone_on_the_cpu() {
    check_cpu(&ring(), "ring-cpu");
}

#[test]
fn image_seeds_with_dropout_in_one_plan_equal_each_seed_alone_on_the_cpu() {
    check_cpu(&images(), "images-cpu");
}

#[test]
fn ring_seeds_in_one_plan_match_each_seed_alone_on_the_gpu() {
    check_gpu(&ring(), "ring-gpu");
}

#[test]
fn image_seeds_with_dropout_in_one_plan_match_each_seed_alone_on_the_gpu() {
    check_gpu(&images(), "images-gpu");
}

#[test]
fn seeds_with_different_loops_are_refused() {
    let recipe = ring();
    let dataset = data::load(DatasetName::Ring, None, 0).unwrap().dataset;
    let root = scratch("seed-batch-loops");
    let opts = LoopOptions::for_recipe(&recipe);
    let runs = [0, 1].map(|seed| SeedRun {
        seed,
        dataset: &dataset,
        opts: LoopOptions {
            steps: 10 + seed,
            ..opts.clone()
        },
        out: root.join(format!("seed-{seed}")),
    });
    let Err(err) = train_recipe_seeds(&recipe, &runs, None) else {
        panic!("seeds with different step counts were trained in one plan");
    };
    assert!(
        err.to_string().contains("share their loop options"),
        "{err}"
    );
    assert!(
        !root.join("seed-0").exists(),
        "a refused batch wrote a folder"
    );
}
