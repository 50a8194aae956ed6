//! What the KV cache buys, measured: generation speed with the cache and
//! without it (recomputing the whole prefix for every new token) as the
//! text grows, written as a table and a figure for the chapter 08 book page.
//!
//! ```text
//! cargo run --release -p candle-lib --example kv_cache_speed
//! cargo run --release -p candle-lib --example kv_cache_speed -- --model gpt2 --max-tokens 128
//! ```
//!
//! Both generators are fed the same tokens one at a time (the first
//! characters of the Shakespeare validation text, or seeded random ids for
//! GPT-2), and the time to write the first `N` tokens is read off one pass:
//! tokens per second at `N` is `N` over that time. The model has random
//! weights drawn from a fixed seed: a forward pass costs the same whatever
//! the weights, so nothing needs training. Everything but the timings is
//! deterministic.
//!
//! - `--model shakespeare` (default): the chapter's recipe (4 layers,
//!   4 heads, width 128, the 65-character vocabulary) with a context long
//!   enough for `--max-tokens` (default 512).
//! - `--model gpt2`: GPT-2 small's real configuration (12 layers, 12 heads,
//!   width 768, vocabulary 50257, context 1024); `--max-tokens` defaults to
//!   128 because recomputing is slow at this size.
//!
//! It writes `08-kv-cache-<model>.csv` (every `N`),
//! `08-kv-cache-<model>-table.txt` (the Markdown table at powers of two,
//! with the load average; `.txt` so that mdbook does not take it for a
//! page) and the figure
//! `08-kv-cache-<model>.{svg,png}` into `--out` (default `book/src/figures`).

mod measure;

use candle::commands::gpt_run::char_gpt_config;
use candle::gpt::char_data::{read_text, CharVocab};
use candle::gpt::{Gpt, GptConfig, GptGenerator, LanguageModel, RecomputingGenerator};
use candle::prelude::*;
use measure::{Chart, DynError, Options, Series};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const USAGE: &str = "kv_cache_speed: tokens/s with and without the KV cache as the text grows

options:
  --model shakespeare|gpt2   the model's shape (default shakespeare)
  --max-tokens N             tokens to write, 16 to the context (default 512; gpt2: 128)
  --seed S                   the weights' seed (default 0)
  --out DIR                  where the table and figure go (default book/src/figures)";

