//! Gradient clipping, on the device.
//!
//! Clipping needs the norm of all gradients together, and PyTorch's first
//! versions read each gradient's norm back to the host to add them up: one
//! stall per parameter per step on a GPU. Here the norm is one small
//! computation that stays on the device, the scale factor is computed on
//! the device from it, and every gradient is multiplied by that factor
//! (which is exactly 1 when no clipping is needed). The norm comes back as
//! a 0-d tensor; reading it (`.item()`, to log it) is the caller's choice
//! and the only transfer.

use chapter_03::{Error, RawTensor, Result, Tensor};

/// The gradients of `params` that exist.
fn grads(params: &[Tensor]) -> Vec<RawTensor> {
    params
        .iter()
        .filter_map(|p| p.grad_opt().map(|g| g.data()))
        .collect()
}

fn check_norm_type(norm_type: f64) -> Result<()> {
    if norm_type > 0.0 {
        return Ok(());
    }
    Err(Error::invalid(
        "clip_grad_norm_",
        format!("norm_type must be positive (or infinity), got {norm_type}"),
    ))
}

// ANCHOR: total_norm
/// The `norm_type`-norm of all `grads` seen as one long vector, as a 0-d
/// tensor on their device: `(Σᵢ Σⱼ |gᵢⱼ|ᵖ)^(1/p)`, or `maxᵢⱼ |gᵢⱼ|` for
/// `p = ∞`. One reduction per gradient and a few scalar operations, all
/// on the device.
fn total_norm(grads: &[RawTensor], norm_type: f64) -> Result<RawTensor> {
    check_norm_type(norm_type)?;
    let mut total: Option<RawTensor> = None;
    for g in grads {
        let part = if norm_type == f64::INFINITY {
            g.abs()?.max_all()?
        } else if norm_type == 2.0 {
            g.sqr()?.sum_all()?
        } else {
            g.abs()?.powf(norm_type)?.sum_all()?
        };
        total = Some(match total {
            None => part,
            Some(t) if norm_type == f64::INFINITY => t.maximum(&part)?,
            Some(t) => t.add(&part)?,
        });
    }
    let total = match total {
        Some(t) => t,
        None => return Err(Error::invalid("clip_grad_norm_", "no gradients")),
    };
    if norm_type == f64::INFINITY {
        Ok(total)
    } else if norm_type == 2.0 {
        total.sqrt()
    } else {
        total.powf(1.0 / norm_type)
    }
}
// ANCHOR_END: total_norm

// ANCHOR: clip_grad_norm
/// Rescales the gradients of `params` so that their combined norm (all
/// gradients seen as one long vector) is at most `max_norm`, and returns
/// the norm before clipping as a 0-d tensor on the gradients' device.
/// `norm_type` is `2.0` for the Euclidean norm or `f64::INFINITY` for the
/// largest absolute entry. As in PyTorch, every gradient is multiplied by
/// `min(1, max_norm / (norm + 1e-6))`, computed on the device: no value is
/// read back to the host. Parameters without a gradient are skipped; with
/// none at all the norm is 0.
pub fn clip_grad_norm_(params: &[Tensor], max_norm: f64, norm_type: f64) -> Result<RawTensor> {
    if !(max_norm >= 0.0 && max_norm.is_finite()) {
        return Err(Error::invalid(
            "clip_grad_norm_",
            format!("max_norm must be finite and >= 0, got {max_norm}"),
        ));
    }
    check_norm_type(norm_type)?;
    let grads = grads(params);
    let Some(first) = grads.first() else {
        let device = chapter_02::default_device()?;
        return RawTensor::zeros((), chapter_02::DType::F32, &device);
    };
    let norm = total_norm(&grads, norm_type)?;
    let limit = RawTensor::full(max_norm, (), first.dtype(), first.device())?;
    let coef = limit
        .div(&norm.add_scalar(1e-6)?)?
        .clamp(f64::NEG_INFINITY, 1.0)?;
    for p in params {
        if let Some(g) = p.grad_opt() {
            p.set_grad(Some(Tensor::from_raw(g.data().mul(&coef)?)));
        }
    }
    Ok(norm)
}
// ANCHOR_END: clip_grad_norm

/// Clamps every gradient entry to `[-clip_value, clip_value]`.
pub fn clip_grad_value_(params: &[Tensor], clip_value: f64) -> Result<()> {
    if !(clip_value >= 0.0 && clip_value.is_finite()) {
        return Err(Error::invalid(
            "clip_grad_value_",
            format!("clip_value must be finite and >= 0, got {clip_value}"),
        ));
    }
    for p in params {
        if let Some(g) = p.grad_opt() {
            p.set_grad(Some(Tensor::from_raw(
                g.data().clamp(-clip_value, clip_value)?,
            )));
        }
    }
    Ok(())
}

/// The global 2-norm of the gradients (for logging), without clipping, as
/// a 0-d tensor on their device (0 without gradients).
pub fn grad_norm(params: &[Tensor]) -> Result<RawTensor> {
    let grads = grads(params);
    if grads.is_empty() {
        return RawTensor::zeros((), chapter_02::DType::F32, &chapter_02::default_device()?);
    }
    total_norm(&grads, 2.0)
}
