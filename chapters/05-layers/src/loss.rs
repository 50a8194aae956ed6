//! Loss functions: how wrong a prediction is, as one number to minimise.
//!
//! Free functions with PyTorch's names and semantics (`F.cross_entropy`,
//! ...). Cross entropy, which runs in every classification step, is one
//! fused [`CustomOp`] with the closed-form gradient `softmax − target`;
//! `nll_loss` and `mse_loss` are compositions of chapter 03/04 ops, which
//! is all they need; binary cross entropy with logits is a small fused op
//! for the same reasons as cross entropy (stability and an exact gradient).

use chapter_02::dispatch;
use chapter_02::{CmpOp, DType, Error, Result, Shape, Tensor as RawTensor};
use chapter_03::{is_grad_enabled, BackwardCtx, CustomOp, Tensor};
use chapter_04::prelude::*;
use chapter_04::softmax::LogSoftmaxLastDim;
use std::sync::Mutex;
use std::sync::PoisonError;

/// The saved gradient's lock: a panic elsewhere cannot leave it half
/// written (it only ever holds a whole tensor), so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ANCHOR: reduction
/// How per-element losses become the result (PyTorch's `reduction=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The average (over non-ignored targets, weighted by class weights,
    /// for the classification losses). The default.
    #[default]
    Mean,
    /// The total.
    Sum,
    /// No reduction: one loss per sample (per target position).
    None,
}
// ANCHOR_END: reduction

impl Reduction {
    /// Parses PyTorch's spelling: `"mean"`, `"sum"`, `"none"`.
    pub fn parse(s: &str) -> Result<Reduction> {
        match s {
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            "none" => Ok(Reduction::None),
            other => Err(Error::invalid(
                "reduction",
                format!("expected mean, sum or none, got {other:?}"),
            )),
        }
    }

    fn apply(self, losses: Tensor) -> Result<Tensor> {
        match self {
            Reduction::Mean => losses.mean_all(),
            Reduction::Sum => losses.sum_all(),
            Reduction::None => Ok(losses),
        }
    }
}

fn check_float(x: &Tensor, op: &'static str) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: x.dtype(),
        });
    }
    Ok(())
}

/// Moves the class dimension last and flattens the rest: `[N, C, d₁, ...]`
/// → `[N·d₁·..., C]`; `[N, C]` stays; an unbatched `[C]` becomes `[1, C]`.
fn class_rows(x: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    match dims.len() {
        0 => Err(Error::invalid(
            "cross_entropy",
            "logits need at least one dimension (the classes)",
        )),
        1 => x.reshape((1, dims[0])),
        2 => Ok(x.clone()),
        r => {
            let mut perm = vec![0];
            perm.extend(2..r);
            perm.push(1);
            let c = dims[1];
            x.permute(&perm)?.reshape((x.elem_count() / c, c))
        }
    }
}

/// The shape of the class-index target that goes with `logits`: the
/// logits' shape without the class dimension (`[N, d₁, ...]`, or `[]`).
fn target_shape(logits: &[usize]) -> Vec<usize> {
    match logits.len() {
        1 => vec![],
        _ => logits
            .iter()
            .enumerate()
            .filter(|&(d, _)| d != 1)
            .map(|(_, &n)| n)
            .collect(),
    }
}

/// Checks class-index targets: `i64`, shaped like the logits without their
/// class dimension, and in `0..C` unless equal to `ignore_index`. The values
/// are checked where that is free (targets in host memory, reported by
/// value); on another device a bad label is caught by the scatter or gather
/// kernel that reads it. Returns `C`.
fn check_class_targets(
    target: &Tensor,
    logits_dims: &[usize],
    ignore_index: Option<i64>,
    op: &'static str,
) -> Result<usize> {
    if logits_dims.is_empty() {
        return Err(Error::invalid(
            op,
            "the input needs at least one dimension (the classes)",
        ));
    }
    if target.dtype() != DType::I64 {
        return Err(Error::UnsupportedDType {
            op,
            dtype: target.dtype(),
        });
    }
    let expected = target_shape(logits_dims);
    if target.dims() != expected {
        return Err(Error::ShapeMismatch {
            op,
            lhs: logits_dims.into(),
            rhs: target.shape(),
            detail: format!(" (class-index targets must have shape {:?})", expected),
        });
    }
    let classes = if logits_dims.len() == 1 {
        logits_dims[0]
    } else {
        logits_dims[1]
    };
    // Ignored targets are allowed whatever their value.
    if let Some(t) = target
        .data()
        .first_id_outside_except(classes, ignore_index)?
    {
        return Err(Error::invalid(
            op,
            format!("target {t} is out of range for {classes} classes"),
        ));
    }
    Ok(classes)
}