/// Seconds to write the first `n` tokens, for `n = 1..=tokens.len()`: one
/// token per `extend`, after a warm-up call that allocates what the first
/// call allocates.
fn cumulative_seconds(model: &mut dyn LanguageModel, tokens: &[u32]) -> Result<Vec<f64>, DynError> {
    model.extend(&tokens[..1])?;
    model.reset()?;
    let mut seconds = Vec::with_capacity(tokens.len());
    let started = Instant::now();
    for &token in tokens {
        model.extend(&[token])?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    Ok(seconds)
}

fn main() -> Result<(), DynError> {
    run(std::env::args().skip(1).collect())
}

/// The example with the options `args` (`candle experiment kv-cache-*`
/// calls it too).
pub fn run(args: Vec<String>) -> Result<(), DynError> {
    let opts = Options::parse_from(
        "kv_cache_speed",
        &["--model", "--max-tokens", "--seed", "--out"],
        USAGE,
        args,
    )?;
    let model_name = opts.text("--model").unwrap_or("shakespeare");
    let seed = opts.number("--seed", 0, 0..=u32::MAX as usize)? as u64;
    let (config, tokens): (GptConfig, Vec<u32>) = match model_name {
        "shakespeare" => {
            let max = opts.number("--max-tokens", 512, 16..=8192)?;
            let text = read_text(Path::new("data/shakespeare/shakespeare_small.txt"))?;
            let vocab = CharVocab::from_text(&text);
            let tokens = vocab.encode(&text)?;
            // The last tenth is the validation text; feed its beginning.
            let start = tokens.len() * 9 / 10;
            let config = char_gpt_config(vocab.len(), max, 4, 4, 128, 0.0);
            (config, tokens[start..start + max].to_vec())
        }
        "gpt2" => {
            let max = opts.number("--max-tokens", 128, 16..=1024)?;
            let config = GptConfig::gpt2_small();
            let mut rng = candle::tensor::Generator::new(seed + 1);
            let vocab = config.vocab_size as u32;
            let tokens = (0..max).map(|_| rng.next_word() % vocab).collect();
            (config, tokens)
        }
        other => {
            return Err(format!(
                "kv_cache_speed: --model {other:?} is not a model: use shakespeare or gpt2"
            )
            .into())
        }
    };
    let out = opts.out_dir()?;
    let max = tokens.len();
    println!(
        "{model_name}: {} layers, {} heads, width {}, vocabulary {}, {max} tokens, {} threads",
        config.n_layer,
        config.n_head,
        config.n_embd,
        config.vocab_size,
        measure::threads()
    );
    let load_before = measure::load_average();
    let model = Arc::new(Gpt::new(&config, DType::F32, &Device::cpu(), seed)?);
    let cached = cumulative_seconds(&mut GptGenerator::new(model.clone())?, &tokens)?;
    let recomputed = cumulative_seconds(&mut RecomputingGenerator::new(model.clone()), &tokens)?;
    let load_after = measure::load_average();

    // CSV: every N.
    let mut csv = String::from("tokens,cached_seconds,recompute_seconds,cached_tokens_per_s,recompute_tokens_per_s,speedup\n");
    for n in 1..=max {
        let (a, b) = (cached[n - 1], recomputed[n - 1]);
        csv += &format!(
            "{n},{a:.6},{b:.6},{:.2},{:.2},{:.3}\n",
            n as f64 / a,
            n as f64 / b,
            b / a
        );
    }
    let stem = format!("08-kv-cache-{model_name}");
    measure::write(&out.join(format!("{stem}.csv")), &csv)?;

    // The table at powers of two.
    let command = match model_name {
        "shakespeare" if max == 512 => {
            "cargo run --release -p candle-lib --example kv_cache_speed".to_string()
        }
        _ => format!(
            "cargo run --release -p candle-lib --example kv_cache_speed -- --model {model_name} --max-tokens {max}"
        ),
    };
    let mut table = String::from(
        "| tokens written | with the KV cache (tokens/s) | recomputing the prefix (tokens/s) | speed-up |\n|---:|---:|---:|---:|\n",
    );
    let mut n = 16;
    while n <= max {
        let (a, b) = (cached[n - 1], recomputed[n - 1]);
        table += &format!(
            "| {n} | {:.0} | {:.1} | {:.1}× |\n",
            n as f64 / a,
            n as f64 / b,
            b / a
        );
        n *= 2;
    }
    table += &format!(
        "\n{model_name} shape ({} layers, {} heads, width {}, vocabulary {}), random weights, `f32`, \
         {} threads; load average {load_before} before, {load_after} after. Regenerate: `{command}`.\n",
        config.n_layer,
        config.n_head,
        config.n_embd,
        config.vocab_size,
        measure::threads()
    );
    print!("\n{table}\n");
    measure::write(&out.join(format!("{stem}-table.txt")), &table)?;

    // The figure: tokens/s for N from 8 on (shorter runs are too short to time).
    let curve = |seconds: &[f64]| -> Vec<(f64, f64)> {
        seconds
            .iter()
            .enumerate()
            .skip(7)
            .map(|(i, &s)| ((i + 1) as f64, (i + 1) as f64 / s))
            .collect()
    };
    let chart = Chart {
        title: format!(
            "{model_name} ({} layers, width {}): tokens/s writing N tokens",
            config.n_layer, config.n_embd
        ),
        x_desc: "tokens written (N)".into(),
        y_desc: "tokens per second".into(),
        log_y: true,
        series: vec![
            Series {
                name: "with the KV cache".into(),
                points: curve(&cached),
                dashed: false,
            },
            Series {
                name: "recomputing the prefix".into(),
                points: curve(&recomputed),
                dashed: false,
            },
        ],
    };
    measure::draw_figure(&out, &stem, &[chart])
}
