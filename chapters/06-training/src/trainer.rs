//! The training loop.

use crate::checkpoint::Checkpoint;
use crate::clip::{clip_grad_norm_, grad_norm};
use crate::data::DataLoader;
use crate::metrics::{histogram, MetricsWriter, Record};
use crate::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
pub use crate::run_dir::RunDir;
use crate::schedule::{
    ConstantLr, CosineAnnealingLr, LinearLr, LrSchedule, MultiStepLr, OneCycleLr, Scheduler,
    SequentialLr,
};
use chapter_02::{default_generator_state, set_default_generator_state, DType};
use chapter_03::{no_grad, RawTensor, Result, Tensor};
use chapter_05::loss::{cross_entropy, CrossEntropyOptions};
use chapter_05::{Module, ModuleExt, StateDictExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Which optimiser to train with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    AdamW,
}

/// How the learning rate moves over the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// The same rate throughout.
    Constant,
    /// One-cycle: warm up to `lr`, then anneal to almost zero.
    OneCycle,
    /// 5% linear warm-up, then cosine decay to zero.
    WarmupCosine,
    /// 5% linear warm-up, then the rate divided by 10 at 50% and again at
    /// 75% of the steps (the step decay of the classic ResNet recipes).
    WarmupStep,
}

// ANCHOR: config
/// Everything that defines a run. Saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    pub schedule: ScheduleKind,
    pub clip_grad_norm: Option<f64>,
    pub seed: u64,
    /// Write a `train` metrics line every this many steps.
    pub log_every: usize,
    /// Report when test accuracy first reaches this (e.g. 0.98).
    pub target_accuracy: Option<f64>,
    /// Train at most this many epochs in this call of [`fit`], then return
    /// with a checkpoint to resume from (the schedule still spans `epochs`).
    /// A long run can so be trained in parts; `None` trains to the end.
    #[serde(default)]
    pub stop_after_epochs: Option<usize>,
}
// ANCHOR_END: config

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            weight_decay: 0.0,
            schedule: ScheduleKind::Constant,
            clip_grad_norm: None,
            seed: 0,
            log_every: 50,
            target_accuracy: None,
            stop_after_epochs: None,
        }
    }
}

impl TrainConfig {
    // ANCHOR: validate
    /// Checks every number of the configuration, so that a run never starts
    /// with a value that would make it meaningless (a NaN learning rate, a
    /// negative clipping norm that flips the gradients) or do nothing (zero
    /// epochs). The message names the field, the value and what is allowed.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, value: String, allowed: &str| {
            Err(chapter_02::Error::invalid(
                "TrainConfig",
                format!("{field} = {value} is not allowed: it must be {allowed}"),
            ))
        };
        let finite_in = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo && v <= hi;
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", self.lr.to_string(), "a finite number > 0");
        }
        if !finite_in(self.momentum, 0.0, 1.0) || self.momentum == 1.0 {
            return bad("momentum", self.momentum.to_string(), "in [0, 1)");
        }
        if !finite_in(self.weight_decay, 0.0, f64::MAX) {
            return bad(
                "weight_decay",
                self.weight_decay.to_string(),
                "a finite number >= 0",
            );
        }
        if let Some(c) = self.clip_grad_norm.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return bad("clip_grad_norm", c.to_string(), "a finite number > 0");
        }
        if let Some(t) = self.target_accuracy.filter(|t| !(*t > 0.0 && *t <= 1.0)) {
            return bad("target_accuracy", t.to_string(), "in (0, 1]");
        }
        if self.stop_after_epochs == Some(0) {
            return bad("stop_after_epochs", "0".into(), "at least 1 (or none)");
        }
        Ok(())
    }
    // ANCHOR_END: validate
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    pub test_accuracy: f64,
    pub test_loss: f64,
    pub epochs_run: usize,
    /// Training seconds (evaluation excluded) of the epochs run here.
    pub train_seconds: f64,
    /// `(epoch, training seconds)` when `target_accuracy` was first reached.
    pub reached_target: Option<(u64, f64)>,
}

