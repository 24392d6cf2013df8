//! What a run needs in memory, computed from its sizes before anything is
//! allocated, so a run that no machine can hold is refused in one line
//! instead of aborting the process half-way (`memory allocation failed`).
//!
//! The estimate is arithmetic on the architecture, the batch and the data,
//! in `u128` so that no size overflows:
//!
//! ```text
//! parameters   4 B × (P_G·(1 + grad + m + v [+ average]) + P_D·(1 + grad + m + v))
//! activations  4 B × 3 × (2·B·pack·(z + Σhidden + data) + 2B·(pack·data + Σhidden + 1))
//!              + 4 B × B·pack·data
//!              (outputs, gradients and dropout masks of both networks' layers;
//!              G runs over both steps' noise at once, and the G step's fake
//!              batch has its own rows)
//!              + 4 B × sample rows × (z + Σhidden + data)
//! dataset      rows × cols × (1 B for 8-bit images, 4 B for points)
//! ```
//! On the CPU backend all of it is host memory; on a GPU the host holds the
//! dataset and the initial parameters, and the device holds the rest, one
//! storage buffer per tensor group (the largest is checked against the
//! adapter's limits before anything is allocated).

use super::ModelSpec;
use crate::nn::sequential::Sequential;

/// Upper bound of D updates per step: the step's dispatch list is recorded
/// whole, so the count must stay far below what memory can hold.
pub const MAX_D_STEPS: u32 = 1000;

/// Padding words a tensor may get in the flat layout (alignment).
const PAD_WORDS: u128 = crate::plan::TENSOR_ALIGN_WORDS as u128;

/// Which part of a run needs the memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Both networks' weights, gradients and Adam moments (and G's average).
    Parameters,
    /// Both networks' layer outputs, gradients and dropout masks.
    Activations,
    /// The training set on the device.
    Dataset,
}

impl Part {
    pub fn describe(self) -> &'static str {
        match self {
            Part::Parameters => "the networks' parameters and optimizer state",
            Part::Activations => "the activations of a batch",
            Part::Dataset => "the training set",
        }
    }
}

/// A run that does not fit.
#[derive(Debug, thiserror::Error)]
pub enum FootprintError {
    #[error(
        "the run needs {} of memory, mostly {} ({}), but {limit_name} is {}",
        human_bytes(*needed), part.describe(), human_bytes(*part_bytes), human_bytes(*limit)
    )]
    TooLarge {
        needed: u128,
        part: Part,
        part_bytes: u128,
        limit: u128,
        limit_name: &'static str,
    },
    #[error("{d_steps} D updates per step is past the limit of {MAX_D_STEPS}")]
    TooManyDSteps { d_steps: u32 },
    #[error("the architecture's sizes overflow (more than 2^128 parameters)")]
    Overflow,
}

/// The sizes a run is made of.
#[derive(Clone, Copy, Debug)]
pub struct RunShape<'a> {
    pub model: &'a ModelSpec,
    pub batch: usize,
    pub g_average: bool,
    pub data_rows: usize,
    /// Bytes one value of the data takes on the device (1 for images, 4 for points).
    pub data_value_bytes: usize,
    pub sample_rows: usize,
}

/// Bytes each part of a run needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    pub parameters: u128,
    pub activations: u128,
    pub dataset: u128,
    /// The largest single device buffer (a network's flat parameters, one
    /// layer's activations, or the dataset) and the part it belongs to.
    pub largest_buffer: (Part, u128),
}

impl Footprint {
    pub fn total(&self) -> u128 {
        self.parameters + self.activations + self.dataset
    }

    /// The part that needs the most.
    pub fn largest_part(&self) -> (Part, u128) {
        [
            (Part::Parameters, self.parameters),
            (Part::Activations, self.activations),
            (Part::Dataset, self.dataset),
        ]
        .into_iter()
        .max_by_key(|(_, b)| *b)
        .expect("three parts")
    }
}

