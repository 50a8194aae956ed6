//! Causal self-attention in one operation, straight from the fused QKV
//! projection: `qkv: [B, T, 3C] → [B, T, C]`.
//!
//! Built from tensor operations, a training step's attention is a chain of
//! about ten: three `narrow`s and head reshapes, a scale, `Q Kᵀ`, the
//! causal `masked_fill`, a softmax, `P V`, the merge of the heads (a copy),
//! and as many again backwards, where each `narrow` pads its gradient to
//! the full width. At the Shakespeare GPT's sizes (`T = 64`, head size
//! 32) each of those products is too small to keep a core busy, and the
//! passes over memory between them cost as much as the arithmetic.
//!
//! [`causal_attention_packed`] is the same computation as one
//! [`CustomOp`]. Its forward and backward are registry operators
//! ([`PackedAttention`], [`PackedAttentionBackward`]) whose composites are
//! exactly the chain above (so every device without a kernel of its own
//! runs what it ran before), and whose CPU kernels work one sequence at a
//! time, all heads, reading `Q`, `K`, `V` where the projection left them
//! and writing the result with its heads already merged:
//!
//! - a head's `Q`, `K`, `V` are strided matrices inside `qkv`, and each of
//!   the head's products is one call of the `gemm` crate on them, without
//!   copies;
//! - the weights `P` are kept for the backward pass, which writes `dQ`,
//!   `dK` and `dV` straight into their columns of `dqkv` (no gradient is
//!   padded);
//! - the sequences of a batch are split between the cores.
//!
//! Under `create_graph` the backward is written with autograd operations
//! instead, so that it can be differentiated again.

use super::{attention_weights, merge_heads, split_heads, AttentionOptions};
use chapter_02::dispatch::call;
use chapter_02::{
    buffer_for_overwrite, scratch_buffer, DType, DeviceKind, Error, Kernel, Operator, Result,
    Tensor as RawTensor,
};
use chapter_03::{is_grad_enabled, BackwardCtx, CustomOp, Tensor};
use chapter_04::prelude::*;
use chapter_04::row_kernels::{cores, has_avx2_fma, in_compute_dtype, RowFloat};
use rayon::prelude::*;
use std::sync::OnceLock;

// ANCHOR: packed_fn
/// Causal self-attention of `n_head` heads packed as `[q | k | v]` along
/// the last dimension of `qkv: [B, T, 3C]` (head `h` owns channels
/// `h·d .. (h+1)·d` of each part, `d = C/n_head`), with scale `1/√d`:
/// `[B, T, C]`, the heads' outputs side by side. Equal to
/// `merge_heads(sdpa(q, k, v, causal))` on the split heads.
pub fn causal_attention_packed(qkv: &Tensor, n_head: usize) -> Result<Tensor> {
    let shape = Packed::of(&qkv.dims(), n_head)?;
    let op = PackedCausalAttention {
        n_head,
        scale: 1.0 / (shape.d as f64).sqrt(),
        weights: OnceLock::new(),
    };
    Tensor::apply(op, &[qkv])
}
// ANCHOR_END: packed_fn

/// The sizes of a packed `[B, T, 3C]` tensor.
#[derive(Clone, Copy, Debug)]
struct Packed {
    b: usize,
    t: usize,
    h: usize,
    d: usize,
}

impl Packed {
    fn of(dims: &[usize], n_head: usize) -> Result<Packed> {
        let op = "causal_attention_packed";
        let &[b, t, c3] = dims else {
            return Err(Error::invalid(
                op,
                format!("qkv must be [batch, T, 3·C], got {dims:?}"),
            ));
        };
        if n_head == 0 || c3 % (3 * n_head) != 0 {
            return Err(Error::invalid(
                op,
                format!("the last dimension {c3} of qkv must be 3·C with C a multiple of the {n_head} heads"),
            ));
        }
        Ok(Packed {
            b,
            t,
            h: n_head,
            d: c3 / 3 / n_head,
        })
    }
    fn c(&self) -> usize {
        self.h * self.d
    }
}

/// The differentiable operation: forward through [`PackedAttention`],
/// keeping the weights `P` for the backward.
struct PackedCausalAttention {
    n_head: usize,
    scale: f64,
    weights: OnceLock<RawTensor>,
}

