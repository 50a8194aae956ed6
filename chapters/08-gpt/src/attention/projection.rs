//! The linear layer of GPT-2's checkpoints, whose weight is stored
//! input-major.

use chapter_02::{Error, Generator, Result, Tensor as RawTensor};
use chapter_03::{DType, Device, Tensor};
use chapter_05::Module;

/// How new weights are filled: drawn from a normal distribution by a
/// seeded generator (a fresh model), or left at zero (a model about to
/// receive a checkpoint, where drawing would be wasted work).
pub enum WeightInit<'g> {
    Normal(&'g mut Generator),
    Zeros,
}

impl WeightInit<'_> {
    /// `shape` from `N(0, std²)`, or zeros.
    pub fn normal(
        &mut self,
        shape: Vec<usize>,
        std: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<RawTensor> {
        match self {
            WeightInit::Normal(g) => RawTensor::randn_with(0.0, std, shape, dtype, device, g),
            WeightInit::Zeros => RawTensor::zeros(shape, dtype, device),
        }
    }
}

// ANCHOR: linear_in_out
/// `y = x W + b` with `W` of shape `[in, out]`.
///
/// This is chapter 05's `Linear` with its weight stored transposed. OpenAI's
/// GPT-2 code computed its projections this way, Hugging Face kept the
/// layout under the name `Conv1D` (a 1-wide convolution is a linear layer),
/// and every GPT-2 checkpoint stores `[in, out]` matrices. Keeping the
/// layout means a checkpoint loads without a transpose, its gradients
/// compare name for name with PyTorch's, and the product needs no view at
/// all: `x: [..., in] → [..., out]`.
#[derive(Module)]
pub struct LinearInOut {
    /// `[in, out]`.
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
}

impl LinearInOut {
    /// A `[in, out]` layer drawn by `init` (GPT-2's scheme: weights
    /// `N(0, std²)`, bias 0).
    pub fn new(
        (in_features, out_features): (usize, usize),
        std: f64,
        bias: bool,
        init: &mut WeightInit<'_>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        super::check_float_dtype(dtype, "LinearInOut")?;
        let weight =
            Tensor::param(init.normal(vec![in_features, out_features], std, dtype, device)?)?;
        let bias = if bias {
            Some(Tensor::param(RawTensor::zeros(
                out_features,
                dtype,
                device,
            )?)?)
        } else {
            None
        };
        Ok(LinearInOut { weight, bias })
    }

    /// A layer around given tensors: `weight [in, out]`, `bias [out]`.
    pub fn from_weights(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let ok = weight.rank() == 2 && bias.as_ref().is_none_or(|b| b.dims() == [weight.dims()[1]]);
        if !ok {
            return Err(Error::invalid(
                "LinearInOut",
                format!(
                    "weight must be [in, out] and bias [out], got {} and {:?}",
                    weight.shape(),
                    bias.as_ref().map(|b| b.dims())
                ),
            ));
        }
        Ok(LinearInOut { weight, bias })
    }

    pub fn in_features(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn out_features(&self) -> usize {
        self.weight.dims()[1]
    }
}

impl Module for LinearInOut {
    /// `x: [..., in] → [..., out]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight)?;
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
}
// ANCHOR_END: linear_in_out