/// For labels `[M]`: `(keep, safe)` where `keep` is the `u8` mask of the
/// labels that count (not `ignore_index`) and `safe` the labels with the
/// ignored ones replaced by 0, so they can index a row (and are then
/// multiplied away). Made on the device.
fn keep_and_safe(labels: &RawTensor, ignore_index: Option<i64>) -> Result<(RawTensor, RawTensor)> {
    match ignore_index {
        Some(i) => {
            let keep = labels.cmp_scalar(CmpOp::Ne, i as f64)?;
            let zero = RawTensor::zeros((), DType::I64, labels.device())?;
            let safe = keep.where_cond(labels, &zero)?;
            Ok((keep, safe))
        }
        None => Ok((
            RawTensor::ones(labels.shape().clone(), DType::U8, labels.device())?,
            labels.clone(),
        )),
    }
}

// ANCHOR: options
/// The options of [`cross_entropy`], with PyTorch's defaults.
#[derive(Debug, Clone)]
pub struct CrossEntropyOptions {
    /// `Mean` by default.
    pub reduction: Reduction,
    /// `ε` in `[0, 1]`: the target becomes `(1 − ε)·onehot + ε/C` (0).
    pub label_smoothing: f64,
    /// Targets equal to this contribute nothing, not even to the mean's
    /// count (`Some(-100)`, PyTorch's default, used to mark padding).
    pub ignore_index: Option<i64>,
    /// A weight per class, `[C]` (`None`: all 1). A constant: it receives
    /// no gradient.
    pub weight: Option<Tensor>,
}

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        CrossEntropyOptions {
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
            ignore_index: Some(-100),
            weight: None,
        }
    }
}
// ANCHOR_END: options

// ANCHOR: cross_entropy_op
/// Cross entropy of logit rows `x: [M, C]` against a target distribution
/// `T: [M, C]` built from the labels (see `target_distribution` below):
///
/// `ℓᵢ = −Σⱼ Tᵢⱼ · log pᵢⱼ`,  `log pᵢⱼ = xᵢⱼ − mᵢ − log Σₖ exp(xᵢₖ − mᵢ)`
///
/// with `mᵢ = maxₖ xᵢₖ` (the log-sum-exp trick: no exponent is positive, so
/// nothing overflows, and the log never sees 0). With one-hot `T` this is
/// `−log pᵢ,yᵢ`, the negative log-likelihood of the right class.
///
/// The gradient has a closed form. Since `∂ log pᵢⱼ / ∂xᵢₖ = δⱼₖ − pᵢₖ`:
///
/// `∂ℓᵢ/∂xᵢₖ = (Σⱼ Tᵢⱼ) · pᵢₖ − Tᵢₖ`,  which is `p − onehot` for plain labels.
///
/// The forward pass already has `p` and `T`, so it computes this matrix
/// once and the backward pass only scales it by the incoming gradient: one
/// node in the graph instead of a chain of `max`/`exp`/`sum`/`log`/`gather`
/// nodes, and nothing else kept alive. When the backward pass is itself
/// recorded (`create_graph`), it rebuilds the same formula from the
/// differentiable `softmax` instead, so second derivatives are right too.
///
/// Inputs: the logit rows, the labels `[M]` (`i64`, `−1` marks an ignored
/// row) or probabilities `[M, C]`, and optionally the class weights `[C]`.
struct CrossEntropy {
    label_smoothing: f64,
    reduction: Reduction,
    /// What `Mean` divides by, a 0-d tensor on the device: the number of
    /// counted labels (or their total class weight).
    divisor: RawTensor,
    /// Whether some labels may be `−1` (ignored): then rows of `T` do not
    /// all sum to 1.
    may_ignore: bool,
    /// `rowsum(T)·p − T` from the forward pass: the gradient of `Σᵢ ℓᵢ`.
    saved_grad: Mutex<Option<RawTensor>>,
}

