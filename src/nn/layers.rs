//! A network as a sequence of layers, as a recipe file writes it (JSON,
//! PyTorch's names), and the shapes flowing through it: what the layer
//! builder checks before it emits a single op. A list whose shapes do not
//! chain is refused naming the layer and both shapes.
//!
//! Shapes leave out the batch: `[features]` for dense layers, `[C, H, W]`
//! for images. Parameter tensors follow `nn.Sequential`'s `state_dict`.

use crate::plan::ConvGeom;

/// One layer of a `nn.Sequential`, as a recipe file writes it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "layer", deny_unknown_fields)]
pub enum Layer {
    Linear {
        out: usize,
        /// Whether the layer has a bias (PyTorch's `bias=`; a layer before a
        /// BatchNorm often has none, as in the TensorFlow DCGAN tutorial).
        #[serde(default = "yes")]
        bias: bool,
    },
    Conv2d {
        out_channels: usize,
        kernel: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
    },
    ConvTranspose2d {
        out_channels: usize,
        kernel: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default)]
        output_padding: usize,
    },
    BatchNorm1d,
    BatchNorm2d,
    ReLU,
    LeakyReLU {
        slope: f32,
    },
    Tanh,
    Sigmoid,
    Dropout {
        p: f32,
    },
    /// To `[C, H, W]` (or any shape of as many elements).
    Reshape {
        shape: Vec<usize>,
    },
    Flatten,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

/// The bias tensor, when the layer has one.
fn bias_of(bias: bool, n: usize) -> Option<(&'static str, Vec<usize>)> {
    bias.then(|| ("bias", vec![n]))
}

/// Refuses a convolution's zero sizes by the field's name, before its shapes are worked out.
fn conv_sizes(out_channels: usize, kernel: usize, stride: usize) -> Result<(), String> {
    for (field, v) in [
        ("out_channels", out_channels),
        ("kernel", kernel),
        ("stride", stride),
    ] {
        if v == 0 {
            return Err(format!("{field} must be at least 1 (got 0)"));
        }
    }
    Ok(())
}

/// Why a layer list does not chain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("layer {index} ({name}): {problem}")]
pub struct LayerError {
    pub index: usize,
    pub name: &'static str,
    pub problem: String,
}

impl Layer {
    pub fn is_batch_norm(&self) -> bool {
        matches!(self, Layer::BatchNorm1d | Layer::BatchNorm2d)
    }