/// `(generator, discriminator)` parameters (weights and biases, as a
/// checkpoint stores them); `None` when they overflow.
pub fn parameter_count(model: &ModelSpec) -> Option<(u128, u128)> {
    let widths = |input: u128, output: u128| {
        let mut w = vec![input];
        w.extend(model.hidden.iter().map(|&h| h as u128));
        w.push(output);
        w
    };
    let count = |w: Vec<u128>| {
        w.windows(2).try_fold(0u128, |sum, l| {
            sum.checked_add(l[0].checked_mul(l[1])?.checked_add(l[1])?)
        })
    };
    let d_input = (model.data_dim as u128).checked_mul(model.pack as u128)?;
    let g = count(widths(model.z_dim as u128, model.data_dim as u128))?;
    let d = count(widths(d_input, 1))?;
    Some((g, d))
}

/// The memory a layer-list GAN needs, by part: both networks' parameters,
/// gradients and Adam moments; each unit's output and gradient over a
/// batch (D sees twice G's rows) and over the sample rows; the data.
pub fn estimate_layers(
    g: &Sequential,
    d: &Sequential,
    batch: usize,
    sample_rows: usize,
    dataset_bytes: u128,
) -> Footprint {
    let words = |n: usize| n as u128 * 4;
    let parameters = 4 * (words(g.param_words) + words(d.param_words));
    let outputs = |net: &Sequential| net.units.iter().map(|u| u.out_len as u128).sum::<u128>();
    let (b, s) = (batch as u128, sample_rows as u128);
    let activations = 4 * (2 * outputs(g) * (b + s) + 2 * outputs(d) * 2 * b);
    let widest = |net: &Sequential| net.units.iter().map(|u| u.out_len).max().unwrap_or(0) as u128;
    let largest = [
        (Part::Parameters, words(g.param_words.max(d.param_words))),
        (Part::Activations, 4 * widest(d).max(widest(g)) * 2 * b),
        (Part::Dataset, dataset_bytes),
    ]
    .into_iter()
    .max_by_key(|(_, bytes)| *bytes)
    .expect("three parts");
    Footprint {
        parameters,
        activations,
        dataset: dataset_bytes,
        largest_buffer: largest,
    }
}

/// The memory `shape` needs, by part.
pub fn estimate(shape: &RunShape) -> Result<Footprint, FootprintError> {
    let m = shape.model;
    let (g, d) = parameter_count(m).ok_or(FootprintError::Overflow)?;
    // Each tensor may be padded to the layout's alignment.
    let pad = 2 * (m.hidden.len() as u128 + 1) * PAD_WORDS;
    let (g, d) = (g + pad, d + pad);
    let copies_g: u128 = if shape.g_average { 5 } else { 4 };
    let parameters = (|| {
        g.checked_mul(copies_g)?
            .checked_add(d.checked_mul(4)?)?
            .checked_mul(4)
    })()
    .ok_or(FootprintError::Overflow)?;
    let hidden: u128 = m.hidden.iter().map(|&h| h as u128).sum();
    let (z, data, pack, b) = (
        m.z_dim as u128,
        m.data_dim as u128,
        m.pack as u128,
        shape.batch as u128,
    );
    let activations = (|| {
        let g_rows = b.checked_mul(pack)?;
        let g_widths = z.checked_add(hidden)?.checked_add(data)?;
        let d_widths = pack
            .checked_mul(data)?
            .checked_add(hidden)?
            .checked_add(1)?;
        let per_step = (2 * g_rows)
            .checked_mul(g_widths)?
            .checked_add((2 * b).checked_mul(d_widths)?)?;
        let sampler = (shape.sample_rows as u128).checked_mul(g_widths)?;
        let fake_g = g_rows.checked_mul(data)?;
        per_step
            .checked_mul(3)?
            .checked_add(sampler)?
            .checked_add(fake_g)?
            .checked_mul(4)
    })()
    .ok_or(FootprintError::Overflow)?;
    let dataset = (shape.data_rows as u128)
        .checked_mul(data)
        .and_then(|n| n.checked_mul(shape.data_value_bytes as u128))
        .ok_or(FootprintError::Overflow)?;
    let widest = m
        .hidden
        .iter()
        .map(|&h| h as u128)
        .max()
        .unwrap_or(0)
        .max(data)
        * pack;
    let largest_buffer = [
        (Part::Parameters, g.max(d) * 4),
        (Part::Activations, widest * 2 * b * 4),
        (Part::Dataset, dataset),
    ]
    .into_iter()
    .max_by_key(|(_, bytes)| *bytes)
    .expect("three parts");
    Ok(Footprint {
        parameters,
        activations,
        dataset,
        largest_buffer,
    })
}

