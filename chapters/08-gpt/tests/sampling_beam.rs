//! Beam search: exact scores on toy models where the most likely sequence
//! is not the greedy one.

use chapter_02::{Error, Result};
use chapter_08::sampling::BeamHypothesis;
use chapter_08::{
    beam_search, generate, BeamSearchConfig, BigramModel, ContextPolicy, LanguageModel, Logits,
    Sampler, StopConditions,
};

const S: u32 = 0;
const A: u32 = 1;
const B: u32 = 2;
const X: u32 = 3;
const E: u32 = 5;

/// After S: A 0.6, B 0.4. After A: X 0.34, Y 0.33, E 0.33. After B: X 0.9,
/// E 0.1. Greedy takes A then X (0.204); the best pair is B X (0.36).
fn garden_path() -> BigramModel {
    let mut rows = vec![vec![0.0; 6]; 6];
    rows[S as usize][A as usize] = 0.6;
    rows[S as usize][B as usize] = 0.4;
    rows[A as usize] = vec![0.0, 0.0, 0.0, 0.34, 0.33, 0.33];
    rows[B as usize] = vec![0.0, 0.0, 0.0, 0.9, 0.0, 0.1];
    for row in &mut rows[3..] {
        *row = vec![1.0 / 6.0; 6];
    }
    BigramModel::from_probabilities(&rows, 32).unwrap()
}

fn ln(p: f64) -> f64 {
    p.ln()
}

fn assert_hypothesis(h: &BeamHypothesis, tokens: &[u32], sum: f64, score: f64, finished: bool) {
    assert_eq!(h.tokens, tokens, "{h:?}");
    assert!((h.sum_logprob - sum).abs() < 1e-6, "{h:?}: sum {sum}");
    assert!((h.score - score).abs() < 1e-6, "{h:?}: score {score}");
    assert_eq!(h.finished, finished, "{h:?}");
}

#[test]
fn beam_search_finds_a_better_sequence_than_greedy() {
    let mut model = garden_path();
    let greedy = generate(
        &mut model,
        &[S],
        &mut Sampler::greedy(),
        &StopConditions::max_new_tokens(2),
        None,
        ContextPolicy::Error,
        |_| {},
    )
    .unwrap();
    assert_eq!(greedy.tokens, vec![A, X]);

    let mut model = garden_path();
    let config = BeamSearchConfig {
        length_penalty: 0.0,
        num_return_sequences: 2,
        ..BeamSearchConfig::new(2, 2)
    };
    let out = beam_search(&mut model, &[S], &config).unwrap();
    assert_eq!(out.hypotheses.len(), 2);
    // Probabilities go through f32 logits: compare to 1e-6.
    let bx = ln(0.4) + ln(0.9);
    let ax = ln(0.6) + ln(0.34);
    assert_hypothesis(&out.hypotheses[0], &[B, X], bx, bx, false);
    assert_hypothesis(&out.hypotheses[1], &[A, X], ax, ax, false);
    // The prompt was fed once; each of the two beams then fed one token.
    assert_eq!(model.tokens_fed(), 1 + out.tokens_fed);
    assert_eq!(out.tokens_fed, 2);
}

#[test]
fn one_beam_is_greedy() {
    let table: Vec<f32> = (0..49).map(|i| ((i * 37 % 11) as f32) * 0.4).collect();
    let mut model = BigramModel::new(7, table.clone(), 64).unwrap();
    let greedy = generate(
        &mut model,
        &[2, 5],
        &mut Sampler::greedy(),
        &StopConditions::max_new_tokens(8),
        None,
        ContextPolicy::Error,
        |_| {},
    )
    .unwrap();
    let mut model = BigramModel::new(7, table, 64).unwrap();
    let out = beam_search(&mut model, &[2, 5], &BeamSearchConfig::new(1, 8)).unwrap();
    assert_eq!(out.hypotheses[0].tokens, greedy.tokens);
}

/// After S: E 0.5, A 0.5. After A: E 0.6, X 0.4. After X: E 1.
fn short_or_long() -> BigramModel {
    let mut rows = vec![vec![1.0 / 6.0; 6]; 6];
    rows[S as usize] = vec![0.0, 0.5, 0.0, 0.0, 0.0, 0.5];
    rows[A as usize] = vec![0.0, 0.0, 0.0, 0.4, 0.0, 0.6];
    rows[X as usize] = vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    BigramModel::from_probabilities(&rows, 32).unwrap()
}

fn finished_beams(alpha: f64, early_stopping: bool) -> Vec<BeamHypothesis> {
    let config = BeamSearchConfig {
        length_penalty: alpha,
        eos_tokens: vec![E],
        early_stopping,
        num_return_sequences: 2,
        ..BeamSearchConfig::new(2, 3)
    };
    beam_search(&mut short_or_long(), &[S], &config)
        .unwrap()
        .hypotheses
}

