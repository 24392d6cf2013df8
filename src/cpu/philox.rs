//! Philox 4x32-10 counter-based random numbers: the CPU reference for
//! `shaders/random.wgsl`. The integer parts are bit-identical to the shader.
//!
//! **Generator.** Philox 4x32-10 (Salmon et al. 2011, as in Random123 and
//! cuRAND) maps a 128-bit counter `c = [c0, c1, c2, c3]` and a 64-bit key
//! `k = [k0, k1]` to four u32 words in 10 rounds. One round, with
//! `(hi, lo) = mulhilo(a, b)` the high and low halves of the 64-bit product:
//!
//! ```text
//! (hi0, lo0) = mulhilo(0xD2511F53, c0)
//! (hi1, lo1) = mulhilo(0xCD9E8D57, c2)
//! c = [hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0]
//! ```
//!
//! and between rounds the key is bumped (wrapping) by the Weyl constants
//! `(0x9E3779B9, 0xBB67AE85)`.
//!
//! **Streams.** The key is `(seed as u32, (seed >> 32) as u32)`. Block `t`
//! (0-based) uses counter `(t, stream, step, 0)` and produces outputs
//! `4t..4t+3` (those below the length), so any prefix of a fill is the same
//! as a shorter fill, and each `(stream, step)` pair is an independent stream.
//!
//! **Conversions** from a word `x`:
//! - uniform in [0, 1): `(x >> 8) as f32 * 2^-24` (exact in f32);
//! - normal: Box–Muller on the pairs `(x0, x1)` and `(x2, x3)` with
//!   `u1 = ((x0 >> 8) + 1) as f32 * 2^-24` in (0, 1] and
//!   `u2 = (x1 >> 8) as f32 * 2^-24`; `r = sqrt(-2 ln u1)`, `θ = 2π u2`;
//!   outputs `r cos θ`, `r sin θ` (all in f32, in that order);
//! - index in [0, bound): `mulhi(x, bound)`.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// 2^-24: scales a 24-bit integer into [0, 1).
const INV_2_24: f32 = 1.0 / 16_777_216.0;

/// High 32 bits of the 64-bit product `a * b`.
pub fn mulhi(a: u32, b: u32) -> u32 {
    ((a as u64 * b as u64) >> 32) as u32
}

/// The Philox 4x32-10 block function.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = (mulhi(M0, c[0]), M0.wrapping_mul(c[0]));
        let (hi1, lo1) = (mulhi(M1, c[2]), M1.wrapping_mul(c[2]));
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Fills `out` block by block: block `t` gets the four words for counter
/// `(t, stream, step, 0)`, turned into four outputs by `convert`.
fn fill_blocks<T: Copy>(
    out: &mut [T],
    seed: u64,
    stream: u32,
    step: u32,
    convert: impl Fn([u32; 4]) -> [T; 4],
) {
    let key = [seed as u32, (seed >> 32) as u32];
    for (t, chunk) in out.chunks_mut(4).enumerate() {
        let words = philox4x32_10([t as u32, stream, step, 0], key);
        let vals = convert(words);
        chunk.copy_from_slice(&vals[..chunk.len()]);
    }
}

fn uniform(x: u32) -> f32 {
    (x >> 8) as f32 * INV_2_24
}

/// Box–Muller on one pair of words: two standard normal numbers.
fn box_muller(x0: u32, x1: u32) -> [f32; 2] {
    let u1 = ((x0 >> 8) + 1) as f32 * INV_2_24;
    let u2 = (x1 >> 8) as f32 * INV_2_24;
    let r = (-2.0 * u1.ln()).sqrt();
    let theta = std::f32::consts::TAU * u2;
    [r * theta.cos(), r * theta.sin()]
}

/// Uniform numbers in [0, 1).
pub fn fill_uniform(out: &mut [f32], seed: u64, stream: u32, step: u32) {
    fill_blocks(out, seed, stream, step, |w| w.map(uniform));
}

