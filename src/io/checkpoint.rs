//! Checkpoints in safetensors, laid out so PyTorch loads them directly.
//!
//! Each network is saved as the `state_dict` of an `nn.Sequential` of
//! `nn.Linear` layers with activation modules between them, so the Linear
//! layers sit at indices 0, 2, 4, ...:
//!
//! ```text
//! generator.0.weight      [hidden0, z_dim]   f32    (nn.Linear stores W as [out, in])
//! generator.0.bias        [hidden0]
//! generator.2.weight      [hidden1, hidden0]
//! ...
//! discriminator.0.weight  [hidden0, data_dim]
//! ...
//! generator_ema.0.weight  ...   the moving average of G's weights (`train --g-ema`),
//!                                 in G's names; sampling and evaluation use it
//! ```
//! The header's metadata holds `format` (`shadergan-checkpoint-1`), `model`
//! (the architecture as JSON), `step`, `dataset` and `seed`.
//!
//! Checkpoints written by `train` also hold what resuming needs:
//! ```text
//! optimizer.generator.adam_m      [n]   f32   Adam's first moment, the flat layout
//! optimizer.generator.adam_v      [n]         (n = the layout's total, padding included)
//! optimizer.discriminator.adam_m  [n]
//! optimizer.discriminator.adam_v  [n]
//! ```
//! with metadata `recipe` (the training recipe as JSON), `updates` (`g,d`:
//! each network's device step counter, which is both Adam's t and the step of
//! its random streams) and `run_id` (the id of the run that wrote it, also in
//! the run folder's `config.json`, so `train --resume` refuses a checkpoint
//! copied in from another run).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::gan::{Architecture, ModelSpec};
use crate::nn::Mlp;
use crate::nn::sequential::{Sequential, StateSource};

pub const FORMAT: &str = "shadergan-checkpoint-1";

/// What a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub model: Architecture,
    /// Training steps (G updates) done.
    pub step: u64,
    pub dataset: String,
    pub seed: u64,
    /// Each network's flat state: an MLP's parameters in the layout of
    /// `model.generator().layout()`; a layer list's state words
    /// (`Sequential::state_words`: parameters, BatchNorm running statistics
    /// and batch counts).
    pub generator: Vec<f32>,
    pub discriminator: Vec<f32>,
    /// The moving average of G's weights, in G's layout (`train --g-ema`).
    pub generator_ema: Option<Vec<f32>>,
    /// The optimizer state and recipe, for `train --resume` (None in
    /// checkpoints from elsewhere, e.g. the PyTorch peer).
    pub training: Option<TrainingState>,
}

impl Checkpoint {
    /// The generator weights that samples and scores come from: the moving
    /// average when the run kept one, else G's own weights.
    pub fn sampling_generator(&self) -> &[f32] {
        self.generator_ema.as_deref().unwrap_or(&self.generator)
    }
}

/// The name prefix of the generator average's tensors.
const GENERATOR_EMA: &str = "generator_ema.";

/// What resuming needs beyond the parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingState {
    /// The training recipe (`gan::recipe::Recipe`) as JSON.
    pub recipe: String,
    /// Adam's (m, v) of each network, in its flat layout.
    pub generator_adam: (Vec<f32>, Vec<f32>),
    pub discriminator_adam: (Vec<f32>, Vec<f32>),
    /// Each network's device step counter.
    pub generator_updates: u32,
    pub discriminator_updates: u32,
    /// The id of the run that wrote the checkpoint (None in checkpoints
    /// written before runs had ids).
    pub run_id: Option<String>,
}

const OPTIMIZER_TENSORS: [&str; 4] = [
    "optimizer.generator.adam_m",
    "optimizer.generator.adam_v",
    "optimizer.discriminator.adam_m",
    "optimizer.discriminator.adam_v",
];

