//! Seedable random numbers.
//!
//! Reproducibility is a feature: the same seed must give the same initial
//! weights, the same shuffles and therefore the same training run, on every
//! device. A [`Generator`] is just a seed and an offset into the Philox
//! stream of that seed (see [`crate::philox`]): a tensor of random numbers
//! is made by the device it lives on from `(seed, offset)`, and the
//! generator moves its offset past the blocks the draw used. Nothing random
//! is ever made on the host and copied over, and the state that a
//! checkpoint must save is two numbers.

use crate::backend::RandomStream;
use crate::philox;
use std::cell::RefCell;

// ANCHOR: generator
/// A seeded random number generator, the analogue of `torch.Generator`:
/// the position `offset` (in 32-bit words) in the Philox stream keyed by
/// `seed`. A number drawn on the host is the same as a one-element tensor
/// drawn at that position: `g.uniform(0.0, 1.0)` equals element 0 of an
/// `f64` `Tensor::rand_with` made from a copy of `g`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    seed: u64,
    offset: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator { seed, offset: 0 }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next unused word of the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reserves `words` words for a device draw: returns where the draw
    /// starts and moves past it.
    pub fn take(&mut self, words: u64) -> RandomStream {
        let stream = RandomStream {
            seed: self.seed,
            offset: self.offset,
        };
        self.offset = self.offset.wrapping_add(words);
        stream
    }

    /// The next word, for a draw made on the host.
    pub fn next_word(&mut self) -> u32 {
        let s = self.take(1);
        philox::word(s.seed, s.offset)
    }

    /// Uniform in `[lo, hi)` (53 random bits: two words).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let (w0, w1) = (self.next_word(), self.next_word());
        lo + (hi - lo) * philox::unit_f64(w0, w1)
    }

    /// Normal with the given mean and standard deviation: the first of a
    /// Box–Muller pair made from two `f64` uniforms (four words).
    pub fn normal(&mut self, mean: f64, std: f64) -> f64 {
        let u1 = self.uniform(0.0, 1.0);
        let u2 = self.uniform(0.0, 1.0);
        let r = (-2.0 * (1.0 - u1).ln()).sqrt();
        mean + std * r * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift of a
    /// 64-bit number (two words; bias below `n / 2⁶⁴`).
    pub fn below(&mut self, n: usize) -> usize {
        let (w0, w1) = (self.next_word(), self.next_word());
        let x = ((w1 as u64) << 32) | w0 as u64;
        ((x as u128 * n as u128) >> 64) as usize
    }

    /// A random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
        v
    }

    /// The generator's complete state. Saving it in a checkpoint and
    /// restoring it with [`from_state`](Self::from_state) continues the
    /// exact same sequence.
    pub fn state(&self) -> GeneratorState {
        GeneratorState {
            seed: self.seed,
            offset: self.offset,
        }
    }

    /// A generator positioned exactly where `state` was taken.
    pub fn from_state(state: &GeneratorState) -> Self {
        Generator {
            seed: state.seed,
            offset: state.offset,
        }
    }
}
// ANCHOR_END: generator

/// Everything needed to recreate a [`Generator`] mid-sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorState {
    pub seed: u64,
    pub offset: u64,
}

impl GeneratorState {
    /// 16 bytes: seed and offset, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.seed.to_le_bytes().to_vec();
        v.extend_from_slice(&self.offset.to_le_bytes());
        v
    }
    /// The inverse of [`to_bytes`](Self::to_bytes); `None` unless exactly 16 bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != 16 {
            return None;
        }
        Some(GeneratorState {
            seed: u64::from_le_bytes(b[..8].try_into().ok()?),
            offset: u64::from_le_bytes(b[8..].try_into().ok()?),
        })
    }
}

thread_local! {
    static DEFAULT: RefCell<Generator> = RefCell::new(Generator::new(0));
}

/// Reseeds this thread's default generator (like `torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    DEFAULT.with(|g| *g.borrow_mut() = Generator::new(seed));
}

/// The state of this thread's default generator (like `torch.get_rng_state`).
pub fn default_generator_state() -> GeneratorState {
    DEFAULT.with(|g| g.borrow().state())
}

/// Restores this thread's default generator (like `torch.set_rng_state`).
pub fn set_default_generator_state(state: &GeneratorState) {
    DEFAULT.with(|g| *g.borrow_mut() = Generator::from_state(state));
}

/// Runs `f` with this thread's default generator.
pub fn with_default_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    DEFAULT.with(|g| f(&mut g.borrow_mut()))
}
