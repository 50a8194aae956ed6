//! `candle train shakespeare`: a character-level GPT, nanoGPT's CPU recipe.

use super::gpt_run::char_gpt_config;
pub use super::gpt_run::{load_vocab, save_vocab, VOCAB_FILE};
use super::values;
use chapter_02::{default_device, set_default_device, DType, Device};
use chapter_05::ModuleExt;
use chapter_06::run_dir::RunConfig;
use chapter_06::{default_replicas, OnResume, RunDir};
use chapter_08::char_data::{read_text, CharVocab, TextSplits};
use chapter_08::gpt::{Gpt, GptConfig, GptGenerator};
use chapter_08::sampling::{
    generate, ContextPolicy, Sampler, SamplingConfig, StopConditions, StopReason,
};
use chapter_08::training::{train_gpt, GptTrainConfig};
use chapter_08::LanguageModel;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type DynError = Box<dyn std::error::Error>;

/// The most parameters `candle train shakespeare` builds a model with.
pub const MAX_GPT_PARAMETERS: usize = 200_000_000;

/// Options of `candle train shakespeare`. The defaults are nanoGPT's CPU
/// recipe for Shakespeare characters (see the chapter 08 page).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The text to train on (default: data/shakespeare/shakespeare_small.txt
    /// under the data folder). The first 90% trains, the last 10% validates.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Optimiser steps, 1 to 10000000.
    #[arg(long, default_value_t = 2000, value_parser = values::iterations)]
    pub iters: usize,
    /// Windows per step, 1 to 65536.
    #[arg(long, default_value_t = 12, value_parser = values::batch_size)]
    pub batch_size: usize,
    /// Peak learning rate, in (0, 10].
    #[arg(long, default_value_t = 1e-3, value_parser = values::learning_rate)]
    pub lr: f64,
    /// Learning rate at the end of the cosine decay, in [0, 10] and at most --lr.
    #[arg(long, default_value_t = 1e-4, value_parser = values::final_learning_rate)]
    pub min_lr: f64,
    /// Linear warm-up steps (0 to 10000000).
    #[arg(long, default_value_t = 100, value_parser = values::warmup_iterations)]
    pub warmup_iters: usize,
    /// The step at which the cosine reaches --min-lr (default: --iters).
    #[arg(long, value_parser = values::iterations)]
    pub lr_decay_iters: Option<usize>,
    /// Adam's β₂, in [0, 1).
    #[arg(long, default_value_t = 0.99, value_parser = values::beta)]
    pub beta2: f64,
    /// AdamW weight decay on the matrices, in [0, 10].
    #[arg(long, default_value_t = 0.1, value_parser = values::weight_decay)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value (a finite number > 0).
    #[arg(long, default_value_t = 1.0, value_parser = values::clip_norm)]
    pub clip_grad_norm: f64,
    /// Estimate the losses every this many steps (1 to 10000000).
    #[arg(long, default_value_t = 250, value_parser = values::iterations)]
    pub eval_interval: usize,
    /// Batches per loss estimate (1 to 10000000).
    #[arg(long, default_value_t = 200, value_parser = values::iterations)]
    pub eval_iters: usize,
    /// Transformer blocks, 1 to 128.
    #[arg(long, default_value_t = 4, value_parser = values::layers)]
    pub layers: usize,
    /// Attention heads per block, 1 to 256; must divide --width.
    #[arg(long, default_value_t = 4, value_parser = values::heads)]
    pub heads: usize,
    /// Width of the residual stream, 1 to 16384.
    #[arg(long, default_value_t = 128, value_parser = values::model_size)]
    pub width: usize,
    /// Context length in characters, 1 to 16384.
    #[arg(long, default_value_t = 64, value_parser = values::model_size)]
    pub context: usize,
    /// Dropout probability, in [0, 1).
    #[arg(long, default_value_t = 0.0, value_parser = values::dropout)]
    pub dropout: f64,
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// Replicas of the step (1 to 256), each on a core of its own with its
    /// share of the batch (chapter 06's data parallelism). Default: one per
    /// core (RAYON_NUM_THREADS), at most --batch-size, on the CPU; 1 on a
    /// GPU; with --resume, the run's own count. Another count changes the
    /// rounding, so a resumed run takes it only with --force.
    #[arg(long, value_parser = values::replicas)]
    pub replicas: Option<usize>,
    /// Characters to sample from the trained model at the end (0 to 1000000).
    #[arg(long, default_value_t = 500, value_parser = values::token_count)]
    pub samples: usize,
    /// Train at most this many steps in this call, then stop with a
    /// checkpoint (continue later with --resume).
    #[arg(long, value_parser = values::iterations)]
    pub stop_after: Option<usize>,
    /// Run folder for metrics, checkpoints and the vocabulary (default
    /// runs/shakespeare-gpt). A folder that already holds a run is refused
    /// unless --resume or --force is given.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Without --resume: replace the run in --out. With --resume: accept
    /// the changed settings the saved state allows (steps, learning rates,
    /// weight decay, clipping, dropout); never the seed, batch size, text or
    /// model shape.
    #[arg(long)]
    pub force: bool,
    /// Where the data sets live (default: the repository's data/ folder, or $CANDLE_DATA).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// The device to train on: `cpu`, `cuda`, `cuda:N` or `cuda-emu`.
    /// Default: $CANDLE_DEVICE, else the CPU.
    #[arg(long)]
    pub device: Option<String>,
}

