//! Activation functions as modules, so they can sit in a [`Sequential`]
//! between the layers they separate.
//!
//! The math (and each derivative) lives in chapter 04's `ElementwiseOps`;
//! these structs only hold the constants (`slope`, `beta`, `dim`) and
//! forward to it. They hold no parameters, so `#[derive(Module)]` generates
//! an empty visit. The names are PyTorch's (`ReLU`, `GELU`, `SiLU`), so a
//! model reads the same in both.
//!
//! [`Sequential`]: crate::Sequential

use crate::Module;
use chapter_02::Result;
use chapter_03::Tensor;
use chapter_04::prelude::*;
use chapter_05_derive::Module as DeriveModule;

// ANCHOR: relu
/// `max(x, 0)`. Shape: any, unchanged.
#[derive(DeriveModule, Debug, Clone, Copy, Default)]
pub struct ReLU;

impl Module for ReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.relu()
    }
}
// ANCHOR_END: relu

/// `x` for `x > 0`, `negative_slope · x` otherwise (PyTorch default `0.01`):
/// a ReLU whose negative side still passes a little gradient.
#[derive(DeriveModule, Debug, Clone, Copy)]
pub struct LeakyReLU {
    pub negative_slope: f64,
}

impl LeakyReLU {
    pub fn new(negative_slope: f64) -> Self {
        LeakyReLU { negative_slope }
    }
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU::new(0.01)
    }
}

impl Module for LeakyReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.leaky_relu(self.negative_slope)
    }
}

/// `σ(x) = 1/(1 + e⁻ˣ)`, squashing into `(0, 1)`.
#[derive(DeriveModule, Debug, Clone, Copy, Default)]
pub struct Sigmoid;

impl Module for Sigmoid {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.sigmoid()
    }
}

/// `tanh x`, squashing into `(−1, 1)`.
#[derive(DeriveModule, Debug, Clone, Copy, Default)]
pub struct Tanh;

impl Module for Tanh {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.tanh()
    }
}

/// Which formula [`GELU`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeluApproximation {
    /// The exact `x·Φ(x)` with the normal CDF `Φ` (PyTorch's default, `"none"`).
    #[default]
    None,
    /// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`, GPT-2's (`"tanh"`).
    Tanh,
}

// ANCHOR: gelu
/// The Gaussian error linear unit, `x·Φ(x)`: the input weighted by the
/// probability that a standard normal variable is below it. Smooth where
/// ReLU has a kink; the activation of BERT and GPT.
#[allow(clippy::upper_case_acronyms)] // PyTorch's name.
#[derive(DeriveModule, Debug, Clone, Copy, Default)]
pub struct GELU {
    #[module(skip)]
    pub approximate: GeluApproximation,
}

impl GELU {
    pub fn new(approximate: GeluApproximation) -> Self {
        GELU { approximate }
    }
}

impl Module for GELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.approximate {
            GeluApproximation::None => x.gelu(),
            GeluApproximation::Tanh => x.gelu_tanh(),
        }
    }
}
// ANCHOR_END: gelu

/// SiLU (swish), `x·σ(x)`: the activation of Llama's feed-forward layers.
#[derive(DeriveModule, Debug, Clone, Copy, Default)]
pub struct SiLU;

impl Module for SiLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.silu()
    }
}

/// `ln(1 + e^(βx))/β`, a smooth ReLU; linear where `βx > threshold`
/// (PyTorch defaults `β = 1`, `threshold = 20`).
#[derive(DeriveModule, Debug, Clone, Copy)]
pub struct Softplus {
    pub beta: f64,
    pub threshold: f64,
}

impl Softplus {
    pub fn new(beta: f64, threshold: f64) -> Self {
        Softplus { beta, threshold }
    }
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus::new(1.0, 20.0)
    }
}

impl Module for Softplus {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softplus(self.beta, self.threshold)
    }
}

/// `exp(xᵢ) / Σⱼ exp(xⱼ)` along `dim` (negative counts from the end):
/// turns scores into a probability distribution.
#[derive(DeriveModule, Debug, Clone, Copy)]
pub struct Softmax {
    pub dim: i64,
}

impl Softmax {
    pub fn new(dim: i64) -> Self {
        Softmax { dim }
    }
}

impl Module for Softmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softmax(self.dim)
    }
}
