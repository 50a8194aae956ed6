//! Gradient norm against depth and against width, under Xavier and Kaiming.
//!
//! For every (init, depth, width) we train `trials` networks, one per seed,
//! by plain SGD on one fixed batch of digits, and record `‖∂L/∂W₁‖²`, the
//! squared norm of the first layer's weight gradient, at chosen iterations,
//! and the loss at every iteration.

use crate::figure::{num, sequential, Csv, LineFigure, Panel, Series, BLUE, VERMILION};
use crate::init_mlp::{digits_batch, Init, StackMlp};
use crate::Progress;
use chapter_02::Error;
use chapter_03::{Device, Result, Tensor};
use chapter_05::{cross_entropy, CrossEntropyOptions};
use chapter_06::{Optimizer, Sgd, SgdConfig};

// ANCHOR: sweep
/// What a sweep measures, and on what.
#[derive(Debug, Clone, PartialEq)]
pub struct GradNormSweep {
    /// Linear layers of each network (each depth is run at each width).
    pub depths: Vec<usize>,
    /// Hidden width of each network.
    pub widths: Vec<usize>,
    /// Networks per (init, depth, width), seeded `0..trials`.
    pub trials: usize,
    /// SGD steps (no momentum) at learning rate `lr`.
    pub steps: usize,
    pub lr: f64,
    /// Iterations at which `‖∂L/∂W₁‖²` is recorded (0 = at initialisation).
    pub record_at: Vec<usize>,
    /// Digits in the fixed batch (seed 0 picks them).
    pub batch: usize,
}

impl GradNormSweep {
    /// The book's depth sweep: width 128, depths 2 to 30, 10 trials,
    /// 100 steps at learning rate 0.01 on 64 digits.
    pub fn depth() -> GradNormSweep {
        GradNormSweep {
            depths: vec![2, 4, 6, 8, 10, 14, 18, 22, 26, 30],
            widths: vec![128],
            trials: 10,
            steps: 100,
            lr: 0.01,
            record_at: vec![0, 10, 100],
            batch: 64,
        }
    }

    /// The book's width sweep: depth 8, widths 16 to 2048, 6 trials,
    /// recorded at initialisation and after 10 steps.
    pub fn width() -> GradNormSweep {
        GradNormSweep {
            depths: vec![8],
            widths: vec![16, 32, 64, 128, 256, 512, 1024, 2048],
            trials: 6,
            steps: 10,
            lr: 0.01,
            record_at: vec![0, 10],
            batch: 64,
        }
    }
}

/// The measurements of one (init, depth, width): one value per trial.
#[derive(Debug, Clone, PartialEq)]
pub struct GradNormCell {
    pub init: Init,
    pub depth: usize,
    pub width: usize,
    /// `grad_sq[k][t]`: `‖∂L/∂W₁‖²` at `record_at[k]` in trial `t`.
    pub grad_sq: Vec<Vec<f64>>,
    /// `loss[s][t]`: the loss before update `s` (`s = 0..=steps`) in trial `t`.
    pub loss: Vec<Vec<f64>>,
}
// ANCHOR_END: sweep

// ANCHOR: sweep_run
impl GradNormSweep {
    /// Runs every cell (init, depth, width), calling `progress` after each
    /// network.
    pub fn run(&self, device: &Device, progress: &mut Progress) -> Result<Vec<GradNormCell>> {
        if self.trials == 0 || self.depths.is_empty() || self.widths.is_empty() {
            return Err(Error::invalid(
                "GradNormSweep",
                "needs at least one depth, one width and one trial",
            ));
        }
        if let Some(&k) = self.record_at.iter().find(|&&k| k > self.steps) {
            return Err(Error::invalid(
                "GradNormSweep",
                format!(
                    "iteration {k} is recorded but only {} steps are run",
                    self.steps
                ),
            ));
        }
        let (x, labels) = digits_batch(self.batch, 0, device)?;
        let (inputs, classes) = (x.dims()[1], 10);
        let total = 2 * self.depths.len() * self.widths.len() * self.trials;
        progress.start(total);
        let mut cells = Vec::new();
        for init in Init::BOTH {
            for &depth in &self.depths {
                for &width in &self.widths {
                    let sizes = StackMlp::sizes(inputs, width, depth, classes);
                    let mut cell = GradNormCell {
                        init,
                        depth,
                        width,
                        grad_sq: vec![Vec::new(); self.record_at.len()],
                        loss: vec![Vec::new(); self.steps + 1],
                    };
                    for trial in 0..self.trials {
                        let net = StackMlp::new(&sizes, init, true, trial as u64, device)?;
                        self.train(&net, &x, &labels, &mut cell)?;
                        progress.advance(&format!("{} depth {depth} width {width}", init.name()));
                    }
                    cells.push(cell);
                }
            }
        }
        Ok(cells)
    }

    /// One trial: `steps` SGD updates, recording into `cell`.
    fn train(
        &self,
        net: &StackMlp,
        x: &Tensor,
        labels: &Tensor,
        cell: &mut GradNormCell,
    ) -> Result<()> {
        let mut opt = Sgd::new(net.parameters(), SgdConfig::new(self.lr))?;
        for step in 0..=self.steps {
            opt.zero_grad();
            let loss = cross_entropy(&net.forward(x)?, labels, &CrossEntropyOptions::default())?;
            cell.loss[step].push(loss.to_vec_f64()?[0]);
            let recorded = self.record_at.iter().position(|&k| k == step);
            if recorded.is_none() && step == self.steps {
                break;
            }
            loss.backward()?;
            if let Some(k) = recorded {
                cell.grad_sq[k].push(net.first_layer_grad_sq()?);
            }
            if step < self.steps {
                opt.step()?;
            }
        }
        Ok(())
    }
}
// ANCHOR_END: sweep_run