#[test]
fn length_penalty_decides_between_short_and_long_endings() {
    let (e, ae, axe) = (ln(0.5), ln(0.5) + ln(0.6), ln(0.5) + ln(0.4));
    // α = 0: raw log-probabilities; the one-token ending wins, and no
    // running beam can catch up after step 2, so the search stops there.
    let h = finished_beams(0.0, false);
    assert_hypothesis(&h[0], &[E], e, e, true);
    assert_hypothesis(&h[1], &[A, E], ae, ae, true);
    // α = 1: average log-probability per token; the three-token ending
    // (ln 0.2 / 3 = -0.536) beats A E (ln 0.3 / 2 = -0.602) and E (-0.693).
    let h = finished_beams(1.0, false);
    assert_hypothesis(&h[0], &[A, X, E], axe, axe / 3.0, true);
    assert_hypothesis(&h[1], &[A, E], ae, ae / 2.0, true);
    // α = 1 with early stopping: two hypotheses have finished after step 2,
    // so A X E is never reached.
    let h = finished_beams(1.0, true);
    assert_hypothesis(&h[0], &[A, E], ae, ae / 2.0, true);
    assert_hypothesis(&h[1], &[E], e, e, true);
}

/// A model whose logits depend on the whole sequence (not just the last
/// token), so a beam search that switched beams wrongly would get wrong
/// logits. It rebuilds every row from the tokens it holds.
struct WholeHistory {
    vocab: usize,
    tokens: Vec<u32>,
}

impl WholeHistory {
    fn row(prefix: &[u32], vocab: usize) -> Vec<f32> {
        let mut h: u64 = 1469598103934665603;
        for t in prefix {
            h = (h ^ (*t as u64 + 1)).wrapping_mul(1099511628211);
        }
        (0..vocab as u64)
            .map(|v| ((h.wrapping_mul(v * 2 + 1) >> 40) % 1000) as f32 / 250.0)
            .collect()
    }
}

impl LanguageModel for WholeHistory {
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn context_length(&self) -> usize {
        64
    }
    fn cached_len(&self) -> usize {
        self.tokens.len()
    }
    fn extend(&mut self, tokens: &[u32]) -> Result<Logits> {
        let mut data = Vec::new();
        for t in tokens {
            self.tokens.push(*t);
            data.extend(Self::row(&self.tokens, self.vocab));
        }
        Ok(Logits::new(self.vocab, data))
    }
    fn truncate(&mut self, len: usize) -> Result<()> {
        if len > self.tokens.len() {
            return Err(Error::Invalid {
                op: "WholeHistory::truncate",
                msg: format!("{len} > {}", self.tokens.len()),
            });
        }
        self.tokens.truncate(len);
        Ok(())
    }
}

fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f32::MIN, |a, b| a.max(*b)) as f64;
    let sum: f64 = row.iter().map(|x| (*x as f64 - max).exp()).sum();
    row.iter().map(|x| *x as f64 - max - sum.ln()).collect()
}

#[test]
fn enough_beams_make_beam_search_exhaustive_on_a_whole_history_model() {
    let (vocab, len, prompt) = (3usize, 3usize, [2u32, 0]);
    // Score every continuation of length 3 by brute force.
    let mut best: Option<(f64, Vec<u32>)> = None;
    for code in 0..vocab.pow(len as u32) {
        let seq: Vec<u32> = (0..len)
            .map(|i| ((code / vocab.pow(i as u32)) % vocab) as u32)
            .collect();
        let mut prefix = prompt.to_vec();
        let mut sum = 0.0;
        for t in &seq {
            sum += log_softmax(&WholeHistory::row(&prefix, vocab))[*t as usize];
            prefix.push(*t);
        }
        if best.as_ref().is_none_or(|(s, _)| sum > *s) {
            best = Some((sum, seq));
        }
    }
    let (sum, seq) = best.unwrap();
    let mut model = WholeHistory {
        vocab,
        tokens: Vec::new(),
    };
    let config = BeamSearchConfig {
        length_penalty: 0.0,
        ..BeamSearchConfig::new(9, len)
    };
    let out = beam_search(&mut model, &prompt, &config).unwrap();
    assert_hypothesis(&out.hypotheses[0], &seq, sum, sum, false);
}

#[test]
fn beam_search_options_are_validated() {
    let mut model = garden_path();
    for (config, word) in [
        (BeamSearchConfig::new(0, 3), "num_beams"),
        (BeamSearchConfig::new(2, 0), "max_new_tokens"),
        (
            BeamSearchConfig {
                length_penalty: f64::NAN,
                ..BeamSearchConfig::new(2, 2)
            },
            "length_penalty",
        ),
        (
            BeamSearchConfig {
                num_return_sequences: 3,
                ..BeamSearchConfig::new(2, 2)
            },
            "num_return_sequences",
        ),
        (BeamSearchConfig::new(2, 40), "context length"),
    ] {
        let err = beam_search(&mut model, &[S], &config)
            .unwrap_err()
            .to_string();
        assert!(err.contains(word), "{err}");
    }
}
