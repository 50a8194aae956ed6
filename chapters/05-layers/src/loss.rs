//! Loss functions: how wrong a prediction is, as one number to minimise.
//!
//! Free functions with PyTorch's names and semantics (`F.cross_entropy`,
//! ...). Cross entropy, which runs in every classification step, is one
//! fused [`CustomOp`] with the closed-form gradient `softmax − target`;
//! `nll_loss` and `mse_loss` are compositions of chapter 03/04 ops, which
//! is all they need; binary cross entropy with logits is a small fused op
//! for the same reasons as cross entropy (stability and an exact gradient).

use chapter_02::{CmpOp, DType, Error, Result, Shape, Tensor as RawTensor};
use chapter_03::{is_grad_enabled, BackwardCtx, CustomOp, Tensor};
use chapter_04::prelude::*;
use std::sync::Mutex;

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

/// Reads class-index targets to the host and checks them: `i64`, shaped
/// like the logits without their class dimension, and in `0..C` unless equal
/// to `ignore_index`. A bad label is reported by value.
fn read_class_targets(
    target: &Tensor,
    logits_dims: &[usize],
    ignore_index: Option<i64>,
    op: &'static str,
) -> Result<Vec<i64>> {
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
    let labels = target.to_vec::<i64>()?;
    for &t in &labels {
        if Some(t) != ignore_index && (t < 0 || t as usize >= classes) {
            return Err(Error::invalid(
                op,
                format!("target {t} is out of range for {classes} classes"),
            ));
        }
    }
    Ok(labels)
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
    /// What `Mean` divides by: the number of counted labels (or their total
    /// weight), worked out on the host while the labels were checked.
    divisor: f64,
    /// Whether some labels are `−1` (ignored).
    has_ignored: bool,
    /// `rowsum(T)·p − T` from the forward pass: the gradient of `Σᵢ ℓᵢ`.
    saved_grad: Mutex<Option<RawTensor>>,
}

impl CustomOp for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }

    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let (logits, target, weight) = (x[0], x[1], x.get(2).copied());
        let z = logits.sub(&logits.max([1], true)?)?;
        let log_p = z.sub(&z.exp()?.sum([1], true)?.log()?)?;
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
            let unit_rows = hit.is_some() && weight.is_none() && !self.has_ignored;
            let grad = match unit_rows {
                // Each row of `T` sums to 1 (also when smoothed).
                true => p.sub(&t)?,
                false => p.mul(&t.sum([1], true)?)?.sub(&t)?,
            };
            *self.saved_grad.lock().expect("cross_entropy lock") = Some(grad);
        }
        match self.reduction {
            Reduction::None => terms.sum([1], false)?.neg(),
            Reduction::Sum => terms.sum_all()?.neg(),
            Reduction::Mean => terms.sum_all()?.affine(-1.0 / self.divisor, 0.0),
        }
    }

    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut grads: Vec<Option<Tensor>> = vec![None; ctx.inputs.len()];
        if !ctx.needs_grad(0) {
            return Ok(grads);
        }
        let logits = ctx.input(0);
        let saved = self.saved_grad.lock().expect("cross_entropy lock").clone();
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
            Reduction::Mean => g.affine(1.0 / self.divisor, 0.0)?,
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
            let classes = RawTensor::arange(0.0, c as f64, 1.0, DType::I64, logits.device())?;
            let hit = target.reshape((m, 1))?.eq(&classes)?;
            (hit.to_dtype(dtype)?, Some(hit))
        };
        if eps > 0.0 {
            t = t.affine(1.0 - eps, eps / c as f64)?;
            if self.has_ignored {
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
    let class_weights = match &opts.weight {
        Some(w) if w.dims() != [c] => {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy",
                lhs: w.shape(),
                rhs: Shape::from(c),
                detail: " (class weights need one entry per class)".into(),
            })
        }
        Some(w) => Some(w.to_vec_f64()?),
        None => None,
    };
    let rows = class_rows(logits)?;
    let m = rows.dims()[0];
    let (target_rows, divisor, has_ignored) = if target.dtype().is_float() {
        if target.dims() != dims {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy",
                lhs: logits.shape(),
                rhs: target.shape(),
                detail: " (probability targets must have the logits' shape)".into(),
            });
        }
        (class_rows(target)?, m as f64, false)
    } else {
        let labels = read_class_targets(target, &dims, opts.ignore_index, "cross_entropy")?;
        let kept = |t: &&i64| Some(**t) != opts.ignore_index;
        let divisor = match &class_weights {
            Some(w) => labels.iter().filter(kept).map(|&t| w[t as usize]).sum(),
            None => labels.iter().filter(kept).count() as f64,
        };
        let has_ignored = labels.iter().any(|t| Some(*t) == opts.ignore_index);
        let rows = match has_ignored {
            // Mark ignored rows with −1, a label that matches no class.
            true => {
                let marked = labels
                    .iter()
                    .map(|&t| if Some(t) == opts.ignore_index { -1 } else { t })
                    .collect();
                Tensor::from_vec(marked, m, &target.device())?
            }
            false => target.reshape(m)?,
        };
        (rows, divisor, has_ignored)
    };
    let op = CrossEntropy {
        label_smoothing: opts.label_smoothing,
        reduction: opts.reduction,
        divisor,
        has_ignored,
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
    let labels = read_class_targets(target, &dims, ignore_index, "nll_loss")?;
    let counted = labels.iter().filter(|&&t| Some(t) != ignore_index).count();
    let rows = class_rows(log_probs)?;
    let m = rows.dims()[0];
    let t = target.data().reshape(m)?;
    let (safe, keep) = match ignore_index {
        Some(i) => {
            let zero = RawTensor::zeros((), DType::I64, t.device())?;
            let safe = t.cmp_scalar(CmpOp::Eq, i as f64)?.where_cond(&zero, &t)?;
            (
                safe,
                t.cmp_scalar(CmpOp::Ne, i as f64)?.to_dtype(rows.dtype())?,
            )
        }
        None => (t.clone(), RawTensor::ones(m, rows.dtype(), t.device())?),
    };
    let picked = rows
        .gather(&Tensor::from_raw(safe.reshape((m, 1))?), 1)?
        .reshape(m)?;
    let losses = picked.mul(&Tensor::from_raw(keep))?.neg()?;
    match reduction {
        Reduction::None => losses.reshape(target_shape(&dims)),
        Reduction::Sum => losses.sum_all(),
        Reduction::Mean => losses.sum_all()?.affine(1.0 / counted as f64, 0.0),
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
