//! Checking gradients against finite differences.
//!
//! Autograd is only useful if it is right, and there is a slow but simple way
//! to get the same numbers: nudge one input a little and watch the output.
//! Every gradient test of this chapter compares the two.

use crate::Value;
use std::fmt;

// ANCHOR: central_difference
/// The gradient of `f` at `x` by central differences:
///
/// ∂f/∂xᵢ ≈ (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h
///
/// The error of the symmetric quotient shrinks like h² (the one-sided
/// (f(x + h) − f(x))/h only like h), while rounding error grows like ε/h;
/// h ≈ 1e-5 balances the two for `f64`.
pub fn central_difference(f: impl Fn(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + h;
            let above = f(&probe);
            probe[i] = x[i] - h;
            let below = f(&probe);
            probe[i] = x[i];
            (above - below) / (2.0 * h)
        })
        .collect()
}
// ANCHOR_END: central_difference

/// Where autograd and finite differences disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct GradientMismatch {
    /// Which input.
    pub index: usize,
    /// ∂f/∂xᵢ from [`Value::backward`].
    pub autograd: f64,
    /// ∂f/∂xᵢ from [`central_difference`].
    pub numeric: f64,
    /// The point where they were compared.
    pub at: Vec<f64>,
}

impl fmt::Display for GradientMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradient mismatch for input {} at {:?}: autograd {} but central difference {}",
            self.index, self.at, self.autograd, self.numeric
        )
    }
}

impl std::error::Error for GradientMismatch {}

// ANCHOR: check_gradient
/// Builds `f` on fresh leaves holding `x`, runs `backward`, and compares each
/// leaf's gradient with the central difference of `f` (evaluated on the
/// `data` of the same graph). They match when
/// |autograd − numeric| ≤ 1e-6 + 1e-4·max(|autograd|, |numeric|) + 1e-9·|f(x)|
/// (the last term allows for rounding in f itself when f is large).
pub fn check_gradient(f: impl Fn(&[Value]) -> Value, x: &[f64]) -> Result<(), GradientMismatch> {
    let inputs: Vec<Value> = x.iter().map(|&xi| Value::new(xi)).collect();
    let out = f(&inputs);
    out.backward();
    let value_of = |point: &[f64]| {
        let leaves: Vec<Value> = point.iter().map(|&p| Value::new(p)).collect();
        f(&leaves).data()
    };
    let numeric = central_difference(value_of, x, 1e-5);
    for (index, (input, numeric)) in inputs.iter().zip(numeric).enumerate() {
        let autograd = input.grad();
        let scale = autograd.abs().max(numeric.abs());
        let tolerance = 1e-6 + 1e-4 * scale + 1e-9 * out.data().abs();
        let error = (autograd - numeric).abs();
        if error.is_nan() || error > tolerance {
            return Err(GradientMismatch {
                index,
                autograd,
                numeric,
                at: x.to_vec(),
            });
        }
    }
    Ok(())
}
// ANCHOR_END: check_gradient
