//! How the distribution of activations changes from layer to layer: a
//! stack of square layers fed standard normal inputs, under Xavier and
//! Kaiming, with and without ReLU; and how the per-layer spread moves when
//! the stack is trained on the digits.
//!
//! The variance argument: for `z = W h` with independent zero-mean weights,
//! `Var[z] = fan_in · Var[w] · E[h²]`. Without a nonlinearity `E[h²] =
//! Var[z_prev]`; after a ReLU (of a symmetric `z_prev`) only half of the
//! second moment survives, `E[h²] = Var[z_prev] / 2`. So from layer to layer
//! the standard deviation of `z` is multiplied by
//!
//! ```text
//! r = √(fan_in · Var[w] · g),   g = 1/2 with ReLU, 1 without
//! ```
//!
//! Square layers (`fan_in = fan_out = n`): Xavier gives `Var[w] = 1/n`, so
//! `r = 1/√2` with ReLU (and 1 without); Kaiming gives `Var[w] = 2/n`, so
//! `r = 1` with ReLU (and `√2` without).

use crate::figure::{num, sequential, Csv, LineFigure, Panel, Series, BLUE, VERMILION};
use crate::init_mlp::{digits_batch, mean_std, Init, StackMlp};
use crate::Progress;
use chapter_03::{no_grad, DType, Device, RawTensor, Result, Tensor};
use chapter_05::{cross_entropy, CrossEntropyOptions};
use chapter_06::{Optimizer, Sgd, SgdConfig};

// ANCHOR: predicted
/// The predicted ratio of consecutive layers' pre-activation standard
/// deviations in a stack of square layers (see the module's doc).
pub fn predicted_ratio(init: Init, relu: bool, width: usize) -> f64 {
    let gain = if relu { 0.5 } else { 1.0 };
    (width as f64 * init.variance(width, width) * gain).sqrt()
}
// ANCHOR_END: predicted

/// One layer's pre-activations: their standard deviation and a histogram
/// of their magnitudes `|z|` on log-spaced bins.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStats {
    pub layer: usize,
    pub mean: f64,
    pub std: f64,
    /// `(bin centre, fraction of values in the bin)`, bins equally spaced
    /// in `log10 |z|`.
    pub histogram: Vec<(f64, f64)>,
}

// ANCHOR: layer_stats
/// Feeds `batch` standard normal vectors of `width` through `depth` square
/// layers drawn by `init` (seed `seed`), with or without ReLU, and returns
/// the statistics of every layer's pre-activations.
pub fn layer_stats(
    init: Init,
    relu: bool,
    depth: usize,
    width: usize,
    batch: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<LayerStats>> {
    let _no_grad = no_grad();
    // The last layer is square too: this stack has no classifier head.
    let net = StackMlp::new(&vec![width; depth + 1], init, relu, seed, device)?;
    chapter_02::manual_seed(seed.wrapping_add(1_000_003));
    let x = Tensor::from_raw(RawTensor::randn(
        0.0,
        1.0,
        (batch, width),
        DType::F32,
        device,
    )?);
    let mut stats = Vec::new();
    net.forward_observed(&x, |layer, z| {
        stats.push(stats_of(layer, z)?);
        Ok(())
    })?;
    Ok(stats)
}
// ANCHOR_END: layer_stats

/// Histogram range: `log10 |z|` from -6 to 3 covers every layer of every
/// configuration in the book (the smallest spread, Xavier + ReLU at layer
/// 10, is about 0.03; the largest, Kaiming without ReLU, about 20).
const LOG_LO: f64 = -6.0;
const LOG_HI: f64 = 3.0;
const BINS: usize = 90;

fn stats_of(layer: usize, z: &Tensor) -> Result<LayerStats> {
    let (mean, std) = mean_std(z)?;
    let mut counts = vec![0usize; BINS];
    let values = z.to_vec_f64()?;
    for v in &values {
        let l = v.abs().log10();
        if l.is_finite() {
            let b = ((l - LOG_LO) / (LOG_HI - LOG_LO) * BINS as f64).floor();
            if b >= 0.0 && (b as usize) < BINS {
                counts[b as usize] += 1;
            }
        }
    }
    let n = values.len().max(1) as f64;
    let histogram = counts
        .iter()
        .enumerate()
        .map(|(b, &c)| {
            let centre = LOG_LO + (b as f64 + 0.5) * (LOG_HI - LOG_LO) / BINS as f64;
            (10f64.powf(centre), c as f64 / n)
        })
        .collect();
    Ok(LayerStats {
        layer,
        mean,
        std,
        histogram,
    })
}

/// The geometric mean of the ratios of consecutive standard deviations:
/// `(std_L / std_1)^(1/(L−1))`.
pub fn mean_ratio(stats: &[LayerStats]) -> f64 {
    let (first, last) = (stats[0].std, stats[stats.len() - 1].std);
    (last / first).powf(1.0 / (stats.len() - 1) as f64)
}

/// The four stacks of the figure.
pub const CONFIGS: [(Init, bool); 4] = [
    (Init::Xavier, true),
    (Init::Kaiming, true),
    (Init::Xavier, false),
    (Init::Kaiming, false),
];

fn config_name(init: Init, relu: bool) -> String {
    format!(
        "{} {}",
        init.name(),
        if relu { "+ ReLU" } else { "(linear)" }
    )
}

/// The activation-distribution experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationExperiment {
    pub depth: usize,
    pub width: usize,
    /// Random input vectors per stack (at initialisation).
    pub batch: usize,
    /// Training: SGD steps on a fixed batch of `train_batch` digits, and the
    /// steps at which each layer's spread is measured.
    pub train_steps: Vec<usize>,
    pub train_batch: usize,
    pub lr: f64,
    pub seed: u64,
}

