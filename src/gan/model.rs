//! The two networks' architecture, as saved in checkpoints and `config.json`.

use serde::{Deserialize, Serialize};

use super::setting::{SettingError, require};
use crate::nn::Mlp;
use crate::nn::layers::Layer;
use crate::nn::sequential::Sequential;
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

/// A GAN whose networks are layer lists (the DCGAN): G maps `[z_dim]` to
/// `data_shape`, D maps `data_shape` to one logit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerModel {
    pub z_dim: usize,
    /// One sample's shape, `[C, H, W]` for images.
    pub data_shape: Vec<usize>,
    pub generator: Vec<Layer>,
    pub discriminator: Vec<Layer>,
}

impl LayerModel {
    /// The TensorFlow DCGAN tutorial's model on 28×28 images (z 100; G:
    /// Dense 7·7·256 without bias, BatchNorm, LeakyReLU → ConvTranspose 128,
    /// 5×5, stride 1 → BN, LeakyReLU → ConvTranspose 64, 5×5, stride 2 → BN,
    /// LeakyReLU → ConvTranspose 1, 5×5, stride 2, tanh, the transposed
    /// convolutions without bias; D: Conv 64, 5×5, stride 2, LeakyReLU,
    /// Dropout 0.3 → Conv 128, 5×5, stride 2, LeakyReLU, Dropout 0.3 →
    /// Dense 1). Keras's LeakyReLU slope, 0.3; PyTorch's padding 2 and
    /// output_padding 1 for TensorFlow's "same".
    pub fn tf_dcgan() -> LayerModel {
        let leaky = || Layer::LeakyReLU { slope: 0.3 };
        let ct = |out_channels, stride, output_padding| Layer::ConvTranspose2d {
            out_channels,
            kernel: 5,
            stride,
            padding: 2,
            output_padding,
            bias: false,
        };
        let conv = |out_channels| Layer::Conv2d {
            out_channels,
            kernel: 5,
            stride: 2,
            padding: 2,
            bias: true,
        };
        LayerModel {
            z_dim: 100,
            data_shape: vec![1, 28, 28],
            generator: vec![
                Layer::Linear {
                    out: 7 * 7 * 256,
                    bias: false,
                },
                Layer::BatchNorm1d,
                leaky(),
                Layer::Reshape {
                    shape: vec![256, 7, 7],
                },
                ct(128, 1, 0),
                Layer::BatchNorm2d,
                leaky(),
                ct(64, 2, 1),
                Layer::BatchNorm2d,
                leaky(),
                ct(1, 2, 1),
                Layer::Tanh,
            ],
            discriminator: vec![
                conv(64),
                leaky(),
                Layer::Dropout { p: 0.3 },
                conv(128),
                leaky(),
                Layer::Dropout { p: 0.3 },
                Layer::Flatten,
                Layer::Linear { out: 1, bias: true },
            ],
        }
    }

    pub fn data_dim(&self) -> usize {
        self.data_shape.iter().product()
    }

    /// Both networks, their shapes chained; a refusal names the network and the layer.
    pub fn networks(&self) -> Result<(Sequential, Sequential), String> {
        let g = Sequential::new(&[self.z_dim], &self.generator)
            .map_err(|e| format!("generator: {e}"))?;
        let d = Sequential::new(&self.data_shape, &self.discriminator)
            .map_err(|e| format!("discriminator: {e}"))?;
        Ok((g, d))
    }
}

/// The two networks of a checkpoint or run: an MLP pair, or layer lists.
/// As JSON the two read apart by their fields (a layer model has
/// `generator` and `discriminator`), so MLP checkpoints keep their metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Architecture {
    Layers(LayerModel),
    Mlp(ModelSpec),
}

impl Architecture {
    pub fn z_dim(&self) -> usize {
        match self {
            Architecture::Mlp(m) => m.z_dim,
            Architecture::Layers(m) => m.z_dim,
        }
    }

    /// Values per generated sample.
    pub fn data_dim(&self) -> usize {
        match self {
            Architecture::Mlp(m) => m.data_dim,
            Architecture::Layers(m) => m.data_dim(),
        }
    }

    /// Whether the generator has a BatchNorm layer.
    pub fn has_batch_norm(&self) -> bool {
        match self {
            Architecture::Mlp(_) => false,
            Architecture::Layers(m) => m.generator.iter().any(Layer::is_batch_norm),
        }
    }

    /// The MLP pair, when it is one.
    pub fn mlp(&self) -> Option<&ModelSpec> {
        match self {
            Architecture::Mlp(m) => Some(m),
            Architecture::Layers(_) => None,
        }
    }

    /// How `other` differs from this one, in words: the first layer that
    /// differs when both are layer lists, else both in a few words.
    pub fn difference(&self, other: &Architecture) -> String {
        if let (Architecture::Layers(a), Architecture::Layers(b)) = (self, other) {
            let show = |l: Option<&Layer>| {
                l.map_or("no layer".to_string(), |l| {
                    serde_json::to_string(l).unwrap_or_default()
                })
            };
            let nets = [
                ("generator", &a.generator, &b.generator),
                ("discriminator", &a.discriminator, &b.discriminator),
            ];
            for (net, x, y) in nets {
                if let Some(i) = (0..x.len().max(y.len())).find(|&i| x.get(i) != y.get(i)) {
                    return format!(
                        "{net} layer {i} is {} against {}",
                        show(x.get(i)),
                        show(y.get(i))
                    );
                }
            }
        }
        format!("{} against {}", self.describe(), other.describe())
    }

    /// The architecture in a few words, for error lines.
    pub fn describe(&self) -> String {
        match self {
            Architecture::Mlp(m) => format!(
                "z {} → hidden {:?} ({:?}) → {}, pack {}",
                m.z_dim, m.hidden, m.hidden_act, m.data_dim, m.pack
            ),
            Architecture::Layers(m) => format!(
                "z {} → {} generator layers → {:?} → {} discriminator layers",
                m.z_dim,
                m.generator.len(),
                m.data_shape,
                m.discriminator.len()
            ),
        }
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
