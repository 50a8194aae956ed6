//! Attention: every position of a sequence looks at the others and takes a
//! weighted average of what they offer.
//!
//! For queries `Q` (`[..., T_q, d]`), keys `K` and values `V`
//! (`[..., T_k, d]`):
//!
//! `Attention(Q, K, V) = softmax(Q Kᵀ · s + M) V`,  `s = 1/√d`
//!
//! Row `i` of `Q Kᵀ` scores how well query `i` matches each key; the
//! softmax turns a row of scores into weights that sum to 1, and the
//! weights average the rows of `V`. The scale `1/√d` keeps the scores'
//! variance near 1 whatever the head size (a dot product of `d` unit-variance
//! terms has variance `d`), so the softmax does not saturate at the start of
//! training. `M` is a mask of `0` and `−∞`: a `−∞` score gets weight
//! `e^{−∞} = 0`, which is how a language model is kept from reading the
//! future (the *causal* mask, `M_ij = −∞` for `j > i`).
//!
//! This module holds the function ([`scaled_dot_product_attention`]); the
//! layers around it are [`CausalSelfAttention`] (GPT's, with one fused QKV
//! projection and a [`KvCache`](crate::kv_cache::KvCache)) and
//! [`MultiheadAttention`] (PyTorch's `nn.MultiheadAttention`).

mod causal_self_attention;
mod multihead;
mod packed;
mod projection;

pub use causal_self_attention::{merge_heads, split_heads, CausalSelfAttention};
pub use multihead::MultiheadAttention;
pub use packed::{
    causal_attention_packed, packed_attention_backward_cpu, packed_attention_cpu, PackedAttention,
    PackedAttentionBackward,
};
pub use projection::{LinearInOut, WeightInit};

use chapter_02::{Error, Result};
use chapter_03::{DType, Device, Tensor};
use chapter_04::prelude::*;

// ANCHOR: options
/// What [`scaled_dot_product_attention`] may add to the plain formula.
/// `AttentionOptions::default()` is PyTorch's default call: no mask, no
/// dropout, scale `1/√d`.
#[derive(Clone, Default)]
pub struct AttentionOptions<'a> {
    /// A `u8` mask broadcastable to `[..., T_q, T_k]`: `1` = this query may
    /// not look at this key (its score becomes `−∞`).
    pub mask: Option<&'a Tensor>,
    /// Hide the future: query `i` sees keys `j ≤ i + (T_k − T_q)`. With
    /// `T_q = T_k` that is PyTorch's `is_causal=True`; with fewer queries
    /// than keys the queries are the *last* `T_q` positions (aligned to the
    /// bottom right), which is what a KV cache needs: the new tokens come
    /// after the cached ones. (PyTorch aligns a non-square causal mask to the
    /// top left instead; we never need that.)
    pub causal: bool,
    /// Attention dropout: each weight is zeroed with this probability (and
    /// the rest scaled by `1/(1−p)`) when `training` is set.
    pub dropout_p: f64,
    /// Whether dropout is active (a module's train/eval flag).
    pub training: bool,
    /// The factor `s` on `Q Kᵀ`; `None` is `1/√d`.
    pub scale: Option<f64>,
}
// ANCHOR_END: options

// ANCHOR: causal_mask
/// The causal mask for `t_q` queries that are the last positions of a
/// sequence of `t_k` keys: `u8` `[t_q, t_k]`, 1 where key `j` lies after
/// query `i`'s position `t_k − t_q + i`. Made on `device` (chapter 04's
/// square `causal_mask`, cut to the last `t_q` rows). `None` when nothing is
/// masked: a single new token may look at everything before it.
pub fn causal_mask_for(t_q: usize, t_k: usize, device: &Device) -> Result<Option<Tensor>> {
    if t_q > t_k {
        return Err(Error::invalid(
            "causal mask",
            format!("{t_q} queries cannot be the last positions of {t_k} keys"),
        ));
    }
    if t_q == 1 {
        return Ok(None);
    }
    let square = causal_mask(t_k, device)?;
    Ok(Some(if t_q == t_k {
        square
    } else {
        square.narrow(0, t_k - t_q, t_q)?
    }))
}
// ANCHOR_END: causal_mask