/// Standard normal numbers.
pub fn fill_normal(out: &mut [f32], seed: u64, stream: u32, step: u32) {
    fill_blocks(out, seed, stream, step, |w| {
        let [a, b] = box_muller(w[0], w[1]);
        let [c, d] = box_muller(w[2], w[3]);
        [a, b, c, d]
    });
}

/// Uniform integers in [0, bound).
pub fn fill_index(out: &mut [u32], bound: u32, seed: u64, stream: u32, step: u32) {
    fill_blocks(out, seed, stream, step, |w| w.map(|x| mulhi(x, bound)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // Random123 kat_vectors for philox4x32_10.
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn mulhi_matches_wide_product() {
        assert_eq!(mulhi(u32::MAX, u32::MAX), 0xFFFF_FFFE);
        assert_eq!(mulhi(0x8000_0000, 2), 1);
        assert_eq!(mulhi(u32::MAX, 10), 9);
    }

    #[test]
    fn fills_are_deterministic_and_depend_on_their_inputs() {
        let fill = |seed, stream, step| {
            let mut v = vec![0.0f32; 37];
            fill_normal(&mut v, seed, stream, step);
            v
        };
        assert_eq!(fill(7, 1, 2), fill(7, 1, 2));
        assert_ne!(fill(7, 1, 2), fill(8, 1, 2));
        assert_ne!(fill(7, 1, 2), fill(7 | 1 << 32, 1, 2));
        assert_ne!(fill(7, 1, 2), fill(7, 2, 2));
        assert_ne!(fill(7, 1, 2), fill(7, 1, 3));

        let (mut a, mut b) = (vec![0.0f32; 37], vec![0.0f32; 37]);
        fill_uniform(&mut a, 7, 1, 2);
        fill_uniform(&mut b, 7, 1, 2);
        assert_eq!(a, b);
        let (mut a, mut b) = (vec![0u32; 37], vec![0u32; 37]);
        fill_index(&mut a, 10, 7, 1, 2);
        fill_index(&mut b, 10, 7, 1, 2);
        assert_eq!(a, b);
    }

    #[test]
    fn uniform_is_in_unit_interval() {
        let mut v = vec![0.0f32; 100_003];
        fill_uniform(&mut v, 42, 0, 0);
        assert!(v.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut v = vec![0.0f32; 100_003];
        fill_normal(&mut v, 42, 3, 9);
        assert!(v.iter().all(|x| x.is_finite()));
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "var {var}");
    }

    #[test]
    fn index_is_below_bound() {
        for bound in [1, 2, 3, 10, 60_000, u32::MAX] {
            let mut v = vec![0u32; 10_001];
            fill_index(&mut v, bound, 5, 2, 1);
            assert!(v.iter().all(|&i| i < bound), "bound {bound}");
        }
        let mut v = vec![0u32; 10_000];
        fill_index(&mut v, 10, 5, 2, 1);
        for i in 0..10 {
            assert!(v.contains(&i), "index {i} never drawn");
        }
    }

    #[test]
    fn odd_lengths_are_prefixes_of_longer_fills() {
        let (seed, stream, step) = (0x1234_5678_9abc_def0, 4, 11);
        let mut long_f = vec![0.0f32; 64];
        let mut long_n = vec![0.0f32; 64];
        let mut long_i = vec![0u32; 64];
        fill_uniform(&mut long_f, seed, stream, step);
        fill_normal(&mut long_n, seed, stream, step);
        fill_index(&mut long_i, 1000, seed, stream, step);
        for len in [1, 7, 8, 9] {
            let mut f = vec![0.0f32; len];
            let mut n = vec![0.0f32; len];
            let mut i = vec![0u32; len];
            fill_uniform(&mut f, seed, stream, step);
            fill_normal(&mut n, seed, stream, step);
            fill_index(&mut i, 1000, seed, stream, step);
            assert_eq!(f, long_f[..len]);
            assert_eq!(n, long_n[..len]);
            assert_eq!(i, long_i[..len]);
        }
    }
}