/// One tensor of a network in a checkpoint: its name, its shape, whether it
/// is PyTorch's int64 (`num_batches_tracked`, a u32 word's bits in the flat
/// state), and where its values live in the network's flat state.
struct Entry {
    name: String,
    shape: Vec<usize>,
    int64: bool,
    range: std::ops::Range<usize>,
}

/// How a network's flat state is laid out: an MLP's parameter layout, or a
/// layer list's state words ([`Sequential::state_words`]).
pub enum NetLayout {
    Mlp(Mlp),
    Layers(Sequential),
}

impl NetLayout {
    /// Words of the flat state a checkpoint reads into.
    fn state_words(&self) -> usize {
        match self {
            NetLayout::Mlp(m) => m.layout().total,
            NetLayout::Layers(s) => s.state_words(),
        }
    }

    /// Words of the parameters alone (Adam's moments have this length).
    fn param_words(&self) -> usize {
        match self {
            NetLayout::Mlp(m) => m.layout().total,
            NetLayout::Layers(s) => s.param_words,
        }
    }

    /// Every tensor of the network, named as an `nn.Sequential`'s state_dict
    /// under `prefix`.
    fn entries(&self, prefix: &str) -> Vec<Entry> {
        match self {
            NetLayout::Mlp(mlp) => mlp_entries(prefix, mlp),
            NetLayout::Layers(net) => net
                .state_dict()
                .into_iter()
                .map(|t| Entry {
                    name: format!("{prefix}{}", t.name),
                    int64: matches!(t.source, StateSource::Batches(_)),
                    range: t.source.state_range(net),
                    shape: t.shape,
                })
                .collect(),
        }
    }
}

/// An MLP's tensors: `{prefix}0.weight`, `{prefix}0.bias`, `{prefix}2.weight`, ...
fn mlp_entries(prefix: &str, mlp: &Mlp) -> Vec<Entry> {
    let layout = mlp.layout();
    let mut table = Vec::new();
    for (l, layer) in mlp.layers.iter().enumerate() {
        let (w, b) = (layout.weights[l], layout.biases[l]);
        let entry = |name: &str, shape, range| Entry {
            name: format!("{prefix}{}.{name}", 2 * l),
            shape,
            int64: false,
            range,
        };
        table.push(entry(
            "weight",
            vec![layer.outputs, layer.inputs],
            w.offset..w.offset + w.len,
        ));
        table.push(entry(
            "bias",
            vec![layer.outputs],
            b.offset..b.offset + b.len,
        ));
    }
    table
}

/// Safetensors bytes of named networks (`(name prefix, mlp, flat parameters)`)
/// with `metadata` in the header.
pub fn networks_to_bytes(
    nets: &[(&str, &Mlp, &[f32])],
    metadata: HashMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let layouts: Vec<NetLayout> = nets.iter().map(|n| NetLayout::Mlp(n.1.clone())).collect();
    let nets: Vec<(&str, &NetLayout, &[f32])> = nets
        .iter()
        .zip(&layouts)
        .map(|(n, l)| (n.0, l, n.2))
        .collect();
    with_flat_tensors(&nets, &[], metadata)
}

/// The bytes of one entry's values, int64 for a batch count.
fn entry_bytes(entry: &Entry, state: &[f32]) -> Vec<u8> {
    let values = &state[entry.range.clone()];
    if entry.int64 {
        let counts: Vec<i64> = values.iter().map(|v| i64::from(v.to_bits())).collect();
        return bytemuck::cast_slice(&counts).to_vec();
    }
    bytemuck::cast_slice(values).to_vec()
}