impl Default for ActivationExperiment {
    /// The book's: 10 layers of width 4096, 128 input vectors (half a
    /// million values per layer); trained for 20 steps at learning rate
    /// 0.01 on 32 digits.
    fn default() -> Self {
        ActivationExperiment {
            depth: 10,
            width: 4096,
            batch: 128,
            train_steps: vec![0, 10, 20],
            train_batch: 32,
            lr: 0.01,
            seed: 0,
        }
    }
}

/// Per-layer statistics of every configuration, and the training record.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationResult {
    /// `(init, relu, per-layer stats)` at initialisation.
    pub at_init: Vec<(Init, bool, Vec<LayerStats>)>,
    /// `(init, step, per-layer std, loss)` while training (ReLU stacks).
    pub training: Vec<(Init, usize, Vec<f64>, f64)>,
}

// ANCHOR: activation_run
impl ActivationExperiment {
    pub fn run(&self, device: &Device, progress: &mut Progress) -> Result<ActivationResult> {
        let last = self.train_steps.iter().copied().max().unwrap_or(0);
        progress.start(CONFIGS.len() + 2 * (last + 1));
        let mut at_init = Vec::new();
        for (init, relu) in CONFIGS {
            let stats = layer_stats(
                init, relu, self.depth, self.width, self.batch, self.seed, device,
            )?;
            at_init.push((init, relu, stats));
            progress.advance(&config_name(init, relu));
        }
        // Training: digits in, `depth` ReLU layers of `width`, a 10-way head.
        let (x, labels) = digits_batch(self.train_batch, 0, device)?;
        let sizes = StackMlp::sizes(x.dims()[1], self.width, self.depth + 1, 10);
        let mut training = Vec::new();
        for init in Init::BOTH {
            let net = StackMlp::new(&sizes, init, true, self.seed, device)?;
            let mut opt = Sgd::new(net.parameters(), SgdConfig::new(self.lr))?;
            for step in 0..=last {
                opt.zero_grad();
                let mut stds = Vec::new();
                let logits = net.forward_observed(&x, |layer, z| {
                    if layer <= self.depth {
                        stds.push(mean_std(z)?.1);
                    }
                    Ok(())
                })?;
                let loss = cross_entropy(&logits, &labels, &CrossEntropyOptions::default())?;
                if self.train_steps.contains(&step) {
                    training.push((init, step, stds, loss.to_vec_f64()?[0]));
                }
                if step < last {
                    loss.backward()?;
                    opt.step()?;
                }
                progress.advance(&format!("training {} step {step}", init.name()));
            }
        }
        Ok(ActivationResult { at_init, training })
    }
}
// ANCHOR_END: activation_run

/// Per-layer statistics (and the prediction) as CSV.
pub fn std_csv(exp: &ActivationExperiment, r: &ActivationResult) -> Csv {
    let mut csv = Csv::new(&[
        "stage",
        "init",
        "relu",
        "step",
        "layer",
        "std",
        "mean",
        "predicted_std",
        "loss",
    ]);
    for (init, relu, stats) in &r.at_init {
        let ratio = predicted_ratio(*init, *relu, exp.width);
        for s in stats {
            csv.row(&[
                "init".into(),
                init.name().into(),
                relu.to_string(),
                "0".into(),
                s.layer.to_string(),
                num(s.std),
                num(s.mean),
                num(stats[0].std * ratio.powi(s.layer as i32 - 1)),
                String::new(),
            ]);
        }
    }
    for (init, step, stds, loss) in &r.training {
        for (l, s) in stds.iter().enumerate() {
            csv.row(&[
                "training".into(),
                init.name().into(),
                "true".into(),
                step.to_string(),
                (l + 1).to_string(),
                num(*s),
                String::new(),
                String::new(),
                num(*loss),
            ]);
        }
    }
    csv
}

