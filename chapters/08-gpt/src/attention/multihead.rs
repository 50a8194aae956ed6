//! PyTorch's `nn.MultiheadAttention`, so its checkpoints and tests carry
//! over.

use super::{attention_weights, merge_heads, AttentionOptions};
use chapter_02::{Error, Result, Tensor as RawTensor};
use chapter_03::{DType, Device, Tensor};
use chapter_04::prelude::*;
use chapter_05::init::xavier_uniform;
use chapter_05::{Dropout, Linear, Module};

// ANCHOR: multihead
/// `nn.MultiheadAttention(embed_dim, num_heads)`: queries, keys and values
/// projected by three `E × E` blocks of one `[3E, E]` matrix
/// (`in_proj_weight = [W_q; W_k; W_v]`, used as `x Wᵀ` like a `Linear`),
/// split into heads, attended, merged and projected by `out_proj`.
///
/// Unlike [`CausalSelfAttention`](super::CausalSelfAttention) the three
/// inputs may differ (cross-attention), the mask is whatever the caller
/// passes, and the layer can return the attention weights averaged over
/// the heads (`need_weights`, PyTorch's default).
#[derive(Module)]
pub struct MultiheadAttention {
    /// `[3E, E]`.
    pub in_proj_weight: Tensor,
    /// `[3E]`.
    pub in_proj_bias: Option<Tensor>,
    /// `E → E`.
    pub out_proj: Linear,
    /// Dropout on the attention weights (PyTorch's `dropout=`).
    pub dropout: Dropout,
    #[module(skip)]
    pub num_heads: usize,
    /// `true`: tensors are `[batch, T, E]`; `false` (PyTorch's default):
    /// `[T, batch, E]`.
    #[module(skip)]
    pub batch_first: bool,
}

impl MultiheadAttention {
    /// PyTorch's initialisation: `in_proj_weight` Xavier-uniform, biases
    /// zero, `out_proj.weight` as a `Linear`'s.
    pub fn new(
        embed_dim: usize,
        num_heads: usize,
        bias: bool,
        dropout: f64,
        batch_first: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        check_heads(embed_dim, num_heads)?;
        let in_proj_weight = Tensor::param(xavier_uniform(
            (3 * embed_dim, embed_dim),
            1.0,
            dtype,
            device,
        )?)?;
        let zeros =
            |n: usize| -> Result<Tensor> { Tensor::param(RawTensor::zeros(n, dtype, device)?) };
        let in_proj_bias = if bias {
            Some(zeros(3 * embed_dim)?)
        } else {
            None
        };
        let mut out_proj = Linear::with_options(embed_dim, embed_dim, bias, dtype, device)?;
        if bias {
            out_proj.bias = Some(zeros(embed_dim)?);
        }
        Ok(MultiheadAttention {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            dropout: Dropout::new(dropout)?,
            num_heads,
            batch_first,
        })
    }

    /// A layer around given tensors (a checkpoint's, or a test's).
    pub fn from_weights(
        in_proj_weight: Tensor,
        in_proj_bias: Option<Tensor>,
        out_proj: Linear,
        num_heads: usize,
        batch_first: bool,
    ) -> Result<Self> {
        let w = in_proj_weight.dims();
        let ok = w.len() == 2
            && w[0] == 3 * w[1]
            && in_proj_bias.as_ref().is_none_or(|b| b.dims() == [w[0]]);
        if !ok {
            return Err(Error::invalid(
                "MultiheadAttention",
                format!(
                    "in_proj_weight must be [3E, E] and in_proj_bias [3E], got {} and {:?}",
                    in_proj_weight.shape(),
                    in_proj_bias.as_ref().map(|b| b.dims())
                ),
            ));
        }
        check_heads(w[1], num_heads)?;
        Ok(MultiheadAttention {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            dropout: Dropout::new(0.0)?,
            num_heads,
            batch_first,
        })
    }

    /// `E`.
    pub fn embed_dim(&self) -> usize {
        self.in_proj_weight.dims()[1]
    }

    /// `mha(query, key, value, attn_mask=mask, need_weights=...)`.
    ///
    /// Shapes (batch first): `query: [B, L, E]`, `key`/`value: [B, S, E]`
    /// → `[B, L, E]`, and, with `need_weights`, the attention weights
    /// averaged over the heads `[B, L, S]`. `attn_mask` is `u8`, `1` =
    /// masked, shaped `[L, S]` (every batch and head) or `[B·heads, L, S]`.
    pub fn forward_attention(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        attn_mask: Option<&Tensor>,
        need_weights: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let batch_first = |t: &Tensor| -> Result<Tensor> {
            if t.rank() != 3 || t.dims()[2] != self.embed_dim() {
                return Err(Error::invalid(
                    "MultiheadAttention",
                    format!(
                        "inputs must have rank 3 and width {}, got {}",
                        self.embed_dim(),
                        t.shape()
                    ),
                ));
            }
            if self.batch_first {
                Ok(t.clone())
            } else {
                t.transpose(0, 1)
            }
        };
        let (query, key, value) = (batch_first(query)?, batch_first(key)?, batch_first(value)?);
        let (b, l) = (query.dims()[0], query.dims()[1]);
        let s = key.dims()[1];
        let heads = self.num_heads;
        // q, k, v: [B, heads, T, d], each projected by its block of rows.
        let project = |x: &Tensor, i: usize| -> Result<Tensor> {
            let e = self.embed_dim();
            let w = self.in_proj_weight.narrow(0, i * e, e)?; // [E, E]
            let mut y = x.matmul(&w.t()?)?;
            if let Some(bias) = &self.in_proj_bias {
                y = y.add(&bias.narrow(0, i * e, e)?)?;
            }
            super::split_heads(&y, heads)
        };
        let (q, k, v) = (project(&query, 0)?, project(&key, 1)?, project(&value, 2)?);
        let mask = match attn_mask {
            Some(m) if m.rank() == 3 => Some(m.reshape(vec![b, heads, l, s])?),
            Some(m) => Some(m.clone()),
            None => None,
        };
        let opts = AttentionOptions {
            mask: mask.as_ref(),
            ..Default::default()
        };
        let weights = attention_weights(&q, &k, &opts)?; // [B, heads, L, S]
        let weights = self.dropout.forward(&weights)?;
        let out = self.out_proj.forward(&merge_heads(&weights.matmul(&v)?)?)?; // [B, L, E]
        let out = if self.batch_first {
            out
        } else {
            out.transpose(0, 1)?
        };
        let averaged = if need_weights {
            Some(weights.mean([1usize], false)?)
        } else {
            None
        };
        Ok((out, averaged))
    }
}

impl Module for MultiheadAttention {
    /// Self-attention without a mask: `x` is the query, key and value.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_attention(x, x, x, None, false)?.0)
    }
}
// ANCHOR_END: multihead

fn check_heads(embed_dim: usize, num_heads: usize) -> Result<()> {
    if num_heads == 0 || !embed_dim.is_multiple_of(num_heads) {
        return Err(Error::invalid(
            "MultiheadAttention",
            format!("embed_dim {embed_dim} must be a multiple of num_heads {num_heads}"),
        ));
    }
    Ok(())
}
