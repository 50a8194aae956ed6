//! The fully connected layer.

use crate::init::{kaiming_uniform, uniform, FanMode, Nonlinearity};
use crate::Module;
use chapter_02::default_device;
use chapter_03::{DType, Device, Result, Tensor};
use chapter_05_derive::Module as DeriveModule;

// ANCHOR: linear
/// `y = x Wᵀ + b`, with `W` of shape `[out_features, in_features]` (the
/// PyTorch layout, so state dicts load unchanged).
///
/// Default initialisation is PyTorch's: `W, b ~ U(−1/√in, 1/√in)`. (It is
/// written there as Kaiming-uniform with `a = √5`, which works out to the
/// same bound.) Chapter 10 shows when a different scheme trains better.
#[derive(DeriveModule)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(in_features: usize, out_features: usize, bias: bool) -> Result<Self> {
        Linear::with_options(
            in_features,
            out_features,
            bias,
            DType::F32,
            &default_device()?,
        )
    }

    pub fn with_options(
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let w = kaiming_uniform(
            (out_features, in_features),
            FanMode::FanIn,
            Nonlinearity::LeakyRelu(5f64.sqrt()),
            dtype,
            device,
        )?;
        let bound = 1.0 / (in_features as f64).sqrt();
        let b = if bias {
            Some(Tensor::param(uniform(
                out_features,
                -bound,
                bound,
                dtype,
                device,
            )?)?)
        } else {
            None
        };
        Ok(Linear {
            weight: Tensor::param(w)?,
            bias: b,
        })
    }

    /// A layer from given weights (e.g. loaded from elsewhere).
    pub fn from_weights(weight: Tensor, bias: Option<Tensor>) -> Self {
        Linear { weight, bias }
    }
}

impl Module for Linear {
    /// `x: [..., in] -> [..., out]`. The transpose is a free view, and the
    /// bias broadcasts over the leading dimensions.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight.t()?)?;
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
}
// ANCHOR_END: linear