    /// PyTorch's class name.
    pub fn name(&self) -> &'static str {
        match self {
            Layer::Linear { .. } => "Linear",
            Layer::Conv2d { .. } => "Conv2d",
            Layer::ConvTranspose2d { .. } => "ConvTranspose2d",
            Layer::BatchNorm1d => "BatchNorm1d",
            Layer::BatchNorm2d => "BatchNorm2d",
            Layer::ReLU => "ReLU",
            Layer::LeakyReLU { .. } => "LeakyReLU",
            Layer::Tanh => "Tanh",
            Layer::Sigmoid => "Sigmoid",
            Layer::Dropout { .. } => "Dropout",
            Layer::Reshape { .. } => "Reshape",
            Layer::Flatten => "Flatten",
        }
    }

    /// The output shape for `input`, or what is wrong.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let image = |what: &str| match *input {
            [c, h, w] => Ok((c, h, w)),
            _ => Err(format!("{what} takes [C, H, W] images, got {input:?}")),
        };
        match self {
            Layer::Linear { out, .. } => match input {
                [_] if *out > 0 => Ok(vec![*out]),
                [_] => Err("Linear with 0 outputs".into()),
                _ => Err(format!(
                    "Linear takes [features], got {input:?} (Flatten first)"
                )),
            },
            Layer::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                ..
            } => {
                let (c, h, w) = image("Conv2d")?;
                conv_sizes(*out_channels, *kernel, *stride)?;
                let k = (*kernel, *kernel);
                let g = ConvGeom::conv([1, c, h, w], *out_channels, k, (*stride, *stride), (*padding, *padding))
                    .ok_or_else(|| format!("a {kernel}×{kernel} kernel at stride {stride} does not fit {input:?} padded by {padding}"))?;
                g.check()?;
                Ok(vec![g.out_ch, g.out_h, g.out_w])
            }
            Layer::ConvTranspose2d {
                out_channels,
                kernel,
                stride,
                padding,
                output_padding,
                ..
            } => {
                let (c, h, w) = image("ConvTranspose2d")?;
                conv_sizes(*out_channels, *kernel, *stride)?;
                let g = ConvGeom::transposed(
                    [1, c, h, w],
                    *out_channels,
                    (*kernel, *kernel),
                    (*stride, *stride),
                    (*padding, *padding),
                    (*output_padding, *output_padding),
                )
                .ok_or_else(|| {
                    format!("kernel {kernel}, stride {stride}, padding {padding}, output_padding {output_padding} give no valid output for {input:?} (output_padding must be below the stride)")
                })?;
                g.check()?;
                Ok(vec![g.in_ch, g.in_h, g.in_w])
            }
            Layer::BatchNorm1d => match input {
                [_] => Ok(input.to_vec()),
                _ => Err(format!("BatchNorm1d takes [features], got {input:?}")),
            },
            Layer::BatchNorm2d => image("BatchNorm2d").map(|_| input.to_vec()),
            Layer::Dropout { p } if !(0.0..1.0).contains(p) => {
                Err(format!("dropout probability {p} is not in [0, 1)"))
            }
            Layer::ReLU
            | Layer::LeakyReLU { .. }
            | Layer::Tanh
            | Layer::Sigmoid
            | Layer::Dropout { .. } => Ok(input.to_vec()),
            Layer::Reshape { shape } => {
                let (from, to) = (
                    input.iter().product::<usize>(),
                    shape.iter().product::<usize>(),
                );
                if from == to && !shape.is_empty() {
                    Ok(shape.clone())
                } else {
                    Err(format!(
                        "cannot reshape {input:?} ({from} values) to {shape:?} ({to})"
                    ))
                }
            }
            Layer::Flatten => Ok(vec![input.iter().product()]),
        }
    }

    /// Its parameter tensors as `nn.Sequential`'s `state_dict` names them
    /// (after the layer's index), with their shapes, for an `input` shape.
    pub fn parameters(&self, input: &[usize]) -> Vec<(&'static str, Vec<usize>)> {
        let with_bias = |weight: Vec<usize>, bias: bool, n: usize| {
            [Some(("weight", weight)), bias_of(bias, n)]
                .into_iter()
                .flatten()
                .collect()
        };
        match (self, input) {
            (Layer::Linear { out, bias }, [i]) => with_bias(vec![*out, *i], *bias, *out),
            (
                Layer::Conv2d {
                    out_channels: o,
                    kernel: k,
                    bias,
                    ..
                },
                [c, _, _],
            ) => with_bias(vec![*o, *c, *k, *k], *bias, *o),
            (
                Layer::ConvTranspose2d {
                    out_channels: o,
                    kernel: k,
                    bias,
                    ..
                },
                [c, _, _],
            ) => with_bias(vec![*c, *o, *k, *k], *bias, *o),
            (Layer::BatchNorm1d | Layer::BatchNorm2d, [c, ..]) => {
                vec![("weight", vec![*c]), ("bias", vec![*c])]
            }
            _ => vec![],
        }
    }
}

