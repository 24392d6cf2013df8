//! Recipes: every setting of a training run except the seed and where it
//! runs, with named presets for the configurations that reach the published
//! numbers. `train --preset NAME` starts from one, `train --recipe FILE` from
//! a file (this struct as JSON, which `train --dump-recipe` prints); any flag
//! given overrides it.

use serde::{Deserialize, Serialize};

use super::seq_step::SeqGanConfig;
use super::setting::{SettingError, require};
use super::{GanConfig, LayerModel, ModelSpec};
use crate::data::DataKind;
use crate::data::DatasetName;
use crate::nn::layers::Layer;
use crate::plan::{Activation, AdamHyper};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub dataset: String,
    /// Training steps (one step: `d_steps` D updates, then one G update).
    pub steps: u64,
    pub batch: usize,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub hidden: Vec<usize>,
    pub hidden_act: Activation,
    pub z_dim: usize,
    pub d_steps: u32,
    /// Steps before this one take a single D update; `d_steps` apply from it on
    /// (0: `d_steps` throughout). Early single D steps let G spread over the
    /// modes, later extra D steps thin the samples between them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub d_steps_from: u64,
    /// Target of real rows in the D loss (0.9: one-sided label smoothing).
    pub real_label: f32,
    /// PacGAN packing degree.
    pub pack: usize,
    /// Decay both learning rates linearly to zero over the run.
    #[serde(default)]
    pub lr_decay: bool,
    /// Dropout rate on D's hidden layers while training (0: none).
    #[serde(default)]
    pub d_dropout: f32,
    /// Decay β of the moving average of G's weights that samples come from (0: none).
    #[serde(default)]
    pub g_ema: f32,
    /// G and D as layer lists (the DCGAN); then `hidden` must be empty and
    /// `hidden_act` is unused, dropout goes into D's list, and `pack`
    /// keeps its default; `g_ema` averages G's running statistics too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<LayerLists>,
}

/// The two networks of a layer-list recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerLists {
    pub generator: Vec<Layer>,
    pub discriminator: Vec<Layer>,
}

/// For serde's `skip_serializing_if` on settings whose 0 means "unused".
pub(crate) fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// D updates in training step `step` (counted from 0): one before
/// `d_steps_from`, `d_steps` from it on. The trainer and [`Recipe`] share it.
pub fn d_updates_in_step(step: u64, d_steps: u32, d_steps_from: u64) -> u32 {
    if step < d_steps_from { 1 } else { d_steps }
}

/// `(name, what it is)` of every preset.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "default",
        "what `train` runs on Fashion-MNIST without --preset: the seed tutorial's network and 15k steps, Adam 5e-4/0.5, dropout 0.3 in D, label smoothing, samples from G's average (β 0.999)",
    ),
    (
        "seed",
        "the seed tutorial: 128-128 ReLU, Adam 2e-4/0.5, batch 64, on Fashion-MNIST",
    ),
    (
        "ring",
        "8-mode ring: ReLU 128-128, z 2, PacGAN2 packing, label smoothing, lr 1e-3 decayed to 0 over 32k steps",
    ),
    (
        "grid",
        "25-mode grid: ReLU 256-256-256, z 2, PacGAN8 packing, 2 D steps per G step, label smoothing, lr 5e-4 decayed to 0 over 60k steps, samples from G's average (β 0.999)",
    ),
    (
        "dcgan-mnist",
        "the TensorFlow DCGAN tutorial's model on MNIST: batch 256, Adam 2e-4/0.5, 50 epochs, samples from G's average (β 0.999)",
    ),
    ("dcgan-fashion", "the same DCGAN on Fashion-MNIST"),
    (
        "mnist",
        "MNIST for Parzen: leaky ReLU 1024-1024, dropout 0.3 in D, label smoothing, lr 2e-4 decayed to 0 over 50 epochs, samples from G's average (β 0.9999)",
    ),
];