// ANCHOR: attention_weights
/// The attention weights `P = softmax(Q Kᵀ · s + M)`, before dropout.
///
/// Shapes: `q: [..., T_q, d]`, `k: [..., T_k, d]` → `[..., T_q, T_k]`.
/// Each row sums to 1 (a row whose every key is masked has no defined
/// weights and comes out NaN, as in PyTorch).
pub fn attention_weights(q: &Tensor, k: &Tensor, opts: &AttentionOptions<'_>) -> Result<Tensor> {
    check_qkv(q, k, None)?;
    let qd = q.dims();
    let (t_q, d) = (qd[qd.len() - 2], qd[qd.len() - 1]);
    let t_k = k.dims()[k.rank() - 2];
    let scale = opts.scale.unwrap_or(1.0 / (d as f64).sqrt());
    // Scores: one dot product per (query, key) pair; `k.t()` is a view.
    // Scaling the queries (`T_q·d` numbers) costs less than scaling the
    // scores (`T_q·T_k`) and gives the same result.
    let mut scores = q.affine(scale, 0.0)?.matmul(&k.t()?)?; // [..., T_q, T_k]
    if opts.causal {
        if let Some(mask) = causal_mask_for(t_q, t_k, &q.device())? {
            scores = scores.masked_fill(&mask, f64::NEG_INFINITY)?;
        }
    }
    if let Some(mask) = opts.mask {
        scores = scores.masked_fill(mask, f64::NEG_INFINITY)?;
    }
    scores.softmax(-1)
}
// ANCHOR_END: attention_weights

// ANCHOR: sdpa
/// `F.scaled_dot_product_attention`: `dropout(softmax(Q Kᵀ · s + M)) V`.
///
/// Shapes: `q: [batch, heads, T_q, d]`, `k: [batch, heads, T_k, d]`,
/// `v: [batch, heads, T_k, d_v]` → `[batch, heads, T_q, d_v]` (any number
/// of leading dimensions works the same way). Built from chapter 03–05
/// operations, so its gradient comes from theirs and it runs on every
/// device; dropout draws its mask on the tensors' device.
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    opts: &AttentionOptions<'_>,
) -> Result<Tensor> {
    check_qkv(q, k, Some(v))?;
    let weights = attention_weights(q, k, opts)?;
    let weights = chapter_05::dropout(&weights, opts.dropout_p, opts.training)?;
    weights.matmul(v)
}
// ANCHOR_END: sdpa

/// Checks ranks, the shared head size of `q` and `k`, and that `k` and `v`
/// hold the same number of positions, naming the shapes when they differ.
fn check_qkv(q: &Tensor, k: &Tensor, v: Option<&Tensor>) -> Result<()> {
    let op = "scaled_dot_product_attention";
    for (name, t) in [("q", q), ("k", k)].into_iter().chain(v.map(|v| ("v", v))) {
        if t.rank() < 2 {
            return Err(Error::invalid(
                op,
                format!(
                    "{name} needs at least 2 dimensions [..., T, d], got {}",
                    t.shape()
                ),
            ));
        }
        if !t.dtype().is_float() || t.dtype() != q.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: q.dtype(),
                rhs: t.dtype(),
            });
        }
    }
    if q.dims()[q.rank() - 1] != k.dims()[k.rank() - 1] {
        return Err(Error::ShapeMismatch {
            op,
            lhs: q.shape(),
            rhs: k.shape(),
            detail: " (q and k must have the same head size, the last dimension)".into(),
        });
    }
    if let Some(v) = v {
        if k.dims()[k.rank() - 2] != v.dims()[v.rank() - 2] {
            return Err(Error::ShapeMismatch {
                op,
                lhs: k.shape(),
                rhs: v.shape(),
                detail: " (k and v must hold the same number of positions)".into(),
            });
        }
    }
    Ok(())
}

/// A float dtype for new parameters, or an error naming the constructor.
pub(crate) fn check_float_dtype(dtype: DType, op: &'static str) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::UnsupportedDType { op, dtype })
    }
}
