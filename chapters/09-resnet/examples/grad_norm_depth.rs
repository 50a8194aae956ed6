//! The figure of the book's section on skip connections: the gradient norm
//! of the first layer of basic-block networks of depth 14, 26 and 50, with
//! and without skip connections, at initialisation and after 50 SGD steps
//! (with the training loss reached),
//! on a fixed batch of 64 of the 8 × 8 digits (mean over three seeds).
//!
//! ```text
//! cargo run --release -p chapter-09 --example grad_norm_depth
//! ```
//!
//! writes `book/src/figures/09-grad-norm-depth.{csv,svg,png}` (each
//! through a temporary file renamed into place, so an interrupted run
//! leaves the old figure whole). An optional argument names another
//! output folder.

use chapter_01::plot::{register_font, FONT_FAMILY};
use chapter_03::DType;
use chapter_05::state_dict::write_atomically;
use chapter_06::data::{default_data_dir, load_digits};
use chapter_09::experiments::{fixed_batch, GradNormExperiment, GradNormPoint};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

type DynError = Box<dyn Error>;

/// Examples in the fixed batch, and the seed that picks them.
const BATCH: usize = 64;
const BATCH_SEED: u64 = 9;
const STEM: &str = "09-grad-norm-depth";

fn main() -> Result<(), DynError> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../book/src/figures")
        });
    let digits = load_digits(default_data_dir().join("digits/digits.csv.gz"))?;
    let device = chapter_02::default_device()?;
    let (x, labels) = fixed_batch(&digits, BATCH, BATCH_SEED, DType::F32, &device)?;
    let experiment = GradNormExperiment::default();
    let start = Instant::now();
    let points =
        experiment.run(&x, &labels, 10, |p| {
            println!(
            "depth {:>2} {:<8} step {:>2}: |dL/dW1| = {:.4} (seeds {:?}), loss {:.4}  [{:.0} s]",
            p.depth,
            if p.residual { "residual" } else { "plain" },
            p.step,
            p.first_layer,
            p.per_seed.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>(),
            p.loss,
            start.elapsed().as_secs_f64()
        )
        })?;

    let mut csv =
        String::from("depth,skips,step,grad_norm_first_layer_mean,loss_mean,grad_norm_per_seed\n");
    for p in &points {
        let seeds: Vec<String> = p.per_seed.iter().map(|v| format!("{v:.6}")).collect();
        csv += &format!(
            "{},{},{},{:.6},{:.6},{}\n",
            p.depth,
            if p.residual { "yes" } else { "no" },
            p.step,
            p.first_layer,
            p.loss,
            seeds.join(";")
        );
    }
    let csv_path = out.join(format!("{STEM}.csv"));
    write_atomically(&csv_path, csv.as_bytes())?;
    println!("wrote {}", csv_path.display());
    draw(&out, &points, experiment.steps)?;
    Ok(())
}

/// Draws both panels (initialisation, after training) into `<STEM>.svg`
/// and `<STEM>.png`, each through a temporary file.
fn draw(dir: &Path, points: &[GradNormPoint], steps: usize) -> Result<(), DynError> {
    register_font()?;
    let size = (1500, 420);
    for ext in ["svg", "png"] {
        let path = dir.join(format!("{STEM}.{ext}"));
        let tmp = dir.join(format!(".{STEM}.{}.tmp.{ext}", std::process::id()));
        let drawn = match ext {
            "svg" => panels(
                SVGBackend::new(&tmp, size).into_drawing_area(),
                points,
                steps,
            ),
            _ => panels(
                BitMapBackend::new(&tmp, size).into_drawing_area(),
                points,
                steps,
            ),
        };
        if let Err(e) = drawn.and_then(|_| Ok(std::fs::rename(&tmp, &path)?)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("{}: {e}", path.display()).into());
        }
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn panels<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    points: &[GradNormPoint],
    steps: usize,
) -> Result<(), DynError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let areas = root.split_evenly((1, 3));
    let titles = [
        "first-layer gradient norm at initialisation".to_string(),
        format!("first-layer gradient norm after {steps} steps"),
        format!("training loss after {steps} steps"),
    ];
    let range = |values: &mut dyn Iterator<Item = f64>| {
        values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    let norms = range(&mut points.iter().map(|p| p.first_layer));
    let losses = range(&mut points.iter().filter(|p| p.step == steps).map(|p| p.loss));
    let depths: Vec<usize> = {
        let mut d: Vec<usize> = points.iter().map(|p| p.depth).collect();
        d.dedup();
        d
    };
    let x_range =
        (*depths.first().unwrap_or(&0) as f64 - 3.0)..(*depths.last().unwrap_or(&1) as f64 + 3.0);
    for (panel, (area, title)) in areas.iter().zip(&titles).enumerate() {
        let (step, (lo, hi), y_desc) = match panel {
            0 => (0, norms, "‖∂L/∂W₁‖ (stem convolution)"),
            1 => (steps, norms, "‖∂L/∂W₁‖ (stem convolution)"),
            _ => (steps, losses, "cross-entropy on the batch"),
        };
        let value = |p: &GradNormPoint| if panel == 2 { p.loss } else { p.first_layer };
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT_FAMILY, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(
                x_range.clone(),
                ((lo / 2.0).max(1e-12)..(hi * 40.0)).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("depth (layers with weights)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_desc(y_desc)
            .label_style((FONT_FAMILY, 12))
            .x_labels(depths.len() + 2)
            .draw()?;
        for (residual, color, name) in [
            (true, RGBColor(38, 96, 200), "with skips (ResNet)"),
            (false, RGBColor(214, 72, 40), "without skips (plain)"),
        ] {
            let line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.residual == residual && p.step == step)
                .map(|p| (p.depth as f64, value(p)))
                .collect();
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT_FAMILY, 12))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