/// Loss and accuracy of `model` on every batch of `loader`, without
/// recording a graph and with dropout and batch norm in evaluation mode.
pub fn evaluate(model: &dyn Module, loader: &DataLoader) -> Result<(f64, f64)> {
    let _guard = no_grad();
    model.eval();
    let mut stats = RunningStats::default();
    for batch in loader.epoch(0) {
        let (x, y) = batch.map_err(|e| chapter_02::Error::invalid("evaluate", e.to_string()))?;
        let logits = model.forward(&x)?;
        let loss = cross_entropy(&logits, &y, &CrossEntropyOptions::default())?;
        stats.add(&loss, &logits, &y)?;
    }
    model.train();
    stats.read()
}

// ANCHOR: running_stats
/// Loss and accuracy summed over batches *on the device*: adding a batch
/// costs two tiny device operations and no transfer, and the totals are
/// read back only when someone looks (a progress-bar refresh, a metrics
/// line, the end of an epoch), not after every step.
#[derive(Default)]
struct RunningStats {
    /// `Σ loss·n` (0-d, `f64`).
    loss_sum: Option<RawTensor>,
    /// `Σ correct` (0-d, `i64`).
    correct: Option<RawTensor>,
    seen: usize,
}

impl RunningStats {
    fn add(&mut self, loss: &Tensor, logits: &Tensor, targets: &Tensor) -> Result<()> {
        let n = targets.elem_count();
        let loss = loss.data().to_dtype(DType::F64)?.affine(n as f64, 0.0)?;
        let correct = logits
            .data()
            .argmax(-1, false)?
            .eq(&targets.data())?
            .to_dtype(DType::I64)?
            .sum_all()?;
        self.loss_sum = Some(match self.loss_sum.take() {
            Some(s) => s.add(&loss)?,
            None => loss,
        });
        self.correct = Some(match self.correct.take() {
            Some(c) => c.add(&correct)?,
            None => correct,
        });
        self.seen += n;
        Ok(())
    }

    /// `(mean loss, accuracy)`: two reads from the device.
    fn read(&self) -> Result<(f64, f64)> {
        let seen = self.seen.max(1) as f64;
        let loss = match &self.loss_sum {
            Some(s) => s.item()?,
            None => 0.0,
        };
        let correct = match &self.correct {
            Some(c) => c.item()?,
            None => 0.0,
        };
        Ok((loss / seen, correct / seen))
    }
}
// ANCHOR_END: running_stats

fn make_optimizer(config: &TrainConfig, params: Vec<Tensor>) -> Result<Box<dyn Optimizer>> {
    Ok(match config.optimizer {
        OptimizerKind::Sgd => Box::new(Sgd::new(
            params,
            SgdConfig {
                momentum: config.momentum,
                weight_decay: config.weight_decay,
                nesterov: config.momentum > 0.0,
                ..SgdConfig::new(config.lr)
            },
        )?),
        OptimizerKind::Adam => Box::new(Adam::new(
            params,
            AdamConfig {
                weight_decay: config.weight_decay,
                ..AdamConfig::adam(config.lr)
            },
        )?),
        OptimizerKind::AdamW => Box::new(Adam::new(
            params,
            AdamConfig {
                weight_decay: config.weight_decay,
                ..AdamConfig::adamw(config.lr)
            },
        )?),
    })
}