impl CustomOp for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let (logits, target, weight) = (x[0], x[1], x.get(2).copied());
        // Chapter 04's log-softmax operator: one pass per row on the CPU,
        // the composite `(x − m) − log Σ exp(x − m)` elsewhere.
        let log_p = dispatch::call(&LogSoftmaxLastDim, &[logits])?.remove(0);
        let (t, hit) = self.target_distribution(logits, target, weight)?;
        // With unsmoothed labels `T` is zero off the label column. Selecting
        // rather than multiplying there keeps a −∞ logit (a masked class)
        // from turning `0·(−∞)` into NaN, and is one operation fewer.
        let zero = RawTensor::zeros((), logits.dtype(), logits.device())?;
        let terms = match (&hit, self.label_smoothing == 0.0, weight) {
            (Some(hit), true, None) => hit.where_cond(&log_p, &zero)?,
            (Some(hit), true, Some(_)) => hit.where_cond(&t.mul(&log_p)?, &zero)?,
            _ => t.mul(&log_p)?,
        };
        // Only worth computing when a backward pass may follow.
        if is_grad_enabled() {
            let p = log_p.exp()?;
            let unit_rows = hit.is_some() && weight.is_none() && !self.may_ignore;
            let grad = match unit_rows {
                // Each row of `T` sums to 1 (also when smoothed).
                true => p.sub(&t)?,
                false => p.mul(&t.sum([1], true)?)?.sub(&t)?,
            };
            *lock(&self.saved_grad) = Some(grad);
        }
        match self.reduction {
            Reduction::None => terms.sum([1], false)?.neg(),
            Reduction::Sum => terms.sum_all()?.neg(),
            Reduction::Mean => terms.sum_all()?.neg()?.div(&self.divisor),
        }
    }

    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut grads: Vec<Option<Tensor>> = vec![None; ctx.inputs.len()];
        if !ctx.needs_grad(0) {
            return Ok(grads);
        }
        let logits = ctx.input(0);
        let saved = lock(&self.saved_grad).clone();
        let d = match saved {
            Some(d) if !is_grad_enabled() => Tensor::from_raw(d),
            _ => {
                let weight = ctx.inputs.get(2).map(|w| w.data());
                let (t, _) = self.target_distribution(
                    &logits.data(),
                    &ctx.input(1).data(),
                    weight.as_ref(),
                )?;
                let t_sum = Tensor::from_raw(t.sum([1], true)?);
                logits.softmax(1)?.mul(&t_sum)?.sub(&Tensor::from_raw(t))?
            }
        };
        let scale = match self.reduction {
            Reduction::None => g.reshape((g.elem_count(), 1))?,
            Reduction::Sum => g.clone(),
            Reduction::Mean => g.div(&Tensor::from_raw(self.divisor.clone()))?,
        };
        grads[0] = Some(d.mul(&scale)?);
        Ok(grads)
    }
}
// ANCHOR_END: cross_entropy_op