impl CustomOp for PackedCausalAttention {
    fn name(&self) -> &'static str {
        "causal_attention_packed"
    }
    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor> {
        let op = PackedAttention {
            n_head: self.n_head,
            scale: self.scale,
        };
        let [y, p]: [RawTensor; 2] = call(&op, inputs)?
            .try_into()
            .map_err(|_| Error::invalid("causal_attention_packed", "expected two outputs"))?;
        let _ = self.weights.set(p);
        Ok(y)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let qkv = ctx.input(0);
        if is_grad_enabled() {
            // Recompute P with autograd operations so that the gradient is
            // itself differentiable.
            let (q, k, v) = split_qkv(qkv, self.n_head)?;
            let opts = AttentionOptions {
                causal: true,
                scale: Some(self.scale),
                ..Default::default()
            };
            let p = attention_weights(&q, &k, &opts)?;
            let dqkv = backward_formula(&q, &k, &v, &p, g, self.n_head, self.scale)?;
            return Ok(vec![Some(dqkv)]);
        }
        let p = self
            .weights
            .get()
            .ok_or_else(|| Error::invalid("causal_attention_packed", "backward before forward"))?;
        let op = PackedAttentionBackward {
            n_head: self.n_head,
            scale: self.scale,
        };
        let dqkv = call(&op, &[&qkv.data(), p, &g.data()])?.remove(0);
        Ok(vec![Some(Tensor::from_raw(dqkv))])
    }
}

/// `[B, T, 3C]` → the heads of `q`, `k`, `v`, each `[B, H, T, d]` (views).
fn split_qkv(qkv: &Tensor, n_head: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let c = qkv.dims()[2] / 3;
    Ok((
        split_heads(&qkv.narrow(2, 0, c)?, n_head)?,
        split_heads(&qkv.narrow(2, c, c)?, n_head)?,
        split_heads(&qkv.narrow(2, 2 * c, c)?, n_head)?,
    ))
}

// ANCHOR: backward_formula
/// The gradient with respect to `qkv`, from `P = softmax(s·QKᵀ + M)` and
/// the output's gradient `g: [B, T, C]` (`G` below, split into heads):
///
/// - `Y = P V`, so `dV = Pᵀ G` and `dP = G Vᵀ`;
/// - the softmax's vector-Jacobian product, row by row:
///   `dS = P ⊙ (dP − rowsum(dP ⊙ P))` (masked entries have `P = 0`);
/// - `S = s·Q Kᵀ`, so `dQ = s·dS K` and `dK = s·dSᵀ Q`.
fn backward_formula(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    p: &Tensor,
    g: &Tensor,
    n_head: usize,
    scale: f64,
) -> Result<Tensor> {
    let g = split_heads(g, n_head)?;
    let dv = p.t()?.matmul(&g)?;
    let dp = g.matmul(&v.t()?)?;
    let ds = p.mul(&dp.sub(&dp.mul(p)?.sum([3], true)?)?)?;
    let dq = ds.matmul(k)?.mul_scalar(scale)?;
    let dk = ds.t()?.matmul(q)?.mul_scalar(scale)?;
    cat(
        &[&merge_heads(&dq)?, &merge_heads(&dk)?, &merge_heads(&dv)?],
        2,
    )
}
// ANCHOR_END: backward_formula

// ANCHOR: operators
/// The forward as a registry operator: input `qkv: [B, T, 3C]`, outputs
/// `y: [B, T, C]` and the weights `P: [B, H, T, T]` (zero above the
/// diagonal).
pub struct PackedAttention {
    pub n_head: usize,
    pub scale: f64,
}

impl Operator for PackedAttention {
    fn name(&self) -> &'static str {
        "causal_attention_packed"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_inputs(self.name(), inputs, 1)?;
        Packed::of(inputs[0].dims(), self.n_head).map(|_| ())
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let qkv = Tensor::from_raw(inputs[0].clone());
        let (q, k, v) = split_qkv(&qkv, self.n_head)?;
        let opts = AttentionOptions {
            causal: true,
            scale: Some(self.scale),
            ..Default::default()
        };
        let p = attention_weights(&q, &k, &opts)?;
        let y = merge_heads(&p.matmul(&v)?)?;
        Ok(vec![y.data(), p.data()])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, packed_attention_cpu)]
    }
}

/// The backward as a registry operator: inputs `qkv`, the weights `P`
/// and the output's gradient `g: [B, T, C]`, output `dqkv: [B, T, 3C]`.
pub struct PackedAttentionBackward {
    pub n_head: usize,
    pub scale: f64,
}

