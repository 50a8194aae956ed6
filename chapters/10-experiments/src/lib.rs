//! # Chapter 10: experiments
//!
//! Why does Kaiming initialisation train a deep ReLU network that Xavier
//! initialisation cannot? This chapter measures it, and checks the
//! measurement against the variance argument of Glorot & Bengio (2010) and
//! He et al. (2015):
//!
//! - [`grad_norm`]: the first layer's gradient against depth and width;
//! - [`activations`]: the distribution of every layer's pre-activations;
//! - [`residual`]: the same question for chapter 09's ResNet, with and
//!   without skip connections;
//! - [`norm_placement`]: and for chapter 08's GPT, with its layer norms
//!   before each branch (pre-norm), after the sum (post-norm), or without
//!   skips;
//! - [`figure`]: the book's figure style (legible at page width, legends
//!   outside the data) and atomic writes of figures and their data.
//!
//! [`run`] runs one of this chapter's experiments by name and writes its
//! figures (SVG + PNG) and data (CSV); the `candle experiment` command
//! collects them with the other chapters' figures.

pub mod activations;
pub mod figure;
pub mod grad_norm;
pub mod init_mlp;
pub mod norm_placement;
pub mod residual;

pub use figure::FigureError;
pub use init_mlp::{Init, StackMlp};

use std::path::{Path, PathBuf};

// ANCHOR: progress
/// The receiver of progress reports: `(done, total, what)`.
pub type ProgressReport<'a> = Box<dyn FnMut(usize, usize, &str) + 'a>;

/// Reports how far an experiment has got: `(done, total, what)` after each
/// unit of work (one trained network, one configuration).
pub struct Progress<'a> {
    report: ProgressReport<'a>,
    done: usize,
    total: usize,
}

impl<'a> Progress<'a> {
    pub fn new(report: impl FnMut(usize, usize, &str) + 'a) -> Progress<'a> {
        Progress {
            report: Box::new(report),
            done: 0,
            total: 0,
        }
    }

    /// Reports nothing.
    pub fn silent() -> Progress<'static> {
        Progress::new(|_, _, _| {})
    }

    /// A new stage of `total` units.
    pub fn start(&mut self, total: usize) {
        self.done = 0;
        self.total = total;
        (self.report)(0, total, "");
    }

    pub fn advance(&mut self, what: &str) {
        self.done += 1;
        (self.report)(self.done, self.total, what);
    }
}
// ANCHOR_END: progress

/// The size an experiment runs at: the book's, or a small one for tests
/// (same code, same figures, minutes become seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Book,
    Quick,
}

/// What an experiment wrote, and the numbers worth printing.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub files: Vec<PathBuf>,
    pub summary: Vec<String>,
}

/// One of this chapter's experiments.
pub struct Experiment {
    pub name: &'static str,
    /// What it draws.
    pub draws: &'static str,
    /// Files it writes (stems, without extension).
    pub figures: &'static [&'static str],
    /// Rough time at the book's size on two cores.
    pub time: &'static str,
    pub run: fn(&Path, Size, &mut Progress) -> Result<Outcome, FigureError>,
}

// ANCHOR: experiments
/// This chapter's experiments.
pub const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        name: "init-depth",
        draws: "‖∂L/∂W₁‖² and loss curves against depth (2–30), Xavier vs Kaiming, ReLU MLPs of width 128 on digits",
        figures: &["10-grad-norm-depth", "10-loss-by-depth"],
        time: "1 min",
        run: run_init_depth,
    },
    Experiment {
        name: "init-width",
        draws: "‖∂L/∂W₁‖² against width (16–2048), Xavier vs Kaiming, depth-8 ReLU MLPs on digits",
        figures: &["10-grad-norm-width"],
        time: "2 min",
        run: run_init_width,
    },
    Experiment {
        name: "activations",
        draws: "per-layer activation histograms and spread of a 10-layer width-4096 stack, Xavier/Kaiming, ReLU/linear, and during training",
        figures: &["10-activations", "10-activation-std"],
        time: "2 min",
        run: run_activations,
    },
    Experiment {
        name: "resnet-depth",
        draws: "chapter 09: first-layer gradient norm and loss of ResNets of depth 14/26/50, with and without skips",
        figures: &["09-grad-norm-depth"],
        time: "2 min",
        run: residual::run_resnet_depth,
    },
    Experiment {
        name: "gpt-norm",
        draws: "chapter 08: per-block gradient norm, residual-stream size and training loss of GPTs of depth 2–32 with pre-norm, post-norm and no skips, under GPT-2's and Xavier's init",
        figures: &["10-gpt-norm-placement", "10-gpt-norm-placement-xavier"],
        time: "4 min",
        run: norm_placement::run_norm_placement,
    },
];
// ANCHOR_END: experiments

/// Runs the experiment called `name` into `out`.
pub fn run(
    name: &str,
    out: &Path,
    size: Size,
    progress: &mut Progress,
) -> Result<Outcome, FigureError> {
    let exp = EXPERIMENTS
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| format!("no chapter 10 experiment is called {name:?}"))?;
    (exp.run)(out, size, progress)
}