impl Recipe {
    /// The seed tutorial's settings on `dataset` (15,000 steps on images, 4,000 on points).
    pub fn seed(dataset: DatasetName) -> Recipe {
        let points = matches!(dataset, DatasetName::Ring | DatasetName::Grid);
        Recipe {
            dataset: dataset.as_str().into(),
            steps: if points { 4000 } else { 15_000 },
            batch: 64,
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            hidden: vec![128, 128],
            hidden_act: Activation::Relu,
            z_dim: 100,
            d_steps: 1,
            d_steps_from: 0,
            real_label: 1.0,
            pack: 1,
            lr_decay: false,
            d_dropout: 0.0,
            g_ema: 0.0,
            layers: None,
        }
    }

    /// The default run: the seed tutorial's network, batch and step count on
    /// Fashion-MNIST with the cheap fixes that, measured, gave varied samples
    /// of several classes at 1.3× the seed run's time on the CPU backend
    /// (docs/experiments/2026-12-01-default-run.md, 2026-12-01, CPU backend).
    /// Classifier FD over seeds 0–3: 34.3 against 317 for the seed settings.
    /// G's average is what lets the higher lr pay (81 without it, seed 0) and
    /// dropout in D spreads G over the classes (56 without it, seeds 0–1);
    /// decaying the lr as well did worse (62 at 20k steps).
    pub fn default_run() -> Recipe {
        Recipe {
            lr: 5e-4,
            real_label: 0.9,
            d_dropout: 0.3,
            g_ema: 0.999,
            ..Recipe::seed(DatasetName::FashionMnist)
        }
    }

    /// What `train` runs without `--preset`: the default run on Fashion-MNIST,
    /// the seed tutorial's settings on every other dataset.
    pub fn without_preset(dataset: DatasetName) -> Recipe {
        match dataset {
            DatasetName::FashionMnist => Recipe::default_run(),
            other => Recipe::seed(other),
        }
    }

    pub fn preset(name: &str) -> Option<Recipe> {
        let leaky = Activation::LeakyRelu(0.2);
        // ReLU, not leaky ReLU, on the mixtures: a ReLU generator can map whole regions of z
        // onto one point, so little mass is left on the bridges between modes
        // (ring, seeds 1 and 2: 97.6% and 98.6% high quality against 84.0% and 85.4%).
        Some(match name {
            "default" => Recipe::default_run(),
            "seed" => Recipe::seed(DatasetName::FashionMnist),
            "ring" => Recipe {
                steps: 32_000,
                batch: 128,
                lr: 1e-3,
                hidden: vec![128, 128],
                hidden_act: Activation::Relu,
                z_dim: 2,
                real_label: 0.9,
                pack: 2,
                lr_decay: true,
                ..Recipe::seed(DatasetName::Ring)
            },
            // Packing covers the modes, two D steps per G step thin the bridges of
            // samples between them. 10 seeds on the H200: PacGAN6 with 1 D step
            // 24.9 modes / 81.1% HQ (H100), PacGAN6 with 2 D steps 24.2 / 93.3%,
            // PacGAN8 with 2 D steps 24.7 / 94.0% over 40k steps and 24.7 / 96.5%
            // over 60k; packs 10 and 12 gave 24.6. Half the peak lr (5e-4) over the
            // same 60k steps keeps the thin modes: 25.0 / 96.3% (README, Results).
            "grid" => Recipe {
                steps: 60_000,
                batch: 128,
                lr: 5e-4,
                hidden: vec![256, 256, 256],
                hidden_act: Activation::Relu,
                z_dim: 2,
                real_label: 0.9,
                pack: 8,
                d_steps: 2,
                lr_decay: true,
                g_ema: 0.999,
                ..Recipe::seed(DatasetName::Grid)
            },
            "mnist" => Recipe {
                steps: 46_875,
                batch: 64,
                hidden: vec![1024, 1024],
                hidden_act: leaky,
                real_label: 0.9,
                // Seed 0 on the H100: Parzen 213.0 / FD 32.8 with dropout 0.3 and the
                // decay, against 180.7 / 129.8 with neither; 229.4 with the average
                // of G at β 0.9999 (213.6 at 0.999) (README, Results).
                d_dropout: 0.3,
                lr_decay: true,
                g_ema: 0.9999,
                ..Recipe::seed(DatasetName::Mnist)
            },
            "dcgan-mnist" => Recipe::dcgan(DatasetName::Mnist),
            "dcgan-fashion" => Recipe::dcgan(DatasetName::FashionMnist),
            _ => return None,
        })
    }