impl Operator for PackedAttentionBackward {
    fn name(&self) -> &'static str {
        "causal_attention_packed_backward"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_inputs(self.name(), inputs, 3)?;
        let s = Packed::of(inputs[0].dims(), self.n_head)?;
        let want_p = [s.b, s.h, s.t, s.t];
        let want_g = [s.b, s.t, s.c()];
        for (t, want, what) in [(inputs[1], &want_p[..], "P"), (inputs[2], &want_g[..], "g")] {
            if t.dims() != want {
                return Err(Error::invalid(
                    self.name(),
                    format!(
                        "{what} must be {want:?} for qkv {}, got {}",
                        inputs[0].shape(),
                        t.shape()
                    ),
                ));
            }
        }
        Ok(())
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let qkv = Tensor::from_raw(inputs[0].clone());
        let (q, k, v) = split_qkv(&qkv, self.n_head)?;
        let p = Tensor::from_raw(inputs[1].clone());
        let g = Tensor::from_raw(inputs[2].clone());
        let dqkv = backward_formula(&q, &k, &v, &p, &g, self.n_head, self.scale)?;
        Ok(vec![dqkv.data()])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, packed_attention_backward_cpu)]
    }
}
// ANCHOR_END: operators

/// `arity` float tensors of one dtype.
fn check_inputs(op: &'static str, inputs: &[&RawTensor], arity: usize) -> Result<()> {
    if inputs.len() != arity {
        return Err(Error::invalid(
            op,
            format!("takes {arity} tensors, got {}", inputs.len()),
        ));
    }
    for t in inputs {
        if !t.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op,
                dtype: t.dtype(),
            });
        }
        if t.dtype() != inputs[0].dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: inputs[0].dtype(),
                rhs: t.dtype(),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- CPU kernels

/// The CPU kernel of [`PackedAttention`].
pub fn packed_attention_cpu(op: &PackedAttention, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
    let s = Packed::of(inputs[0].dims(), op.n_head)?;
    let qkv = inputs[0].contiguous()?;
    in_compute_dtype(&[&qkv], |inputs| {
        let (y, p) = match inputs[0].dtype() {
            DType::F32 => forward_host::<f32>(inputs[0].host_slice()?, s, op.scale as f32),
            DType::F64 => forward_host::<f64>(inputs[0].host_slice()?, s, op.scale),
            dtype => {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype,
                })
            }
        };
        let device = inputs[0].device();
        Ok(vec![
            y.into_tensor((s.b, s.t, s.c()), device)?,
            p.into_tensor((s.b, s.h, s.t, s.t), device)?,
        ])
    })
}

/// The CPU kernel of [`PackedAttentionBackward`].
pub fn packed_attention_backward_cpu(
    op: &PackedAttentionBackward,
    inputs: &[&RawTensor],
) -> Result<Vec<RawTensor>> {
    let s = Packed::of(inputs[0].dims(), op.n_head)?;
    let contiguous = inputs
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&RawTensor> = contiguous.iter().collect();
    in_compute_dtype(&refs, |x| {
        let dqkv = match x[0].dtype() {
            DType::F32 => backward_host::<f32>(
                [x[0].host_slice()?, x[1].host_slice()?, x[2].host_slice()?],
                s,
                op.scale as f32,
            ),
            DType::F64 => backward_host::<f64>(
                [x[0].host_slice()?, x[1].host_slice()?, x[2].host_slice()?],
                s,
                op.scale,
            ),
            dtype => {
                return Err(Error::UnsupportedDType {
                    op: op.name(),
                    dtype,
                })
            }
        };
        Ok(vec![dqkv.into_tensor((s.b, s.t, 3 * s.c()), x[0].device())?])
    })
}

