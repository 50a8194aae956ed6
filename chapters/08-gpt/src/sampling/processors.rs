//! Logits transforms: each takes a row of logits (`[vocab]`, `f64`) and
//! rewrites it in place. A token a filter removes gets the logit `-∞`, so
//! its probability after softmax is exactly zero and later transforms and
//! the softmax need no special case for it.
//!
//! The filters are thresholds on a value (a logit or a probability), never
//! on a position in a sorted list, so they never split tokens whose logits
//! are equal: the result does not depend on how a sort breaks ties.

use crate::sampling::SamplingConfig;
use chapter_02::{Error, Result};

/// Copies a model's logits to `f64`, checking them: an empty row, a NaN or
/// `+∞`, or a row where every logit is `-∞` (nothing can be sampled) is an
/// error naming `op`. `-∞` itself is allowed: it is how a model (or a
/// grammar) forbids a token.
pub fn checked_logits(op: &'static str, logits: &[f32]) -> Result<Vec<f64>> {
    if logits.is_empty() {
        return Err(Error::Invalid {
            op,
            msg: "the row of logits is empty".into(),
        });
    }
    if let Some(i) = logits
        .iter()
        .position(|x| x.is_nan() || *x == f32::INFINITY)
    {
        return Err(Error::Invalid {
            op,
            msg: format!(
                "logit of token {i} is {} (expected a number or -inf)",
                logits[i]
            ),
        });
    }
    if logits.iter().all(|x| *x == f32::NEG_INFINITY) {
        return Err(Error::Invalid {
            op,
            msg: format!(
                "all {} logits are -inf: no token can be sampled",
                logits.len()
            ),
        });
    }
    Ok(logits.iter().map(|&x| x as f64).collect())
}

// ANCHOR: repetition_penalty
/// CTRL's repetition penalty: for every distinct token of `history`, a
/// positive logit is divided by `penalty` and a negative one multiplied by
/// it. Both move the logit down when `penalty > 1` (dividing a negative
/// logit would move it *up*, the reason for the two cases). A token is
/// penalised once, however often it appeared. Tokens outside the row are
/// an error.
pub fn apply_repetition_penalty(logits: &mut [f64], history: &[u32], penalty: f64) -> Result<()> {
    if penalty == 1.0 {
        return Ok(());
    }
    let mut seen = vec![false; logits.len()];
    for &t in history {
        let Some(done) = seen.get_mut(t as usize) else {
            return Err(Error::Invalid {
                op: "repetition_penalty",
                msg: format!(
                    "history token {t} is outside a vocabulary of {}",
                    logits.len()
                ),
            });
        };
        if !*done {
            *done = true;
            let l = &mut logits[t as usize];
            *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
        }
    }
    Ok(())
}
// ANCHOR_END: repetition_penalty

// ANCHOR: temperature
/// `l_i ← l_i / T` for `T > 0`: softmax of the result is `p_i^(1/T)`
/// renormalised. `T → 0` concentrates all mass on the arg-max, `T → ∞`
/// tends to uniform over the tokens that are not `-∞`.
pub fn apply_temperature(logits: &mut [f64], temperature: f64) {
    for l in logits.iter_mut() {
        *l /= temperature;
    }
}
// ANCHOR_END: temperature

// ANCHOR: top_k
/// Keeps the `k` highest logits: every logit below the `k`-th largest
/// becomes `-∞`. Logits equal to the `k`-th are kept too, so ties can keep
/// more than `k` tokens (as in Hugging Face); `k ≥ vocab` keeps everything.
pub fn apply_top_k(logits: &mut [f64], k: usize) {
    if k == 0 || k >= logits.len() {
        return;
    }
    let mut sorted = logits.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    for l in logits.iter_mut() {
        if *l < kth {
            *l = f64::NEG_INFINITY;
        }
    }
}
// ANCHOR_END: top_k