/// As [`networks_to_bytes`] over any layouts, plus 1-D f32 tensors `(name, values)`.
fn with_flat_tensors(
    nets: &[(&str, &NetLayout, &[f32])],
    flat: &[(&str, &[f32])],
    metadata: HashMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (prefix, net, state) in nets {
        anyhow::ensure!(
            state.len() == net.state_words(),
            "{prefix} parameters do not match the architecture"
        );
        for e in net.entries(prefix) {
            let dtype = if e.int64 { Dtype::I64 } else { Dtype::F32 };
            let bytes = entry_bytes(&e, state);
            owned.push((e.name, dtype, e.shape, bytes));
        }
    }
    for (name, values) in flat {
        owned.push((
            name.to_string(),
            Dtype::F32,
            vec![values.len()],
            bytemuck::cast_slice(values).to_vec(),
        ));
    }
    let views = owned
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            Ok((name.clone(), TensorView::new(*dtype, shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    Ok(safetensors::serialize(views, Some(metadata))?)
}

/// Reads the tensors of one network (named as by [`networks_to_bytes`]) into its
/// flat layout, checking every dtype and shape; appends the names it used.
pub fn read_network(
    tensors: &SafeTensors,
    prefix: &str,
    mlp: &Mlp,
    used: &mut Vec<String>,
) -> anyhow::Result<Vec<f32>> {
    read_state(tensors, prefix, &NetLayout::Mlp(mlp.clone()), used)
}

/// Reads one network's tensors into its flat state, checking every dtype
/// and shape; appends the names it used. Words no tensor covers (alignment
/// padding) stay zero.
fn read_state(
    tensors: &SafeTensors,
    prefix: &str,
    net: &NetLayout,
    used: &mut Vec<String>,
) -> anyhow::Result<Vec<f32>> {
    let mut state = vec![0.0f32; net.state_words()];
    for e in net.entries(prefix) {
        let name = &e.name;
        let t = tensors
            .tensor(name)
            .map_err(|_| anyhow::anyhow!("tensor '{name}' is missing"))?;
        let dtype = if e.int64 { Dtype::I64 } else { Dtype::F32 };
        anyhow::ensure!(
            t.dtype() == dtype,
            "tensor '{name}' is {:?}, expected {dtype:?}",
            t.dtype()
        );
        anyhow::ensure!(
            t.shape() == e.shape.as_slice(),
            "tensor '{name}' has shape {:?}, expected {:?}",
            t.shape(),
            e.shape
        );
        let out = &mut state[e.range.clone()];
        if e.int64 {
            for (p, c) in out.iter_mut().zip(t.data().chunks_exact(8)) {
                let n = i64::from_le_bytes(c.try_into().expect("8 bytes"));
                let n = u32::try_from(n).map_err(|_| {
                    anyhow::anyhow!("tensor '{name}' holds {n}, not a count below 2^32")
                })?;
                *p = f32::from_bits(n);
            }
        } else {
            for (p, c) in out.iter_mut().zip(t.data().chunks_exact(4)) {
                *p = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                anyhow::ensure!(
                    p.is_finite(),
                    "tensor '{name}' holds a non-finite value ({p})"
                );
            }
        }
        used.push(e.name);
    }
    Ok(state)
}

/// Each network's name prefix and layout; a layer model whose lists do not
/// chain is refused.
fn networks(model: &Architecture) -> anyhow::Result<[(&'static str, NetLayout); 2]> {
    let (g, d) = match model {
        Architecture::Mlp(m) => (
            NetLayout::Mlp(m.generator()),
            NetLayout::Mlp(m.discriminator()),
        ),
        Architecture::Layers(m) => {
            let (g, d) = m.networks().map_err(|e| anyhow::anyhow!(e))?;
            (NetLayout::Layers(g), NetLayout::Layers(d))
        }
    };
    Ok([("generator.", g), ("discriminator.", d)])
}

/// Serialises a checkpoint to safetensors bytes.
pub fn to_bytes(ck: &Checkpoint) -> anyhow::Result<Vec<u8>> {
    let [(g_prefix, g), (d_prefix, d)] = networks(&ck.model)?;
    let mut metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("model".to_string(), serde_json::to_string(&ck.model)?),
        ("step".to_string(), ck.step.to_string()),
        ("dataset".to_string(), ck.dataset.clone()),
        ("seed".to_string(), ck.seed.to_string()),
    ]);
    let mut flat: Vec<(&str, &[f32])> = Vec::new();
    if let Some(t) = &ck.training {
        metadata.insert("recipe".into(), t.recipe.clone());
        metadata.insert(
            "updates".into(),
            format!("{},{}", t.generator_updates, t.discriminator_updates),
        );
        if let Some(id) = &t.run_id {
            metadata.insert("run_id".into(), id.clone());
        }
        let states = [
            &t.generator_adam.0,
            &t.generator_adam.1,
            &t.discriminator_adam.0,
            &t.discriminator_adam.1,
        ];
        let totals = [
            g.param_words(),
            g.param_words(),
            d.param_words(),
            d.param_words(),
        ];
        for ((name, values), total) in OPTIMIZER_TENSORS.iter().zip(states).zip(totals) {
            anyhow::ensure!(
                values.len() == total,
                "{name} does not match the architecture"
            );
            flat.push((name, values.as_slice()));
        }
    }
    let mut nets = vec![
        (g_prefix, &g, ck.generator.as_slice()),
        (d_prefix, &d, ck.discriminator.as_slice()),
    ];
    if let Some(avg) = &ck.generator_ema {
        nets.push((GENERATOR_EMA, &g, avg.as_slice()));
    }
    with_flat_tensors(&nets, &flat, metadata)
}

/// Writes a checkpoint atomically (temporary file, fsync, rename).
pub fn save(path: &Path, ck: &Checkpoint) -> anyhow::Result<()> {
    super::atomic::write_atomic(path, &to_bytes(ck)?)
}

/// What a run stopped by an error leaves behind, for the end of its error
/// line: the checkpoint in `run_dir` that loads (every write is atomic, so the
/// last one written is intact), or that none was written (and the loop's
/// `checkpoint_every`, which writes them during a run).
pub fn kept_note(run_dir: &Path) -> String {
    if !run_dir.is_dir() {
        return format!(
            "the run folder {} is gone, so nothing of the run is kept",
            run_dir.display()
        );
    }
    let path = run_dir.join("checkpoint.safetensors");
    if !path.exists() {
        return "no checkpoint had been written (use checkpoint_every N)".to_string();
    }
    match load(&path) {
        Ok(ck) => format!(
            "the last checkpoint ({}, step {}) is kept",
            path.display(),
            ck.step
        ),
        Err(e) => format!("the checkpoint there does not load: {e:#}"),
    }
}

/// Reads a checkpoint and checks every tensor's name, dtype and shape
/// against the architecture in its metadata.
pub fn load(path: &Path) -> anyhow::Result<Checkpoint> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    from_bytes(&bytes).with_context(|| format!("{} is not a usable checkpoint", path.display()))
}

pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Checkpoint> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| anyhow::anyhow!("not a safetensors file, or truncated ({e})"))?;
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("corrupt safetensors ({e})"))?;
    let meta = header
        .metadata()
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no metadata (not written by shadergan)"))?;
    let get = |key: &str| {
        meta.get(key)
            .ok_or_else(|| anyhow::anyhow!("metadata has no '{key}'"))
    };
    let format = get("format")?;
    anyhow::ensure!(format == FORMAT, "format '{format}' is not {FORMAT}");
    let model: Architecture = serde_json::from_str(get("model")?)
        .context("metadata 'model' is not a model description")?;
    let [(g_prefix, g), (d_prefix, d)] = check_model(&model, bytes.len())?;
    let step = get("step")?
        .parse()
        .context("metadata 'step' is not a number")?;
    let seed = get("seed")?
        .parse()
        .context("metadata 'seed' is not a number")?;
    let dataset = get("dataset")?.clone();

    let mut used = Vec::new();
    let generator = read_state(&tensors, g_prefix, &g, &mut used)?;
    let discriminator = read_state(&tensors, d_prefix, &d, &mut used)?;
    let has_ema = tensors.names().iter().any(|n| n.starts_with(GENERATOR_EMA));
    let generator_ema = if has_ema {
        Some(read_state(&tensors, GENERATOR_EMA, &g, &mut used)?)
    } else {
        None
    };
    let training = match meta.get("recipe") {
        None => None,
        Some(recipe) => {
            let updates: Vec<u32> = get("updates")?
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()
                .filter(|v: &Vec<u32>| v.len() == 2)
                .ok_or_else(|| anyhow::anyhow!("metadata 'updates' is not two counts"))?;
            let totals = [
                g.param_words(),
                g.param_words(),
                d.param_words(),
                d.param_words(),
            ];
            let mut states = Vec::new();
            for (name, total) in OPTIMIZER_TENSORS.iter().zip(totals) {
                states.push(read_flat(&tensors, name, total)?);
                used.push(name.to_string());
            }
            let mut states = states.into_iter();
            let mut next = || states.next().expect("four states");
            Some(TrainingState {
                recipe: recipe.clone(),
                generator_adam: (next(), next()),
                discriminator_adam: (next(), next()),
                generator_updates: updates[0],
                discriminator_updates: updates[1],
                run_id: meta.get("run_id").cloned(),
            })
        }
    };
    if let Some(extra) = tensors
        .names()
        .into_iter()
        .find(|n| !used.iter().any(|e| e == n))
    {
        anyhow::bail!("unexpected tensor '{extra}' for this architecture");
    }
    Ok(Checkpoint {
        model,
        step,
        dataset,
        seed,
        generator,
        discriminator,
        generator_ema,
        training,
    })
}