/// A host buffer of `f32` or `f64` on its way to becoming a tensor.
enum Host {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Host {
    fn into_tensor(
        self,
        shape: impl Into<chapter_02::Shape>,
        device: &chapter_02::Device,
    ) -> Result<RawTensor> {
        match self {
            Host::F32(v) => RawTensor::from_host_vec(v, shape.into(), device),
            Host::F64(v) => RawTensor::from_host_vec(v, shape.into(), device),
        }
    }
}

/// The element types of the kernels.
trait AttnFloat: RowFloat {
    fn host(v: Vec<Self>) -> Host;
}
impl AttnFloat for f32 {
    fn host(v: Vec<f32>) -> Host {
        Host::F32(v)
    }
}
impl AttnFloat for f64 {
    fn host(v: Vec<f64>) -> Host {
        Host::F64(v)
    }
}

/// How many sequences each core's task takes (one task per core, not per
/// sequence: a task costs a few microseconds to hand over).
fn sequences_per_task(n: usize) -> usize {
    n.div_ceil(cores().min(n).max(1)).max(1)
}

fn forward_host<T: AttnFloat>(qkv: &[T], s: Packed, scale: T) -> (Host, Host) {
    let c = s.c();
    let (y_len, p_len, x_len) = (s.t * c, s.h * s.t * s.t, s.t * 3 * c);
    // Both are written whole: every head's columns of y, every row of P
    // (its masked half as zeros).
    let mut y = buffer_for_overwrite(s.b * y_len, T::ZERO);
    let mut p = buffer_for_overwrite(s.b * p_len, T::ZERO);
    if s.b * y_len > 0 {
        let per = sequences_per_task(s.b);
        y.par_chunks_mut(per * y_len)
            .zip(p.par_chunks_mut(per * p_len))
            .enumerate()
            .for_each(|(task, (y, p))| {
                for (i, (y, p)) in y.chunks_mut(y_len).zip(p.chunks_mut(p_len)).enumerate() {
                    let b = task * per + i;
                    let x = &qkv[b * x_len..(b + 1) * x_len];
                    forward_sequence_simd(x, y, p, s, scale);
                }
            });
    }
    (T::host(y), T::host(p))
}

fn backward_host<T: AttnFloat>(x: [&[T]; 3], s: Packed, scale: T) -> Host {
    let [qkv, p, g] = x;
    let c = s.c();
    let (x_len, p_len, g_len) = (s.t * 3 * c, s.h * s.t * s.t, s.t * c);
    // Written whole: dQ, dK and dV are each one product with β = 0.
    let mut dqkv = buffer_for_overwrite(s.b * x_len, T::ZERO);
    if s.b * x_len > 0 {
        let per = sequences_per_task(s.b);
        dqkv.par_chunks_mut(per * x_len)
            .enumerate()
            .for_each(|(task, dx)| {
                for (i, dx) in dx.chunks_mut(x_len).enumerate() {
                    let b = task * per + i;
                    let x = &qkv[b * x_len..(b + 1) * x_len];
                    let p = &p[b * p_len..(b + 1) * p_len];
                    let g = &g[b * g_len..(b + 1) * g_len];
                    backward_sequence_simd(x, p, g, dx, s, scale);
                }
            });
    }
    T::host(dqkv)
}

/// [`forward_sequence`] compiled for AVX2 and FMA where the CPU has them
/// (see chapter 04's `row_kernels`), the baseline copy otherwise.
fn forward_sequence_simd<T: RowFloat>(x: &[T], y: &mut [T], p: &mut [T], s: Packed, scale: T) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        #[target_feature(enable = "avx2,fma")]
        fn avx2_fma<T: RowFloat>(x: &[T], y: &mut [T], p: &mut [T], s: Packed, scale: T) {
            forward_sequence::<T, true>(x, y, p, s, scale)
        }
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { avx2_fma(x, y, p, s, scale) };
    }
    forward_sequence::<T, false>(x, y, p, s, scale)
}

/// [`backward_sequence`], compiled like [`forward_sequence_simd`].
fn backward_sequence_simd<T: RowFloat>(
    x: &[T],
    p: &[T],
    g: &[T],
    dx: &mut [T],
    s: Packed,
    scale: T,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        #[target_feature(enable = "avx2,fma")]
        fn avx2_fma<T: RowFloat>(x: &[T], p: &[T], g: &[T], dx: &mut [T], s: Packed, scale: T) {
            backward_sequence::<T, true>(x, p, g, dx, s, scale)
        }
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { avx2_fma(x, p, g, dx, s, scale) };
    }
    backward_sequence::<T, false>(x, p, g, dx, s, scale)
}

/// A matrix inside a buffer: where it starts, and the distance between
/// consecutive rows and columns. A head's `Q` inside `x: [T, 3C]` is
/// `At { offset: h·d, row: 3C, col: 1 }`; its transpose swaps the strides.
#[derive(Clone, Copy)]
struct At {
    offset: usize,
    row: usize,
    col: usize,
}

impl At {
    fn rows(offset: usize, row: usize) -> At {
        At {
            offset,
            row,
            col: 1,
        }
    }
    fn t(self) -> At {
        At {
            row: self.col,
            col: self.row,
            ..self
        }
    }
    /// The largest index of an `m × n` matrix at this place.
    fn last(self, m: usize, n: usize) -> usize {
        self.offset + (m - 1) * self.row + (n - 1) * self.col
    }
}

