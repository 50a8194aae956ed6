//! Gradient clipping.

use chapter_03::{Error, Result, Tensor};

// ANCHOR: clip_grad_norm
/// Rescales the gradients of `params` so that their combined norm (all
/// gradients seen as one long vector) is at most `max_norm`; returns the
/// norm before clipping. `norm_type` is `2.0` for the Euclidean norm or
/// `f64::INFINITY` for the largest absolute entry. As in PyTorch, the
/// scale is `max_norm / (norm + 1e-6)`, applied only when below 1.
pub fn clip_grad_norm_(params: &[Tensor], max_norm: f64, norm_type: f64) -> Result<f64> {
    let grads: Vec<Tensor> = params.iter().filter_map(|p| p.grad_opt()).collect();
    if grads.is_empty() {
        return Ok(0.0);
    }
    let total = if norm_type == f64::INFINITY {
        let mut m: f64 = 0.0;
        for g in &grads {
            m = m.max(g.data().abs()?.max_all()?.item()?);
        }
        m
    } else if norm_type > 0.0 {
        let mut s = 0.0;
        for g in &grads {
            s += g.data().abs()?.powf(norm_type)?.sum_all()?.item()?;
        }
        s.powf(1.0 / norm_type)
    } else {
        return Err(Error::invalid(
            "clip_grad_norm_",
            format!("norm_type must be positive (or infinity), got {norm_type}"),
        ));
    };
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for p in params {
            if let Some(g) = p.grad_opt() {
                p.set_grad(Some(Tensor::from_raw(g.data().affine(coef, 0.0)?)));
            }
        }
    }
    Ok(total)
}
// ANCHOR_END: clip_grad_norm

/// Clamps every gradient entry to `[-clip_value, clip_value]`.
pub fn clip_grad_value_(params: &[Tensor], clip_value: f64) -> Result<()> {
    for p in params {
        if let Some(g) = p.grad_opt() {
            p.set_grad(Some(Tensor::from_raw(
                g.data().clamp(-clip_value, clip_value)?,
            )));
        }
    }
    Ok(())
}

/// The global 2-norm of the gradients (for logging), without clipping.
pub fn grad_norm(params: &[Tensor]) -> Result<f64> {
    let mut s = 0.0;
    for p in params {
        if let Some(g) = p.grad_opt() {
            s += g.data().sqr()?.sum_all()?.item()?;
        }
    }
    Ok(s.sqrt())
}
