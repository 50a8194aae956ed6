//! Pearson's chi-square goodness-of-fit test: do draws follow a given
//! distribution?
//!
//! Draw `N` samples, count how often each outcome `i` appears (`O_i`), and
//! compare with the expected counts `E_i = N·p_i`:
//!
//! ```text
//! X² = Σ_i (O_i − E_i)² / E_i
//! ```
//!
//! If the draws really follow `p`, `X²` is (for large `N`) chi-square
//! distributed with `bins − 1` degrees of freedom, so it is about `bins − 1`
//! and rarely much more. The *p-value* is the chance of a value at least as
//! large as the one seen; a tiny p-value (below `α = 0.001`, say) says the
//! sampler does not follow `p`. With a fixed seed the verdict is the same
//! every run. The approximation needs `E_i ≥ 5`, so rare outcomes are pooled
//! into one bin first.

use chapter_02::{Error, Result};

/// The result of a goodness-of-fit test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChiSquare {
    /// `X² = Σ (O − E)² / E` over the pooled bins.
    pub statistic: f64,
    /// Pooled bins minus one.
    pub degrees_of_freedom: usize,
    /// `P(χ²_df ≥ X²)`: small means "these draws do not follow `p`".
    pub p_value: f64,
}

// ANCHOR: chi_square
/// Tests `observed` counts against the distribution `probs` (same length,
/// summing to 1). Bins whose expected count is below 5 are pooled, smallest
/// first, until each pool expects at least 5. A draw of an outcome of
/// probability zero gives `X² = ∞` and a p-value of 0.
pub fn chi_square(observed: &[u64], probs: &[f64]) -> Result<ChiSquare> {
    if observed.len() != probs.len() || probs.is_empty() {
        return Err(Error::Invalid {
            op: "chi_square",
            msg: format!(
                "{} counts for {} probabilities",
                observed.len(),
                probs.len()
            ),
        });
    }
    let n: u64 = observed.iter().sum();
    let impossible = observed.iter().zip(probs).any(|(o, p)| *o > 0 && *p <= 0.0);
    if impossible {
        return Ok(ChiSquare {
            statistic: f64::INFINITY,
            degrees_of_freedom: probs.iter().filter(|p| **p > 0.0).count().max(2) - 1,
            p_value: 0.0,
        });
    }
    // (expected, observed) per bin, rare bins pooled.
    let mut bins: Vec<(f64, f64)> = probs
        .iter()
        .zip(observed)
        .filter(|(p, _)| **p > 0.0)
        .map(|(p, o)| (p * n as f64, *o as f64))
        .collect();
    bins.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut pooled: Vec<(f64, f64)> = Vec::new();
    let mut acc = (0.0, 0.0);
    for (e, o) in bins {
        acc = (acc.0 + e, acc.1 + o);
        if acc.0 >= 5.0 {
            pooled.push(acc);
            acc = (0.0, 0.0);
        }
    }
    if acc.0 > 0.0 {
        match pooled.last_mut() {
            Some(last) => *last = (last.0 + acc.0, last.1 + acc.1),
            None => pooled.push(acc),
        }
    }
    let statistic: f64 = pooled.iter().map(|(e, o)| (o - e) * (o - e) / e).sum();
    let df = pooled.len().saturating_sub(1);
    let p_value = if df == 0 {
        1.0
    } else {
        upper_regularized_gamma(df as f64 / 2.0, statistic / 2.0)
    };
    Ok(ChiSquare {
        statistic,
        degrees_of_freedom: df,
        p_value,
    })
}
// ANCHOR_END: chi_square

/// `P(χ²_df ≥ x)` for `df ≥ 1` degrees of freedom.
pub fn chi_square_p_value(x: f64, df: usize) -> f64 {
    upper_regularized_gamma(df as f64 / 2.0, x / 2.0)
}

/// `ln Γ(a)` for `a` a positive multiple of `1/2` (all chi-square needs),
/// exactly from `Γ(1) = 1`, `Γ(1/2) = √π` and `Γ(a + 1) = a·Γ(a)`.
fn ln_gamma_half_integer(a: f64) -> f64 {
    let (mut x, mut acc) = if a.fract() == 0.0 {
        (1.0, 0.0)
    } else {
        (0.5, 0.5 * std::f64::consts::PI.ln())
    };
    while x < a {
        acc += x.ln();
        x += 1.0;
    }
    acc
}

/// `Q(a, x) = Γ(a, x) / Γ(a)`, the upper regularised incomplete gamma
/// function, for `a` a positive multiple of `1/2`. Below `x = a + 1` the
/// power series of the lower function converges fast and `Q = 1 − P`;
/// above it, the continued fraction of `Q` does (evaluated by Lentz's
/// method).
fn upper_regularized_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    // e^{-x} x^a / Γ(a), the factor both expansions share.
    let prefactor = (-x + a * x.ln() - ln_gamma_half_integer(a)).exp();
    if x < a + 1.0 {
        // P(a, x) = e^{-x} x^a / Γ(a+1) · Σ_n x^n / ((a+1)…(a+n))
        let (mut term, mut sum, mut denom) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            denom += 1.0;
            term *= x / denom;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - prefactor * sum).max(0.0)
    } else {
        // Q(a, x) = prefactor · 1/(x+1−a − 1(1−a)/(x+3−a − 2(2−a)/(x+5−a − …)))
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (prefactor * h).clamp(0.0, 1.0)
    }
}