    /// The TensorFlow DCGAN tutorial's model ([`LayerModel::tf_dcgan`]) on
    /// `dataset`, at its batch (256), for the tutorial's 50 epochs of the
    /// 60k training set, sampling from G's average (β 0.999). On MNIST,
    /// seed 0: classifier FD 97.7 after 15 epochs, 38.2 after 50; five seeds
    /// at 15 epochs without the average: 135 ± 11, the PyTorch peer 113 ± 8
    /// (docs/results.md; H200, 2026-12-02).
    pub fn dcgan(dataset: DatasetName) -> Recipe {
        let model = LayerModel::tf_dcgan();
        Recipe {
            steps: 11_720,
            g_ema: 0.999,
            batch: 256,
            lr: 2e-4,
            hidden: Vec::new(),
            hidden_act: Activation::LeakyRelu(0.3),
            layers: Some(LayerLists {
                generator: model.generator,
                discriminator: model.discriminator,
            }),
            ..Recipe::seed(dataset)
        }
    }

    /// Reads a recipe from a JSON file (this struct serialised, as `train
    /// --dump-recipe` prints it) and checks it; a refusal names the file and the field.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Recipe> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read recipe {}: {e}", path.display()))?;
        let r: Recipe = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a recipe: {e}", path.display()))?;
        r.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(r)
    }

    pub fn dataset_name(&self) -> anyhow::Result<DatasetName> {
        DatasetName::parse(&self.dataset)
            .ok_or_else(|| anyhow::anyhow!("unknown dataset '{}'", self.dataset))
    }

    /// Refuses settings that cannot train, naming the field.
    pub fn check(&self) -> Result<(), SettingError> {
        require(self.batch > 0, "batch", "must be at least 1")?;
        require(self.steps > 0, "steps", "must be at least 1")?;
        for (field, v) in [
            ("lr", self.lr),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
        ] {
            require(
                v.is_finite() && v >= 0.0,
                field,
                format!("must be a finite number ≥ 0 (got {v})"),
            )?;
        }
        require(
            self.lr > 0.0,
            "lr",
            format!("must be positive (got {})", self.lr),
        )?;
        for (field, v) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            require(v < 1.0, field, format!("must be below 1 (got {v})"))?;
        }
        require(
            self.real_label.is_finite() && (0.0..=1.0).contains(&self.real_label),
            "real_label",
            format!("must be in [0, 1] (got {})", self.real_label),
        )?;
        if self.layers.is_some() {
            return self.check_layer_recipe();
        }
        require(!self.hidden.is_empty(), "hidden", "needs at least one size")?;
        require(
            self.hidden.iter().all(|&h| h > 0),
            "hidden",
            format!("sizes must be at least 1 (got {:?})", self.hidden),
        )?;
        if let Activation::LeakyRelu(s) = self.hidden_act {
            require(
                s.is_finite() && s > 0.0,
                "hidden_act",
                format!("has a leaky ReLU slope of {s}; it must be positive"),
            )?;
        }
        require(self.z_dim > 0, "z_dim", "must be at least 1")?;
        require(self.d_steps > 0, "d_steps", "must be at least 1")?;
        require(self.pack > 0, "pack", "must be at least 1")?;
        // A switch at or past `steps` is allowed: a run stopped before it and
        // resumed past it (`train --resume DIR --steps N`) crosses it.
        require(
            self.d_steps_from == 0 || self.d_steps > 1,
            "d_steps_from",
            format!("needs d_steps above 1 (got {})", self.d_steps),
        )
        .map_err(|e| e.mentioning(&["d_steps"]))?;
        require(
            self.d_dropout.is_finite() && (0.0..1.0).contains(&self.d_dropout),
            "d_dropout",
            format!("must be in [0, 1) (got {})", self.d_dropout),
        )?;
        require(
            self.g_ema.is_finite() && (0.0..1.0).contains(&self.g_ema),
            "g_ema",
            format!("must be in [0, 1) (got {})", self.g_ema),
        )
    }

    /// The checks of a recipe with `layers` past the common ones: the MLP
    /// settings it does not use keep their defaults (the layer lists
    /// themselves are checked when the plan is built, naming the layer).
    fn check_layer_recipe(&self) -> Result<(), SettingError> {
        let unused = "is not used with layers (it must be";
        require(
            self.hidden.is_empty(),
            "hidden",
            format!("{unused} [], not {:?})", self.hidden),
        )?;
        require(self.pack == 1, "pack", format!("{unused} 1)"))?;
        require(
            self.d_dropout == 0.0,
            "d_dropout",
            format!("{unused} 0; put a Dropout layer in D's list)"),
        )?;
        require(
            self.g_ema.is_finite() && (0.0..1.0).contains(&self.g_ema),
            "g_ema",
            format!("must be in [0, 1) (got {})", self.g_ema),
        )?;
        require(self.z_dim > 0, "z_dim", "must be at least 1")?;
        require(self.d_steps > 0, "d_steps", "must be at least 1")
    }

    /// The layer-list GAN of a recipe with `layers`, on data of `kind`.
    pub fn seq_gan_config(&self, kind: &DataKind, seed: u64) -> anyhow::Result<SeqGanConfig> {
        let lists = self
            .layers
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the recipe has no layer lists"))?;
        let (data_shape, sample_rows) = match kind {
            DataKind::Images { rows, cols } => (vec![1, *rows, *cols], 64),
            DataKind::Points(_) => (vec![2], 512),
        };
        let mlp = self.gan_config(2, true, seed);
        Ok(SeqGanConfig {
            model: LayerModel {
                z_dim: self.z_dim,
                data_shape,
                generator: lists.generator,
                discriminator: lists.discriminator,
            },
            batch: self.batch,
            seed,
            d_adam: mlp.d_adam,
            g_adam: mlp.g_adam,
            real_label: self.real_label,
            sample_rows,
            g_ema: self.g_ema,
        })
    }

    /// The networks this recipe builds on data of `kind`, `cols` values a row.
    pub fn architecture(
        &self,
        kind: &DataKind,
        cols: usize,
    ) -> anyhow::Result<super::Architecture> {
        if self.layers.is_some() {
            return Ok(super::Architecture::Layers(
                self.seq_gan_config(kind, 0)?.model,
            ));
        }
        let points = matches!(kind, DataKind::Points(_));
        Ok(super::Architecture::Mlp(
            self.gan_config(cols, points, 0).model,
        ))
    }

    /// D updates in training step `step` (counted from 0).
    pub fn d_steps_at(&self, step: u64) -> u32 {
        d_updates_in_step(step, self.d_steps, self.d_steps_from)
    }

    /// D updates over the whole run.
    pub fn d_updates(&self) -> u64 {
        let early = self.d_steps_from.min(self.steps);
        early + (self.steps - early) * u64::from(self.d_steps)
    }

    /// The GAN configuration for data of `data_dim` columns.
    pub fn gan_config(&self, data_dim: usize, points: bool, seed: u64) -> GanConfig {
        let adam = AdamHyper {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            ..AdamHyper::default()
        };
        // D takes `d_steps_at(step)` Adam steps per training step; each decays over its own count.
        let decay = |updates: u64| {
            if self.lr_decay {
                u32::try_from(updates).unwrap_or(u32::MAX)
            } else {
                0
            }
        };
        GanConfig {
            model: ModelSpec {
                z_dim: self.z_dim,
                data_dim,
                hidden: self.hidden.clone(),
                hidden_act: self.hidden_act,
                output_act: if points {
                    Activation::Identity
                } else {
                    Activation::Tanh
                },
                pack: self.pack,
            },
            batch: self.batch,
            seed,
            d_dropout: self.d_dropout,
            g_ema: self.g_ema,
            d_adam: AdamHyper {
                decay_steps: decay(self.d_updates()),
                ..adam
            },
            g_adam: AdamHyper {
                decay_steps: decay(self.steps),
                ..adam
            },
            real_label: self.real_label,
            sample_rows: if points { 512 } else { 64 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid() {
        for (name, _) in PRESETS {
            let r = Recipe::preset(name).unwrap();
            r.check().unwrap();
            r.dataset_name().unwrap();
        }
        assert!(Recipe::preset("nope").is_none());
    }

    /// A refusal names the field as the struct does; one of a file names the file too.
    #[test]
    fn refusals_name_the_field_and_those_of_a_file_the_file() {
        let ring = Recipe::seed(DatasetName::Ring);
        let refused = |r: Recipe| r.check().unwrap_err();
        let e = refused(Recipe {
            z_dim: 0,
            ..ring.clone()
        });
        assert_eq!(e.field, "z_dim");
        assert_eq!(e.to_string(), "z_dim must be at least 1");
        let e = refused(Recipe {
            beta2: 1.0,
            ..ring.clone()
        });
        assert_eq!(e.to_string(), "beta2 must be below 1 (got 1)");
        let leaky = Recipe {
            hidden_act: Activation::LeakyRelu(-0.5),
            ..ring.clone()
        };
        assert_eq!(refused(leaky).field, "hidden_act");
        let e = refused(Recipe {
            d_steps_from: 5,
            ..ring.clone()
        });
        assert_eq!(e.to_string(), "d_steps_from needs d_steps above 1 (got 1)");
        assert_eq!(e.mentions, ["d_steps"]);
        let path =
            std::env::temp_dir().join(format!("shadergan-bad-recipe-{}.json", std::process::id()));
        let bad = Recipe { batch: 0, ..ring };
        std::fs::write(&path, serde_json::to_string(&bad).unwrap()).unwrap();
        let e = Recipe::from_file(&path).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert_eq!(e, format!("{}: batch must be at least 1", path.display()));
    }

    /// Every preset, written as JSON (what `train --dump-recipe` prints), reads back as itself.
    #[test]
    fn every_preset_reads_back_from_its_json() {
        for (name, _) in PRESETS {
            let r = Recipe::preset(name).unwrap();
            let text = serde_json::to_string_pretty(&r).unwrap();
            assert_eq!(serde_json::from_str::<Recipe>(&text).unwrap(), r, "{name}");
        }
    }

    /// `--preset seed` is the tutorial's recipe, setting for setting.
    #[test]
    fn the_seed_preset_keeps_the_tutorials_settings() {
        let tutorial = Recipe {
            dataset: "fashion-mnist".into(),
            steps: 15_000,
            batch: 64,
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            hidden: vec![128, 128],
            hidden_act: Activation::Relu,
            z_dim: 100,
            d_steps: 1,
            d_steps_from: 0,
            real_label: 1.0,
            pack: 1,
            lr_decay: false,
            d_dropout: 0.0,
            g_ema: 0.0,
            layers: None,
        };
        assert_eq!(Recipe::preset("seed").unwrap(), tutorial);
    }

    /// Without --preset, Fashion-MNIST gets the default run (the tutorial's
    /// network with the measured fixes) and the other datasets the tutorial's
    /// settings.
    #[test]
    fn without_a_preset_fashion_mnist_gets_the_default_run_and_the_rest_the_seed() {
        let default = Recipe::preset("default").unwrap();
        assert_eq!(Recipe::without_preset(DatasetName::FashionMnist), default);
        let seed = Recipe::seed(DatasetName::FashionMnist);
        let architecture = |r: &Recipe| (r.hidden.clone(), r.hidden_act, r.z_dim, r.pack, r.batch);
        assert_eq!(architecture(&default), architecture(&seed));
        assert_ne!(default, seed);
        for d in [DatasetName::Mnist, DatasetName::Ring, DatasetName::Grid] {
            assert_eq!(Recipe::without_preset(d), Recipe::seed(d), "{d:?}");
        }
    }

    #[test]
    fn d_steps_from_gives_one_d_update_before_it_and_d_steps_after() {
        let r = Recipe {
            steps: 100,
            d_steps: 3,
            d_steps_from: 40,
            lr_decay: true,
            ..Recipe::seed(DatasetName::Ring)
        };
        r.check().unwrap();
        assert_eq!((r.d_steps_at(0), r.d_steps_at(39)), (1, 1));
        assert_eq!((r.d_steps_at(40), r.d_steps_at(99)), (3, 3));
        assert_eq!(r.d_updates(), 40 + 60 * 3);
        // D's learning rate decays to zero over its own updates, G's over the steps.
        let cfg = r.gan_config(2, true, 0);
        assert_eq!((cfg.d_adam.decay_steps, cfg.g_adam.decay_steps), (220, 100));
        let throughout = Recipe {
            d_steps_from: 0,
            ..r.clone()
        };
        assert_eq!(throughout.d_updates(), 300);
        // The field is left out of files when unused, so older recipes read the same.
        assert!(
            !serde_json::to_string(&throughout)
                .unwrap()
                .contains("d_steps_from")
        );
        assert!(
            Recipe {
                d_steps: 1,
                ..r.clone()
            }
            .check()
            .is_err()
        );
        // Past the end: one D update throughout (a run to be resumed past the switch).
        let later = Recipe {
            d_steps_from: 150,
            ..r.clone()
        };
        later.check().unwrap();
        assert_eq!(later.d_updates(), 100);
    }

    /// The recipe files behind the README's result rows load, and the ones that
    /// name a preset's settings are that preset.
    #[test]
    fn the_example_recipes_load_and_match_their_presets() {
        // The presets' files, and the files of the studies that led to them.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dirs = [
            root.join("examples/recipes"),
            root.join("docs/experiments/recipes"),
        ];
        let mut names = Vec::new();
        for dir in &dirs {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let r = Recipe::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
                r.dataset_name().unwrap();
                names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
        assert!(names.len() >= 8, "{names:?}");
        let load = |name: &str| {
            let path = dirs
                .iter()
                .map(|d| d.join(format!("{name}.json")))
                .find(|p| p.exists());
            Recipe::from_file(&path.unwrap_or_else(|| panic!("no recipe {name}"))).unwrap()
        };
        let grid = Recipe::preset("grid").unwrap();
        assert_eq!(load("grid_p8d2s60k_lr5e4"), grid);
        let full_lr = Recipe {
            lr: 1e-3,
            ..grid.clone()
        };
        assert_eq!(load("grid_p8d2s60k"), full_lr);
        let forty_k = Recipe {
            steps: 40_000,
            ..full_lr.clone()
        };
        assert_eq!(load("grid_p8d2"), forty_k);
        let batch_256 = Recipe {
            batch: 256,
            ..forty_k.clone()
        };
        assert_eq!(load("grid_p8d2b256"), batch_256);
        let mnist_seed = Recipe {
            steps: 28_125,
            ..Recipe::seed(DatasetName::Mnist)
        };
        assert_eq!(load("mnist_seed"), mnist_seed);
    }
}
