//! The logits transforms, their order, and seeded sampling: exact values on
//! hand-made rows, and a chi-square test that the draws follow the
//! transformed softmax.

use chapter_08::sampling::chi_square::chi_square;
use chapter_08::sampling::processors::{
    apply_min_p, apply_repetition_penalty, apply_temperature, apply_top_k, apply_top_p, softmax,
};
use chapter_08::{Sampler, SamplingConfig};

const NEG_INF: f64 = f64::NEG_INFINITY;

fn logits_of(probs: &[f64]) -> Vec<f32> {
    probs.iter().map(|p| p.ln() as f32).collect()
}

fn assert_close(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol,
            "entry {i}: {a} vs {e} ({actual:?} vs {expected:?})"
        );
    }
}

fn normalised(v: &[f64]) -> Vec<f64> {
    let s: f64 = v.iter().sum();
    v.iter().map(|x| x / s).collect()
}

// ---- validation -----------------------------------------------------------

#[test]
fn sampling_config_rejects_each_bad_option_by_name_value_and_range() {
    let base = SamplingConfig::default();
    let cases = [
        (
            SamplingConfig {
                temperature: f64::NAN,
                ..base.clone()
            },
            ["temperature", "NaN", "[0, ∞)"],
        ),
        (
            SamplingConfig {
                temperature: -0.5,
                ..base.clone()
            },
            ["temperature", "-0.5", "[0, ∞)"],
        ),
        (
            SamplingConfig {
                top_k: Some(0),
                ..base.clone()
            },
            ["top_k", "0", "[1, ∞)"],
        ),
        (
            SamplingConfig {
                top_p: Some(0.0),
                ..base.clone()
            },
            ["top_p", "0", "(0, 1]"],
        ),
        (
            SamplingConfig {
                top_p: Some(1.5),
                ..base.clone()
            },
            ["top_p", "1.5", "(0, 1]"],
        ),
        (
            SamplingConfig {
                min_p: Some(-0.1),
                ..base.clone()
            },
            ["min_p", "-0.1", "[0, 1]"],
        ),
        (
            SamplingConfig {
                min_p: Some(f64::NAN),
                ..base.clone()
            },
            ["min_p", "NaN", "[0, 1]"],
        ),
        (
            SamplingConfig {
                repetition_penalty: 0.0,
                ..base.clone()
            },
            ["repetition_penalty", "0", "(0, ∞)"],
        ),
        (
            SamplingConfig {
                repetition_penalty: f64::INFINITY,
                ..base.clone()
            },
            ["repetition_penalty", "inf", "(0, ∞)"],
        ),
    ];
    for (config, words) in cases {
        let msg = Sampler::new(config.clone(), 0).unwrap_err().to_string();
        for w in words {
            assert!(msg.contains(w), "{config:?}: {msg:?} should mention {w:?}");
        }
    }
    assert!(SamplingConfig::default().validate().is_ok());
    assert!(SamplingConfig::greedy().validate().is_ok());
}

#[test]
fn bad_logits_are_errors_not_panics() {
    let c = SamplingConfig::default();
    assert!(c.probabilities(&[], &[]).is_err());
    let nan = c
        .probabilities(&[0.0, f32::NAN], &[])
        .unwrap_err()
        .to_string();
    assert!(nan.contains("token 1") && nan.contains("NaN"), "{nan}");
    assert!(c.probabilities(&[f32::INFINITY, 0.0], &[]).is_err());
    let masked = c.probabilities(&[f32::NEG_INFINITY; 3], &[]).unwrap_err();
    assert!(masked.to_string().contains("-inf"), "{masked}");
    // A history token outside the vocabulary, with a penalty that reads it.
    let c = SamplingConfig {
        repetition_penalty: 1.3,
        ..c
    };
    assert!(c.probabilities(&[0.0, 1.0], &[7]).is_err());
}

// ---- each transform --------------------------------------------------------

#[test]
fn repetition_penalty_divides_positive_and_multiplies_negative_logits_once() {
    let mut l = vec![2.0, -1.0, 0.5, 3.0];
    // Token 0 appears twice but is penalised once; token 3 never appears.
    apply_repetition_penalty(&mut l, &[0, 1, 0, 2], 2.0).unwrap();
    assert_eq!(l, vec![1.0, -2.0, 0.25, 3.0]);
    // Both directions lower a repeated token's probability for θ > 1.
    let before = softmax(&[2.0, -1.0, 0.5, 3.0]);
    let after = softmax(&l);
    for t in 0..3 {
        assert!(
            after[t] < before[t],
            "token {t}: {} !< {}",
            after[t],
            before[t]
        );
    }
}

#[test]
fn temperature_raises_probabilities_to_the_power_one_over_t() {
    let p = [0.5, 0.3, 0.2];
    for t in [0.5, 2.0] {
        let mut l: Vec<f64> = p.iter().map(|x: &f64| x.ln()).collect();
        apply_temperature(&mut l, t);
        let expected = normalised(&p.map(|x: f64| x.powf(1.0 / t)));
        assert_close(&softmax(&l), &expected, 1e-12);
    }
}

