//! Parsers for the numeric options of the commands.
//!
//! A number given on the command line is checked where it is parsed, by a
//! clap value parser, so that every option reports a bad value the same
//! way: clap names the option and the value, and our message says why the
//! value is refused and which range is allowed:
//!
//! ```text
//! error: invalid value 'nan' for '--lr <LR>': NaN is not allowed: the value must be a finite number in (0, 10]
//! ```
//!
//! Ranges have an upper bound too. A learning rate of 1e300 is a number,
//! but no run can use it; a hidden width of a billion would try to allocate
//! gigabytes and abort the process instead of printing an error.

use std::fmt::Display;
use std::str::FromStr;

/// One end of a range of floats: the value and whether it is allowed.
#[derive(Debug, Clone, Copy)]
struct End(f64, bool);

/// Parses a finite float in the range `lo..hi` (each end open or closed).
fn float_in(s: &str, lo: End, hi: End) -> Result<f64, String> {
    let range = format!(
        "{}{}, {}{}",
        if lo.1 { "[" } else { "(" },
        show(lo.0),
        show(hi.0),
        if hi.1 { "]" } else { ")" }
    );
    let allowed = format!("the value must be a finite number in {range}");
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number: {allowed}"))?;
    if v.is_nan() {
        return Err(format!("NaN is not allowed: {allowed}"));
    }
    if v.is_infinite() {
        return Err(format!("an infinite value is not allowed: {allowed}"));
    }
    let above_lo = if lo.1 { v >= lo.0 } else { v > lo.0 };
    let below_hi = if hi.1 { v <= hi.0 } else { v < hi.0 };
    if !(above_lo && below_hi) {
        return Err(format!("{v} is out of range: {allowed}"));
    }
    Ok(v)
}

/// `f64::MAX` shown as "∞" in a range (it means "any finite value").
fn show(v: f64) -> String {
    if v == f64::MAX {
        "∞".into()
    } else {
        v.to_string()
    }
}

/// Parses a whole number in `lo..=hi`.
fn int_in<T>(s: &str, lo: T, hi: T) -> Result<T, String>
where
    T: FromStr + PartialOrd + Display + Copy,
{
    let allowed = format!("the value must be a whole number from {lo} to {hi}");
    let Ok(v) = s.trim().parse::<T>() else {
        // Tell a negative or too large number apart from garbage.
        return Err(match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x.fract() == 0.0 => {
                format!("{s} is out of range: {allowed}")
            }
            _ => format!("`{s}` is not a whole number: {allowed}"),
        });
    };
    if v < lo || v > hi {
        return Err(format!("{v} is out of range: {allowed}"));
    }
    Ok(v)
}

// ANCHOR: parsers
/// A learning rate: `(0, 10]`.
pub fn learning_rate(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, false), End(10.0, true))
}

/// A weight decay (or another penalty's weight): `[0, 10]`.
pub fn weight_decay(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, true), End(10.0, true))
}

/// A dropout probability: `[0, 1)` (at 1 every unit would be dropped).
pub fn dropout(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, true), End(1.0, false))
}

/// A gradient-norm bound: any finite number `> 0` (a negative bound would
/// flip the gradients' sign; zero would erase them).
pub fn clip_norm(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, false), End(f64::MAX, true))
}

/// An accuracy to reach: `(0, 1]`.
pub fn accuracy(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, false), End(1.0, true))
}

/// The standard deviation of the toy data's noise: `[0, 10]` (the data
/// lies within about ±2; more noise than 10 drowns it).
pub fn noise(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, true), End(10.0, true))
}

/// A learning rate that may be zero (the end of a decay): `[0, 10]`.
pub fn final_learning_rate(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, true), End(10.0, true))
}

/// A number of epochs: 1 to 100 000.
pub fn epochs(s: &str) -> Result<usize, String> {
    int_in(s, 1, 100_000)
}

/// A batch size: 1 to 65 536.
pub fn batch_size(s: &str) -> Result<usize, String> {
    int_in(s, 1, 65_536)
}

/// The width of one hidden layer of `candle train`'s MLP: 1 to 65 536.
/// (The whole model is bounded too; see `train::MAX_PARAMETERS`.)
pub fn layer_width(s: &str) -> Result<usize, String> {
    int_in(s, 1, 65_536)
}

/// The width of one hidden layer of the scalar MLP: 1 to 1 024 (every
/// parameter is a graph node of its own).
pub fn scalar_layer_width(s: &str) -> Result<usize, String> {
    int_in(s, 1, 1_024)
}

/// The number of toy points: 2 to 10 000.
pub fn points(s: &str) -> Result<usize, String> {
    int_in(s, 2, 10_000)
}

/// A number of gradient steps: 1 to 1 000 000.
pub fn steps(s: &str) -> Result<usize, String> {
    int_in(s, 1, 1_000_000)
}

/// How often to print: every 1 to 1 000 000 steps.
pub fn print_every(s: &str) -> Result<usize, String> {
    int_in(s, 1, 1_000_000)
}

/// The number of seeds of a sweep: 0 (no sweep) to 10 000.
pub fn sweep_seeds(s: &str) -> Result<u64, String> {
    int_in(s, 0, 10_000)
}
/// A number of training steps of the GPT: 1 to 10 000 000.
pub fn iterations(s: &str) -> Result<usize, String> {
    int_in(s, 1, 10_000_000)
}

/// A number of warm-up steps: 0 to 10 000 000.
pub fn warmup_iterations(s: &str) -> Result<usize, String> {
    int_in(s, 0, 10_000_000)
}

