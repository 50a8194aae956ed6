//! Training a GPT for a number of steps: nanoGPT's recipe on our engine.
//!
//! Chapter 06's [`fit`](chapter_06::fit) trains a classifier epoch by
//! epoch. A language model is trained differently: there are no epochs to
//! speak of (a step takes a few windows at random places of a long text),
//! the learning rate warms up and then decays along a cosine, only the
//! matrices are pulled towards zero by weight decay, and progress is judged
//! by *estimates* of the loss on both parts of the text every few hundred
//! steps. The run folder, its lock, resume checks, metrics and checkpoints
//! are chapter 06's ([`RunDir`], [`Checkpoint`]); this module only adds the
//! loop and its settings ([`GptTrainConfig`], a [`RunConfig`]).

use crate::char_data::{Split, TextSplits};
use chapter_02::{
    default_generator_state, set_default_generator_state, DType, Device, Generator, GeneratorState,
    Result,
};
use chapter_03::{no_grad, Tensor};
use chapter_04::prelude::*;
use chapter_05::loss::{cross_entropy, CrossEntropyOptions};
use chapter_05::{Module, ModuleExt, StateDictExt};
use chapter_06::data_parallel::MAX_REPLICAS;
use chapter_06::metrics::Record;
use chapter_06::run_dir::{OnResume, RunConfig, RunDir};
use chapter_06::{
    clip_grad_norm_, grad_norm, Adam, AdamConfig, Checkpoint, DataParallel, LrSchedule, Optimizer,
    ParamGroup, Scheduler,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::time::Instant;

// ANCHOR: config
/// The settings of a GPT training run (saved in the run's `config.json`).
/// The defaults are nanoGPT's CPU recipe for Shakespeare characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GptTrainConfig {
    /// Optimiser steps in the whole run.
    pub iters: usize,
    /// Windows per step.
    pub batch_size: usize,
    /// Peak learning rate, reached after the warm-up.
    pub lr: f64,
    /// The learning rate at the end of the cosine decay.
    pub min_lr: f64,
    pub warmup_iters: usize,
    /// The step at which the cosine reaches `min_lr` (it stays there after).
    pub lr_decay_iters: usize,
    pub beta1: f64,
    pub beta2: f64,
    /// AdamW's decoupled weight decay, for the matrices only.
    pub weight_decay: f64,
    pub clip_grad_norm: Option<f64>,
    /// Estimate both losses every this many steps (and at the end).
    pub eval_interval: usize,
    /// Batches per loss estimate.
    pub eval_iters: usize,
    pub seed: u64,
    /// Write a `train` metrics line every this many steps.
    pub log_every: usize,
    /// Train at most this many steps in this call, then return with a
    /// checkpoint (the schedule still spans `iters`).
    #[serde(default)]
    pub stop_after_iters: Option<usize>,
    /// Replicas of the step, each on a core of its own with a shard of the
    /// batch ([`DataParallel`]). The gradient is the same up to rounding
    /// for any count, so the run records it: resuming with another count
    /// would not continue the same run bit for bit. Runs saved before this
    /// setting existed used one.
    #[serde(default = "one_replica")]
    pub replicas: usize,
}

fn one_replica() -> usize {
    1
}

impl Default for GptTrainConfig {
    fn default() -> Self {
        GptTrainConfig {
            iters: 2000,
            batch_size: 12,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_iters: 100,
            lr_decay_iters: 2000,
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.1,
            clip_grad_norm: Some(1.0),
            eval_interval: 250,
            eval_iters: 200,
            seed: 1337,
            log_every: 10,
            stop_after_iters: None,
            replicas: 1,
        }
    }
}
// ANCHOR_END: config

