//! One transformer block: attention, then an MLP, each added to the
//! residual stream after a layer norm.

use super::GptConfig;
use crate::attention::{CausalSelfAttention, LinearInOut, WeightInit};
use crate::kv_cache::LayerCache;
use chapter_02::Result;
use chapter_03::{DType, Device, Tensor};
use chapter_04::prelude::*;
use chapter_05::{Dropout, GeluApproximation, LayerNorm, Module};

// ANCHOR: mlp
/// The position-wise feed-forward network: `C → 4C → GELU → C`. Where
/// attention moves information between positions, the MLP transforms each
/// position on its own; most of a GPT's parameters are here.
#[derive(Module)]
pub struct Mlp {
    /// `[C, 4C]`.
    pub c_fc: LinearInOut,
    /// `[4C, C]`.
    pub c_proj: LinearInOut,
    pub dropout: Dropout,
    #[module(skip)]
    pub activation: GeluApproximation,
}

impl Module for Mlp {
    /// `x: [B, T, C] → [B, T, C]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.c_fc.forward(x)?;
        let h = match self.activation {
            GeluApproximation::None => h.gelu()?,
            GeluApproximation::Tanh => h.gelu_tanh()?,
        };
        self.dropout.forward(&self.c_proj.forward(&h)?)
    }
}
// ANCHOR_END: mlp

// ANCHOR: block
/// A pre-LayerNorm transformer block (GPT-2's):
///
/// `x ← x + attn(ln_1(x))`,  `x ← x + mlp(ln_2(x))`
///
/// Normalising the *input* of each branch and leaving the residual path
/// `x → x + …` untouched gives the gradient a clean identity path from the
/// loss to the embeddings, which is why deep pre-LN stacks train without
/// warm-up tricks (the original transformer normalised after the sum).
#[derive(Module)]
pub struct Block {
    pub ln_1: LayerNorm,
    pub attn: CausalSelfAttention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
}

impl Block {
    /// `x: [B, T, C] → [B, T, C]`, with the layer's KV cache when given.
    pub fn forward_cached(&self, x: &Tensor, cache: Option<&mut LayerCache>) -> Result<Tensor> {
        let x = x.add(&self.attn.forward_cached(&self.ln_1.forward(x)?, cache)?)?;
        x.add(&self.mlp.forward(&self.ln_2.forward(&x)?)?)
    }
}
// ANCHOR_END: block

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_cached(x, None)
    }
}

impl Block {
    /// A block with nanoGPT's initialisation: projections `N(0, 0.02²)`,
    /// the two projections that end a residual branch `N(0, proj_std²)`,
    /// biases 0, layer norms `γ = 1, β = 0`.
    pub(crate) fn new(
        config: &GptConfig,
        proj_std: f64,
        dtype: DType,
        device: &Device,
        init: &mut WeightInit<'_>,
    ) -> Result<Self> {
        let c = config.n_embd;
        let norm = || layer_norm(config, dtype, device);
        Ok(Block {
            ln_1: norm()?,
            attn: CausalSelfAttention::new(
                c,
                config.n_head,
                config.dropout,
                config.bias,
                proj_std,
                dtype,
                device,
                init,
            )?,
            ln_2: norm()?,
            mlp: Mlp {
                c_fc: LinearInOut::new(
                    (c, config.mlp_width()),
                    0.02,
                    config.bias,
                    init,
                    dtype,
                    device,
                )?,
                c_proj: LinearInOut::new(
                    (config.mlp_width(), c),
                    proj_std,
                    config.bias,
                    init,
                    dtype,
                    device,
                )?,
                dropout: Dropout::new(config.dropout)?,
                activation: config.activation,
            },
        })
    }
}

/// A layer norm over the width, without its bias when the model has none.
pub(crate) fn layer_norm(config: &GptConfig, dtype: DType, device: &Device) -> Result<LayerNorm> {
    let mut ln =
        LayerNorm::with_options(config.n_embd, config.layer_norm_eps, true, dtype, device)?;
    if !config.bias {
        ln.bias = None;
    }
    Ok(ln)
}
