//! What `train` runs without a preset: the default recipe on Fashion-MNIST
//! (the seed tutorial's network with the measured fixes), the tutorial's
//! settings on the other datasets, and the tutorial's unchanged with
//! `--preset seed`. Read back from the recipe each run's checkpoint holds.

use std::path::Path;
use std::process::Command;

use shadergan::data::DatasetName;
use shadergan::gan::recipe::Recipe;

/// Trains 3 steps on the CPU backend with `flags` and returns the recipe
/// stored in the run's checkpoint.
fn recipe_trained_with(name: &str, flags: &[&str]) -> Recipe {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("default-run-{name}"));
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_shadergan"))
        .args(["train", "--steps", "3", "--sample-every", "0"])
        .args([
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(flags)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the binary runs");
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ck = shadergan::io::checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    let training = ck.training.expect("train's checkpoints hold the recipe");
    serde_json::from_str(&training.recipe).unwrap()
}

#[test]
fn plain_train_runs_the_default_recipe_and_preset_seed_the_tutorials() {
    let three_steps = |r: Recipe| Recipe { steps: 3, ..r };
    let default = Recipe::preset("default").unwrap();
    assert_eq!(recipe_trained_with("plain", &[]), three_steps(default));
    let seed = Recipe::seed(DatasetName::FashionMnist);
    assert_eq!(
        recipe_trained_with("seed", &["--preset", "seed"]),
        three_steps(seed)
    );
    assert_eq!(
        recipe_trained_with("ring", &["--dataset", "ring"]),
        three_steps(Recipe::seed(DatasetName::Ring))
    );
    // A flag still overrides the default run's settings.
    assert_eq!(
        recipe_trained_with("lr", &["--lr", "1e-4"]),
        Recipe {
            lr: 1e-4,
            ..three_steps(Recipe::preset("default").unwrap())
        }
    );
}