#[test]
fn top_k_keeps_the_k_highest_and_ties_at_the_boundary() {
    let mut l = vec![1.0, 4.0, 3.0, 2.0];
    apply_top_k(&mut l, 2);
    assert_eq!(l, vec![NEG_INF, 4.0, 3.0, NEG_INF]);
    // k larger than the vocabulary keeps everything.
    let mut l = vec![1.0, 4.0, 3.0];
    apply_top_k(&mut l, 10);
    assert_eq!(l, vec![1.0, 4.0, 3.0]);
    // A tie with the k-th logit is kept rather than split by index.
    let mut l = vec![2.0, 5.0, 2.0, 1.0];
    apply_top_k(&mut l, 2);
    assert_eq!(l, vec![2.0, 5.0, 2.0, NEG_INF]);
}

#[test]
fn top_p_keeps_the_smallest_nucleus_reaching_p() {
    let probs = [0.1, 0.5, 0.25, 0.15];
    let run = |p: f64| {
        let mut l: Vec<f64> = probs.iter().map(|x: &f64| x.ln()).collect();
        apply_top_p(&mut l, p);
        softmax(&l)
    };
    // 0.5 alone reaches 0.5; 0.5 + 0.25 reaches 0.6 and 0.75; adding 0.15
    // reaches 0.8.
    assert_close(&run(0.5), &[0.0, 1.0, 0.0, 0.0], 1e-12);
    assert_close(&run(0.6), &[0.0, 0.5 / 0.75, 0.25 / 0.75, 0.0], 1e-12);
    assert_close(&run(0.75), &[0.0, 0.5 / 0.75, 0.25 / 0.75, 0.0], 1e-12);
    assert_close(&run(0.8), &normalised(&[0.0, 0.5, 0.25, 0.15]), 1e-12);
    assert_close(&run(1.0), &probs, 1e-12);
    // A tiny p keeps the most likely token; ties with it are kept.
    assert_close(&run(1e-9), &[0.0, 1.0, 0.0, 0.0], 1e-12);
    let mut tie = vec![0.0, 0.0, -1.0];
    apply_top_p(&mut tie, 0.1);
    assert_eq!(tie, vec![0.0, 0.0, NEG_INF]);
}

#[test]
fn min_p_drops_tokens_less_likely_than_a_fraction_of_the_top_one() {
    let probs = [0.5, 0.3, 0.12, 0.08];
    let mut l: Vec<f64> = probs.iter().map(|x: &f64| x.ln()).collect();
    apply_min_p(&mut l, 0.2); // threshold 0.2 · 0.5 = 0.1
    assert_close(&softmax(&l), &normalised(&[0.5, 0.3, 0.12, 0.0]), 1e-12);
    let mut l: Vec<f64> = probs.iter().map(|x: &f64| x.ln()).collect();
    apply_min_p(&mut l, 1.0); // only the top token
    assert_close(&softmax(&l), &[1.0, 0.0, 0.0, 0.0], 1e-12);
}

#[test]
fn softmax_handles_minus_infinity_and_equal_logits() {
    assert_close(
        &softmax(&[NEG_INF, 0.0, NEG_INF, 0.0]),
        &[0.0, 0.5, 0.0, 0.5],
        0.0,
    );
    assert_close(&softmax(&[1e4, 1e4, 1e4]), &[1.0 / 3.0; 3], 1e-15);
}

// ---- order and the pipeline --------------------------------------------------

#[test]
fn transforms_run_in_the_documented_order() {
    // Start from p = [0.4, 0.25, 0.15, 0.1, 0.06, 0.04].
    let p = [0.4, 0.25, 0.15, 0.1, 0.06, 0.04];
    let config = SamplingConfig {
        temperature: 1.0,
        top_k: Some(4),
        top_p: Some(0.8),
        min_p: Some(0.4),
        repetition_penalty: 1.0,
    };
    // top-k 4 → [.4 .25 .15 .1]/.9; top-p .8 on those: .444, .722, .889 ≥ .8
    // → [.4 .25 .15]/.8; min-p .4: threshold .4·.5 = .2 drops .1875.
    let expected = normalised(&[0.4, 0.25, 0.0, 0.0, 0.0, 0.0]);
    let got = config.probabilities(&logits_of(&p), &[]).unwrap();
    assert_close(&got, &expected, 1e-6);

    // Temperature before top-p: T = 2 flattens the row, so the nucleus
    // needs more tokens than it would at T = 1.
    let config = SamplingConfig {
        temperature: 2.0,
        top_p: Some(0.7),
        ..SamplingConfig::default()
    };
    let flat = normalised(&p.map(|x: f64| x.sqrt()));
    let mut cumulative = 0.0;
    let kept = flat
        .iter()
        .take_while(|x| {
            let before = cumulative;
            cumulative += **x;
            before < 0.7
        })
        .count();
    assert_eq!(kept, 4, "at T = 2 the 0.7-nucleus holds four tokens");
    let mut expected: Vec<f64> = flat.clone();
    expected[kept..].iter_mut().for_each(|x| *x = 0.0);
    let got = config.probabilities(&logits_of(&p), &[]).unwrap();
    assert_close(&got, &normalised(&expected), 1e-6);

    // Repetition penalty before temperature: greedy sees the penalty.
    let greedy = SamplingConfig {
        repetition_penalty: 3.0,
        ..SamplingConfig::greedy()
    };
    let logits = [2.0f32, 1.0, 0.5];
    assert_eq!(
        greedy.probabilities(&logits, &[]).unwrap(),
        vec![1.0, 0.0, 0.0]
    );
    assert_eq!(
        greedy.probabilities(&logits, &[0]).unwrap(),
        vec![0.0, 1.0, 0.0]
    );
}