/// Checks the model of a file of `file_bytes` and gives its networks: an
/// MLP's sizes before anything is allocated, a layer model's shapes
/// (refused naming the layer) and then its size.
fn check_model(
    model: &Architecture,
    file_bytes: usize,
) -> anyhow::Result<[(&'static str, NetLayout); 2]> {
    if let Architecture::Mlp(m) = model {
        m.check()?;
        check_claimed_size(m, file_bytes)?;
    }
    let nets = networks(model)?;
    if let Architecture::Layers(_) = model {
        let words = nets.iter().map(|(_, n)| n.param_words() as u128).sum();
        check_claimed_words(Some(words), file_bytes)?;
    }
    Ok(nets)
}

/// Refuses, before anything is allocated, an architecture whose parameters
/// cannot be in a file of `file_bytes` bytes (4 bytes a parameter): metadata
/// that claims huge layers is refused, not allocated.
fn check_claimed_size(model: &ModelSpec, file_bytes: usize) -> anyhow::Result<()> {
    let needed = crate::gan::footprint::parameter_count(model).and_then(|(g, d)| g.checked_add(d));
    check_claimed_words(needed, file_bytes)
}

/// Refuses a model whose `words` parameters cannot be in `file_bytes`.
fn check_claimed_words(words: Option<u128>, file_bytes: usize) -> anyhow::Result<()> {
    let needed = words.and_then(|n| n.checked_mul(4));
    let fits = needed.is_some_and(|n| n <= file_bytes as u128);
    anyhow::ensure!(
        fits,
        "metadata 'model' claims {} of parameters, but the file holds {file_bytes} bytes",
        needed.map_or(
            "more than 2^128 bytes".into(),
            crate::gan::footprint::human_bytes
        )
    );
    Ok(())
}

/// A 1-D f32 tensor of exactly `len` values.
fn read_flat(tensors: &SafeTensors, name: &str, len: usize) -> anyhow::Result<Vec<f32>> {
    let t = tensors
        .tensor(name)
        .map_err(|_| anyhow::anyhow!("tensor '{name}' is missing"))?;
    anyhow::ensure!(
        t.dtype() == Dtype::F32 && t.shape() == [len],
        "tensor '{name}' is {:?} {:?}, expected F32 [{len}]",
        t.dtype(),
        t.shape()
    );
    let values: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        anyhow::bail!("tensor '{name}' holds a non-finite value ({v})");
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn sample_checkpoint() -> Checkpoint {
        let model = ModelSpec {
            z_dim: 3,
            data_dim: 2,
            hidden: vec![5, 4],
            hidden_act: crate::plan::Activation::LeakyRelu(0.2),
            output_act: crate::plan::Activation::Identity,
            pack: 1,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        Checkpoint {
            generator: model.generator().init_params(&mut rng),
            discriminator: model.discriminator().init_params(&mut rng),
            generator_ema: None,
            model: Architecture::Mlp(model),
            step: 42,
            dataset: "ring".into(),
            seed: 7,
            training: None,
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let ck = sample_checkpoint();
        let back = from_bytes(&to_bytes(&ck).unwrap()).unwrap();
        assert_eq!(back, ck);
        assert_eq!(back.sampling_generator(), ck.generator.as_slice());
    }

    #[test]
    fn the_generator_average_round_trips_and_is_what_samples_use() {
        let mut ck = sample_checkpoint();
        // Halved, so the layout's zero padding stays zero (it is not saved).
        let avg: Vec<f32> = ck.generator.iter().map(|w| 0.5 * w).collect();
        ck.generator_ema = Some(avg.clone());
        let bytes = to_bytes(&ck).unwrap();
        let tensors = SafeTensors::deserialize(&bytes).unwrap();
        let names = tensors.names();
        assert!(names.contains(&"generator_ema.0.weight"), "{names:?}");
        let back = from_bytes(&bytes).unwrap();
        assert_eq!(back, ck);
        assert_eq!(back.sampling_generator(), avg.as_slice());
    }

    #[test]
    fn non_finite_parameters_are_refused_naming_the_tensor() {
        let mut ck = sample_checkpoint();
        let at = ck.model.mlp().unwrap().generator().layout().weights[1].offset;
        ck.generator[at] = f32::NAN;
        let e = from_bytes(&to_bytes(&ck).unwrap()).unwrap_err().to_string();
        assert!(
            e.contains("generator.2.weight") && e.contains("non-finite"),
            "{e}"
        );
    }

    #[test]
    fn round_trip_keeps_the_training_state() {
        let mut ck = sample_checkpoint();
        let (g, d) = (ck.generator.len(), ck.discriminator.len());
        let ramp = |n: usize, k: f32| (0..n).map(|i| i as f32 * k).collect::<Vec<f32>>();
        ck.training = Some(TrainingState {
            recipe: "{\"steps\": 3}".into(),
            generator_adam: (ramp(g, 0.5), ramp(g, 0.25)),
            discriminator_adam: (ramp(d, -1.0), ramp(d, 2.0)),
            generator_updates: 42,
            discriminator_updates: 84,
            run_id: Some("0123456789abcdef".into()),
        });
        let back = from_bytes(&to_bytes(&ck).unwrap()).unwrap();
        assert_eq!(back, ck);
    }

    #[test]
    fn tensors_are_named_for_nn_sequential() {
        let bytes = to_bytes(&sample_checkpoint()).unwrap();
        let t = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = t.names();
        names.sort();
        assert_eq!(
            names,
            [
                "discriminator.0.bias",
                "discriminator.0.weight",
                "discriminator.2.bias",
                "discriminator.2.weight",
                "discriminator.4.bias",
                "discriminator.4.weight",
                "generator.0.bias",
                "generator.0.weight",
                "generator.2.bias",
                "generator.2.weight",
                "generator.4.bias",
                "generator.4.weight",
            ]
        );
        assert_eq!(t.tensor("generator.0.weight").unwrap().shape(), [5, 3]);
        assert_eq!(t.tensor("discriminator.4.weight").unwrap().shape(), [1, 4]);
    }

    #[test]
    fn garbage_and_truncation_are_refused_with_a_reason() {
        let bytes = to_bytes(&sample_checkpoint()).unwrap();
        for cut in [0, 7, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            let e = from_bytes(&bytes[..cut]).unwrap_err().to_string();
            assert!(e.contains("safetensors"), "cut {cut}: {e}");
        }
        let e = from_bytes(b"hello world, not a checkpoint")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
    }
}