// ANCHOR: top_p
/// Nucleus sampling (Holtzman et al. 2020): sort the tokens by probability,
/// most likely first, and keep the shortest prefix whose probabilities add
/// up to at least `p` (always at least one token). Tokens as likely as the
/// last one kept are kept too. The threshold adapts to the shape of the
/// distribution: a confident model keeps few tokens, an unsure one many.
pub fn apply_top_p(logits: &mut [f64], p: f64) {
    if p >= 1.0 {
        return;
    }
    let probs = softmax(logits);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let mut cumulative = 0.0;
    let mut threshold = probs[order[0]];
    for &i in &order {
        cumulative += probs[i];
        threshold = probs[i];
        // The tolerance absorbs rounding in the sum: probabilities that add
        // up to exactly `p` on paper must stop here.
        if cumulative >= p - 1e-12 {
            break;
        }
    }
    for (l, q) in logits.iter_mut().zip(&probs) {
        if *q < threshold {
            *l = f64::NEG_INFINITY;
        }
    }
}
// ANCHOR_END: top_p

// ANCHOR: min_p
/// Min-p sampling (Nguyen et al. 2024): drop the tokens whose probability is
/// below `min_p · p_max`. In logits, `p_i < min_p · p_max` is
/// `l_i < l_max + ln(min_p)`, so no softmax is needed. Like top-p the cut
/// adapts to the model's confidence; unlike it, it ignores the tail's mass.
pub fn apply_min_p(logits: &mut [f64], min_p: f64) {
    if min_p <= 0.0 {
        return;
    }
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let cut = max + min_p.ln();
    for l in logits.iter_mut() {
        if *l < cut {
            *l = f64::NEG_INFINITY;
        }
    }
}
// ANCHOR_END: min_p

// ANCHOR: softmax
/// `p_i = exp(l_i - max) / Σ_j exp(l_j - max)`: subtracting the largest
/// logit keeps every `exp` in `(0, 1]` (no overflow) and sends `-∞` to an
/// exact zero. At least one logit must be above `-∞`.
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::INFINITY {
        // A tiny temperature can overflow a logit to +∞: the limit of the
        // softmax is uniform over the tokens that reached it.
        let n = logits.iter().filter(|l| **l == max).count() as f64;
        return logits
            .iter()
            .map(|l| if *l == max { 1.0 / n } else { 0.0 })
            .collect();
    }
    let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// `log p_i = l_i - max - ln Σ_j exp(l_j - max)`, what beam search adds up.
pub fn log_softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
    logits.iter().map(|l| l - max - log_sum).collect()
}
// ANCHOR_END: softmax

/// The index of the largest value; the lowest index among equals, so greedy
/// decoding is deterministic on ties.
pub fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

// ANCHOR: pipeline
impl SamplingConfig {
    /// The distribution a token is drawn from: the transforms in the
    /// documented order, then softmax. `history` is every token of the
    /// sequence so far (prompt included), for the repetition penalty. With
    /// `temperature = 0` the result is one-hot on the arg-max of the
    /// penalised logits (the filters cannot change the arg-max).
    pub fn probabilities(&self, logits: &[f32], history: &[u32]) -> Result<Vec<f64>> {
        self.validate()?;
        let mut l = checked_logits("SamplingConfig::probabilities", logits)?;
        apply_repetition_penalty(&mut l, history, self.repetition_penalty)?;
        if self.is_greedy() {
            let mut one_hot = vec![0.0; l.len()];
            one_hot[argmax(&l)] = 1.0;
            return Ok(one_hot);
        }
        apply_temperature(&mut l, self.temperature);
        if let Some(k) = self.top_k {
            apply_top_k(&mut l, k);
        }
        if let Some(p) = self.top_p {
            apply_top_p(&mut l, p);
        }
        if let Some(p) = self.min_p {
            apply_min_p(&mut l, p);
        }
        Ok(softmax(&l))
    }
}
// ANCHOR_END: pipeline