// ANCHOR: target_distribution
impl CrossEntropy {
    /// The target distribution `T: [M, C]`, and for labels the `u8` mask of
    /// the label column.
    ///
    /// For labels `y` (`[M]`, `i64`), row `i` is
    /// `keepᵢ · ((1 − ε)·onehot(yᵢ) + ε/C) ⊙ w`: label smoothing moves mass
    /// `ε` from the right class to a uniform spread, class weights `w` scale
    /// each column, and `keepᵢ = 0` wipes ignored rows (an ignored label is
    /// `−1`, which matches no class, so its one-hot row is already zero).
    /// For probabilities (`[M, C]`, float) the row is `((1 − ε)·y + ε/C) ⊙ w`.
    fn target_distribution(
        &self,
        logits: &RawTensor,
        target: &RawTensor,
        weight: Option<&RawTensor>,
    ) -> Result<(RawTensor, Option<RawTensor>)> {
        let (m, c) = (logits.dims()[0], logits.dims()[1]);
        let dtype = logits.dtype();
        let eps = self.label_smoothing;
        let (mut t, hit) = if target.dtype().is_float() {
            (target.to_dtype(dtype)?, None)
        } else {
            // One-hot rows by scattering each kept label's 1 into zeros:
            // an ignored label (−1, only when labels may be ignored)
            // scatters a 0 into column 0, and any other label out of range,
            // negative ones included, is an error of the scatter kernel,
            // never a silent all-zero row.
            let keep = if self.may_ignore {
                target.cmp_scalar(CmpOp::Ne, -1.0)?
            } else {
                RawTensor::ones(target.shape().clone(), DType::U8, logits.device())?
            }
            .reshape((m, 1))?;
            let zero = RawTensor::zeros((), DType::I64, logits.device())?;
            let safe = keep.where_cond(&target.reshape((m, 1))?, &zero)?;
            let zeros = RawTensor::zeros((m, c), dtype, logits.device())?;
            let onehot = zeros.scatter_add(&safe, &keep.to_dtype(dtype)?, 1)?;
            let hit = onehot.cmp_scalar(CmpOp::Gt, 0.0)?;
            (onehot, Some(hit))
        };
        if eps > 0.0 {
            t = t.affine(1.0 - eps, eps / c as f64)?;
            if self.may_ignore {
                let keep = target
                    .cmp_scalar(CmpOp::Ge, 0.0)?
                    .to_dtype(dtype)?
                    .reshape((m, 1))?;
                t = t.mul(&keep)?;
            }
        }
        if let Some(w) = weight {
            t = t.mul(&w.to_dtype(dtype)?.reshape((1, c))?)?;
        }
        Ok((t, hit))
    }
}
// ANCHOR_END: target_distribution

// ANCHOR: cross_entropy
/// `F.cross_entropy`: the negative log-likelihood of the target under
/// `softmax(logits)`, for logits `[N, C]`, `[N, C, d₁, ...]` or `[C]`.
///
/// `target` holds either class indices (`i64`, shape of the logits without
/// the class dim: `[N]`, `[N, d₁, ...]` or `[]`) or class probabilities
/// (float, the logits' shape). With [`Reduction::None`] the result has the
/// target's (batch) shape; otherwise it is a scalar. `Mean` divides by the
/// number of labels that are not `ignore_index`, or by their total class
/// weight when there are weights (PyTorch's rule, also with smoothing); for
/// probability targets, by the number of rows.
pub fn cross_entropy(
    logits: &Tensor,
    target: &Tensor,
    opts: &CrossEntropyOptions,
) -> Result<Tensor> {
    check_float(logits, "cross_entropy")?;
    let dims = logits.dims();
    if dims.is_empty() {
        return Err(Error::invalid(
            "cross_entropy",
            "logits need at least one dimension (the classes)",
        ));
    }
    if !(0.0..=1.0).contains(&opts.label_smoothing) {
        return Err(Error::invalid(
            "cross_entropy",
            format!(
                "label_smoothing must be in [0, 1], got {}",
                opts.label_smoothing
            ),
        ));
    }
    let c = if dims.len() == 1 { dims[0] } else { dims[1] };
    if let Some(w) = &opts.weight {
        if w.dims() != [c] {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy",
                lhs: w.shape(),
                rhs: Shape::from(c),
                detail: " (class weights need one entry per class)".into(),
            });
        }
    }
    let rows = class_rows(logits)?;
    let m = rows.dims()[0];
    let device = logits.device();
    // Everything below stays on the device: the labels are never read.
    let (target_rows, divisor, may_ignore) = if target.dtype().is_float() {
        if target.dims() != dims {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy",
                lhs: logits.shape(),
                rhs: target.shape(),
                detail: " (probability targets must have the logits' shape)".into(),
            });
        }
        let divisor = RawTensor::full(m as f64, (), logits.dtype(), &device)?;
        (class_rows(target)?, divisor, false)
    } else {
        check_class_targets(target, &dims, opts.ignore_index, "cross_entropy")?;
        let labels = target.data().reshape(m)?;
        let (keep, safe) = keep_and_safe(&labels, opts.ignore_index)?;
        // `Mean` divides by the number of counted labels, or by their total
        // class weight (PyTorch's rule, also with smoothing).
        let counted = keep.to_dtype(logits.dtype())?;
        let divisor = match &opts.weight {
            Some(w) => w
                .data()
                .to_dtype(logits.dtype())?
                .index_select(&safe, 0)?
                .mul(&counted)?
                .sum_all()?,
            None => counted.sum_all()?,
        };
        // Mark ignored rows with −1, a label that matches no class.
        let marked = match opts.ignore_index {
            Some(_) => {
                let minus_one = RawTensor::full(-1.0, (), DType::I64, &device)?;
                Tensor::from_raw(keep.where_cond(&labels, &minus_one)?)
            }
            None => Tensor::from_raw(labels),
        };
        (marked, divisor, opts.ignore_index.is_some())
    };
    let op = CrossEntropy {
        label_smoothing: opts.label_smoothing,
        reduction: opts.reduction,
        divisor,
        may_ignore,
        saved_grad: Mutex::new(None),
    };
    let mut inputs = vec![&rows, &target_rows];
    if let Some(w) = &opts.weight {
        inputs.push(w);
    }
    let out = Tensor::apply(op, &inputs)?;
    match opts.reduction {
        Reduction::None => out.reshape(target_shape(&dims)),
        _ => Ok(out),
    }
}
// ANCHOR_END: cross_entropy