/// Refuses a footprint past `limit` bytes (`limit_name` says what the limit is).
pub fn check_within(
    f: &Footprint,
    needed: u128,
    limit: u128,
    limit_name: &'static str,
) -> Result<(), FootprintError> {
    if needed <= limit {
        return Ok(());
    }
    let (part, part_bytes) = f.largest_part();
    Err(FootprintError::TooLarge {
        needed,
        part,
        part_bytes,
        limit,
        limit_name,
    })
}

/// Refuses a D-updates count past [`MAX_D_STEPS`].
pub fn check_d_steps(d_steps: u32) -> Result<(), FootprintError> {
    if d_steps > MAX_D_STEPS {
        return Err(FootprintError::TooManyDSteps { d_steps });
    }
    Ok(())
}

/// The memory this machine has available now (Linux: `MemAvailable` in
/// `/proc/meminfo`); `None` where it cannot be read.
pub fn available_memory() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a run whose host memory need is past what this machine has
/// available. On the CPU backend everything is host memory; on a GPU the
/// host holds the dataset and about three copies of the parameters.
pub fn check_host(f: &Footprint, cpu_backend: bool) -> Result<(), FootprintError> {
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let needed = if cpu_backend {
        f.total()
    } else {
        f.dataset + f.parameters * 3 / 5
    };
    check_within(f, needed, available, "the memory available on this machine")
}

/// `1.5 GB`-style sizes (powers of 1000, as `df -H`).
pub fn human_bytes(n: u128) -> String {
    const UNITS: [&str; 7] = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(model: &ModelSpec) -> RunShape<'_> {
        RunShape {
            model,
            batch: 64,
            g_average: false,
            data_rows: 10_000,
            data_value_bytes: 1,
            sample_rows: 64,
        }
    }

    #[test]
    fn the_seed_model_counts_its_parameters_and_is_small() {
        let m = ModelSpec::seed_images();
        let (g, d) = parameter_count(&m).unwrap();
        assert_eq!(
            g,
            (100 * 128 + 128 + 128 * 128 + 128 + 128 * 784 + 784) as u128
        );
        assert_eq!(d, (784 * 128 + 128 + 128 * 128 + 128 + 128 + 1) as u128);
        assert_eq!(g, m.generator().parameter_count() as u128);
        let f = estimate(&shape(&m)).unwrap();
        assert_eq!(f.dataset, 10_000 * 784);
        assert!(f.total() < 50_000_000, "{f:?}");
        check_host(&f, true).unwrap();
    }

    #[test]
    fn absurd_sizes_are_refused_naming_the_part_not_allocated() {
        let m = ModelSpec {
            hidden: vec![1 << 40],
            ..ModelSpec::seed_images()
        };
        let f = estimate(&shape(&m)).unwrap();
        let e = check_within(&f, f.total(), 1 << 30, "the limit").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("parameters") && text.contains("the limit"),
            "{text}"
        );
        let overflow = ModelSpec {
            hidden: vec![usize::MAX, usize::MAX, usize::MAX],
            z_dim: usize::MAX,
            ..ModelSpec::seed_images()
        };
        assert!(matches!(
            estimate(&shape(&overflow)),
            Err(FootprintError::Overflow)
        ));
        assert!(check_d_steps(MAX_D_STEPS).is_ok());
        assert!(check_d_steps(MAX_D_STEPS + 1).is_err());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
    }
}
