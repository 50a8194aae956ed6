//! Activation functions as modules, so they can sit in a [`Sequential`]
//! between the layers they separate.
//!
//! The math (and each derivative) lives in chapter 04's `ElementwiseOps`;
//! these structs only hold the constants (a slope, `β`, a dimension) and
//! forward to it. They hold no parameters, so `#[derive(Module)]` generates
//! an empty visit. The names and the constructors are PyTorch's:
//! `LeakyRelu(0.2)` is `nn.LeakyReLU(0.2)` (`LeakyRelu::new(0.2)` works too),
//! and `Default` gives PyTorch's default arguments.
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
pub struct Relu;

impl Relu {
    pub fn new() -> Self {
        Relu
    }
}

impl Module for Relu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.relu()
    }
}
// ANCHOR_END: relu

/// `x` for `x > 0`, `slope · x` otherwise, with the negative slope as the
/// field (PyTorch's default `0.01`): a ReLU whose negative side still passes
/// a little gradient.
#[derive(DeriveModule, Debug, Clone, Copy)]
pub struct LeakyRelu(pub f64);

impl LeakyRelu {
    pub fn new(negative_slope: f64) -> Self {
        LeakyRelu(negative_slope)
    }
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu(0.01)
    }
}

impl Module for LeakyRelu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.leaky_relu(self.0)
    }
}

/// `σ(x) = 1/(1 + e⁻ˣ)`, squashing into `(0, 1)`.
#[derive(DeriveModule, Debug, Clone, Copy, Default)]
pub struct Sigmoid;

impl Sigmoid {
    pub fn new() -> Self {
        Sigmoid
    }
}

impl Module for Sigmoid {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.sigmoid()
    }
}

/// `tanh x`, squashing into `(−1, 1)`.
#[derive(DeriveModule, Debug, Clone, Copy, Default)]
pub struct Tanh;

impl Tanh {
    pub fn new() -> Self {
        Tanh
    }
}

impl Module for Tanh {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.tanh()
    }
}

/// Which formula [`Gelu`] uses (PyTorch's `approximate=` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeluApproximation {
    /// The exact `x·Φ(x)` with the normal CDF `Φ` (`"none"`, the default).
    #[default]
    None,
    /// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (`"tanh"`), GPT-2's.
    Tanh,
}

impl std::str::FromStr for GeluApproximation {
    type Err = chapter_02::Error;
    /// PyTorch's spelling: `"none"` or `"tanh"`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(GeluApproximation::None),
            "tanh" => Ok(GeluApproximation::Tanh),
            other => Err(chapter_02::Error::invalid(
                "GELU",
                format!("approximate must be \"none\" or \"tanh\", got {other:?}"),
            )),
        }
    }
}

// ANCHOR: gelu
/// The Gaussian error linear unit, `x·Φ(x)`: the input weighted by the
/// probability that a standard normal variable is below it. Smooth where
/// ReLU has a kink; the activation of BERT and GPT. `Gelu::default()` is the
/// exact form, `Gelu::tanh()` GPT-2's approximation.
#[derive(DeriveModule, Debug, Clone, Copy, Default)]
pub struct Gelu(#[module(skip)] pub GeluApproximation);

impl Gelu {
    pub fn new(approximate: GeluApproximation) -> Self {
        Gelu(approximate)
    }
    /// The tanh approximation.
    pub fn tanh() -> Self {
        Gelu(GeluApproximation::Tanh)
    }
    pub fn approximate(&self) -> GeluApproximation {
        self.0
    }
}

impl Module for Gelu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.0 {
            GeluApproximation::None => x.gelu(),
            GeluApproximation::Tanh => x.gelu_tanh(),
        }
    }
}
// ANCHOR_END: gelu

/// SiLU (swish), `x·σ(x)`: the activation of Llama's feed-forward layers.
#[derive(DeriveModule, Debug, Clone, Copy, Default)]
pub struct Silu;

impl Silu {
    pub fn new() -> Self {
        Silu
    }
}

impl Module for Silu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.silu()
    }
}

/// `ln(1 + e^(βx))/β`, a smooth ReLU; linear where `βx > threshold`.
/// Fields `(beta, threshold)`, PyTorch's defaults `(1, 20)`.
#[derive(DeriveModule, Debug, Clone, Copy)]
pub struct Softplus(pub f64, pub f64);

impl Softplus {
    pub fn new(beta: f64, threshold: f64) -> Self {
        Softplus(beta, threshold)
    }
    pub fn beta(&self) -> f64 {
        self.0
    }
    pub fn threshold(&self) -> f64 {
        self.1
    }
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus(1.0, 20.0)
    }
}

impl Module for Softplus {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softplus(self.0, self.1)
    }
}

/// `exp(xᵢ) / Σⱼ exp(xⱼ)` along the dimension in the field (negative counts
/// from the end): turns scores into a probability distribution.
#[derive(DeriveModule, Debug, Clone, Copy)]
pub struct Softmax(pub i64);

impl Softmax {
    pub fn new(dim: i64) -> Self {
        Softmax(dim)
    }
}

impl Module for Softmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.softmax(self.0)
    }
}