/// The parameters of a GPT with `config`, or `None` past `usize`.
pub fn gpt_parameters(c: &GptConfig) -> Option<usize> {
    let w = c.n_embd;
    let embeddings = c.vocab_size.checked_add(c.context_length)?.checked_mul(w)?;
    // Attention: QKV (3w²) and output (w²); MLP: 2·w·4w; plus gains/biases.
    let block = w.checked_mul(w)?.checked_mul(12)?.checked_add(13 * w)?;
    embeddings
        .checked_add(block.checked_mul(c.n_layer)?)?
        .checked_add(2 * w)
}

/// The model configuration of the recipe for a vocabulary of `vocab` tokens.
pub fn model_config(args: &Args, vocab: usize) -> GptConfig {
    char_gpt_config(
        vocab,
        args.context,
        args.layers,
        args.heads,
        args.width,
        args.dropout,
    )
}

pub fn run(args: &Args) -> Result<(), DynError> {
    if let Some(name) = &args.device {
        set_default_device(Some(Device::parse(name)?));
    }
    let device = default_device()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join("shakespeare-gpt"));
    let replicas = replica_count(args, &out, &device)?;
    let config = GptTrainConfig {
        iters: args.iters,
        batch_size: args.batch_size,
        lr: args.lr,
        min_lr: args.min_lr,
        warmup_iters: args.warmup_iters,
        lr_decay_iters: args.lr_decay_iters.unwrap_or(args.iters),
        beta1: 0.9,
        beta2: args.beta2,
        weight_decay: args.weight_decay,
        clip_grad_norm: Some(args.clip_grad_norm),
        eval_interval: args.eval_interval,
        eval_iters: args.eval_iters,
        seed: args.seed,
        log_every: 10,
        stop_after_iters: args.stop_after,
        replicas,
    };
    RunConfig::validate(&config)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(chapter_06::data::default_data_dir);
    let text_path = args
        .text
        .clone()
        .unwrap_or_else(|| data_dir.join("shakespeare").join("shakespeare_small.txt"));
    let text = read_text(&text_path)?;
    let vocab = CharVocab::from_text(&text);
    let model_config = model_config(args, vocab.len());
    model_config.validate()?;
    match gpt_parameters(&model_config) {
        Some(n) if n <= MAX_GPT_PARAMETERS => {}
        n => {
            return Err(format!(
                "--layers {} --width {}: the GPT would have {} parameters; the limit is {MAX_GPT_PARAMETERS}",
                args.layers,
                args.width,
                n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
            )
            .into())
        }
    }
    let data = TextSplits::new(vocab.encode(&text)?, 0.9, args.context)
        .map_err(|e| format!("{}: {e}", text_path.display()))?;

    let fixed_model = OnResume::Fixed("it decides the shape of the model");
    let run_dir = RunDir::new(&out)
        .force(args.force)
        .setting(
            "--text",
            text_path.display(),
            OnResume::Fixed("it decides the data"),
        )
        .setting("--layers", args.layers, fixed_model)
        .setting("--heads", args.heads, fixed_model)
        .setting("--width", args.width, fixed_model)
        .setting("--context", args.context, fixed_model)
        .setting("--dropout", args.dropout, OnResume::Forceable);
    let plan = run_dir.check(&config, args.resume)?;
    if let Some(ckpt) = &plan.checkpoint {
        if ckpt.global_step >= config.iters as u64 {
            return Err(format!(
                "{}: run already finished ({} of {} steps); to train it longer, pass a larger \
                 --iters with --resume --force",
                out.display(),
                ckpt.global_step,
                config.iters
            )
            .into());
        }
    }

    let model = Arc::new(Gpt::new(&model_config, DType::F32, &device, args.seed)?);
    if !args.quiet {
        eprintln!(
            "training a GPT ({} layers, {} heads, width {}, context {}; {} parameters) on {} \
             ({} characters, vocabulary {}) for {} steps on {device}{}; run folder {}",
            args.layers,
            args.heads,
            args.width,
            args.context,
            model.num_parameters(),
            text_path.display(),
            text.chars().count(),
            vocab.len(),
            config.iters,
            match config.replicas {
                1 => String::new(),
                n => format!(" ({n} replicas, a shard of the batch each)"),
            },
            out.display()
        );
    }
    let summary = train_gpt(
        model.as_ref(),
        &data,
        &config,
        &run_dir,
        args.resume,
        !args.quiet,
    )?;
    save_vocab(&out, &vocab)?;
    if summary.steps_run == 0 {
        return Err(format!("{}: no step was trained", out.display()).into());
    }
    println!(
        "step time: {:.1} ms (median of {})",
        summary.median_step_seconds * 1e3,
        summary.steps_run
    );
    println!(
        "final: train {:.4}, val {:.4}",
        summary.train_loss, summary.val_loss
    );
    if args.samples > 0 {
        println!(
            "sample ({} characters, temperature 0.8, top-k 200):",
            args.samples
        );
        sample_text(model, &vocab, args.samples, args.seed)?;
    }
    Ok(())
}