#[test]
fn temperature_zero_is_greedy_with_the_lowest_id_winning_ties() {
    let mut s = Sampler::new(SamplingConfig::greedy(), 1).unwrap();
    assert_eq!(s.sample(&[0.0, 3.0, 1.0, 3.0], &[]).unwrap(), 1);
    assert_eq!(s.sample(&[f32::NEG_INFINITY, -2.0, -2.0], &[]).unwrap(), 1);
    assert_eq!(s.sample(&[5.0; 4], &[]).unwrap(), 0);
    // Greedy draws no random number: the stream has not moved.
    assert_eq!(s.generator().offset(), 0);
}

#[test]
fn masked_tokens_are_never_sampled() {
    let mut s = Sampler::new(SamplingConfig::default(), 3).unwrap();
    let logits = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, -30.0];
    for _ in 0..2000 {
        let t = s.sample(&logits, &[]).unwrap();
        assert!(t == 1 || t == 3, "sampled masked token {t}");
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_seeds_differ() {
    let logits: Vec<f32> = (0..50).map(|i| ((i * 7 % 13) as f32) * 0.3).collect();
    let draw = |seed| {
        let mut s = Sampler::new(SamplingConfig::default(), seed).unwrap();
        (0..64)
            .map(|_| s.sample(&logits, &[]).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(42), draw(42));
    assert_ne!(draw(42), draw(43));
}

// ---- the distribution ----------------------------------------------------------

/// Draws `n` tokens from one row and tests the counts against `expected`.
fn chi_square_of_draws(config: SamplingConfig, logits: &[f32], expected: &[f64]) -> f64 {
    let mut s = Sampler::new(config, 2024).unwrap();
    let mut counts = vec![0u64; logits.len()];
    for _ in 0..20_000 {
        counts[s.sample(logits, &[]).unwrap() as usize] += 1;
    }
    chi_square(&counts, expected).unwrap().p_value
}

#[test]
fn sampled_tokens_follow_the_transformed_softmax() {
    let p = [0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05];
    let logits = logits_of(&p);
    let base = SamplingConfig::default();
    // Each expected distribution is computed here from the formulas, not by
    // the library.
    let t = 0.6;
    let cases: Vec<(SamplingConfig, Vec<f64>)> = vec![
        (base.clone(), p.to_vec()),
        (
            SamplingConfig {
                temperature: t,
                ..base.clone()
            },
            normalised(&p.map(|x| x.powf(1.0 / t))),
        ),
        (
            SamplingConfig {
                top_k: Some(3),
                ..base.clone()
            },
            normalised(&[0.3, 0.2, 0.15, 0.0, 0.0, 0.0, 0.0]),
        ),
        (
            SamplingConfig {
                top_p: Some(0.7),
                ..base.clone()
            },
            normalised(&[0.3, 0.2, 0.15, 0.12, 0.0, 0.0, 0.0]),
        ),
        (
            SamplingConfig {
                min_p: Some(0.3),
                ..base.clone()
            },
            normalised(&[0.3, 0.2, 0.15, 0.12, 0.1, 0.0, 0.0]),
        ),
    ];
    for (config, expected) in cases {
        let pv = chi_square_of_draws(config.clone(), &logits, &expected);
        assert!(pv > 1e-3, "{config:?}: p-value {pv}");
    }
}

#[test]
fn the_chi_square_test_rejects_a_sampler_that_ignores_the_transform() {
    // Draws with T = 1 tested against the T = 0.6 distribution: the test
    // must notice, or the previous test proves nothing.
    let p = [0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05];
    let sharpened = normalised(&p.map(|x: f64| x.powf(1.0 / 0.6)));
    let pv = chi_square_of_draws(SamplingConfig::default(), &logits_of(&p), &sharpened);
    assert!(pv < 1e-6, "p-value {pv}");
}
