//! The models this chapter trains.

use chapter_03::{DType, Device, RawTensor, Result, Tensor};
use chapter_04::prelude::*;
use chapter_05::{Dropout, Linear, Module};

// ANCHOR: mlp
/// A multi-layer perceptron: `Linear → ReLU (→ Dropout)` for each hidden
/// width, then a final `Linear` to the class scores (logits).
#[derive(Module)]
pub struct Mlp {
    pub layers: Vec<Linear>,
    pub dropout: Option<Dropout>,
}

impl Mlp {
    /// `sizes = [784, 256, 10]` is a 784-256-10 network.
    pub fn new(sizes: &[usize], dropout: f64, dtype: DType, device: &Device) -> Result<Self> {
        let layers = sizes
            .windows(2)
            .map(|w| Linear::with_options(w[0], w[1], true, dtype, device))
            .collect::<Result<Vec<_>>>()?;
        let dropout = if dropout > 0.0 {
            Some(Dropout::new(dropout)?)
        } else {
            None
        };
        Ok(Mlp { layers, dropout })
    }

    /// The forward pass, also returning each hidden layer's activations
    /// (after the ReLU) for the dashboard's histograms.
    pub fn forward_with_activations(&self, x: &Tensor) -> Result<(Tensor, Vec<RawTensor>)> {
        let mut h = x.clone();
        let mut acts = Vec::new();
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i < last {
                h = h.relu()?;
                acts.push(h.data());
                if let Some(d) = &self.dropout {
                    h = d.forward(&h)?;
                }
            }
        }
        Ok((h, acts))
    }
}

impl Module for Mlp {
    /// `x: [batch, in] -> logits [batch, classes]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with_activations(x)?.0)
    }
}
// ANCHOR_END: mlp
