//! Speculative sampling, measured: how often a small draft model's tokens
//! are accepted by a larger target model, and how much faster generation
//! gets, for draft lengths `k = 1..=8`, against plain sampling from the
//! target. Writes a table and a figure for the chapter 08 book page.
//!
//! ```text
//! bench/speculative.sh      # trains the two models if needed, then runs this
//! cargo run --release -p candle-lib --example speculative_speed -- \
//!     --draft runs/speculative-draft --target runs/speculative-target
//! ```
//!
//! The two models are run folders of `candle train shakespeare` (same
//! text, so the same characters). For each of `--prompts` prompts (16
//! characters at evenly spaced places of the validation text) it writes
//! `--tokens` characters at temperature 1 with the target alone, with the
//! draft alone, and speculatively for every `k`, each from a sampler seeded
//! by the prompt's number, and adds up times and counters. The samplers are
//! seeded, so every count is deterministic; only the timings vary.
//!
//! The acceptance rate `α` (accepted / proposed) predicts the tokens per
//! target call, `(1 − α^(k+1)) / (1 − α)`; with `c` the draft's time per
//! token over the target's, the speed-up predicted by Leviathan et al. is
//! that over `k·c + 1` (it assumes scoring `k + 1` tokens costs the target
//! what scoring one does). That assumption is where small models part from
//! large ones: a large target reads its weights from memory once per call,
//! however many tokens it scores, but a small one's weights sit in the
//! cache and its work grows with the tokens. So the example also times a
//! target call on `t = 1..=k+1` tokens and a draft call on one, and
//! predicts the speed-up from those costs,
//! `E[tokens per call] · T_target(1) / (k · T_draft(1) + T_target(k+1))`.
//! The table shows both predictions next to what was measured.
//!
//! It writes `08-speculative.csv`, `08-speculative-table.txt` (a Markdown
//! table, with the load average) and `08-speculative.{svg,png}` into
//! `--out` (default `book/src/figures`).

mod measure;

use candle::commands::gpt_run::load_run;
use candle::gpt::char_data::{read_text, CharVocab};
use candle::gpt::sampling::{speculative_generate, SpeculativeStats};
use candle::gpt::training::GptTrainConfig;
use candle::gpt::{
    generate, ContextPolicy, Gpt, GptGenerator, LanguageModel, Sampler, SamplingConfig,
    SpeculativeConfig, StopConditions,
};
use candle::prelude::*;
use candle::train::RunDir;
use measure::{Chart, DynError, Options, Series};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const USAGE: &str = "speculative_speed: acceptance rate and speed-up of speculative sampling

options:
  --draft DIR      the draft model's run folder (default runs/speculative-draft)
  --target DIR     the target model's run folder (default runs/speculative-target)
  --max-k K        draft lengths 1..=K, K from 1 to 16 (default 8)
  --tokens N       characters written per prompt, 1 to 100000 (default 100)
  --prompts P      prompts, 1 to 1000 (default 64)
  --out DIR        where the table and figure go (default book/src/figures)";

/// The characters of the prompts: 16 consecutive ones.
const PROMPT_CHARS: usize = 16;

/// A model loaded from a run folder, with what the table says about it.
struct Loaded {
    gpt: Arc<Gpt>,
    vocab: CharVocab,
    describe: String,
}

fn load(dir: &str) -> Result<Loaded, DynError> {
    let (gpt, vocab) = load_run(Path::new(dir), &Device::cpu())
        .map_err(|e| format!("{dir}: {e} (train it first: bench/speculative.sh)"))?;
    let steps = RunDir::new(dir)
        .saved_config::<GptTrainConfig>()?
        .train
        .iters;
    let c = gpt.config();
    let describe = format!(
        "{} layer{}, {} heads, width {}, context {}, trained {steps} steps",
        c.n_layer,
        if c.n_layer == 1 { "" } else { "s" },
        c.n_head,
        c.n_embd,
        c.context_length
    );
    Ok(Loaded {
        gpt: Arc::new(gpt),
        vocab,
        describe,
    })
}

/// Seconds spent, and counters, over all prompts.
#[derive(Default, Clone, Copy)]
struct Total {
    seconds: f64,
    tokens: usize,
    stats: SpeculativeStats,
}

impl Total {
    fn add(&mut self, seconds: f64, stats: SpeculativeStats) {
        self.seconds += seconds;
        self.tokens += stats.generated;
        self.stats.target_calls += stats.target_calls;
        self.stats.draft_calls += stats.draft_calls;
        self.stats.proposed += stats.proposed;
        self.stats.accepted += stats.accepted;
        self.stats.generated += stats.generated;
    }

    fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds
    }
}

