//! The two networks' architecture, as saved in checkpoints and `config.json`.

use serde::{Deserialize, Serialize};

use super::setting::{SettingError, require};
use crate::nn::Mlp;
use crate::plan::Activation;

/// Generator `z → hidden… → data` and discriminator `data → hidden… → 1 logit`,
/// with the same hidden sizes and nonlinearity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub z_dim: usize,
    pub data_dim: usize,
    pub hidden: Vec<usize>,
    pub hidden_act: Activation,
    /// The generator's output nonlinearity: tanh for images in [−1, 1], identity for points.
    pub output_act: Activation,
    /// PacGAN packing: D judges `pack` samples at once (its input is `pack·data_dim`).
    #[serde(default = "one")]
    pub pack: usize,
}

fn one() -> usize {
    1
}

impl ModelSpec {
    /// The seed tutorial's model for 28×28 images: z 100, hidden 128-128 ReLU, tanh output.
    pub fn seed_images() -> ModelSpec {
        ModelSpec {
            z_dim: 100,
            data_dim: 784,
            hidden: vec![128, 128],
            hidden_act: Activation::Relu,
            output_act: Activation::Tanh,
            pack: 1,
        }
    }

    pub fn generator(&self) -> Mlp {
        Mlp::new(
            self.z_dim,
            &self.hidden,
            self.data_dim,
            self.hidden_act,
            self.output_act,
        )
    }

    pub fn discriminator(&self) -> Mlp {
        Mlp::new(
            self.data_dim * self.pack,
            &self.hidden,
            1,
            self.hidden_act,
            Activation::Identity,
        )
    }

    /// Refuses sizes that cannot make a network, naming the field.
    pub fn check(&self) -> Result<(), SettingError> {
        require(self.z_dim > 0, "z_dim", "must be at least 1")?;
        require(
            self.data_dim > 0,
            "data_dim",
            "must be at least 1 (the data has no columns)",
        )?;
        require(self.pack > 0, "pack", "must be at least 1")?;
        require(
            self.hidden.iter().all(|&h| h > 0),
            "hidden",
            format!("sizes must be at least 1 (got {:?})", self.hidden),
        )?;
        if let Activation::LeakyRelu(s) = self.hidden_act {
            require(
                s > 0.0 && s.is_finite(),
                "hidden_act",
                format!("has a leaky ReLU slope of {s}; it must be positive"),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_field() {
        let m = ModelSpec {
            pack: 0,
            ..ModelSpec::seed_images()
        };
        assert_eq!(
            m.check().unwrap_err().to_string(),
            "pack must be at least 1"
        );
        let m = ModelSpec {
            hidden_act: Activation::LeakyRelu(f32::NAN),
            ..ModelSpec::seed_images()
        };
        assert_eq!(m.check().unwrap_err().field, "hidden_act");
        ModelSpec::seed_images().check().unwrap();
    }
}
