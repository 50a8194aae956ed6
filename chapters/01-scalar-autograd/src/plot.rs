//! Figures with plotters: the decision boundary a model learned, and its
//! training curve. Both are written as PNG or SVG, chosen by the file
//! extension.
//!
//! Text is drawn with the DejaVu Sans font shipped in `data/fonts/` and
//! compiled into the program, so figures look the same everywhere and need
//! no system fonts. Later chapters call [`register_font`] before drawing.

use crate::{Dataset, Mlp, StepReport};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font as plotters_register_font, FontStyle};
use std::error::Error;
use std::path::Path;
use std::sync::OnceLock;

/// Errors of the plotting functions (I/O, drawing, font).
pub type PlotError = Box<dyn Error>;

/// The bytes of DejaVu Sans (licence: `data/fonts/LICENSE-DejaVu.txt`).
pub static FONT_BYTES: &[u8] = include_bytes!("../../../data/fonts/DejaVuSans.ttf");

/// The font family name every figure of the book uses.
pub const FONT_FAMILY: &str = "sans-serif";

// ANCHOR: register_font
/// Registers the embedded DejaVu Sans as plotters' `"sans-serif"` family
/// (other styles fall back to it). Call it before drawing any text; calling
/// it again is free.
pub fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters_register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err("the embedded font data/fonts/DejaVuSans.ttf could not be parsed".into())
    }
}
// ANCHOR_END: register_font

const NEGATIVE_REGION: RGBColor = RGBColor(250, 218, 205);
const POSITIVE_REGION: RGBColor = RGBColor(207, 223, 250);
const NEGATIVE_POINT: RGBColor = RGBColor(214, 72, 40);
const POSITIVE_POINT: RGBColor = RGBColor(38, 96, 200);

/// The model's score sampled on a grid over the data's bounding box: what a
/// decision-boundary figure draws.
#[derive(Debug, Clone)]
pub struct DecisionBoundary {
    /// Range of the first coordinate.
    pub x_range: [f64; 2],
    /// Range of the second coordinate.
    pub y_range: [f64; 2],
    /// Number of grid cells per side.
    pub resolution: usize,
    /// `scores[j][i]` is the score at grid point (i, j), i along x, j along y;
    /// `(resolution + 1)²` values.
    pub scores: Vec<Vec<f64>>,
    /// The data drawn on top.
    pub data: Dataset,
}

impl DecisionBoundary {
    /// Evaluates `model` on a `resolution × resolution` grid of cells
    /// covering `data` (plus a margin).
    pub fn compute(model: &Mlp, data: &Dataset, resolution: usize) -> DecisionBoundary {
        let resolution = resolution.max(1);
        let (x_range, y_range) = data.bounds(0.35);
        let scores = (0..=resolution)
            .map(|j| {
                let y = lerp(y_range, j as f64 / resolution as f64);
                (0..=resolution)
                    .map(|i| model.score(&[lerp(x_range, i as f64 / resolution as f64), y]))
                    .collect()
            })
            .collect();
        DecisionBoundary {
            x_range,
            y_range,
            resolution,
            scores,
            data: data.clone(),
        }
    }

    /// Writes the figure to `path`, PNG or SVG by extension, with a title.
    pub fn save(&self, path: &Path, title: &str) -> Result<(), PlotError> {
        register_font()?;
        let size = (640, 600);
        let ext = extension(path)?;
        replace_atomically(path, &ext, |tmp| match ext.as_str() {
            "png" => self.draw(BitMapBackend::new(tmp, size).into_drawing_area(), title),
            _ => self.draw(SVGBackend::new(tmp, size).into_drawing_area(), title),
        })
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), PlotError>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let [x0, x1] = self.x_range;
        let [y0, y1] = self.y_range;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT_FAMILY, 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(x0..x1, y0..y1)?;

        // Regions: each row of cells merged into runs of one class, so the
        // SVG holds a few hundred rectangles instead of tens of thousands.
        let n = self.resolution;
        let cell_class = |i: usize, j: usize| {
            let s = &self.scores;
            s[j][i] + s[j][i + 1] + s[j + 1][i] + s[j + 1][i + 1] > 0.0
        };
        let mut runs = Vec::new();
        for j in 0..n {
            let mut start = 0;
            for i in 1..=n {
                if i == n || cell_class(i, j) != cell_class(start, j) {
                    let color = if cell_class(start, j) {
                        POSITIVE_REGION
                    } else {
                        NEGATIVE_REGION
                    };
                    let corner = |i: usize, j: usize| {
                        (
                            lerp(self.x_range, i as f64 / n as f64),
                            lerp(self.y_range, j as f64 / n as f64),
                        )
                    };
                    runs.push(Rectangle::new(
                        [corner(start, j), corner(i, j + 1)],
                        color.filled(),
                    ));
                    start = i;
                }
            }
        }
        chart.draw_series(runs)?;

        // The boundary itself, the zero level of the score.
        let segments = self.zero_level_segments();
        chart.draw_series(
            segments
                .into_iter()
                .map(|[a, b]| PathElement::new(vec![a, b], BLACK.stroke_width(2))),
        )?;

        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x₁")
            .y_desc("x₂")
            .label_style((FONT_FAMILY, 14))
            .axis_desc_style((FONT_FAMILY, 17))
            .draw()?;