fn make_scheduler(
    config: &TrainConfig,
    total_steps: usize,
    optimizer: &mut dyn Optimizer,
) -> Scheduler {
    match config.schedule {
        ScheduleKind::Constant => Scheduler::new(ConstantLr, optimizer),
        ScheduleKind::OneCycle => {
            let mut s = OneCycleLr::new(config.lr, total_steps);
            s.cycle_momentum = config.optimizer == OptimizerKind::Sgd && config.momentum > 0.0;
            Scheduler::new(s, optimizer)
        }
        ScheduleKind::WarmupCosine => {
            let warmup = warmup_steps(total_steps);
            let cosine = CosineAnnealingLr {
                t_max: total_steps - warmup,
                eta_min: 0.0,
            };
            Scheduler::new(warmup_then(warmup, cosine), optimizer)
        }
        ScheduleKind::WarmupStep => {
            let warmup = warmup_steps(total_steps);
            // Milestones counted from the end of the warm-up, so that they
            // fall at 50% and 75% of the whole run.
            let at =
                |fraction: f64| ((total_steps as f64 * fraction) as usize).max(warmup) - warmup;
            let steps = MultiStepLr {
                milestones: vec![at(0.5), at(0.75)],
                gamma: 0.1,
            };
            Scheduler::new(warmup_then(warmup, steps), optimizer)
        }
    }
}

/// The warm-up of the `Warmup*` schedules: 5% of the run, at least one step.
fn warmup_steps(total_steps: usize) -> usize {
    (total_steps / 20).max(1)
}

/// A linear warm-up from 1% of the rate over `warmup` steps, then `after`
/// from its own step 0.
fn warmup_then(warmup: usize, after: impl LrSchedule + 'static) -> SequentialLr {
    SequentialLr {
        schedules: vec![
            Box::new(LinearLr {
                start_factor: 0.01,
                end_factor: 1.0,
                total_iters: warmup,
            }),
            Box::new(after),
        ],
        milestones: vec![warmup],
    }
}

/// Hidden-layer activations for the dashboard's histograms.
pub type ActivationProbe<'a> = &'a dyn Fn(&Tensor) -> Result<Vec<(String, RawTensor)>>;

fn io_err(path: &Path, e: impl std::fmt::Display) -> chapter_02::Error {
    chapter_02::Error::invalid("train", format!("{}: {e}", path.display()))
}