/// `--replicas`, or its default: the resumed run's count, else one per
/// core (at most the batch) on the CPU and one on other devices.
fn replica_count(args: &Args, out: &Path, device: &Device) -> Result<usize, DynError> {
    if let Some(n) = args.replicas {
        if n > 1 && !device.is_cpu() {
            return Err(format!(
                "--replicas {n}: replicas share the CPU's cores; on {device} the step has the \
                 device's own parallelism, so use --replicas 1"
            )
            .into());
        }
        return Ok(n);
    }
    if args.resume {
        // A run folder that cannot be read is reported by the resume check.
        if let Ok(saved) = RunDir::new(out).saved_config::<GptTrainConfig>() {
            return Ok(saved.train.replicas);
        }
    }
    Ok(default_replicas(device, args.batch_size))
}

// ANCHOR: sample_text
/// Streams `count` characters from `model`, starting from a line break,
/// with nanoGPT's sampling settings (temperature 0.8, top-k 200). The
/// model sees at most its context: when the cache is full, generation
/// starts again from the last half context of what it wrote.
pub fn sample_text(
    model: Arc<Gpt>,
    vocab: &CharVocab,
    count: usize,
    seed: u64,
) -> Result<(), DynError> {
    let mut generator = GptGenerator::new(model)?;
    let context = generator.context_length();
    let config = SamplingConfig {
        temperature: 0.8,
        top_k: Some(200),
        ..SamplingConfig::default()
    };
    let mut sampler = Sampler::new(config, seed)?;
    let decode = |ids: &[u32]| vocab.decode(ids);
    // A line break where the text has one, else the first character.
    let start = vocab.encode("\n").unwrap_or_else(|_| vec![0]);
    let mut written: Vec<u32> = start.clone();
    let mut out = std::io::stdout().lock();
    while written.len() < count + start.len() {
        let keep = written.len().min(context.div_ceil(2));
        let prompt = written[written.len() - keep..].to_vec();
        generator.reset()?;
        let want = (count + start.len() - written.len()).min(context + 1 - keep);
        let stop = StopConditions::max_new_tokens(want);
        let generation = generate(
            &mut generator,
            &prompt,
            &mut sampler,
            &stop,
            Some(&decode),
            ContextPolicy::Stop,
            |event| {
                let _ = out.write_all(event.text.as_bytes());
            },
        )?;
        if generation.tokens.is_empty() && generation.stop_reason == StopReason::ContextFull {
            return Err("the model's context is too short to sample from".into());
        }
        written.extend(generation.tokens);
    }
    writeln!(out)?;
    Ok(())
}
// ANCHOR_END: sample_text
