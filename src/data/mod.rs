//! Training data: the IDX reader, the embedded default set, and 2-D mixtures.
//!
//! - `fashion-mnist` (the default): the 60k training set from `--data DIR` or
//!   `/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist`),
//!   else the 10k test images embedded in the binary (MIT licence, Zalando SE).
//! - `mnist`: the 60k training set from `--data DIR`.
//! - `ring`, `grid`: 2-D Gaussian mixtures ([`mixtures`]).
//!
//! Images stay 8-bit on the device and are mapped to [−1, 1] when gathered.

pub mod idx;
pub mod mixtures;

use std::path::{Path, PathBuf};

use rand::SeedableRng;

use crate::gan::{SettingError, TrainingData};
pub use mixtures::Mixture;

/// Where Debian's `dataset-fashion-mnist` puts the files.
pub const SYSTEM_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// The embedded Fashion-MNIST test set (10,000 images and labels, gzip IDX).
pub const EMBEDDED_IMAGES: &[u8] = include_bytes!("fashion_mnist/t10k-images-idx3-ubyte.gz");
pub const EMBEDDED_LABELS: &[u8] = include_bytes!("fashion_mnist/t10k-labels-idx1-ubyte.gz");

/// Points drawn from a mixture to form its training set.
pub const MIXTURE_POINTS: usize = 100_000;

/// The datasets `train` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetName {
    FashionMnist,
    Mnist,
    Ring,
    Grid,
}

impl DatasetName {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Mnist => "mnist",
            DatasetName::Ring => "ring",
            DatasetName::Grid => "grid",
        }
    }

    pub fn parse(s: &str) -> Option<DatasetName> {
        [
            DatasetName::FashionMnist,
            DatasetName::Mnist,
            DatasetName::Ring,
            DatasetName::Grid,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// What a dataset is made of.
#[derive(Clone, Debug, PartialEq)]
pub enum DataKind {
    /// 8-bit images `rows × cols`.
    Images { rows: usize, cols: usize },
    /// Points of a 2-D mixture.
    Points(Mixture),
}

/// A loaded dataset.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: DatasetName,
    /// Where it came from, for logs and `config.json`.
    pub source: String,
    pub kind: DataKind,
    pub data: TrainingData,
}

/// A loaded dataset and, when it was not the one asked for, why.
pub struct Loaded {
    pub dataset: Dataset,
    pub notice: Option<String>,
}

/// The first of `names` that exists in `dir`.
fn find_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// The 60k training images of an MNIST-format set in `dir`.
fn read_train_images(dir: &Path, dataset: &str) -> anyhow::Result<(idx::Images, PathBuf)> {
    let path = find_file(
        dir,
        &["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"],
    )
    .ok_or_else(|| {
        anyhow::anyhow!(
            "no {dataset} training images in {} (expected train-images-idx3-ubyte.gz)",
            dir.display()
        )
    })?;
    Ok((idx::read_images(&path)?, path))
}

/// Images and labels of one split (`train` or `t10k`) of an MNIST-format set in `dir`.
pub fn read_split(dir: &Path, split: &str) -> anyhow::Result<(idx::Images, Vec<u8>)> {
    let find = |kind: &str| {
        let names = [format!("{split}-{kind}.gz"), format!("{split}-{kind}")];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        find_file(dir, &names)
            .ok_or_else(|| anyhow::anyhow!("no {split}-{kind}.gz in {}", dir.display()))
    };
    let images = find("images-idx3-ubyte")?;
    let labels = find("labels-idx1-ubyte")?;
    Ok(idx::read_labelled(&images, &labels)?)
}

fn images_dataset(name: DatasetName, images: idx::Images, source: String) -> Dataset {
    Dataset {
        name,
        source,
        kind: DataKind::Images {
            rows: images.rows,
            cols: images.cols,
        },
        data: TrainingData::U8 {
            rows: images.count,
            cols: images.rows * images.cols,
            bytes: images.pixels,
        },
    }
}

/// The embedded Fashion-MNIST test images.
pub fn embedded_fashion_mnist() -> anyhow::Result<Dataset> {
    let images = idx::parse_images(EMBEDDED_IMAGES, "embedded Fashion-MNIST t10k images")?;
    let count = images.count;
    Ok(images_dataset(
        DatasetName::FashionMnist,
        images,
        format!("embedded Fashion-MNIST test set ({count} images)"),
    ))
}

/// Loads `name`; `data_dir` is `--data`, `seed` draws the mixtures' points.
pub fn load(name: DatasetName, data_dir: Option<&Path>, seed: u64) -> anyhow::Result<Loaded> {
    match name {
        DatasetName::FashionMnist => {
            if let Some(dir) = data_dir {
                let (images, path) = read_train_images(dir, "Fashion-MNIST")?;
                let source = format!("{} ({} images)", path.display(), images.count);
                return Ok(Loaded {
                    dataset: images_dataset(name, images, source),
                    notice: None,
                });
            }
            let system = Path::new(SYSTEM_FASHION_MNIST);
            if find_file(
                system,
                &["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"],
            )
            .is_some()
            {
                let (images, path) = read_train_images(system, "Fashion-MNIST")?;
                let source = format!("{} ({} images)", path.display(), images.count);
                return Ok(Loaded {
                    dataset: images_dataset(name, images, source),
                    notice: None,
                });
            }
            Ok(Loaded {
                dataset: embedded_fashion_mnist()?,
                notice: Some(format!(
                    "Fashion-MNIST's 60k training set is not in {SYSTEM_FASHION_MNIST} \
                     (apt-get install dataset-fashion-mnist, or give data_dir): \
                     training on the embedded 10k test images"
                )),
            })
        }
        DatasetName::Mnist => {
            let dir = data_dir.ok_or_else(|| SettingError {
                field: "dataset",
                problem: "mnist needs data_dir, the folder holding train-images-idx3-ubyte.gz"
                    .into(),
                mentions: &["data_dir"],
            })?;
            let (images, path) = read_train_images(dir, "MNIST")?;
            let source = format!("{} ({} images)", path.display(), images.count);
            Ok(Loaded {
                dataset: images_dataset(name, images, source),
                notice: None,
            })
        }
        DatasetName::Ring | DatasetName::Grid => {
            let mixture = Mixture::named(name.as_str()).expect("ring and grid are mixtures");
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x6d69_7874_7572_6573);
            let values = mixture.sample(MIXTURE_POINTS, &mut rng);
            Ok(Loaded {
                dataset: Dataset {
                    name,
                    source: format!(
                        "{MIXTURE_POINTS} points of the {} mixture ({} modes, std {})",
                        mixture.name,
                        mixture.centers.len(),
                        mixture.std
                    ),
                    kind: DataKind::Points(mixture),
                    data: TrainingData::F32 {
                        rows: MIXTURE_POINTS,
                        cols: 2,
                        values,
                    },
                },
                notice: None,
            })
        }
    }
}
