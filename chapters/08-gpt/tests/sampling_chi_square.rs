//! The chi-square test itself: p-values against values from tables, and
//! pooling of rare outcomes.

use chapter_08::sampling::chi_square::{chi_square, chi_square_p_value};

#[test]
fn chi_square_p_values_match_the_tables() {
    // df = 2 has the closed form e^{-x/2}.
    for x in [0.1, 1.0, 5.0, 30.0] {
        let p = chi_square_p_value(x, 2);
        assert!((p - (-x / 2.0f64).exp()).abs() < 1e-12, "x = {x}: {p}");
    }
    // 95th and 99.9th percentiles from the standard tables.
    for (x, df, p) in [
        (3.841459, 1, 0.05),
        (18.307038, 10, 0.05),
        (82.528727, 63, 0.05),
        (10.827566, 1, 0.001),
        (29.588298, 10, 0.001),
    ] {
        let got = chi_square_p_value(x, df);
        assert!(
            (got - p).abs() < 1e-6 * p.max(0.01) * 10.0,
            "df {df}: {got} vs {p}"
        );
    }
}

#[test]
fn chi_square_statistic_pools_rare_bins_and_flags_impossible_draws() {
    // Expected counts 50, 30, 15, 3, 2: the last two (5 together) are pooled.
    let probs = [0.5, 0.3, 0.15, 0.03, 0.02];
    let fit = chi_square(&[55, 28, 12, 4, 1], &probs).unwrap();
    let expected = 25.0 / 50.0 + 4.0 / 30.0 + 9.0 / 15.0 + 0.0 / 5.0;
    assert!((fit.statistic - expected).abs() < 1e-12, "{fit:?}");
    assert_eq!(fit.degrees_of_freedom, 3);
    assert!(fit.p_value > 0.5 && fit.p_value < 1.0, "{fit:?}");
    // An outcome of probability zero was drawn: no fit at all.
    let fit = chi_square(&[10, 1], &[1.0, 0.0]).unwrap();
    assert_eq!(fit.p_value, 0.0);
    assert!(chi_square(&[1, 2], &[1.0]).is_err());
}