// ANCHOR: nll_loss
/// `F.nll_loss`: `−log_probs[i, target[i]]`, averaged over the targets
/// that are not `ignore_index`. `log_probs` is `[N, C]` (or `[N, C, d₁, ...]`,
/// or `[C]`), usually the output of `log_softmax`; `target` as in
/// [`cross_entropy`].
///
/// Written as a composition: a `gather` picks each row's target column
/// (ignored rows pick column 0 and are then multiplied by 0), and autograd
/// does the rest. `log_softmax` followed by this is the unfused version of
/// [`cross_entropy`], with the same values and gradients.
///
/// `ignore_index` is `Some(i)`, `None`, or just `i` (PyTorch's default is
/// `-100`).
pub fn nll_loss(
    log_probs: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    ignore_index: impl Into<Option<i64>>,
) -> Result<Tensor> {
    let ignore_index = ignore_index.into();
    check_float(log_probs, "nll_loss")?;
    let dims = log_probs.dims();
    check_class_targets(target, &dims, ignore_index, "nll_loss")?;
    let rows = class_rows(log_probs)?;
    let m = rows.dims()[0];
    let (keep, safe) = keep_and_safe(&target.data().reshape(m)?, ignore_index)?;
    let keep = Tensor::from_raw(keep.to_dtype(rows.dtype())?);
    let picked = rows
        .gather(&Tensor::from_raw(safe.reshape((m, 1))?), 1)?
        .reshape(m)?;
    let losses = picked.mul(&keep)?.neg()?;
    match reduction {
        Reduction::None => losses.reshape(target_shape(&dims)),
        Reduction::Sum => losses.sum_all(),
        // Divided by the number of counted targets, computed on the device.
        Reduction::Mean => losses.sum_all()?.div(&keep.detach().sum_all()?),
    }
}
// ANCHOR_END: nll_loss

// ANCHOR: mse_loss
/// `F.mse_loss`: `(input − target)²`, reduced. Both may require grad.
/// Shapes must be equal (PyTorch only warns; a silent broadcast of `[N]`
/// against `[N, 1]` is a classic bug).
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    check_float(input, "mse_loss")?;
    if input.dims() != target.dims() {
        return Err(Error::ShapeMismatch {
            op: "mse_loss",
            lhs: input.shape(),
            rhs: target.shape(),
            detail: " (input and target must have the same shape)".into(),
        });
    }
    let diff = input.sub(target)?;
    reduction.apply(diff.mul(&diff)?)
}
// ANCHOR_END: mse_loss