        for (label, color, name) in [
            (-1.0, NEGATIVE_POINT, "class −1"),
            (1.0, POSITIVE_POINT, "class +1"),
        ] {
            let points = self
                .data
                .points
                .iter()
                .zip(&self.data.labels)
                .filter(move |(_, &l)| l == label)
                .map(|(p, _)| (p[0], p[1]));
            chart
                .draw_series(points.map(move |p| {
                    EmptyElement::at(p)
                        + Circle::new((0, 0), 5, color.filled())
                        + Circle::new((0, 0), 5, BLACK.stroke_width(1))
                }))?
                .label(name)
                .legend(move |(x, y)| Circle::new((x, y), 5, color.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT_FAMILY, 16))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
        Ok(())
    }

    // ANCHOR: marching_squares
    /// The curve score = 0 as line segments, by marching squares: in each
    /// grid cell, find the edges whose two corners have scores of opposite
    /// sign, place the crossing on each by linear interpolation, and join the
    /// crossings in pairs.
    pub fn zero_level_segments(&self) -> Vec<[(f64, f64); 2]> {
        let n = self.resolution;
        let s = &self.scores;
        let point = |i: f64, j: f64| {
            (
                lerp(self.x_range, i / n as f64),
                lerp(self.y_range, j / n as f64),
            )
        };
        let mut segments = Vec::new();
        for j in 0..n {
            for i in 0..n {
                // Corners counter-clockwise from the lower left.
                let corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
                let mut crossings = Vec::with_capacity(4);
                for k in 0..4 {
                    let (ia, ja) = corners[k];
                    let (ib, jb) = corners[(k + 1) % 4];
                    let (a, b) = (s[ja][ia], s[jb][ib]);
                    if (a > 0.0) != (b > 0.0) {
                        let t = a / (a - b);
                        crossings.push(point(
                            ia as f64 + t * (ib as f64 - ia as f64),
                            ja as f64 + t * (jb as f64 - ja as f64),
                        ));
                    }
                }
                // Two crossings: one segment. Four (a saddle): pair them in order.
                for pair in crossings.chunks_exact(2) {
                    segments.push([pair[0], pair[1]]);
                }
            }
        }
        segments
    }
    // ANCHOR_END: marching_squares
}

/// Writes the training curve (loss on a log scale, accuracy on the right
/// axis) to `path`, PNG or SVG by extension.
pub fn save_training_curve(
    history: &[StepReport],
    path: &Path,
    title: &str,
) -> Result<(), PlotError> {
    register_font()?;
    let size = (640, 400);
    let ext = extension(path)?;
    replace_atomically(path, &ext, |tmp| match ext.as_str() {
        "png" => draw_training_curve(
            BitMapBackend::new(tmp, size).into_drawing_area(),
            history,
            title,
        ),
        _ => draw_training_curve(
            SVGBackend::new(tmp, size).into_drawing_area(),
            history,
            title,
        ),
    })
}

/// Draws into a temporary file beside `path` (same extension, so the
/// backend picks the same format) and renames it into place: a drawing
/// that fails or is interrupted leaves the old figure whole.
fn replace_atomically(
    path: &Path,
    ext: &str,
    draw: impl FnOnce(&Path) -> Result<(), PlotError>,
) -> Result<(), PlotError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp.{ext}", std::process::id()));
    let done = draw(&tmp).and_then(|()| Ok(std::fs::rename(&tmp, path)?));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

fn draw_training_curve<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    history: &[StepReport],
    title: &str,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let steps = history.len().max(2) as f64;
    let positive = history.iter().map(|r| r.loss).filter(|&l| l > 0.0);
    let lo = positive.clone().fold(f64::INFINITY, f64::min).min(1.0);
    let hi = positive.fold(0.0, f64::max).max(lo * 10.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT_FAMILY, 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .right_y_label_area_size(50)
        .build_cartesian_2d(0.0..steps - 1.0, (lo / 1.5..hi * 1.5).log_scale())?
        .set_secondary_coord(0.0..steps - 1.0, 0.0..1.05);
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss (log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FONT_FAMILY, 14))
        .axis_desc_style((FONT_FAMILY, 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("training accuracy")
        .label_style((FONT_FAMILY, 14))
        .axis_desc_style((FONT_FAMILY, 16))
        .draw()?;
    let loss_color = RGBColor(214, 72, 40);
    let accuracy_color = RGBColor(38, 96, 200);
    chart
        .draw_series(LineSeries::new(
            history
                .iter()
                .filter(|r| r.loss > 0.0)
                .map(|r| (r.step as f64, r.loss)),
            loss_color.stroke_width(2),
        ))?
        .label("loss")
        .legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], loss_color.stroke_width(2))
        });
    chart
        .draw_secondary_series(LineSeries::new(
            history.iter().map(|r| (r.step as f64, r.accuracy)),
            accuracy_color.stroke_width(2),
        ))?
        .label("accuracy")
        .legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], accuracy_color.stroke_width(2))
        });
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT_FAMILY, 16))
        .position(SeriesLabelPosition::MiddleRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// a + t·(b − a).
fn lerp([a, b]: [f64; 2], t: f64) -> f64 {
    a + t * (b - a)
}

/// The lower-case extension of `path`, which must be `png` or `svg`.
fn extension(path: &Path) -> Result<String, PlotError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "png" | "svg" => Ok(ext),
        _ => Err(format!(
            "cannot tell the image format of {}: use .png or .svg",
            path.display()
        )
        .into()),
    }
}
