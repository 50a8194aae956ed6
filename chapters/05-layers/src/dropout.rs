//! Dropout: randomly silencing units during training.

use crate::module::{Module, TrainingFlag};
use chapter_02::{Error, Result, Tensor as RawTensor};
use chapter_03::Tensor;
use chapter_05_derive::Module as DeriveModule;

// ANCHOR: dropout_fn
/// `F.dropout`: in training, each element is zeroed with probability `p`
/// and the survivors are multiplied by `1/(1 − p)` ("inverted dropout"):
///
/// `y = x ⊙ m / (1 − p)`,  `mᵢ ~ Bernoulli(1 − p)`
///
/// The scaling keeps `E[y] = x`, so at evaluation time the layer is simply
/// the identity: nothing to rescale, and inference costs nothing. The mask
/// is drawn by the tensor's own device from chapter 02's default generator
/// (`manual_seed` makes it reproducible, and the same seed gives the same
/// mask on every device); it enters the graph as a constant, and the
/// gradient is the same mask: `∂L/∂x = ∂L/∂y ⊙ m / (1 − p)`.
pub fn dropout(x: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    check_probability(p)?;
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    let data = x.data();
    let keep = RawTensor::bernoulli(1.0 - p, data.shape().clone(), data.dtype(), data.device())?;
    let mask = if p == 1.0 {
        keep // all zeros: every unit dropped
    } else {
        keep.affine(1.0 / (1.0 - p), 0.0)?
    };
    x.mul(&Tensor::from_raw(mask))
}
// ANCHOR_END: dropout_fn

fn check_probability(p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        // also refuses NaN
        return Err(Error::invalid(
            "dropout",
            format!("probability must be between 0 and 1, got {p}"),
        ));
    }
    Ok(())
}

// ANCHOR: dropout
/// Dropout as a layer (Srivastava et al., 2014): zeroes each element with
/// probability `p` in training mode, the identity in evaluation mode.
/// Switch with `model.train()` / `model.eval()` (see
/// [`ModuleExt`](crate::ModuleExt)), which reach the `training` flag through
/// the module tree. Shape: any, unchanged.
#[derive(DeriveModule)]
pub struct Dropout {
    pub p: f64,
    pub training: TrainingFlag,
}

impl Dropout {
    /// PyTorch's default is `p = 0.5`; GPT-2 uses `0.1`.
    pub fn new(p: f64) -> Result<Self> {
        check_probability(p)?;
        Ok(Dropout {
            p,
            training: TrainingFlag::new(),
        })
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        dropout(x, self.p, self.training.get())
    }
}
// ANCHOR_END: dropout
