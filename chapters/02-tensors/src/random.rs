//! Seedable random numbers.
//!
//! Reproducibility is a feature: the same seed must give the same initial
//! weights, the same shuffles and therefore the same training run. We use
//! ChaCha8, whose output is fixed by its specification (unlike `StdRng`,
//! which may change between `rand` releases), and draw on the host so that
//! a seed gives the same numbers on every device.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::cell::RefCell;

// ANCHOR: generator
/// A seeded random number generator, the analogue of `torch.Generator`.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: ChaCha8Rng,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.rng.random::<f64>()
    }
    /// Normal with the given mean and standard deviation.
    pub fn normal(&mut self, mean: f64, std: f64) -> f64 {
        let z: f64 = StandardNormal.sample(&mut self.rng);
        mean + std * z
    }
    /// Uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }
    /// A random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.rng.random_range(0..=i);
            v.swap(i, j);
        }
        v
    }
    /// The generator's complete state: seed, stream and position. Saving
    /// it in a checkpoint and restoring it with
    /// [`from_state`](Self::from_state) continues the exact same sequence.
    pub fn state(&self) -> GeneratorState {
        GeneratorState {
            seed: self.rng.get_seed(),
            stream: self.rng.get_stream(),
            word_pos: self.rng.get_word_pos(),
        }
    }
    /// A generator positioned exactly where `state` was taken.
    pub fn from_state(state: &GeneratorState) -> Self {
        let mut rng = ChaCha8Rng::from_seed(state.seed);
        rng.set_stream(state.stream);
        rng.set_word_pos(state.word_pos);
        Generator { rng }
    }
    /// The raw generator, for crates that take any `rand::Rng`.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}
// ANCHOR_END: generator

/// Everything needed to recreate a [`Generator`] mid-sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorState {
    pub seed: [u8; 32],
    pub stream: u64,
    pub word_pos: u128,
}

impl GeneratorState {
    /// 56 bytes: seed, stream (little-endian), word position (little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.seed.to_vec();
        v.extend_from_slice(&self.stream.to_le_bytes());
        v.extend_from_slice(&self.word_pos.to_le_bytes());
        v
    }
    /// The inverse of [`to_bytes`](Self::to_bytes); `None` unless exactly 56 bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != 56 {
            return None;
        }
        Some(GeneratorState {
            seed: b[..32].try_into().ok()?,
            stream: u64::from_le_bytes(b[32..40].try_into().ok()?),
            word_pos: u128::from_le_bytes(b[40..56].try_into().ok()?),
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
