//! Checking analytic gradients against finite differences.

use crate::grad_mode::no_grad;
use crate::Tensor;
use chapter_02::{DType, Error, Generator, Result, Tensor as RawTensor};

/// Step and tolerances for [`gradcheck`]. The defaults suit `f64`, where a
/// central difference with `eps = 1e-6` is accurate to about `1e-9`.
#[derive(Debug, Clone, Copy)]
pub struct GradcheckOptions {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
    /// Seed of the random cotangent `w` (see below).
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0,
        }
    }
}

/// The worst disagreement found by a passing [`gradcheck`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckReport {
    /// Number of elements compared.
    pub checked: usize,
    pub max_abs_err: f64,
    /// `(input, flat element index)` of the worst element.
    pub worst: (usize, usize),
}

// ANCHOR: gradcheck
/// Compares the gradients `backward` computes for `f` with central
/// differences `(L(x + εeᵢ) − L(x − εeᵢ)) / 2ε`, element by element.
///
/// A non-scalar output is reduced to the scalar `L = Σ f(x) ⊙ w` with a
/// fixed random `w`, which checks the full vector-Jacobian product in one
/// backward pass (any wrong Jacobian entry shows up with probability 1).
/// Float inputs must be `f64`: in `f32` the finite difference itself is
/// too noisy to judge. Non-float inputs (indices) are passed through as
/// constants. When any element is outside `atol + rtol·|numeric|`, returns
/// an error naming the worst one (and how many failed).
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[RawTensor],
    opts: GradcheckOptions,
) -> Result<GradcheckReport> {
    for (i, x) in inputs.iter().enumerate() {
        if x.dtype() == DType::F32 {
            return Err(Error::invalid(
                "gradcheck",
                format!("input {i} is f32; use f64 inputs"),
            ));
        }
    }
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|x| {
            let t = Tensor::from_raw(x.clone());
            if x.dtype().is_float() {
                t.set_requires_grad(true)?;
            }
            Ok(t)
        })
        .collect::<Result<_>>()?;
    let out = f(&leaves)?;
    let mut rng = Generator::new(opts.seed);
    let w = Tensor::from_raw(RawTensor::randn_with(
        0.0,
        1.0,
        out.shape(),
        out.dtype(),
        &out.device(),
        &mut rng,
    )?);
    let loss = |o: &Tensor| -> Result<f64> { o.mul(&w)?.sum_all()?.item() };
    out.mul(&w)?.sum_all()?.backward()?;

    let mut report = GradcheckReport {
        checked: 0,
        max_abs_err: 0.0,
        worst: (0, 0),
    };
    // The failing element with the largest error: (input, index, analytic, numeric, error).
    let mut worst_failure: Option<(usize, usize, f64, f64, f64)> = None;
    let mut failures = 0;
    for (i, x) in inputs.iter().enumerate() {
        if !x.dtype().is_float() {
            continue;
        }
        let analytic = match leaves[i].grad_opt() {
            Some(g) => g.to_vec_f64()?,
            None => vec![0.0; x.elem_count()], // f does not depend on x
        };
        let base = x.to_vec_f64()?;
        for j in 0..base.len() {
            let eval = |delta: f64| -> Result<f64> {
                let _guard = no_grad();
                let mut v = base.clone();
                v[j] += delta;
                let xj = RawTensor::from_f64_vec(v, x.shape().clone(), x.dtype(), x.device())?;
                let args: Vec<Tensor> = leaves
                    .iter()
                    .enumerate()
                    .map(|(k, l)| {
                        if k == i {
                            Tensor::from_raw(xj.clone())
                        } else {
                            l.detach()
                        }
                    })
                    .collect();
                loss(&f(&args)?)
            };
            let numeric = (eval(opts.eps)? - eval(-opts.eps)?) / (2.0 * opts.eps);
            let err = (analytic[j] - numeric).abs();
            report.checked += 1;
            if err > report.max_abs_err || err.is_nan() {
                report.max_abs_err = err;
                report.worst = (i, j);
            }
            // Written so that a NaN error fails too.
            let within = err <= opts.atol + opts.rtol * numeric.abs();
            if !within {
                failures += 1;
                if worst_failure.is_none_or(|w| err > w.4 || err.is_nan()) {
                    worst_failure = Some((i, j, analytic[j], numeric, err));
                }
            }
        }
    }
    if let Some((i, j, analytic, numeric, err)) = worst_failure {
        return Err(Error::invalid(
            "gradcheck",
            format!(
                "input {i} (shape {}) element {j}: analytic {analytic:.10e} vs numeric {numeric:.10e} \
                 (abs error {err:.3e}); {failures} of {} elements outside tolerance",
                inputs[i].shape(),
                report.checked
            ),
        ));
    }
    Ok(report)
}
// ANCHOR_END: gradcheck
