//! Philox 4×32-10: the counter-based random number generator every device
//! shares.
//!
//! A classic generator (a Mersenne Twister, ChaCha as a stream) is a state
//! machine: the 1000th number needs the 999 before it, so numbers are made
//! one after another, on the host, and copied to wherever they are needed.
//! A *counter-based* generator (Salmon et al., "Parallel random numbers: as
//! easy as 1, 2, 3", SC 2011) is a pure function instead:
//!
//! `block = philox(counter, key)`
//!
//! a keyed bijection of a 128-bit counter, scrambled well enough to pass
//! every statistical test (BigCrush). Block `i` of a stream needs nothing
//! but `i` and the key, so a GPU thread computes the numbers of its own
//! element, in parallel, right where the tensor lives. cuRAND, PyTorch's
//! CUDA generator and JAX use Philox for exactly this reason.
//!
//! Our mapping from `(seed, offset)` to tensor elements is fixed here, once,
//! so that every device draws the *same* numbers for the same seed (which
//! PyTorch's CPU and CUDA generators do not):
//!
//! - the key is the seed: `[seed as u32, (seed >> 32) as u32]`;
//! - block `b` is `philox([b as u32, (b >> 32) as u32, 0, 0], key)`: four
//!   32-bit words;
//! - the stream is the sequence of words of blocks `0, 1, 2, ...`: word `w`
//!   is word `w mod 4` of block `w / 4`;
//! - a draw starting at word `offset` reads words `offset, offset + 1, ...`
//!   in order: one word per element for 32- and 16-bit dtypes, two for `f64`
//!   (and a Bernoulli draw one word per element, whatever the dtype);
//! - a word `w` becomes the uniform `(w >> 8) · 2⁻²⁴` in `[0, 1)` (24 bits,
//!   exact in `f32`); two words `w₀, w₁` become the `f64` uniform
//!   `((w₁ << 32 | w₀) >> 11) · 2⁻⁵³`;
//! - normals come in pairs by Box–Muller: elements `2j, 2j + 1` take the
//!   uniforms `u₁, u₂` of draws `2j, 2j + 1` and are `r·cos θ` and `r·sin θ`
//!   with `r = √(−2 ln(1 − u₁))`, `θ = 2π·u₂`;
//! - the arithmetic after the integer part is done in `f64` and rounded once
//!   to the tensor's dtype.

use crate::backend::{Distribution, RandomStream};
use crate::{DType, Error, Result};

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9; // the golden ratio
const W1: u32 = 0xBB67_AE85; // √3 − 1

// ANCHOR: philox
/// The Philox 4×32 bijection with `rounds` rounds (10 is the standard).
///
/// Each round multiplies two of the four words by a constant, keeping the
/// full 64-bit products: the high halves, mixed with the other two words
/// and the key, and the low halves become the next four words. Between
/// rounds the key is bumped by two Weyl constants.
pub fn philox4x32_rounds(counter: [u32; 4], key: [u32; 2], rounds: usize) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for r in 0..rounds {
        if r > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = (M0 as u64) * (c[0] as u64);
        let p1 = (M1 as u64) * (c[2] as u64);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Philox 4×32-10.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    philox4x32_rounds(counter, key, 10)
}
// ANCHOR_END: philox