/// Mean, minimum and maximum of the finite values (NaN when none).
pub fn summary(values: &[f64]) -> (f64, f64, f64) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = finite.iter().sum::<f64>() / finite.len() as f64;
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, lo, hi)
}

fn color(init: Init) -> plotters::style::RGBColor {
    match init {
        Init::Xavier => VERMILION,
        Init::Kaiming => BLUE,
    }
}

/// The data behind the figures: one row per (init, depth, width,
/// iteration) with mean, min, max and every trial's value.
pub fn grad_norm_csv(sweep: &GradNormSweep, cells: &[GradNormCell]) -> Csv {
    let mut csv = Csv::new(&[
        "init",
        "depth",
        "width",
        "iteration",
        "grad_sq_first_layer_mean",
        "grad_sq_min",
        "grad_sq_max",
        "loss_mean",
        "grad_sq_per_trial",
    ]);
    for c in cells {
        for (k, &it) in sweep.record_at.iter().enumerate() {
            let (mean, lo, hi) = summary(&c.grad_sq[k]);
            let loss = summary(&c.loss[it]).0;
            let trials: Vec<String> = c.grad_sq[k].iter().map(|&v| num(v)).collect();
            csv.row(&[
                c.init.name().into(),
                c.depth.to_string(),
                c.width.to_string(),
                it.to_string(),
                num(mean),
                num(lo),
                num(hi),
                num(loss),
                trials.join(";"),
            ]);
        }
    }
    csv
}

/// The loss curves: one row per (init, depth, width, step), mean over trials.
pub fn loss_csv(cells: &[GradNormCell]) -> Csv {
    let mut csv = Csv::new(&[
        "init",
        "depth",
        "width",
        "step",
        "loss_mean",
        "loss_min",
        "loss_max",
    ]);
    for c in cells {
        for (s, losses) in c.loss.iter().enumerate() {
            let (mean, lo, hi) = summary(losses);
            csv.row(&[
                c.init.name().into(),
                c.depth.to_string(),
                c.width.to_string(),
                s.to_string(),
                num(mean),
                num(lo),
                num(hi),
            ]);
        }
    }
    csv
}

/// One panel per recorded iteration: `‖∂L/∂W₁‖²` against depth (or width,
/// `by_width`), mean over trials with the min–max band, one line per init.
pub fn grad_norm_figure(
    sweep: &GradNormSweep,
    cells: &[GradNormCell],
    by_width: bool,
) -> LineFigure {
    let mut panels = Vec::new();
    for (k, &it) in sweep.record_at.iter().enumerate() {
        let title = if it == 0 {
            "at initialisation".to_string()
        } else {
            format!("after {it} SGD steps")
        };
        let x_label = if by_width {
            "hidden width (units)"
        } else {
            "depth (linear layers)"
        };
        let mut panel = Panel::new(title, x_label, "‖∂L/∂W₁‖²").log_y();
        if by_width {
            panel = panel.log_x();
        }
        for init in Init::BOTH {
            let mut points = Vec::new();
            let mut band = Vec::new();
            for c in cells.iter().filter(|c| c.init == init) {
                let x = if by_width { c.width } else { c.depth } as f64;
                let (mean, lo, hi) = summary(&c.grad_sq[k]);
                if mean.is_finite() && mean > 0.0 {
                    points.push((x, mean));
                    band.push((x, lo.max(mean * 1e-6), hi));
                }
            }
            panel.series.push(
                Series::line(
                    format!(
                        "{} (mean of {} trials; band: min–max)",
                        init.name(),
                        sweep.trials
                    ),
                    color(init),
                    points,
                )
                .with_band(band)
                .with_markers(),
            );
        }
        panels.push(panel);
    }
    let columns = panels.len();
    LineFigure::new(panels, columns)
}

/// The loss curves by depth: one panel per init, one line per depth
/// (mean over trials), on a log step axis so both the first steps and the
/// last are visible.
pub fn loss_figure(sweep: &GradNormSweep, cells: &[GradNormCell]) -> LineFigure {
    let depths = &sweep.depths;
    let mut panels = Vec::new();
    for init in Init::BOTH {
        let mut panel = Panel::new(
            format!("{} initialisation", init.name()),
            "SGD step",
            "cross-entropy on the batch (nats)",
        );
        for (i, &depth) in depths.iter().enumerate() {
            if let Some(c) = cells.iter().find(|c| c.init == init && c.depth == depth) {
                let points: Vec<(f64, f64)> = c
                    .loss
                    .iter()
                    .enumerate()
                    .map(|(s, l)| (s as f64, summary(l).0))
                    .filter(|p| p.1.is_finite())
                    .collect();
                panel.series.push(Series::line(
                    format!("depth {depth}"),
                    sequential(i, depths.len()),
                    points,
                ));
            }
        }
        panels.push(panel);
    }
    LineFigure::new(panels, 2)
}