/// `dst ← α·(lhs · rhs)` (or `dst += α·(lhs · rhs)` with `accumulate`) for
/// an `m × k` times `k × n` product of matrices inside slices, on this
/// thread, by the `gemm` crate (the engine's matrix product, called here
/// directly because the heads are strided views of one buffer).
#[allow(clippy::too_many_arguments)]
fn product<T: RowFloat>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    d: At,
    accumulate: bool,
    a: &[T],
    la: At,
    b: &[T],
    lb: At,
    alpha: T,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(d.last(m, n) < dst.len() && la.last(m, k) < a.len() && lb.last(k, n) < b.len());
    // SAFETY: the assertion keeps every element of the three matrices
    // inside its slice; `dst` is borrowed mutably, so it overlaps neither
    // input. `gemm` computes dst = β₀·dst + β₁·a·b, reading `dst` only when
    // `read_dst` is set.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(d.offset),
            d.col as isize,
            d.row as isize,
            accumulate,
            a.as_ptr().add(la.offset),
            la.col as isize,
            la.row as isize,
            b.as_ptr().add(lb.offset),
            lb.col as isize,
            lb.row as isize,
            T::ONE,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

// ANCHOR: forward_sequence
/// One sequence, all heads. `x: [T, 3C]`, `y: [T, C]`, `p: [H, T, T]`.
#[inline(always)]
fn forward_sequence<T: RowFloat, const FMA: bool>(
    x: &[T],
    y: &mut [T],
    p: &mut [T],
    s: Packed,
    scale: T,
) {
    let (t, d, c) = (s.t, s.d, s.c());
    for h in 0..s.h {
        let (q, k, v) = (
            At::rows(h * d, 3 * c),
            At::rows(c + h * d, 3 * c),
            At::rows(2 * c + h * d, 3 * c),
        );
        let p = &mut p[h * t * t..(h + 1) * t * t];
        // S = s · Q Kᵀ, into P's place. (The masked half is computed too:
        // one dense product is faster than T ragged ones.)
        product((t, t, d), p, At::rows(0, t), false, x, q, x, k.t(), scale);
        for (i, row) in p.chunks_mut(t).enumerate() {
            // Query i sees keys 0..=i: softmax those, zero the rest.
            let (seen, hidden) = row.split_at_mut(i + 1);
            hidden.fill(T::ZERO);
            let m = seen.iter().fold(T::LOWEST, |m, &v| v.max(m));
            let mut sum = T::ZERO;
            for v in seen.iter_mut() {
                *v = (*v - m).exp_fast::<FMA>();
                sum = sum + *v;
            }
            let inv = sum.recip();
            for v in seen.iter_mut() {
                *v = *v * inv;
            }
        }
        // Y = P V, written into this head's columns of y.
        let out = At::rows(h * d, c);
        product((t, d, t), y, out, false, p, At::rows(0, t), x, v, T::ONE);
    }
}
// ANCHOR_END: forward_sequence

// ANCHOR: backward_sequence
/// One sequence, all heads: `x: [T, 3C]`, `p: [H, T, T]`, `g: [T, C]` →
/// `dx: [T, 3C]`, the formulas of [`backward_formula`], one head at a time.
#[inline(always)]
fn backward_sequence<T: RowFloat, const FMA: bool>(
    x: &[T],
    p: &[T],
    g: &[T],
    dx: &mut [T],
    s: Packed,
    scale: T,
) {
    let (t, d, c) = (s.t, s.d, s.c());
    let mut ds = scratch_buffer(t * t, T::ZERO);
    let square = At::rows(0, t);
    for h in 0..s.h {
        let (q, k, v) = (
            At::rows(h * d, 3 * c),
            At::rows(c + h * d, 3 * c),
            At::rows(2 * c + h * d, 3 * c),
        );
        let gh = At::rows(h * d, c);
        let p = &p[h * t * t..(h + 1) * t * t];
        // dP = G Vᵀ.
        product((t, t, d), &mut ds, square, false, g, gh, x, v.t(), T::ONE);
        // dS = s · P ⊙ (dP − rowsum(dP ⊙ P)), row by row (P is 0 where
        // the mask hid a key, and so is dS).
        for (dsi, pi) in ds.chunks_mut(t).zip(p.chunks(t)) {
            let dot = pi
                .iter()
                .zip(dsi.iter())
                .fold(T::ZERO, |a, (&p, &q)| a + p * q);
            for (v, &pij) in dsi.iter_mut().zip(pi) {
                *v = pij * (*v - dot) * scale;
            }
        }
        // dQ = dS K,  dK = dSᵀ Q,  dV = Pᵀ G, into their columns of dx.
        product((t, d, t), dx, q, false, &ds, square, x, k, T::ONE);
        product((t, d, t), dx, k, false, &ds, square.t(), x, q, T::ONE);
        product((t, d, t), dx, v, false, p, square.t(), g, gh, T::ONE);
    }
}
// ANCHOR_END: backward_sequence
