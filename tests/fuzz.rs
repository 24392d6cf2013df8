//! Mutation fuzzing of the two readers of untrusted files: the IDX reader and
//! the checkpoint loader. Each starts from the valid files in tests/corpus/
//! and applies random byte flips, overwrites, truncations, insertions and
//! chunk duplications for a bounded time (`SHADERGAN_FUZZ_SECONDS`, default 3
//! per target, so CI runs them on every push). Every mutant must give either
//! a value or an error message, never a panic; a checkpoint that loads must
//! survive a save/load round trip unchanged.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use shadergan::data::idx;
use shadergan::io::checkpoint;

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("corpus file {name}: {e}"))
}

fn budget() -> Duration {
    let seconds = std::env::var("SHADERGAN_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(3.0);
    Duration::from_secs_f64(seconds)
}

/// One to four random edits of `bytes`.
fn mutate(bytes: &mut Vec<u8>, rng: &mut StdRng) {
    for _ in 0..rng.random_range(1..=4) {
        if bytes.is_empty() {
            bytes.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..6) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes[at] = rng.random(),
            2 => bytes.truncate(at),
            3 => bytes.insert(at, rng.random()),
            4 => {
                // A large little- or big-endian word: lengths, counts, offsets.
                let word: u32 = [u32::MAX, 0x7fff_ffff, 1 << 31, 0][rng.random_range(0..4)];
                let end = (at + 4).min(bytes.len());
                let src = word.to_le_bytes();
                bytes[at..end].copy_from_slice(&src[..end - at]);
            }
            _ => {
                let end = rng.random_range(at..=bytes.len().min(at + 64));
                let chunk = bytes[at..end].to_vec();
                let to = rng.random_range(0..=bytes.len());
                bytes.splice(to..to, chunk);
            }
        }
    }
}

/// Runs `check` on mutants of `seed_bytes` until the budget is spent; returns how many.
fn fuzz(target: &str, seed_bytes: &[u8], seed: u64, check: impl Fn(&[u8])) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let mut count = 0;
    while start.elapsed() < budget() {
        let mut bytes = seed_bytes.to_vec();
        mutate(&mut bytes, &mut rng);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
        assert!(
            outcome.is_ok(),
            "{target}: a mutant panicked (mutant {count}, {} bytes)",
            bytes.len()
        );
        count += 1;
    }
    eprintln!("{target}: {count} mutants in {:?}", start.elapsed());
    count
}

#[test]
fn the_idx_reader_never_panics_on_mutants() {
    let corpus_files = [
        ("images-3x28x28.idx", "mutant"),
        ("images-3x28x28.idx.gz", "mutant.gz"),
        ("labels-3.idx", "mutant"),
    ];
    for (i, (file, name)) in corpus_files.into_iter().enumerate() {
        let bytes = corpus(file);
        assert!(
            idx::parse_images(&bytes, name).is_ok() || idx::parse_labels(&bytes, name).is_ok(),
            "corpus file {file} does not parse"
        );
        let n = fuzz(file, &bytes, i as u64, |b| {
            for e in [
                idx::parse_images(b, name).err(),
                idx::parse_labels(b, name).err(),
            ]
            .into_iter()
            .flatten()
            {
                assert!(!e.to_string().is_empty());
            }
        });
        assert!(n > 0);
    }
}

#[test]
fn the_checkpoint_loader_never_panics_on_mutants() {
    let bytes = corpus("ring-8x8.safetensors");
    let original = checkpoint::from_bytes(&bytes).expect("the corpus checkpoint loads");
    assert!(
        original.training.is_some(),
        "the corpus checkpoint holds its training state"
    );
    let n = fuzz(
        "ring-8x8.safetensors",
        &bytes,
        99,
        |b| match checkpoint::from_bytes(b) {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(ck) => {
                let again = checkpoint::from_bytes(&checkpoint::to_bytes(&ck).unwrap()).unwrap();
                assert!(again == ck, "a loaded mutant does not survive a round trip");
            }
        },
    );
    assert!(n > 0);
}
