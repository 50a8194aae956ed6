//! Group `clip_grad_norm` (chapter 06): `torch.nn.utils.clip_grad_norm_`.
//!
//! A case stores the gradients of a few parameters before clipping
//! (`g0`, `g1`, ...), the total norm PyTorch returned (`total_norm`, a 0-d
//! tensor) and the gradients after clipping (`clipped_g0`, ...). We give
//! parameters of the same shapes those gradients, clip them with
//! [`clip_grad_norm_`], and compare the returned norm and every gradient.

use super::optimizers::stored;
use crate::parity::args::Args;
use crate::parity::compare::compare;
use crate::parity::runner::worst;
use crate::parity::{CaseEnv, Failure};
use chapter_03::Tensor;
use chapter_06::clip_grad_norm_;

/// Arguments PyTorch's function takes that do not change its result on
/// finite gradients (`num_params` only describes the case).
const KNOWN: &[&str] = &[
    "max_norm",
    "norm_type",
    "num_params",
    "error_if_nonfinite",
    "foreach",
];

/// Clips the case's gradients and compares the norm and the results.
pub fn check(env: &CaseEnv<'_>) -> Result<(), Failure> {
    let case = env.case;
    let tol = env
        .precision
        .tol(case)
        .ok_or_else(|| Failure::new("the manifest gives no tolerance for this case"))?;
    let args = Args(&case.args);
    if let Some(k) = case.args.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(Failure::new(format!(
            "argument `{k}` has no counterpart in clip_grad_norm_"
        )));
    }
    let max_norm = args.f64("max_norm")?;
    let norm_type = if args.has("norm_type") {
        args.f64("norm_type")?
    } else {
        2.0
    };
    let n = if args.has("num_params") {
        args.usize("num_params")?
    } else {
        (0..)
            .take_while(|j| case.tensor(&format!("g{j}")).is_some())
            .count()
    };
    let file = env.file()?;

    let mut params = Vec::with_capacity(n);
    for j in 0..n {
        let g = stored(&file, case, &format!("g{j}"))?;
        let p = Tensor::param(g.zeros_like()?)?;
        p.set_grad(Some(Tensor::from_raw(g)));
        params.push(p);
    }
    let total = clip_grad_norm_(&params, max_norm, norm_type)?;

    let mut mismatches = Vec::new();
    let expected = stored(&file, case, "total_norm")?;
    let actual = total.to_dtype(expected.dtype())?;
    mismatches.extend(compare("total_norm", &actual, &expected, tol));
    for (j, p) in params.iter().enumerate() {
        let name = format!("clipped_g{j}");
        let expected = stored(&file, case, &name)?;
        match p.grad_opt() {
            Some(g) => mismatches.extend(compare(&name, &g.data(), &expected, tol)),
            None => return Err(Failure::new(format!("{name}: the gradient was removed"))),
        }
    }
    worst(mismatches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::manifest::{Case, Manifest};
    use crate::parity::{default_fixtures_dir, Precision};
    use serde_json::json;

    fn run(case: &Case) -> Result<(), Failure> {
        let dir = default_fixtures_dir();
        check(&CaseEnv {
            case,
            dir: &dir,
            precision: Precision::F32,
        })
    }

    #[test]
    fn a_different_max_norm_fails_on_the_clipped_gradients_only() {
        let m = Manifest::load(&default_fixtures_dir().join("manifest.json")).unwrap();
        let mut c = m
            .cases
            .into_iter()
            .find(|c| c.id == "clip_grad_norm_l2")
            .unwrap();
        run(&c).unwrap();
        c.args.insert("max_norm".into(), json!(0.9));
        let err = run(&c).unwrap_err();
        assert!(err.0.starts_with("clipped_g"), "{err}");
        assert!(!err.0.contains("total_norm"), "{err}");
        c.args.insert("norm_type".into(), json!("inf"));
        let err = run(&c).unwrap_err();
        assert!(err.0.contains("total_norm"), "{err}");
    }
}