fn device() -> Result<chapter_03::Device, FigureError> {
    Ok(chapter_02::default_device()?)
}

// ANCHOR: run_init_depth
fn run_init_depth(out: &Path, size: Size, progress: &mut Progress) -> Result<Outcome, FigureError> {
    let mut sweep = grad_norm::GradNormSweep::depth();
    if size == Size::Quick {
        sweep.depths = vec![2, 6, 10];
        sweep.trials = 2;
        sweep.steps = 5;
        sweep.record_at = vec![0, 5];
        sweep.widths = vec![32];
    }
    let cells = sweep.run(&device()?, progress)?;
    let mut outcome = Outcome::default();
    outcome
        .files
        .push(grad_norm::grad_norm_csv(&sweep, &cells).save(out, "10-grad-norm-depth")?);
    outcome
        .files
        .push(grad_norm::loss_csv(&cells).save(out, "10-loss-by-depth")?);
    outcome.files.extend(figure::save_figure(
        out,
        "10-grad-norm-depth",
        &grad_norm::grad_norm_figure(&sweep, &cells, false),
    )?);
    outcome.files.extend(figure::save_figure(
        out,
        "10-loss-by-depth",
        &grad_norm::loss_figure(&sweep, &cells),
    )?);
    for c in &cells {
        let (first, last) = (c.loss[0].clone(), c.loss[sweep.steps].clone());
        outcome.summary.push(format!(
            "{:<7} depth {:>2}: ‖∂L/∂W₁‖² at init {:.3e}, after {} steps {:.3e}; loss {:.3} → {:.3}",
            c.init.name(),
            c.depth,
            grad_norm::summary(&c.grad_sq[0]).0,
            sweep.record_at[sweep.record_at.len() - 1],
            grad_norm::summary(&c.grad_sq[sweep.record_at.len() - 1]).0,
            grad_norm::summary(&first).0,
            grad_norm::summary(&last).0,
        ));
    }
    Ok(outcome)
}
// ANCHOR_END: run_init_depth

fn run_init_width(out: &Path, size: Size, progress: &mut Progress) -> Result<Outcome, FigureError> {
    let mut sweep = grad_norm::GradNormSweep::width();
    if size == Size::Quick {
        sweep.widths = vec![16, 64];
        sweep.depths = vec![4];
        sweep.trials = 2;
        sweep.steps = 3;
        sweep.record_at = vec![0, 3];
    }
    let cells = sweep.run(&device()?, progress)?;
    let mut outcome = Outcome::default();
    outcome
        .files
        .push(grad_norm::grad_norm_csv(&sweep, &cells).save(out, "10-grad-norm-width")?);
    outcome.files.extend(figure::save_figure(
        out,
        "10-grad-norm-width",
        &grad_norm::grad_norm_figure(&sweep, &cells, true),
    )?);
    for c in &cells {
        let (mean, lo, hi) = grad_norm::summary(&c.grad_sq[0]);
        outcome.summary.push(format!(
            "{:<7} width {:>4}: ‖∂L/∂W₁‖² at init {mean:.3e} (min {lo:.3e}, max {hi:.3e}, max/min {:.2})",
            c.init.name(),
            c.width,
            hi / lo
        ));
    }
    Ok(outcome)
}

fn run_activations(
    out: &Path,
    size: Size,
    progress: &mut Progress,
) -> Result<Outcome, FigureError> {
    let mut exp = activations::ActivationExperiment::default();
    if size == Size::Quick {
        exp.width = 64;
        exp.depth = 6;
        exp.batch = 32;
        exp.train_steps = vec![0, 3];
        exp.train_batch = 16;
    }
    let r = exp.run(&device()?, progress)?;
    let mut outcome = Outcome::default();
    outcome
        .files
        .push(activations::histogram_csv(&r).save(out, "10-activations")?);
    outcome
        .files
        .push(activations::std_csv(&exp, &r).save(out, "10-activation-std")?);
    outcome.files.extend(figure::save_figure(
        out,
        "10-activations",
        &activations::histogram_figure(&exp, &r),
    )?);
    outcome.files.extend(figure::save_figure(
        out,
        "10-activation-std",
        &activations::std_figure(&exp, &r),
    )?);
    for (init, relu, stats) in &r.at_init {
        outcome.summary.push(format!(
            "{:<7} relu={:<5}: std layer 1 {:.4}, layer {} {:.4}; ratio per layer {:.4} (predicted {:.4})",
            init.name(),
            relu,
            stats[0].std,
            stats.len(),
            stats[stats.len() - 1].std,
            activations::mean_ratio(stats),
            activations::predicted_ratio(*init, *relu, exp.width)
        ));
    }
    for (init, step, stds, loss) in &r.training {
        outcome.summary.push(format!(
            "training {:<7} step {step:>3}: loss {loss:.4}, std layer 1 {:.4}, layer {} {:.4}",
            init.name(),
            stds[0],
            stds.len(),
            stds[stds.len() - 1]
        ));
    }
    Ok(outcome)
}