/// A number of data-parallel replicas: 1 to 256.
pub fn replicas(s: &str) -> Result<usize, String> {
    int_in(s, 1, chapter_06::data_parallel::MAX_REPLICAS)
}

/// A number of transformer blocks: 1 to 128.
pub fn layers(s: &str) -> Result<usize, String> {
    int_in(s, 1, 128)
}

/// A number of attention heads: 1 to 256.
pub fn heads(s: &str) -> Result<usize, String> {
    int_in(s, 1, 256)
}

/// A GPT's width or context length: 1 to 16 384.
pub fn model_size(s: &str) -> Result<usize, String> {
    int_in(s, 1, 16_384)
}

/// A number of tokens to generate: 0 to 1 000 000.
pub fn token_count(s: &str) -> Result<usize, String> {
    int_in(s, 0, 1_000_000)
}

/// An Adam β: `[0, 1)`.
pub fn beta(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, true), End(1.0, false))
}

/// A sampling temperature: `[0, 100]` (0 is greedy).
pub fn temperature(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, true), End(100.0, true))
}
// ANCHOR_END: parsers

/// A number of tokens to generate that must do something: 1 to 1 000 000.
pub fn new_tokens(s: &str) -> Result<usize, String> {
    int_in(s, 1, 1_000_000)
}

/// Top-k sampling's `k`: 1 to 1 000 000 (a `k` above the vocabulary keeps
/// every token).
pub fn top_k(s: &str) -> Result<usize, String> {
    int_in(s, 1, 1_000_000)
}

/// Nucleus sampling's `p`: `(0, 1]` (at 0 no token would be kept).
pub fn top_p(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, false), End(1.0, true))
}

/// Min-p sampling's `p`: `[0, 1]`.
pub fn min_p(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, true), End(1.0, true))
}

/// A repetition penalty `θ`: `(0, 100]` (1 is off).
pub fn repetition_penalty(s: &str) -> Result<f64, String> {
    float_in(s, End(0.0, false), End(100.0, true))
}

/// A number of beams: 1 to 64 (each beam is a sequence fed to the model).
pub fn beams(s: &str) -> Result<usize, String> {
    int_in(s, 1, 64)
}

/// Beam search's length penalty `α`: `[-10, 10]`.
pub fn length_penalty(s: &str) -> Result<f64, String> {
    float_in(s, End(-10.0, true), End(10.0, true))
}

/// Tokens a draft model proposes per round: 1 to 64.
pub fn draft_tokens(s: &str) -> Result<usize, String> {
    int_in(s, 1, 64)
}

/// A random shift of training images, in pixels each way: 0 to 8 (more
/// would push most of a 28x28 digit out of its frame).
pub fn shift_pixels(s: &str) -> Result<usize, String> {
    int_in(s, 0, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_parsers_refuse_nan_infinities_and_out_of_range_values_naming_the_range() {
        for bad in [
            "nan", "NaN", "inf", "-inf", "infinity", "-1", "0", "11", "1e300", "abc", "",
        ] {
            let err = learning_rate(bad).unwrap_err();
            assert!(err.contains("(0, 10]"), "{bad}: {err}");
        }
        assert_eq!(learning_rate("3e-3"), Ok(3e-3));
        assert_eq!(learning_rate("10"), Ok(10.0));
        assert!(dropout("1").unwrap_err().contains("[0, 1)"));
        assert!(dropout("-0.1").is_err());
        assert_eq!(dropout("0"), Ok(0.0));
        assert!(clip_norm("-1").unwrap_err().contains("(0, ∞]"));
        assert!(clip_norm("0").is_err());
        assert!(clip_norm("inf").is_err());
        assert!(accuracy("2").is_err());
        assert_eq!(accuracy("1"), Ok(1.0));
        assert!(noise("nan").unwrap_err().contains("NaN"));
        assert!(weight_decay("-1e-4").is_err());
    }

    #[test]
    fn integer_parsers_refuse_zero_negative_and_huge_values_naming_the_range() {
        for (bad, why) in [
            ("0", "out of range"),
            ("-3", "out of range"),
            ("1000000000", "out of range"),
            ("99999999999999999999999", "out of range"),
            ("2.5", "not a whole number"),
            ("ten", "not a whole number"),
        ] {
            let err = layer_width(bad).unwrap_err();
            assert!(
                err.contains(why) && err.contains("from 1 to 65536"),
                "{bad}: {err}"
            );
        }
        assert_eq!(epochs("5"), Ok(5));
        assert!(epochs("0").is_err());
        assert!(points("1").is_err());
        assert!(points("100000000").is_err());
        assert_eq!(sweep_seeds("0"), Ok(0));
    }

    #[test]
    fn sampling_parsers_refuse_values_that_cannot_sample() {
        assert!(top_p("0").unwrap_err().contains("(0, 1]"));
        assert!(top_p("1.5").is_err());
        assert_eq!(top_p("1"), Ok(1.0));
        assert!(min_p("-0.1").is_err());
        assert!(min_p("nan").unwrap_err().contains("NaN"));
        assert!(repetition_penalty("0").is_err());
        assert!(temperature("-1").is_err());
        assert!(new_tokens("0").unwrap_err().contains("from 1"));
        assert!(top_k("0").is_err());
        assert!(beams("65").is_err());
        assert!(length_penalty("inf").is_err());
        assert!(draft_tokens("0").is_err());
    }
}
