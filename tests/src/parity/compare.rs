//! Comparing a tensor we computed with the one PyTorch stored.
//!
//! Floats pass when `|actual - expected| <= atol + rtol * |expected|` for
//! every element (numpy's `allclose`). Infinities must match exactly (they
//! appear in masked outputs), a NaN only matches a NaN, and integer tensors
//! (indices) must be equal. Shapes and dtypes must agree first.

use super::manifest::Tolerance;
use chapter_02::Tensor as RawTensor;
use std::fmt;

/// Why one tensor does not match, with the worst element.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The stored tensor's name (`out`, `grad_a`, `indices`).
    pub name: String,
    /// How far outside the tolerance the worst element is: its error divided
    /// by its allowed error (infinite for shape, dtype or infinity mismatches).
    pub severity: f64,
    pub message: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Whether one float element is within tolerance.
pub fn close(actual: f64, expected: f64, tol: Tolerance) -> bool {
    if expected.is_nan() {
        return actual.is_nan();
    }
    if expected.is_infinite() {
        return actual == expected;
    }
    // A NaN or infinite `actual` fails this comparison too.
    (actual - expected).abs() <= tol.atol + tol.rtol * expected.abs()
}

/// `[1, 0, 3]` for flat index `i` of a row-major tensor of shape `dims`.
fn multi_index(mut i: usize, dims: &[usize]) -> String {
    let mut idx = vec![0; dims.len()];
    for (k, &d) in dims.iter().enumerate().rev() {
        if d > 0 {
            idx[k] = i % d;
            i /= d;
        }
    }
    let parts: Vec<String> = idx.iter().map(|v| v.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// A number printed with enough digits to see a difference of 1e-9.
pub fn fmt_num(v: f64) -> String {
    if v.is_nan() || v.is_infinite() || (v == v.trunc() && v.abs() < 1e15) {
        format!("{v}")
    } else if (1e-3..1e6).contains(&v.abs()) {
        format!("{v:.10}").trim_end_matches('0').to_string()
    } else {
        let s = format!("{v:.9e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        format!(
            "{}e{exp}",
            mantissa.trim_end_matches('0').trim_end_matches('.')
        )
    }
}

/// Checks `actual` against `expected`; `None` when they match.
pub fn compare(
    name: &str,
    actual: &RawTensor,
    expected: &RawTensor,
    tol: Tolerance,
) -> Option<Mismatch> {
    let fail = |severity: f64, message: String| {
        Some(Mismatch {
            name: name.to_string(),
            severity,
            message,
        })
    };
    if actual.dims() != expected.dims() {
        return fail(
            f64::INFINITY,
            format!(
                "{name}: shape {:?} vs expected {:?}",
                actual.dims(),
                expected.dims()
            ),
        );
    }
    if actual.dtype() != expected.dtype() {
        return fail(
            f64::INFINITY,
            format!(
                "{name}: dtype {} vs expected {}",
                actual.dtype(),
                expected.dtype()
            ),
        );
    }
    let (a, e) = match (actual.to_vec_f64(), expected.to_vec_f64()) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(err), _) | (_, Err(err)) => {
            return fail(f64::INFINITY, format!("{name}: cannot read values: {err}"))
        }
    };
    let exact = !expected.dtype().is_float();
    let mut worst: Option<(usize, f64)> = None;
    let mut bad = 0usize;
    for (i, (&x, &y)) in a.iter().zip(&e).enumerate() {
        let ok = if exact { x == y } else { close(x, y, tol) };
        if ok {
            continue;
        }
        bad += 1;
        let allowed = if exact {
            0.0
        } else {
            tol.atol + tol.rtol * y.abs()
        };
        let err = (x - y).abs();
        let severity = if err.is_finite() && allowed > 0.0 {
            err / allowed
        } else {
            f64::INFINITY
        };
        if worst.is_none_or(|(_, s)| severity > s) {
            worst = Some((i, severity));
        }
    }
    let (i, severity) = worst?;
    let (x, y) = (a[i], e[i]);
    let rule = if exact {
        "integers must be equal".to_string()
    } else if y.is_infinite() || y.is_nan() {
        "must match exactly".to_string()
    } else {
        format!(
            "|diff| {} > {} = atol {} + rtol {} * |expected|",
            fmt_num((x - y).abs()),
            fmt_num(tol.atol + tol.rtol * y.abs()),
            fmt_num(tol.atol),
            fmt_num(tol.rtol)
        )
    };
    fail(
        severity,
        format!(
            "{name}{} = {} vs {} ({rule}; {bad} of {} elements off)",
            multi_index(i, expected.dims()),
            fmt_num(x),
            fmt_num(y),
            a.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chapter_02::Device;

    const TOL: Tolerance = Tolerance {
        rtol: 1e-5,
        atol: 1e-6,
    };

    fn t(v: &[f32], shape: &[usize]) -> RawTensor {
        RawTensor::from_vec(v.to_vec(), shape.to_vec(), &Device::cpu()).unwrap()
    }

    #[test]
    fn tolerance_accepts_rounding_and_catches_a_wrong_value() {
        assert!(close(1.0 + 5e-6, 1.0, TOL));
        assert!(!close(1.0 + 5e-5, 1.0, TOL));
        assert!(close(0.0, 9e-7, TOL));
        assert!(!close(f64::NAN, 1.0, TOL));
        let e = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        assert_eq!(compare("out", &e, &e, TOL), None);
        let a = t(&[1.0, 2.0, 3.0, 4.01], &[2, 2]);
        let m = compare("grad_a", &a, &e, TOL).expect("a wrong value must be caught");
        assert!(
            m.message.starts_with("grad_a[1, 1] = 4.01"),
            "{}",
            m.message
        );
        assert!(m.message.contains("1 of 4 elements off"), "{}", m.message);
    }

    #[test]
    fn numbers_print_short_but_exact_enough() {
        assert_eq!(fmt_num(1.5e-6), "1.5e-6");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(-3.0), "-3");
        assert_eq!(fmt_num(1.000000001), "1.000000001");
        assert_eq!(fmt_num(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn the_worst_element_is_reported() {
        let e = t(&[1.0, 1.0, 100.0], &[3]);
        let a = t(&[1.001, 1.1, 100.05], &[3]);
        let m = compare("out", &a, &e, TOL).unwrap();
        assert!(m.message.starts_with("out[1] = 1.1"), "{}", m.message);
    }

    #[test]
    fn infinities_must_match_exactly() {
        let e = t(&[f32::NEG_INFINITY, 1.0], &[2]);
        assert_eq!(compare("out", &e, &e, TOL), None);
        let a = t(&[-1e30, 1.0], &[2]);
        let m = compare("out", &a, &e, TOL).unwrap();
        assert!(
            m.severity.is_infinite() && m.message.contains("exactly"),
            "{}",
            m.message
        );
        let m = compare("out", &e, &t(&[-3.0, 1.0], &[2]), TOL).unwrap();
        assert!(m.message.contains("out[0] = -inf vs -3"), "{}", m.message);
    }

    #[test]
    fn integers_shapes_and_dtypes_are_exact() {
        let dev = Device::cpu();
        let e = RawTensor::from_vec(vec![0i64, 3, 2], 3, &dev).unwrap();
        let a = RawTensor::from_vec(vec![0i64, 3, 1], 3, &dev).unwrap();
        assert!(compare("indices", &a, &e, TOL)
            .unwrap()
            .message
            .contains("integers must be equal"));
        let f = t(&[0.0, 3.0, 2.0], &[3]);
        assert!(compare("indices", &f, &e, TOL)
            .unwrap()
            .message
            .contains("dtype f32 vs expected i64"));
        let m = compare("out", &t(&[1.0, 2.0], &[2, 1]), &t(&[1.0, 2.0], &[2]), TOL).unwrap();
        assert!(
            m.message.contains("shape [2, 1] vs expected [2]"),
            "{}",
            m.message
        );
    }
}