// ANCHOR: fit
/// Trains `model` on `train`, evaluating on `test` after every epoch,
/// writing metrics and a checkpoint into `run`. With `resume`, it first
/// restores the run's checkpoint and continues after its last epoch. The
/// run folder is locked while training, and refuses a new run over an
/// earlier one, or a resumption with other settings (see [`RunDir`]).
#[allow(clippy::too_many_arguments)]
pub fn fit(
    model: &dyn Module,
    train: &DataLoader,
    test: &DataLoader,
    config: &TrainConfig,
    run: &RunDir,
    resume: bool,
    probe: Option<ActivationProbe<'_>>,
    show_progress: bool,
) -> Result<TrainSummary> {
    if train.num_batches() == 0 || test.num_batches() == 0 {
        let which = if train.num_batches() == 0 {
            "training"
        } else {
            "test"
        };
        return Err(chapter_02::Error::invalid(
            "fit",
            format!("the {which} set is empty: there is nothing to train or evaluate on"),
        ));
    }
    // Lock the folder, check the request, prepare config and metrics.
    let session = run
        .begin(config, resume)
        .map_err(|e| chapter_02::Error::invalid("run folder", e.to_string()))?;
    let params = model.parameters();
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut optimizer = make_optimizer(config, params.clone())?;
    let steps_per_epoch = train.num_batches();
    let mut scheduler = make_scheduler(config, steps_per_epoch * config.epochs, optimizer.as_mut());
    let (mut first_epoch, mut step) = (0u64, 0u64);
    if let Some(ckpt) = &session.checkpoint {
        model
            .load_state_dict(&ckpt.model)
            .map_err(|e| chapter_02::Error::invalid("resume", e.to_string()))?;
        optimizer.load_state_dict(&ckpt.optimizer)?;
        scheduler.set_steps(ckpt.scheduler_steps, optimizer.as_mut());
        set_default_generator_state(&ckpt.rng);
        (first_epoch, step) = (ckpt.epoch, ckpt.global_step);
    }
    let (mut metrics, seconds_before, _lock) =
        (session.metrics, session.seconds_before, session.lock);
    let mut summary = TrainSummary {
        test_accuracy: 0.0,
        test_loss: 0.0,
        epochs_run: 0,
        train_seconds: 0.0,
        reached_target: session.reached_target,
    };
    let ce = CrossEntropyOptions::default();
    model.train();

    let end_epoch = match config.stop_after_epochs {
        Some(n) => (first_epoch + n as u64).min(config.epochs as u64),
        None => config.epochs as u64,
    };
    for epoch in first_epoch..end_epoch {
        let bar = progress_bar(steps_per_epoch, epoch, config.epochs, show_progress);
        let started = Instant::now();
        let mut stats = RunningStats::default();
        for batch in train.epoch(epoch) {
            let (x, y) = batch.map_err(|e| chapter_02::Error::invalid("train", e.to_string()))?;
            // The five lines every training loop has:
            let logits = model.forward(&x)?;
            let loss = cross_entropy(&logits, &y, &ce)?;
            optimizer.zero_grad();
            loss.backward()?;
            if let Some(max_norm) = config.clip_grad_norm {
                clip_grad_norm_(&params, max_norm, 2.0)?;
            }
            optimizer.step()?;
            scheduler.step(optimizer.as_mut());
            step += 1;

            stats.add(&loss, &logits, &y)?;
            bar.inc(1);
            // Reading values back from the device is the slow part of a
            // step on a GPU, so the progress message and the metrics are
            // refreshed every `log_every` steps, not every step.
            if config.log_every > 0 && step % config.log_every as u64 == 0 {
                let (mean_loss, accuracy) = stats.read()?;
                let rate = stats.seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "loss {mean_loss:.4}  acc {:.2}%  {rate:.0} ex/s",
                    100.0 * accuracy
                ));
                let n = y.elem_count();
                let batch_correct = logits
                    .data()
                    .argmax(-1, false)?
                    .eq(&y.data())?
                    .to_dtype(DType::I64)?
                    .sum_all()?
                    .item()?;
                let record = train_record(
                    step,
                    epoch,
                    loss.item()?,
                    batch_correct / n as f64,
                    optimizer.learning_rates()[0],
                    rate,
                    &names,
                    &params,
                )?;
                metrics
                    .write(&record)
                    .map_err(|e| io_err(metrics.path(), e))?;
            }
        }
        let epoch_seconds = started.elapsed().as_secs_f64();
        summary.train_seconds += epoch_seconds;
        bar.finish_and_clear();

        let (train_loss, train_accuracy) = stats.read()?;
        let (test_loss, test_accuracy) = evaluate(model, test)?;
        let record = Record::Eval {
            step,
            epoch: epoch + 1,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds: seconds_before + summary.train_seconds,
        };
        metrics
            .write(&record)
            .map_err(|e| io_err(metrics.path(), e))?;
        if let Some(probe) = probe {
            write_histograms(probe, test, step, epoch + 1, &mut metrics)?;
        }
        if show_progress {
            eprintln!(
                "epoch {:>2}/{}: train loss {:.4}, train acc {:.2}%, test loss {:.4}, test acc {:.2}% ({epoch_seconds:.2} s)",
                epoch + 1,
                config.epochs,
                train_loss,
                100.0 * train_accuracy,
                test_loss,
                100.0 * test_accuracy
            );
        }
        if let (Some(target), None) = (config.target_accuracy, summary.reached_target) {
            if test_accuracy >= target {
                summary.reached_target = Some((epoch + 1, seconds_before + summary.train_seconds));
            }
        }
        summary.test_accuracy = test_accuracy;
        summary.test_loss = test_loss;
        summary.epochs_run += 1;

        let ckpt = Checkpoint {
            model: model.state_dict(),
            optimizer: optimizer.state_dict()?,
            scheduler_steps: scheduler.steps(),
            rng: default_generator_state(),
            epoch: epoch + 1,
            global_step: step,
            extra: BTreeMap::from([(
                "config".to_string(),
                serde_json::to_string(config).unwrap_or_default(),
            )]),
        };
        ckpt.save(run.checkpoint())
            .map_err(|e| chapter_02::Error::invalid("checkpoint", e.to_string()))?;
    }
    Ok(summary)
}
// ANCHOR_END: fit