/// The histograms as CSV: one row per (init, relu, layer, bin).
pub fn histogram_csv(r: &ActivationResult) -> Csv {
    let mut csv = Csv::new(&["init", "relu", "layer", "abs_z_bin_centre", "fraction"]);
    for (init, relu, stats) in &r.at_init {
        for s in stats {
            for &(c, f) in &s.histogram {
                csv.row(&[
                    init.name().into(),
                    relu.to_string(),
                    s.layer.to_string(),
                    num(c),
                    num(f),
                ]);
            }
        }
    }
    csv
}

/// Four panels (one per configuration), one histogram line per layer.
pub fn histogram_figure(exp: &ActivationExperiment, r: &ActivationResult) -> LineFigure {
    let mut panels = Vec::new();
    for (init, relu, stats) in &r.at_init {
        let mut panel = Panel::new(
            config_name(*init, *relu),
            "|pre-activation|",
            "fraction of values per bin",
        )
        .log_x();
        // Only the bins that hold something, plus one empty bin either
        // side, so the x range fits the data of this panel.
        for s in stats {
            let filled: Vec<usize> = (0..s.histogram.len())
                .filter(|&b| s.histogram[b].1 > 0.0)
                .collect();
            let (lo, hi) = match (filled.first(), filled.last()) {
                (Some(&lo), Some(&hi)) => {
                    (lo.saturating_sub(1), (hi + 1).min(s.histogram.len() - 1))
                }
                _ => continue,
            };
            // Bins in the far tails (under 2 in 1000 of the values) are
            // left out so the axis shows the bulk of every layer.
            let points: Vec<(f64, f64)> = s.histogram[lo..=hi]
                .iter()
                .copied()
                .filter(|p| p.1 >= 2e-3)
                .collect();
            panel.series.push(Series::line(
                format!("layer {}", s.layer),
                sequential(s.layer - 1, exp.depth),
                points,
            ));
        }
        panels.push(panel);
    }
    let mut fig = LineFigure::new(panels, 2);
    fig.row_height = 400;
    fig
}

/// The spread by layer: measured (solid) and predicted by the variance
/// argument (dashed), at initialisation; and during training.
pub fn std_figure(exp: &ActivationExperiment, r: &ActivationResult) -> LineFigure {
    let mut at_init = Panel::new(
        format!("at initialisation (width {})", exp.width),
        "layer",
        "std of pre-activations",
    )
    .log_y();
    let colors = [VERMILION, BLUE, VERMILION, BLUE];
    for ((init, relu, stats), color) in r.at_init.iter().zip(colors) {
        if !relu {
            continue;
        }
        let measured: Vec<(f64, f64)> = stats.iter().map(|s| (s.layer as f64, s.std)).collect();
        let ratio = predicted_ratio(*init, *relu, exp.width);
        let predicted: Vec<(f64, f64)> = stats
            .iter()
            .map(|s| {
                (
                    s.layer as f64,
                    stats[0].std * ratio.powi(s.layer as i32 - 1),
                )
            })
            .collect();
        at_init.series.push(
            Series::line(format!("{} + ReLU, measured", init.name()), color, measured)
                .with_markers(),
        );
        at_init.series.push(
            Series::line(
                format!("predicted: ×{ratio:.3} per layer ({})", init.name()),
                color,
                predicted,
            )
            .dashed(),
        );
    }
    let mut panels = vec![at_init];
    for init in Init::BOTH {
        let mut panel = Panel::new(
            format!("{} + ReLU while training", init.name()),
            "layer",
            "std of pre-activations",
        )
        .log_y();
        let steps: Vec<&(Init, usize, Vec<f64>, f64)> =
            r.training.iter().filter(|t| t.0 == init).collect();
        for (i, (_, step, stds, _)) in steps.iter().enumerate() {
            panel.series.push(
                Series::line(
                    format!("after {step} SGD steps"),
                    sequential(i, steps.len().max(2)),
                    stds.iter()
                        .enumerate()
                        .map(|(l, &s)| ((l + 1) as f64, s))
                        .collect(),
                )
                .with_markers(),
            );
        }
        panels.push(panel);
    }
    LineFigure::new(panels, 3)
}
