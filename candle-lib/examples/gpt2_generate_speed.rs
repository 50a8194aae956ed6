//! GPT-2 small's generation speed on the CPU: our side of
//! `bench/gpt2_generate.sh` (PyTorch's is `bench/pytorch_gpt2_generate.py`).
//!
//! ```text
//! RAYON_NUM_THREADS=2 cargo run --release -p candle-lib --example gpt2_generate_speed
//! ```
//!
//! The model has GPT-2 small's real configuration (12 layers, 12 heads,
//! width 768, vocabulary 50257, context 1024) with random weights from a
//! fixed seed: generating costs the same whatever the weights, and nothing
//! has to be downloaded. A prompt of `--prompt-tokens` seeded random ids is
//! fed in one call (the *prefill*), then `--new-tokens` tokens are written
//! greedily, one `extend` of one token each through the KV cache (the
//! *decode*). It prints, in the format the shell script reads:
//!
//! ```text
//! prefill: 20 tokens in 61.2 ms
//! decode: 199 tokens in 6.10 s (32.6 tokens/s)
//! total: 200 new tokens in 6.16 s (32.5 tokens/s)
//! ```
//!
//! The decode line counts the tokens after the first (the first comes out
//! of the prefill).

mod measure;

use candle::gpt::{
    generate, ContextPolicy, Gpt, GptConfig, GptGenerator, LanguageModel, Sampler, StopConditions,
};
use candle::prelude::*;
use measure::{DynError, Options};
use std::sync::Arc;
use std::time::Instant;

const USAGE: &str = "gpt2_generate_speed: GPT-2 small (random weights) generation speed

options:
  --prompt-tokens N   prompt length, 1 to 512 (default 20)
  --new-tokens N      tokens to write, 2 to 512 (default 200)
  --seed S            the weights' and the prompt's seed (default 0)";

fn main() -> Result<(), DynError> {
    let opts = Options::parse(
        "gpt2_generate_speed",
        &["--prompt-tokens", "--new-tokens", "--seed"],
        USAGE,
    )?;
    let prompt_len = opts.number("--prompt-tokens", 20, 1..=512)?;
    let new_tokens = opts.number("--new-tokens", 200, 2..=512)?;
    let seed = opts.number("--seed", 0, 0..=u32::MAX as usize)? as u64;
    let config = GptConfig::gpt2_small();
    let started = Instant::now();
    let model = Arc::new(Gpt::new(&config, DType::F32, &Device::cpu(), seed)?);
    eprintln!(
        "GPT-2 small, random weights: built in {:.1} s; {} threads; load average {}",
        started.elapsed().as_secs_f64(),
        measure::threads(),
        measure::load_average()
    );
    let mut rng = candle::tensor::Generator::new(seed + 1);
    let prompt: Vec<u32> = (0..prompt_len)
        .map(|_| rng.next_word() % config.vocab_size as u32)
        .collect();
    let mut generator = GptGenerator::new(model)?;
    // Warm-up: one short generation allocates what the measured one reuses.
    generate(
        &mut generator,
        &prompt,
        &mut Sampler::greedy(),
        &StopConditions::max_new_tokens(4),
        None,
        ContextPolicy::Error,
        |_| {},
    )?;
    generator.reset()?;

    let mut first_token_at = None;
    let started = Instant::now();
    let generation = generate(
        &mut generator,
        &prompt,
        &mut Sampler::greedy(),
        &StopConditions::max_new_tokens(new_tokens),
        None,
        ContextPolicy::Error,
        |event| {
            if event.index == 0 {
                first_token_at = Some(started.elapsed().as_secs_f64());
            }
        },
    )?;
    let total = started.elapsed().as_secs_f64();
    let prefill = first_token_at.unwrap_or(total);
    let n = generation.tokens.len();
    let decode = total - prefill;
    println!("prefill: {prompt_len} tokens in {:.1} ms", prefill * 1e3);
    println!(
        "decode: {} tokens in {decode:.2} s ({:.1} tokens/s)",
        n - 1,
        (n - 1) as f64 / decode
    );
    println!(
        "total: {n} new tokens in {total:.2} s ({:.1} tokens/s)",
        n as f64 / total
    );
    Ok(())
}