fn progress_bar(len: usize, epoch: u64, epochs: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    // The template is a constant; should indicatif ever refuse it, the bar
    // keeps its default style rather than stopping the run.
    if let Ok(style) =
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("{}/{epochs}", epoch + 1));
    bar
}

#[allow(clippy::too_many_arguments)]
fn train_record(
    step: u64,
    epoch: u64,
    loss: f64,
    accuracy: f64,
    lr: f64,
    rate: f64,
    names: &[String],
    params: &[Tensor],
) -> Result<Record> {
    let mut param_norms = BTreeMap::new();
    let mut grad_norms = BTreeMap::new();
    for (name, p) in names.iter().zip(params) {
        param_norms.insert(name.clone(), p.data().sqr()?.sum_all()?.item()?.sqrt());
        if let Some(g) = p.grad_opt() {
            grad_norms.insert(name.clone(), g.data().sqr()?.sum_all()?.item()?.sqrt());
        }
    }
    Ok(Record::Train {
        step,
        epoch: epoch + 1,
        loss,
        accuracy,
        lr,
        grad_norm: grad_norm(params)?.item()?,
        examples_per_sec: rate,
        param_norms,
        grad_norms,
    })
}

fn write_histograms(
    probe: ActivationProbe<'_>,
    test: &DataLoader,
    step: u64,
    epoch: u64,
    metrics: &mut MetricsWriter,
) -> Result<()> {
    let _guard = no_grad();
    let Some(batch) = test.epoch(0).next() else {
        return Ok(());
    };
    let (x, _) = batch.map_err(|e| chapter_02::Error::invalid("histogram", e.to_string()))?;
    for (name, act) in probe(&x)? {
        let (edges, counts) = histogram(&act.to_vec_f64()?, 40);
        metrics
            .write(&Record::Histogram {
                step,
                epoch,
                name,
                edges,
                counts,
            })
            .map_err(|e| io_err(metrics.path(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rates `make_scheduler` gives at each of `total` steps.
    fn rates(schedule: ScheduleKind, total: usize) -> Vec<f64> {
        let config = TrainConfig {
            lr: 1.0,
            optimizer: OptimizerKind::Sgd,
            schedule,
            ..TrainConfig::default()
        };
        let w = Tensor::zeros([1], DType::F32, &chapter_02::Device::cpu()).unwrap();
        let mut opt = make_optimizer(&config, vec![w]).unwrap();
        let mut s = make_scheduler(&config, total, opt.as_mut());
        (0..total)
            .map(|_| {
                let lr = s.current_lrs()[0];
                s.step(opt.as_mut());
                lr
            })
            .collect()
    }

    #[test]
    fn warmup_step_warms_up_then_divides_by_ten_at_half_and_three_quarters() {
        let lr = rates(ScheduleKind::WarmupStep, 200);
        // 10 warm-up steps from 1% of the rate, rising.
        assert!((lr[0] - 0.01).abs() < 1e-12, "{}", lr[0]);
        assert!(lr.windows(2).take(9).all(|w| w[1] > w[0]));
        assert_eq!(lr[10], 1.0);
        assert_eq!(lr[99], 1.0);
        assert!((lr[100] - 0.1).abs() < 1e-12, "{}", lr[100]);
        assert!((lr[149] - 0.1).abs() < 1e-12);
        assert!((lr[150] - 0.01).abs() < 1e-12, "{}", lr[150]);
        assert!((lr[199] - 0.01).abs() < 1e-12);
    }
}