impl RunConfig for GptTrainConfig {
    fn validate(&self) -> Result<()> {
        let bad = |field: &str, value: String, allowed: &str| {
            Err(chapter_02::Error::invalid(
                "GptTrainConfig",
                format!("{field} = {value} is not allowed: it must be {allowed}"),
            ))
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let unit = |v: f64| v.is_finite() && (0.0..1.0).contains(&v);
        for (field, v) in [
            ("iters", self.iters),
            ("batch_size", self.batch_size),
            ("eval_interval", self.eval_interval),
            ("eval_iters", self.eval_iters),
            ("replicas", self.replicas),
        ] {
            if v == 0 {
                return bad(field, "0".into(), "at least 1");
            }
        }
        if !positive(self.lr) {
            return bad("lr", self.lr.to_string(), "a finite number > 0");
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return bad("min_lr", self.min_lr.to_string(), "in [0, lr]");
        }
        if !unit(self.beta1) {
            return bad("beta1", self.beta1.to_string(), "in [0, 1)");
        }
        if !unit(self.beta2) {
            return bad("beta2", self.beta2.to_string(), "in [0, 1)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                self.weight_decay.to_string(),
                "a finite number >= 0",
            );
        }
        if let Some(c) = self.clip_grad_norm.filter(|c| !positive(*c)) {
            return bad("clip_grad_norm", c.to_string(), "a finite number > 0");
        }
        if self.lr_decay_iters <= self.warmup_iters {
            return bad(
                "lr_decay_iters",
                self.lr_decay_iters.to_string(),
                &format!("greater than warmup_iters ({})", self.warmup_iters),
            );
        }
        if self.replicas > MAX_REPLICAS {
            return bad(
                "replicas",
                self.replicas.to_string(),
                &format!("at most {MAX_REPLICAS}"),
            );
        }
        if self.stop_after_iters == Some(0) {
            return bad("stop_after_iters", "0".into(), "at least 1 (or none)");
        }
        Ok(())
    }

    fn on_resume(field: &str) -> OnResume {
        match field {
            "seed" => {
                OnResume::Fixed("it decides the initial weights and the order of the batches")
            }
            "batch_size" => OnResume::Fixed("it decides the batches drawn at every step"),
            "replicas" => OnResume::Forceable,
            "iters" | "lr" | "min_lr" | "warmup_iters" | "lr_decay_iters" | "beta1" | "beta2"
            | "weight_decay" | "clip_grad_norm" => OnResume::Forceable,
            "eval_interval" | "eval_iters" | "log_every" | "stop_after_iters" => OnResume::Free,
            _ => OnResume::Fixed("it is a setting this version does not know"),
        }
    }
}

// ANCHOR: warmup_cosine
/// nanoGPT's learning rate: a linear warm-up over `warmup` steps, then half
/// a cosine from the peak down to `min_lr` at step `decay`, then `min_lr`.
///
/// ```text
/// lr(t) = peak · (t + 1) / (warmup + 1)                        t < warmup
///       = min + ½ (1 + cos(π (t − warmup) / (decay − warmup))) (peak − min)
///       = min                                                  t > decay
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosineLr {
    pub warmup: usize,
    pub decay: usize,
    pub min_lr: f64,
}

impl LrSchedule for WarmupCosineLr {
    fn lr_at(&self, t: usize, peak: f64) -> f64 {
        if t < self.warmup {
            return peak * (t + 1) as f64 / (self.warmup + 1) as f64;
        }
        if t > self.decay {
            return self.min_lr;
        }
        let ratio = (t - self.warmup) as f64 / (self.decay - self.warmup) as f64;
        self.min_lr + 0.5 * (1.0 + (PI * ratio).cos()) * (peak - self.min_lr)
    }
}
// ANCHOR_END: warmup_cosine

/// What a training call reports.
#[derive(Debug, Clone, PartialEq)]
pub struct GptTrainSummary {
    /// The last loss estimates (mean over `eval_iters` batches).
    pub train_loss: f64,
    pub val_loss: f64,
    /// Steps taken in this call, and the run's step count after it.
    pub steps_run: usize,
    pub step: usize,
    /// Median seconds of one training step (estimates excluded) in this call.
    pub median_step_seconds: f64,
    /// Training seconds of this call (estimates excluded).
    pub train_seconds: f64,
}

// ANCHOR: param_groups
/// AdamW's two parameter groups: matrices (embeddings and projections)
/// with weight decay, vectors (LayerNorm gains, biases) without. Decay on a
/// gain would pull it towards zero, which means "switch this feature off":
/// not a prior anyone wants.
pub fn param_groups(model: &dyn Module, config: &GptTrainConfig) -> Vec<ParamGroup<AdamConfig>> {
    let adamw = AdamConfig {
        betas: (config.beta1, config.beta2),
        ..AdamConfig::adamw(config.lr)
    };
    let (matrices, vectors): (Vec<Tensor>, Vec<Tensor>) = model
        .parameters()
        .into_iter()
        .partition(|p| p.dims().len() >= 2);
    vec![
        ParamGroup {
            params: matrices,
            config: AdamConfig {
                weight_decay: config.weight_decay,
                ..adamw
            },
        },
        ParamGroup {
            params: vectors,
            config: AdamConfig {
                weight_decay: 0.0,
                ..adamw
            },
        },
    ]
}
// ANCHOR_END: param_groups

/// The next-token loss of a batch: `model` maps ids `[B, T]` to logits
/// `[B, T, V]`, and every position is one prediction.
pub fn lm_loss(model: &dyn Module, x: &Tensor, y: &Tensor) -> Result<(Tensor, Tensor)> {
    let logits = model.forward(x)?;
    let loss = cross_entropy(
        &logits.flatten(0, 1)?,
        &y.flatten(0, 1)?,
        &CrossEntropyOptions::default(),
    )?;
    Ok((loss, logits))
}

// ANCHOR: estimate_loss
/// The mean loss and next-token accuracy of `model` on `eval_iters`
/// batches of each part, in evaluation mode and without a graph. The
/// batches come from a generator seeded by `seed` alone, so every estimate
/// of a run sees the same windows and the curves compare like with like.
pub fn estimate_loss(
    model: &dyn Module,
    data: &TextSplits,
    batch_size: usize,
    eval_iters: usize,
    seed: u64,
    device: &Device,
) -> Result<[(f64, f64); 2]> {
    let _guard = no_grad();
    model.eval();
    let mut out = [(0.0, 0.0); 2];
    for (slot, split) in out.iter_mut().zip([Split::Train, Split::Val]) {
        let mut rng = Generator::new(seed ^ 0x5eed_e7a1);
        let (mut loss, mut correct) = (0.0, 0.0);
        for _ in 0..eval_iters {
            let (x, y) = data.batch(split, batch_size, &mut rng, device)?;
            let (l, logits) = lm_loss(model, &x, &y)?;
            loss += l.item()?;
            correct += accuracy(&logits, &y)?;
        }
        *slot = (loss / eval_iters as f64, correct / eval_iters as f64);
    }
    model.train();
    Ok(out)
}
// ANCHOR_END: estimate_loss

/// The fraction of positions whose most likely token is the target.
fn accuracy(logits: &Tensor, y: &Tensor) -> Result<f64> {
    let hits = logits
        .data()
        .argmax(-1, false)?
        .eq(&y.data())?
        .to_dtype(DType::I64)?
        .sum_all()?
        .item()?;
    Ok(hits / y.elem_count() as f64)
}

fn run_error(e: impl std::fmt::Display) -> chapter_02::Error {
    chapter_02::Error::invalid("run folder", e.to_string())
}

/// The checkpoint key of the batch generator's state.
const BATCH_RNG: &str = "batch_rng";

// ANCHOR: train_gpt
/// Trains `model` (ids `[B, T]` → logits `[B, T, V]`) on `data` with
/// `config`, writing metrics and checkpoints into `run`. With `resume`, it
/// continues the run's checkpoint exactly: weights, AdamW's moments, the
/// schedule, and both random generators (the batches' and the default one
/// that dropout draws from). The caller seeds and builds the model.
pub fn train_gpt(
    model: &(dyn Module + Sync),
    data: &TextSplits,
    config: &GptTrainConfig,
    run: &RunDir,
    resume: bool,
    show_progress: bool,
) -> Result<GptTrainSummary> {
    let device = model
        .parameters()
        .first()
        .map(|p| p.device())
        .ok_or_else(|| chapter_02::Error::invalid("train_gpt", "the model has no parameters"))?;
    let session = run.begin(config, resume).map_err(run_error)?;
    let params = model.parameters();
    let replicas = DataParallel::new(config.replicas)?;
    let mut optimizer = Adam::with_groups(param_groups(model, config))?;
    let schedule = WarmupCosineLr {
        warmup: config.warmup_iters,
        decay: config.lr_decay_iters,
        min_lr: config.min_lr,
    };
    let mut scheduler = Scheduler::new(schedule, &mut optimizer);
    let mut batch_rng = Generator::new(config.seed);
    let mut step = 0usize;
    if let Some(ckpt) = &session.checkpoint {
        model.load_state_dict(&ckpt.model).map_err(run_error)?;
        optimizer.load_state_dict(&ckpt.optimizer)?;
        scheduler.set_steps(ckpt.scheduler_steps, &mut optimizer);
        set_default_generator_state(&ckpt.rng);
        batch_rng = ckpt
            .extra
            .get(BATCH_RNG)
            .and_then(|text| parse_state(text))
            .map(|state| Generator::from_state(&state))
            .ok_or_else(|| run_error("the checkpoint has no batch generator state"))?;
        step = ckpt.global_step as usize;
    }
    let (mut metrics, seconds_before, _lock) =
        (session.metrics, session.seconds_before, session.lock);
    let end = match config.stop_after_iters {
        Some(n) => (step + n).min(config.iters),
        None => config.iters,
    };
    let tokens_per_step = (config.batch_size * data.context) as f64;
    let epoch_of = |step: usize| (step as f64 * tokens_per_step / data.train.len() as f64) as u64;
    let bar = progress_bar(step, config.iters, show_progress);
    let (mut train_seconds, mut step_times) = (0.0, Vec::new());
    let mut last = (f64::NAN, f64::NAN);
    let first = step;
    model.train();
    loop {
        // Estimate at every interval and at the end; a resumed run has its
        // first step's estimate in the metrics already.
        let at_end = step == end;
        if (step.is_multiple_of(config.eval_interval) || step == config.iters)
            && !(step == first && resume)
        {
            let [(train_loss, train_acc), (val_loss, val_acc)] = estimate_loss(
                model,
                data,
                config.batch_size,
                config.eval_iters,
                config.seed,
                &device,
            )?;
            last = (train_loss, val_loss);
            let record = Record::Eval {
                step: step as u64,
                epoch: epoch_of(step),
                train_loss,
                train_accuracy: train_acc,
                test_loss: val_loss,
                test_accuracy: val_acc,
                seconds: seconds_before + train_seconds,
            };
            metrics.write(&record).map_err(run_error)?;
            bar.println(format!(
                "step {step}: train loss {train_loss:.4}, val loss {val_loss:.4}"
            ));
        }
        if at_end || (step.is_multiple_of(config.eval_interval) && step != first) {
            let extra = BTreeMap::from([
                (
                    "config".to_string(),
                    serde_json::to_string(config).map_err(run_error)?,
                ),
                (BATCH_RNG.to_string(), state_text(batch_rng.state())),
            ]);
            let ckpt = Checkpoint {
                model: model.state_dict(),
                optimizer: optimizer.state_dict()?,
                scheduler_steps: scheduler.steps(),
                rng: default_generator_state(),
                epoch: epoch_of(step),
                global_step: step as u64,
                extra,
            };
            ckpt.save(run.checkpoint()).map_err(run_error)?;
        }
        if at_end {
            break;
        }
        // The step itself.
        let started = Instant::now();
        let (x, y) = data.batch(Split::Train, config.batch_size, &mut batch_rng, &device)?;
        optimizer.zero_grad();
        let sharded = replicas.backward(config.batch_size, &params, |shard| {
            let (x, y) = (
                x.narrow(0, shard.start, shard.len())?,
                y.narrow(0, shard.start, shard.len())?,
            );
            let (loss, logits) = lm_loss(model, &x, &y)?;
            Ok((loss, (logits, y)))
        })?;
        let loss = sharded.loss;
        if let Some(max_norm) = config.clip_grad_norm {
            clip_grad_norm_(&params, max_norm, 2.0)?;
        }
        optimizer.step()?;
        scheduler.step(&mut optimizer);
        step += 1;
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        step_times.push(seconds);
        bar.inc(1);
        if config.log_every > 0 && step.is_multiple_of(config.log_every) {
            let loss = loss.item()?;
            bar.set_message(format!("loss {loss:.4}  {:.1} ms/step", seconds * 1e3));
            let record = Record::Train {
                step: step as u64,
                epoch: epoch_of(step),
                loss,
                accuracy: sharded
                    .outputs
                    .iter()
                    .map(|(logits, y)| Ok(accuracy(logits, y)? * y.elem_count() as f64))
                    .sum::<Result<f64>>()?
                    / (config.batch_size * data.context) as f64,
                lr: optimizer.learning_rates()[0],
                grad_norm: grad_norm(&params)?.item()?,
                examples_per_sec: tokens_per_step / seconds.max(1e-9),
                param_norms: BTreeMap::new(),
                grad_norms: BTreeMap::new(),
            };
            metrics.write(&record).map_err(run_error)?;
        }
    }
    bar.finish_and_clear();
    step_times.sort_by(f64::total_cmp);
    Ok(GptTrainSummary {
        train_loss: last.0,
        val_loss: last.1,
        steps_run: step - first,
        step,
        median_step_seconds: step_times.get(step_times.len() / 2).copied().unwrap_or(0.0),
        train_seconds,
    })
}
// ANCHOR_END: train_gpt

fn progress_bar(at: usize, len: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_position(at as u64);
    if let Ok(style) = ProgressStyle::with_template("step [{bar:30}] {pos}/{len} {msg} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// A generator's state as text for the checkpoint's facts: `seed offset`.
fn state_text(state: GeneratorState) -> String {
    format!("{} {}", state.seed, state.offset)
}

/// The inverse of [`state_text`].
fn parse_state(text: &str) -> Option<GeneratorState> {
    let (seed, offset) = text.split_once(' ')?;
    Some(GeneratorState {
        seed: seed.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_cosine_matches_nanogpt_formula() {
        let s = WarmupCosineLr {
            warmup: 100,
            decay: 2000,
            min_lr: 1e-4,
        };
        assert!((s.lr_at(0, 1e-3) - 1e-3 / 101.0).abs() < 1e-15);
        assert!((s.lr_at(99, 1e-3) - 1e-3 * 100.0 / 101.0).abs() < 1e-15);
        assert!((s.lr_at(100, 1e-3) - 1e-3).abs() < 1e-15);
        assert!((s.lr_at(1050, 1e-3) - 5.5e-4).abs() < 1e-12);
        assert!((s.lr_at(2000, 1e-3) - 1e-4).abs() < 1e-15);
        assert_eq!(s.lr_at(5000, 1e-3), 1e-4);
    }

    #[test]
    fn config_validation_names_the_field() {
        let ok = GptTrainConfig::default();
        assert!(RunConfig::validate(&ok).is_ok());
        for (cfg, field) in [
            (
                GptTrainConfig {
                    lr: f64::NAN,
                    ..ok.clone()
                },
                "lr",
            ),
            (
                GptTrainConfig {
                    min_lr: 1.0,
                    ..ok.clone()
                },
                "min_lr",
            ),
            (
                GptTrainConfig {
                    iters: 0,
                    ..ok.clone()
                },
                "iters",
            ),
            (
                GptTrainConfig {
                    beta2: 1.0,
                    ..ok.clone()
                },
                "beta2",
            ),
            (
                GptTrainConfig {
                    clip_grad_norm: Some(-1.0),
                    ..ok.clone()
                },
                "clip_grad_norm",
            ),
            (
                GptTrainConfig {
                    warmup_iters: 3000,
                    ..ok.clone()
                },
                "lr_decay_iters",
            ),
            (
                GptTrainConfig {
                    weight_decay: f64::INFINITY,
                    ..ok.clone()
                },
                "weight_decay",
            ),
        ] {
            let err = RunConfig::validate(&cfg).unwrap_err().to_string();
            assert!(err.contains(&format!("{field} = ")), "{err}");
        }
    }
}