// ANCHOR: bce_with_logits_op
/// Binary cross entropy on logits `x` against targets `y ∈ [0, 1]`, per
/// element:
///
/// `ℓ = −[y·log σ(x) + (1 − y)·log(1 − σ(x))] = max(x, 0) − x·y + log(1 + e^(−|x|))`
///
/// The right-hand form never exponentiates a positive number and never
/// takes the log of something that rounded to 0, so `x = ±100` is fine;
/// `log(1 + ·)` is chapter 04's accurate `softplus`. With `pos_weight` `w`
/// (which scales the positive term), `ℓ` gains `(w − 1)·y·softplus(−x)`.
///
/// Gradient: `∂ℓ/∂x = (1 + (w − 1)·y)·σ(x) − w·y`, which is `σ(x) − y`
/// without `pos_weight`.
struct BceWithLogits;

/// `softplus(−x) = −log σ(x)`, and `log(1 + e^(−|x|))`, computed stably.
fn softplus_raw(z: &RawTensor) -> Result<RawTensor> {
    Ok(Tensor::from_raw(z.clone())
        .softplus(1.0, f64::INFINITY)?
        .data())
}

impl CustomOp for BceWithLogits {
    fn name(&self) -> &'static str {
        "binary_cross_entropy_with_logits"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let (logits, y) = (x[0], x[1]);
        let log1p_exp = softplus_raw(&logits.abs()?.neg()?)?;
        let loss = logits.relu()?.sub(&logits.mul(y)?)?.add(&log1p_exp)?;
        match x.get(2) {
            None => Ok(loss),
            Some(w) => {
                let sp_neg = logits.neg()?.relu()?.add(&log1p_exp)?;
                loss.add(&w.sub_scalar(1.0)?.mul(y)?.mul(&sp_neg)?)
            }
        }
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, y) = (ctx.input(0), ctx.input(1));
        let pw = ctx.inputs.get(2);
        let sum_to = |t: Tensor, i: usize| -> Result<Option<Tensor>> {
            Ok(Some(t.sum_to(&ctx.input(i).dims())?))
        };
        let mut grads = vec![None; ctx.inputs.len()];
        if ctx.needs_grad(0) {
            let d = match pw {
                None => x.sigmoid()?.sub(y)?,
                Some(w) => {
                    let l = w.add_scalar(-1.0)?.mul(y)?.add_scalar(1.0)?;
                    l.mul(&x.sigmoid()?)?.sub(&w.mul(y)?)?
                }
            };
            grads[0] = sum_to(g.mul(&d)?, 0)?;
        }
        if ctx.needs_grad(1) {
            let d = match pw {
                None => x.neg()?,
                Some(w) => x.neg()?.add(
                    &w.add_scalar(-1.0)?
                        .mul(&x.neg()?.softplus(1.0, f64::INFINITY)?)?,
                )?,
            };
            grads[1] = sum_to(g.mul(&d)?, 1)?;
        }
        if pw.is_some() && ctx.needs_grad(2) {
            let d = y.mul(&x.neg()?.softplus(1.0, f64::INFINITY)?)?;
            grads[2] = sum_to(g.mul(&d)?, 2)?;
        }
        Ok(grads)
    }
}
// ANCHOR_END: bce_with_logits_op

// ANCHOR: bce_with_logits
/// `F.binary_cross_entropy_with_logits`: the loss of independent yes/no
/// predictions given as logits (`σ` is applied inside, stably). `target`
/// has the logits' shape, values in `[0, 1]`; `pos_weight` (broadcast
/// against the logits, typically `[C]`) weighs the positive examples of
/// each class: `> 1` raises recall.
pub fn binary_cross_entropy_with_logits(
    logits: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    pos_weight: Option<&Tensor>,
) -> Result<Tensor> {
    check_float(logits, "binary_cross_entropy_with_logits")?;
    if logits.dims() != target.dims() {
        return Err(Error::ShapeMismatch {
            op: "binary_cross_entropy_with_logits",
            lhs: logits.shape(),
            rhs: target.shape(),
            detail: " (target must have the logits' shape)".into(),
        });
    }
    let mut inputs = vec![logits, target];
    inputs.extend(pos_weight);
    reduction.apply(Tensor::apply(BceWithLogits, &inputs)?)
}
// ANCHOR_END: bce_with_logits