/// The shape after every layer of `layers` on `input` (the first entry is
/// `input` itself), or the first layer that does not fit.
pub fn chain_shapes(input: &[usize], layers: &[Layer]) -> Result<Vec<Vec<usize>>, LayerError> {
    let mut shapes = vec![input.to_vec()];
    for (index, layer) in layers.iter().enumerate() {
        let last = shapes.last().expect("starts with the input");
        let next = layer.output_shape(last).map_err(|problem| LayerError {
            index,
            name: layer.name(),
            problem,
        })?;
        shapes.push(next);
    }
    Ok(shapes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TensorFlow DCGAN tutorial's generator and discriminator.
    fn dcgan() -> (Vec<Layer>, Vec<Layer>) {
        let ct = |out_channels, stride, output_padding| Layer::ConvTranspose2d {
            out_channels,
            bias: false,
            kernel: 5,
            stride,
            padding: 2,
            output_padding,
        };
        let leaky = Layer::LeakyReLU { slope: 0.3 };
        let g = vec![
            Layer::Linear {
                out: 7 * 7 * 256,
                bias: false,
            },
            Layer::BatchNorm1d,
            leaky.clone(),
            Layer::Reshape {
                shape: vec![256, 7, 7],
            },
            ct(128, 1, 0),
            Layer::BatchNorm2d,
            leaky.clone(),
            ct(64, 2, 1),
            Layer::BatchNorm2d,
            leaky.clone(),
            ct(1, 2, 1),
            Layer::Tanh,
        ];
        let conv = |out_channels| Layer::Conv2d {
            out_channels,
            bias: true,
            kernel: 5,
            stride: 2,
            padding: 2,
        };
        let d = vec![
            conv(64),
            leaky.clone(),
            Layer::Dropout { p: 0.3 },
            conv(128),
            leaky,
            Layer::Dropout { p: 0.3 },
            Layer::Flatten,
            Layer::Linear { out: 1, bias: true },
        ];
        (g, d)
    }

    #[test]
    fn the_dcgan_chains_to_images_and_logits() {
        let (g, d) = dcgan();
        let gs = chain_shapes(&[100], &g).unwrap();
        assert_eq!(gs[4], vec![256, 7, 7]);
        assert_eq!(gs.last().unwrap(), &vec![1, 28, 28]);
        let ds = chain_shapes(&[1, 28, 28], &d).unwrap();
        assert_eq!(ds[1], vec![64, 14, 14]);
        assert_eq!(ds[7], vec![128 * 7 * 7]);
        assert_eq!(ds.last().unwrap(), &vec![1]);
        assert_eq!(g[7].parameters(&gs[7]), [("weight", vec![128, 64, 5, 5])]);
        assert_eq!(g[0].parameters(&gs[0]), [("weight", vec![12544, 100])]);
        assert_eq!(d[0].parameters(&ds[0])[1], ("bias", vec![64]));
        assert_eq!(d[7].parameters(&ds[7])[0], ("weight", vec![1, 6272]));
    }

    #[test]
    fn a_list_that_does_not_chain_names_the_layer_and_the_shapes() {
        let err = chain_shapes(&[100], &[Layer::BatchNorm2d]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer 0 (BatchNorm2d): BatchNorm2d takes [C, H, W] images, got [100]"
        );
        let err = chain_shapes(&[64, 14, 14], &[Layer::Linear { out: 1, bias: true }]).unwrap_err();
        assert!(
            err.to_string()
                .contains("Linear takes [features], got [64, 14, 14]"),
            "{err}"
        );
        let err = chain_shapes(
            &[100],
            &[Layer::Reshape {
                shape: vec![256, 7, 7],
            }],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot reshape [100] (100 values) to [256, 7, 7] (12544)"),
            "{err}"
        );
        let big = Layer::Conv2d {
            bias: true,
            out_channels: 4,
            kernel: 9,
            stride: 1,
            padding: 0,
        };
        assert!(
            chain_shapes(&[1, 5, 5], &[big])
                .unwrap_err()
                .to_string()
                .contains("does not fit")
        );
        let zero = Layer::Conv2d {
            bias: true,
            out_channels: 4,
            kernel: 3,
            stride: 0,
            padding: 0,
        };
        assert!(chain_shapes(&[1, 5, 5], &[zero]).is_err());
        let op = Layer::ConvTranspose2d {
            bias: true,
            out_channels: 1,
            kernel: 5,
            stride: 2,
            padding: 2,
            output_padding: 2,
        };
        assert!(
            chain_shapes(&[1, 7, 7], &[op])
                .unwrap_err()
                .to_string()
                .contains("below the stride")
        );
    }

    #[test]
    fn layer_lists_read_from_json() {
        let text = r#"[{"layer": "Conv2d", "out_channels": 64, "kernel": 5, "stride": 2, "padding": 2},
                       {"layer": "LeakyReLU", "slope": 0.3}, {"layer": "Flatten"}, {"layer": "Linear", "out": 1}]"#;
        let layers: Vec<Layer> = serde_json::from_str(text).unwrap();
        assert_eq!(
            chain_shapes(&[1, 28, 28], &layers).unwrap().last().unwrap(),
            &vec![1]
        );
        let unknown = r#"[{"layer": "Conv2d", "out_channels": 1, "kernel": 3, "dilation": 2}]"#;
        assert!(serde_json::from_str::<Vec<Layer>>(unknown).is_err());
    }
}
