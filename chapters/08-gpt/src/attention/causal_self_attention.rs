//! GPT's attention layer: one fused projection makes the queries, keys and
//! values of every head at once.

use super::{
    causal_attention_packed, scaled_dot_product_attention, AttentionOptions, LinearInOut,
    WeightInit,
};
use crate::kv_cache::LayerCache;
use chapter_02::{Error, Result};
use chapter_03::{DType, Device, Tensor};
use chapter_04::prelude::*;
use chapter_05::{Dropout, Module};

// ANCHOR: heads
/// `[B, T, C] → [B, heads, T, C/heads]`: head `h` owns channels
/// `h·d .. (h+1)·d`. A reshape and a transpose, both views: no copy.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let dims = x.dims();
    let (b, t, c) = (dims[0], dims[1], dims[2]);
    x.reshape(vec![b, t, heads, c / heads])?.transpose(1, 2)
}

/// `[B, heads, T, d] → [B, T, heads·d]`: the heads' outputs side by side
/// (the inverse of [`split_heads`]; here the reshape copies, once).
pub fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    let (b, h, t, d) = (dims[0], dims[1], dims[2], dims[3]);
    x.transpose(1, 2)?.reshape(vec![b, t, h * d])
}
// ANCHOR_END: heads

// ANCHOR: causal_self_attention
/// Multi-head causal self-attention with a fused QKV projection, named as in
/// GPT-2 (`c_attn`, `c_proj`).
///
/// Each of `H` heads attends with its own `d = C/H`-wide slice of the
/// queries, keys and values, so different heads can look for different
/// things (the previous token, a matching bracket, the subject of the
/// verb) at the cost of one `C`-wide attention. Instead of three `C → C`
/// products for `Q`, `K` and `V`, one `C → 3C` product computes all three:
/// the same arithmetic in one larger, faster matrix multiplication.
///
/// `x: [B, T, C] → [B, T, C]`.
#[derive(Module)]
pub struct CausalSelfAttention {
    /// `[C, 3C]` (and `[3C]`): `x ↦ [q | k | v]`.
    pub c_attn: LinearInOut,
    /// `[C, C]`: mixes the heads' outputs back into the residual stream.
    pub c_proj: LinearInOut,
    /// Dropout on the attention weights.
    pub attn_dropout: Dropout,
    /// Dropout on the output.
    pub resid_dropout: Dropout,
    #[module(skip)]
    pub n_head: usize,
}

impl CausalSelfAttention {
    /// A layer for width `n_embd` and `n_head` heads, weights drawn by
    /// `init` from `N(0, 0.02²)` (the output projection from
    /// `N(0, proj_std²)`), zero biases.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n_embd: usize,
        n_head: usize,
        dropout: f64,
        bias: bool,
        proj_std: f64,
        dtype: DType,
        device: &Device,
        init: &mut WeightInit<'_>,
    ) -> Result<Self> {
        if n_head == 0 || !n_embd.is_multiple_of(n_head) {
            return Err(Error::invalid(
                "CausalSelfAttention",
                format!("the width {n_embd} must be a multiple of the number of heads {n_head}"),
            ));
        }
        Ok(CausalSelfAttention {
            c_attn: LinearInOut::new((n_embd, 3 * n_embd), 0.02, bias, init, dtype, device)?,
            c_proj: LinearInOut::new((n_embd, n_embd), proj_std, bias, init, dtype, device)?,
            attn_dropout: Dropout::new(dropout)?,
            resid_dropout: Dropout::new(dropout)?,
            n_head,
        })
    }

    /// The width `C`.
    pub fn n_embd(&self) -> usize {
        self.c_proj.out_features()
    }

    /// `x: [B, T, C] → [B, T, C]`, attending over the cached positions too
    /// when `cache` is given (then `x` holds only the new positions, whose
    /// keys and values are appended to the cache).
    pub fn forward_cached(&self, x: &Tensor, cache: Option<&mut LayerCache>) -> Result<Tensor> {
        let c = self.n_embd();
        if x.rank() != 3 || x.dims()[2] != c {
            return Err(Error::invalid(
                "CausalSelfAttention",
                format!("input must be [batch, T, {c}], got {}", x.shape()),
            ));
        }
        let qkv = self.c_attn.forward(x)?; // [B, T, 3C]
        let dropout_active = self.attn_dropout.training.get() && self.attn_dropout.p > 0.0;
        if cache.is_none() && !dropout_active {
            // Training and plain forward passes: the whole chain below as
            // one operation (see `causal_attention_packed`).
            let y = causal_attention_packed(&qkv, self.n_head)?; // [B, T, C]
            return self.resid_dropout.forward(&self.c_proj.forward(&y)?);
        }
        let q = split_heads(&qkv.narrow(2, 0, c)?, self.n_head)?; // [B, H, T, d]
        let k = split_heads(&qkv.narrow(2, c, c)?, self.n_head)?;
        let v = split_heads(&qkv.narrow(2, 2 * c, c)?, self.n_head)?;
        let (k, v) = match cache {
            Some(cache) => cache.append(&k, &v)?, // [B, H, past + T, d]
            None => (k, v),
        };
        let opts = AttentionOptions {
            causal: true,
            dropout_p: self.attn_dropout.p,
            training: self.attn_dropout.training.get(),
            ..Default::default()
        };
        let y = scaled_dot_product_attention(&q, &k, &v, &opts)?; // [B, H, T, d]
        self.resid_dropout
            .forward(&self.c_proj.forward(&merge_heads(&y)?)?)
    }
}

impl Module for CausalSelfAttention {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_cached(x, None)
    }
}
// ANCHOR_END: causal_self_attention
