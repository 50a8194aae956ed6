//! Depth in residual networks: chapter 09's measurement of the gradient
//! that reaches the first layer of a ResNet, with and without its skip
//! connections, drawn in the book's figure style.

use crate::figure::{num, save_figure, Csv, LineFigure, Panel, Series, BLUE, VERMILION};
use crate::{FigureError, Outcome, Progress, Size};
use chapter_03::DType;
use chapter_06::data::{default_data_dir, load_digits};
use chapter_09::experiments::{fixed_batch, GradNormExperiment, GradNormPoint};
use std::path::Path;

/// Examples in the fixed batch, and the seed that picks them (as in
/// chapter 09).
const BATCH: usize = 64;
const BATCH_SEED: u64 = 9;
const STEM: &str = "09-grad-norm-depth";

/// `candle experiment resnet-depth`: writes `09-grad-norm-depth.{csv,svg,png}`.
pub fn run_resnet_depth(
    out: &Path,
    size: Size,
    progress: &mut Progress,
) -> Result<Outcome, FigureError> {
    let path = default_data_dir().join("digits/digits.csv.gz");
    let digits = load_digits(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let device = chapter_02::default_device()?;
    let (x, labels) = fixed_batch(&digits, BATCH, BATCH_SEED, DType::F32, &device)?;
    let mut experiment = GradNormExperiment::default();
    if size == Size::Quick {
        experiment.depths = vec![6, 10];
        experiment.width = 4;
        experiment.steps = 2;
        experiment.seeds = vec![0];
    }
    progress.start(experiment.depths.len() * 4);
    let points = experiment.run(&x, &labels, 10, |p| {
        progress.advance(&format!(
            "depth {} {}",
            p.depth,
            if p.residual { "residual" } else { "plain" }
        ))
    })?;
    let mut csv = Csv::new(&[
        "depth",
        "skips",
        "step",
        "grad_norm_first_layer_mean",
        "loss_mean",
        "grad_norm_per_seed",
    ]);
    let mut outcome = Outcome::default();
    for p in &points {
        let seeds: Vec<String> = p.per_seed.iter().map(|&v| num(v)).collect();
        csv.row(&[
            p.depth.to_string(),
            if p.residual { "yes" } else { "no" }.into(),
            p.step.to_string(),
            num(p.first_layer),
            num(p.loss),
            seeds.join(";"),
        ]);
        outcome.summary.push(format!(
            "depth {:>2} {:<8} step {:>2}: ‖∂L/∂W₁‖ = {:.4}, loss {:.4}",
            p.depth,
            if p.residual { "residual" } else { "plain" },
            p.step,
            p.first_layer,
            p.loss
        ));
    }
    outcome.files.push(csv.save(out, STEM)?);
    outcome
        .files
        .extend(save_figure(out, STEM, &figure(&points, experiment.steps))?);
    Ok(outcome)
}

/// Three panels: the gradient norm at initialisation and after training,
/// and the loss after training, against depth.
pub fn figure(points: &[GradNormPoint], steps: usize) -> LineFigure {
    let panels = [
        ("at initialisation".to_string(), 0, "‖∂L/∂W₁‖", false),
        (format!("after {steps} SGD steps"), steps, "‖∂L/∂W₁‖", false),
        (
            format!("loss after {steps} steps"),
            steps,
            "cross-entropy (nats)",
            true,
        ),
    ]
    .into_iter()
    .map(|(title, step, y, loss)| {
        let mut panel = Panel::new(title, "depth (layers with weights)", y).log_y();
        for (residual, color, name) in [
            (true, BLUE, "with skip connections (ResNet)"),
            (false, VERMILION, "without (plain)"),
        ] {
            let line = points
                .iter()
                .filter(|p| p.residual == residual && p.step == step)
                .map(|p| (p.depth as f64, if loss { p.loss } else { p.first_layer }))
                .collect();
            panel
                .series
                .push(Series::line(name, color, line).with_markers());
        }
        panel
    })
    .collect();
    LineFigure::new(panels, 3)
}
