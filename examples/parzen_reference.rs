//! The Parzen-window protocol applied to real images: 10,000 MNIST training
//! images stand in for generated samples. It is the reference a generator's
//! score is read against (about 241 nats), and a check of the estimator.
//!
//!     cargo run --release --example parzen_reference -- ../shared/data/mnist

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data/mnist".into());
    let dir = std::path::Path::new(&dir);
    let (train, _) = shadergan::data::read_split(dir, "train")?;
    let (test, _) = shadergan::data::read_split(dir, "t10k")?;
    anyhow::ensure!(train.count >= 51_000, "needs the 60k training set");
    let unit = |b: &[u8]| {
        b.iter()
            .map(|&v| f32::from(v) / 255.0)
            .collect::<Vec<f32>>()
    };
    let dim = train.rows * train.cols;
    let samples = unit(&train.pixels[..10_000 * dim]);
    let validation = unit(&train.pixels[50_000 * dim..51_000 * dim]);
    let gpu = shadergan::backend::select(shadergan::backend::BackendChoice::Auto, None)?.gpu;
    let s = shadergan::eval::parzen::score(
        gpu.as_ref(),
        &samples,
        &validation,
        &unit(&test.pixels),
        dim,
    )?;
    for (sigma, ll) in &s.validation {
        println!("sigma {sigma:.4}: validation mean log-likelihood {ll:.1}");
    }
    println!(
        "real MNIST train[0:10000] as samples: {:.1} ± {:.1} nats on the test set (sigma {:.4})",
        s.mean, s.standard_error, s.sigma
    );
    Ok(())
}