/// Block `index` of the stream keyed by `seed`.
pub fn block(seed: u64, index: u64) -> [u32; 4] {
    philox4x32(
        [index as u32, (index >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// A word as a uniform number in `[0, 1)` with 24 random bits.
pub fn unit_f32(w: u32) -> f64 {
    (w >> 8) as f64 * (1.0 / 16_777_216.0)
}

/// Two words as a uniform number in `[0, 1)` with 53 random bits.
pub fn unit_f64(w0: u32, w1: u32) -> f64 {
    ((((w1 as u64) << 32) | w0 as u64) >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// Words of the stream one element of `dtype` uses.
pub fn words_per_element(dtype: DType) -> u64 {
    if dtype == DType::F64 {
        2
    } else {
        1
    }
}

/// How many words a draw of `n` elements of `dtype` from `dist` consumes:
/// what the generator's offset moves by. (Normals are made in pairs, so an
/// odd count uses one uniform more.)
pub fn words_for(dist: Distribution, n: usize, dtype: DType) -> u64 {
    let draws = match dist {
        Distribution::Normal { .. } => n.div_ceil(2) * 2,
        _ => n,
    } as u64;
    match dist {
        Distribution::Bernoulli { .. } => draws,
        _ => draws * words_per_element(dtype),
    }
}

/// Checks that `dist` can fill a tensor of `dtype` (the op layer calls it
/// before any backend runs).
pub fn check(dist: Distribution, dtype: DType) -> Result<()> {
    let bad = |msg: String| Err(Error::invalid("random", msg));
    match dist {
        Distribution::Uniform { lo, hi } if !(lo.is_finite() && hi.is_finite() && lo <= hi) => bad(
            format!("uniform bounds must be finite with lo <= hi, got [{lo}, {hi})"),
        ),
        Distribution::Normal { mean, std }
            if !(mean.is_finite() && std.is_finite() && std >= 0.0) =>
        {
            bad(format!(
                "normal needs a finite mean and std >= 0, got mean {mean}, std {std}"
            ))
        }
        Distribution::Bernoulli { p } if !(0.0..=1.0).contains(&p) => {
            bad(format!("bernoulli probability must be in [0, 1], got {p}"))
        }
        Distribution::Uniform { .. } | Distribution::Normal { .. } if !dtype.is_float() => {
            Err(Error::UnsupportedDType {
                op: "random",
                dtype,
            })
        }
        _ => Ok(()),
    }
}

// ANCHOR: sample
/// Word `w` of the stream keyed by `seed`.
pub fn word(seed: u64, w: u64) -> u32 {
    block(seed, w / 4)[(w % 4) as usize]
}

/// The words of a draw, computing each Philox block once.
struct Words {
    stream: RandomStream,
    index: u64,
    block: [u32; 4],
}

impl Words {
    fn new(stream: RandomStream) -> Self {
        Words {
            stream,
            index: stream.offset / 4,
            block: block(stream.seed, stream.offset / 4),
        }
    }
    /// Word `w` of the draw: word `offset + w` of the stream.
    fn get(&mut self, w: u64) -> u32 {
        let abs = self.stream.offset.wrapping_add(w);
        if abs / 4 != self.index {
            self.index = abs / 4;
            self.block = block(self.stream.seed, self.index);
        }
        self.block[(abs % 4) as usize]
    }
    /// The uniform in `[0, 1)` of draw `i` for a tensor of `dtype`.
    fn unit(&mut self, dtype: DType, i: u64) -> f64 {
        if dtype == DType::F64 {
            unit_f64(self.get(2 * i), self.get(2 * i + 1))
        } else {
            unit_f32(self.get(i))
        }
    }
}

/// Elements `0..n` of a draw from `dist` for a tensor of `dtype`, in `f64`
/// before the final rounding, handed to `put(i, value)` in order. This is
/// the reference every device reproduces: the CPU backend fills tensors
/// with it, and a GPU kernel computes the same formulas per thread.
pub fn generate(
    dist: Distribution,
    stream: RandomStream,
    dtype: DType,
    n: usize,
    mut put: impl FnMut(usize, f64),
) {
    let mut words = Words::new(stream);
    match dist {
        Distribution::Uniform { lo, hi } => {
            for i in 0..n {
                put(i, lo + (hi - lo) * words.unit(dtype, i as u64));
            }
        }
        Distribution::Bernoulli { p } => {
            for i in 0..n {
                put(i, (unit_f32(words.get(i as u64)) < p) as u8 as f64);
            }
        }
        Distribution::Normal { mean, std } => {
            for pair in 0..n.div_ceil(2) {
                let u1 = words.unit(dtype, 2 * pair as u64);
                let u2 = words.unit(dtype, 2 * pair as u64 + 1);
                let r = (-2.0 * (1.0 - u1).ln()).sqrt();
                let (sin, cos) = (2.0 * std::f64::consts::PI * u2).sin_cos();
                put(2 * pair, mean + std * r * cos);
                if 2 * pair + 1 < n {
                    put(2 * pair + 1, mean + std * r * sin);
                }
            }
        }
    }
}
// ANCHOR_END: sample