/// Plain sampling from `model`: seconds and tokens written.
fn plain(
    model: &mut GptGenerator,
    prompt: &[u32],
    seed: u64,
    stop: &StopConditions,
) -> Result<(f64, usize), DynError> {
    model.reset()?;
    let mut sampler = Sampler::new(SamplingConfig::default(), seed)?;
    let started = Instant::now();
    let g = generate(
        model,
        prompt,
        &mut sampler,
        stop,
        None,
        ContextPolicy::Error,
        |_| {},
    )?;
    Ok((started.elapsed().as_secs_f64(), g.tokens.len()))
}

fn main() -> Result<(), DynError> {
    run(std::env::args().skip(1).collect())
}

/// The example with the options `args` (`candle experiment speculative`
/// calls it too).
pub fn run(args: Vec<String>) -> Result<(), DynError> {
    let opts = Options::parse_from(
        "speculative_speed",
        &[
            "--draft",
            "--target",
            "--max-k",
            "--tokens",
            "--prompts",
            "--out",
        ],
        USAGE,
        args,
    )?;
    let max_k = opts.number("--max-k", 8, 1..=16)?;
    let new_tokens = opts.number("--tokens", 100, 1..=100_000)?;
    let prompts = opts.number("--prompts", 64, 1..=1000)?;
    let draft = load(opts.text("--draft").unwrap_or("runs/speculative-draft"))?;
    let target = load(opts.text("--target").unwrap_or("runs/speculative-target"))?;
    if draft.vocab.chars() != target.vocab.chars() {
        return Err(
            "speculative_speed: the draft and the target were trained on different \
                    characters: the draft's tokens must be the target's"
                .into(),
        );
    }
    let context = draft
        .gpt
        .config()
        .context_length
        .min(target.gpt.config().context_length);
    if PROMPT_CHARS + new_tokens > context {
        return Err(format!(
            "speculative_speed: --tokens {new_tokens}: {PROMPT_CHARS} prompt characters and \
             {new_tokens} new ones do not fit the models' context of {context}; use --tokens {} or less",
            context.saturating_sub(PROMPT_CHARS)
        )
        .into());
    }
    let out = opts.out_dir()?;

    // Prompts: evenly spaced windows of the validation text (its last 10%).
    let text = read_text(Path::new("data/shakespeare/shakespeare_small.txt"))?;
    let tokens = target.vocab.encode(&text)?;
    let val = &tokens[tokens.len() * 9 / 10..];
    let stride = (val.len() - PROMPT_CHARS) / prompts;
    let prompt_list: Vec<&[u32]> = (0..prompts)
        .map(|i| &val[i * stride..i * stride + PROMPT_CHARS])
        .collect();

    println!("draft: {}\ntarget: {}", draft.describe, target.describe);
    let load_before = measure::load_average();
    let stop = StopConditions::max_new_tokens(new_tokens);
    let mut target_model = GptGenerator::new(target.gpt.clone())?;
    let mut draft_model = GptGenerator::new(draft.gpt.clone())?;
    // Warm-up: the first calls allocate what later calls reuse.
    plain(&mut target_model, prompt_list[0], 0, &stop)?;
    plain(&mut draft_model, prompt_list[0], 0, &stop)?;
    let (mut target_alone, mut draft_alone) = ((0.0, 0), (0.0, 0));
    let mut by_k = vec![Total::default(); max_k];
    // Every configuration runs on each prompt in turn, so that a busy
    // moment of the machine hits them all alike.
    for (i, prompt) in prompt_list.iter().enumerate() {
        let seed = i as u64;
        let (s, n) = plain(&mut target_model, prompt, seed, &stop)?;
        target_alone = (target_alone.0 + s, target_alone.1 + n);
        let (s, n) = plain(&mut draft_model, prompt, seed, &stop)?;
        draft_alone = (draft_alone.0 + s, draft_alone.1 + n);
        for (k, total) in (1..=max_k).zip(&mut by_k) {
            target_model.reset()?;
            draft_model.reset()?;
            let mut sampler = Sampler::new(SamplingConfig::default(), seed)?;
            let started = Instant::now();
            let g = speculative_generate(
                &mut target_model,
                &mut draft_model,
                prompt,
                &mut sampler,
                &SpeculativeConfig::new(k),
                &stop,
                None,
                |_| {},
            )?;
            total.add(started.elapsed().as_secs_f64(), g.stats);
        }
    }
    // What one call costs: the target scoring t = 1..=k+1 tokens at once,
    // the draft scoring one (median of 30 calls after the first prompt).
    let call_seconds = |model: &mut GptGenerator, t: usize| -> Result<f64, DynError> {
        model.reset()?;
        model.extend(prompt_list[0])?;
        let mut times = Vec::with_capacity(30);
        for _ in 0..30 {
            let started = Instant::now();
            model.extend(&val[PROMPT_CHARS..PROMPT_CHARS + t])?;
            times.push(started.elapsed().as_secs_f64());
            model.truncate(PROMPT_CHARS)?;
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    };
    let target_call: Vec<f64> = (1..=max_k + 1)
        .map(|t| call_seconds(&mut target_model, t))
        .collect::<Result<_, _>>()?;
    let draft_call = call_seconds(&mut draft_model, 1)?;
    let load_after = measure::load_average();

    let target_rate = target_alone.1 as f64 / target_alone.0;
    let draft_rate = draft_alone.1 as f64 / draft_alone.0;
    // c: the draft's time per token over the target's.
    let c = target_rate / draft_rate;
    let mut csv = String::from(
        "k,acceptance_rate,tokens_per_target_call,predicted_tokens_per_target_call,tokens_per_s,speedup,predicted_speedup,target_call_cost,predicted_speedup_with_call_costs\n",
    );
    csv += &format!("0,,1,1,{target_rate:.2},1,1,1,1\n");
    let mut table = format!(
        "| k | acceptance rate α | tokens per target call (predicted from α) | target call on k + 1 tokens (× one token's) | tokens/s | speed-up | predicted: free target calls | predicted: measured call costs |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | target alone | | 1 | 1 | {target_rate:.0} | 1 | 1 | 1 |\n"
    );
    let (mut alpha_points, mut speedup, mut predicted) = (vec![], vec![], vec![]);
    let mut costed = vec![];
    for (k, total) in (1..=max_k).zip(&by_k) {
        let alpha = total.stats.acceptance_rate();
        let per_call = total.stats.tokens_per_target_call();
        let per_call_predicted = if alpha < 1.0 {
            (1.0 - alpha.powi(k as i32 + 1)) / (1.0 - alpha)
        } else {
            (k + 1) as f64
        };
        let rate = total.tokens_per_second();
        let s = rate / target_rate;
        let s_predicted = per_call_predicted / (k as f64 * c + 1.0);
        // With what the calls really cost: a round is k draft calls and one
        // target call on k + 1 tokens; plain sampling pays a 1-token call
        // per token.
        let s_costed =
            per_call_predicted * target_call[0] / (k as f64 * draft_call + target_call[k]);
        let cost = target_call[k] / target_call[0];
        csv += &format!(
            "{k},{alpha:.4},{per_call:.3},{per_call_predicted:.3},{rate:.2},{s:.3},{s_predicted:.3},{cost:.3},{s_costed:.3}\n"
        );
        table += &format!(
            "| {k} | {alpha:.3} | {per_call:.2} ({per_call_predicted:.2}) | {cost:.2} | {rate:.0} | {s:.2}× | {s_predicted:.2}× | {s_costed:.2}× |\n"
        );
        alpha_points.push((k as f64, alpha));
        speedup.push((k as f64, s));
        predicted.push((k as f64, s_predicted));
        costed.push((k as f64, s_costed));
    }
    table += &format!(
        "\nDraft: {}; target: {}. {prompts} prompts × {new_tokens} characters at temperature 1 per row; \
         the draft alone writes {draft_rate:.0} tokens/s (c = {c:.2} of the target's time per token). \
         `f32`, {} threads; load average {load_before} before, {load_after} after. \
         Regenerate: `bench/speculative.sh`.\n",
        draft.describe,
        target.describe,
        measure::threads()
    );
    print!("\n{table}\n");
    measure::write(&out.join("08-speculative.csv"), &csv)?;
    measure::write(&out.join("08-speculative-table.txt"), &table)?;

    let charts = [
        Chart {
            title: "drafted tokens accepted".into(),
            x_desc: "draft length k".into(),
            y_desc: "acceptance rate α".into(),
            log_y: false,
            series: vec![Series {
                name: "accepted / proposed".into(),
                points: alpha_points,
                dashed: false,
            }],
        },
        Chart {
            title: "speed-up over the target alone".into(),
            x_desc: "draft length k".into(),
            y_desc: "speed-up (×)".into(),
            log_y: false,
            series: vec![
                Series {
                    name: "measured".into(),
                    points: speedup,
                    dashed: false,
                },
                Series {
                    name: "predicted: free target calls".into(),
                    points: predicted,
                    dashed: true,
                },
                Series {
                    name: "predicted: measured call costs".into(),
                    points: costed,
                    dashed: true,
                },
            ],
        },
    ];
    measure::draw_figure(&out, "08-speculative", &charts)
}
