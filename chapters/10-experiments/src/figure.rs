//! The book's figure style, and writing a figure safely.
//!
//! Every figure of the book is a [`LineFigure`]: one or more panels of
//! lines (with an optional shaded band for the spread over trials), drawn
//! at a width that fills the page, with text large enough to read there,
//! and with one legend for all panels in a strip *below* them, where it
//! can never cover data.
//!
//! [`save_figure`] writes the SVG and the PNG, and [`write_file_atomically`]
//! the data behind them, each to a temporary file in the destination folder
//! that is renamed into place only once it is complete: an experiment that
//! fails or is interrupted halfway leaves the previous figure whole, never
//! half of a new one.

use chapter_01::plot::{register_font, FONT_FAMILY};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of drawing and writing figures.
pub type FigureError = Box<dyn Error + Send + Sync>;

// ANCHOR: style
/// Width of a full-width figure, in pixels. The book's text column is about
/// 750–900 px wide, so the figure is shown at (nearly) its own size.
pub const FULL_WIDTH: u32 = 960;
/// Font sizes at that width: titles, axis descriptions, tick labels, legend.
pub const TITLE_FONT: u32 = 22;
pub const LABEL_FONT: u32 = 19;
pub const TICK_FONT: u32 = 17;
pub const LEGEND_FONT: u32 = 18;

/// Two colours that stay apart for readers with a red–green deficiency
/// (blue and vermilion), for two-way comparisons such as Xavier against
/// Kaiming.
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const VERMILION: RGBColor = RGBColor(213, 94, 0);
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
pub const GREY: RGBColor = RGBColor(110, 110, 110);
// ANCHOR_END: style

/// The `i`-th of `n` colours of a sequential scale (dark blue → green →
/// yellow, after viridis), for lines that are ordered: layer 1, 2, ..., or
/// depth 2, 4, ....
pub fn sequential(i: usize, n: usize) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (222.0, 200.0, 30.0),
    ];
    let t = if n <= 1 {
        0.0
    } else {
        i as f64 / (n - 1) as f64
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let k = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - k as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its legend entry; series of the same name in several panels share one.
    pub name: String,
    pub color: RGBColor,
    /// `(x, y)` points, in order of `x`.
    pub points: Vec<(f64, f64)>,
    /// `(x, low, high)`: the spread around the line (e.g. min and max over
    /// seeds), drawn as a light band; empty for none.
    pub band: Vec<(f64, f64, f64)>,
    /// Dashed: a prediction rather than a measurement.
    pub dashed: bool,
    /// A dot on every point (for sparse measurements).
    pub markers: bool,
}

impl Series {
    /// A solid line without band or markers.
    pub fn line(name: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            color,
            points,
            band: Vec::new(),
            dashed: false,
            markers: false,
        }
    }

    pub fn with_band(mut self, band: Vec<(f64, f64, f64)>) -> Series {
        self.band = band;
        self
    }

    pub fn with_markers(mut self) -> Series {
        self.markers = true;
        self
    }

    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }
}

/// One chart: a title, two labelled axes (say the unit!), its lines. A log
/// axis adds ", log scale" to its description itself.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_log: bool,
    pub y_log: bool,
    pub series: Vec<Series>,
}

impl Panel {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Panel {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_log: false,
            y_log: false,
            series: Vec::new(),
        }
    }

    pub fn log_x(mut self) -> Panel {
        self.x_log = true;
        self
    }

    pub fn log_y(mut self) -> Panel {
        self.y_log = true;
        self
    }

    /// The range of every x and every y (lines and bands), padded; on a
    /// log axis only positive values count and the padding is a ratio.
    fn ranges(&self, x_log: bool, y_log: bool) -> ((f64, f64), (f64, f64)) {
        let ok = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for s in &self.series {
            for &(x, y) in &s.points {
                if ok(x, x_log) && ok(y, y_log) {
                    xs.push(x);
                    ys.push(y);
                }
            }
            for &(x, lo, hi) in &s.band {
                for y in [lo, hi] {
                    if ok(x, x_log) && ok(y, y_log) {
                        xs.push(x);
                        ys.push(y);
                    }
                }
            }
        }
        (padded(&xs, x_log, 0.02), padded(&ys, y_log, 0.06))
    }

    /// Which axes are drawn on a log scale: those asked for, when the data
    /// spans at least a factor of 10 (on less, a log axis has too few ticks
    /// to read). The axis description then says "log scale".
    fn log_axes(&self) -> (bool, bool) {
        let ((x0, x1), (y0, y1)) = self.ranges(self.x_log, self.y_log);
        (self.x_log && x1 / x0 >= 10.0, self.y_log && y1 / y0 >= 10.0)
    }
}

/// The ticks of a log axis from `lo` to `hi`: 1, 2 and 5 times each power
/// of ten when the axis spans less than three decades (plotters would
/// label only the powers of ten, which leaves one label or none), the
/// powers of ten up to eight decades, and every other one beyond.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (hi / lo).log10();
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let (mantissas, every): (&[f64], i32) = if decades < 3.0 {
        (&[1.0, 2.0, 5.0], 1)
    } else if decades <= 8.0 {
        (&[1.0], 1)
    } else {
        (&[1.0], 2)
    };
    (first..=last)
        .filter(|e| e.rem_euclid(every) == 0)
        .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|&v| v >= lo && v <= hi)
        .collect()
}

/// `[min, max]` of `values` widened by `fraction` of the span (of the
/// decades, on a log axis); a sensible range when all are equal or none.
fn padded(values: &[f64], log: bool, fraction: f64) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (a, b) = (lo.log10(), hi.log10());
        let pad = ((b - a) * fraction).max(0.05);
        (10f64.powf(a - pad), 10f64.powf(b + pad))
    } else {
        let pad = ((hi - lo) * fraction)
            .max(hi.abs().max(lo.abs()) * 1e-3)
            .max(1e-9);
        (lo - pad, hi + pad)
    }
}

/// A tick label: `0.25`, `1000`, or `1e-6` for the very small or large.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        let exp = a.log10().floor();
        let mantissa = v / 10f64.powf(exp);
        if (mantissa.abs() - 1.0).abs() < 1e-6 {
            format!("{}1e{exp}", if v < 0.0 { "-" } else { "" })
        } else {
            format!("{mantissa:.1}e{exp}")
        }
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

// ANCHOR: line_figure
/// Panels in a grid and one legend below them.
#[derive(Debug, Clone)]
pub struct LineFigure {
    pub panels: Vec<Panel>,
    /// Panels per row.
    pub columns: usize,
    /// Height of one row of panels, in pixels.
    pub row_height: u32,
    /// Width of the whole figure.
    pub width: u32,
}

impl LineFigure {
    /// `panels` side by side in rows of `columns`, full width.
    pub fn new(panels: Vec<Panel>, columns: usize) -> LineFigure {
        LineFigure {
            panels,
            columns: columns.max(1),
            row_height: 440,
            width: FULL_WIDTH,
        }
    }

    /// The legend: each distinct name once, in order of first appearance.
    fn legend(&self) -> Vec<(String, RGBColor, bool)> {
        let mut entries: Vec<(String, RGBColor, bool)> = Vec::new();
        for s in self.panels.iter().flat_map(|p| &p.series) {
            if !s.name.is_empty() && !entries.iter().any(|e| e.0 == s.name) {
                entries.push((s.name.clone(), s.color, s.dashed));
            }
        }
        entries
    }

    /// Rows of legend entries, each entry with its x offset: entries flow
    /// left to right and wrap at the figure's width.
    fn legend_layout(&self) -> Vec<Vec<(i32, String, RGBColor, bool)>> {
        let mut rows = vec![Vec::new()];
        let mut x = 20;
        for (name, color, dashed) in self.legend() {
            // DejaVu Sans averages about 0.6 em per character.
            let w = 48 + (name.chars().count() as f64 * LEGEND_FONT as f64 * 0.6) as i32 + 28;
            if x + w > self.width as i32 - 10 && x > 20 {
                rows.push(Vec::new());
                x = 20;
            }
            rows.last_mut()
                .expect("a row")
                .push((x, name, color, dashed));
            x += w;
        }
        rows.retain(|r| !r.is_empty());
        rows
    }

    /// The figure's size in pixels: the rows of panels plus the legend strip.
    pub fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.columns) as u32;
        let legend_rows = self.legend_layout().len() as u32;
        let legend = if legend_rows == 0 {
            0
        } else {
            legend_rows * (LEGEND_FONT + 14) + 16
        };
        (self.width, rows * self.row_height + legend)
    }

    /// Draws the figure on `root` (of [`LineFigure::size`]).
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(boxed)?;
        let rows = self.panels.len().div_ceil(self.columns);
        let (charts, legend) = root.split_vertically(rows as u32 * self.row_height);
        let cells = charts.split_evenly((rows, self.columns));
        for (panel, area) in self.panels.iter().zip(cells.iter()) {
            draw_panel(panel, area)?;
        }
        let line_height = (LEGEND_FONT + 14) as i32;
        for (r, row) in self.legend_layout().into_iter().enumerate() {
            let y = 8 + r as i32 * line_height + line_height / 2;
            for (x, name, color, dashed) in row {
                let style = color.stroke_width(3);
                if dashed {
                    for k in 0..3 {
                        legend
                            .draw(&PathElement::new(
                                vec![(x + k * 14, y), (x + k * 14 + 8, y)],
                                style,
                            ))
                            .map_err(boxed)?;
                    }
                } else {
                    legend
                        .draw(&PathElement::new(vec![(x, y), (x + 36, y)], style))
                        .map_err(boxed)?;
                }
                legend
                    .draw(&Text::new(
                        name,
                        (x + 46, y - LEGEND_FONT as i32 / 2 - 1),
                        (FONT_FAMILY, LEGEND_FONT).into_font().color(&BLACK),
                    ))
                    .map_err(boxed)?;
            }
        }
        root.present().map_err(boxed)?;
        Ok(())
    }
}
// ANCHOR_END: line_figure

fn boxed<E: Error + Send + Sync + 'static>(e: E) -> FigureError {
    Box::new(e)
}

fn draw_panel<DB: DrawingBackend>(
    panel: &Panel,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), FigureError>
where
    DB::ErrorType: 'static,
{
    let (x_log, y_log) = panel.log_axes();
    let ((x0, x1), (y0, y1)) = panel.ranges(x_log, y_log);
    let describe = |label: &str, log: bool| {
        if log {
            format!("{label}, log scale")
        } else {
            label.to_string()
        }
    };
    let (x_desc, y_desc) = (
        describe(&panel.x_label, x_log),
        describe(&panel.y_label, y_log),
    );
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, (FONT_FAMILY, TITLE_FONT))
        .margin(14)
        .margin_right(22)
        .x_label_area_size(56)
        .y_label_area_size(84);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc.as_str())
                .y_desc(y_desc.as_str())
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&|v| tick_label(*v))
                .y_label_formatter(&|v| tick_label(*v))
                .label_style((FONT_FAMILY, TICK_FONT))
                .axis_desc_style((FONT_FAMILY, LABEL_FONT))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.08))
                .draw()
                .map_err(boxed)?;
            for s in &panel.series {
                if !s.band.is_empty() {
                    let mut outline: Vec<(f64, f64)> =
                        s.band.iter().map(|&(x, lo, _)| (x, lo)).collect();
                    outline.extend(s.band.iter().rev().map(|&(x, _, hi)| (x, hi)));
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            outline,
                            s.color.mix(0.18).filled(),
                        )))
                        .map_err(boxed)?;
                }
            }
            for s in &panel.series {
                let style = s.color.stroke_width(3);
                if s.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(s.points.clone(), 10, 7, style))
                        .map_err(boxed)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(s.points.clone(), style))
                        .map_err(boxed)?;
                }
                if s.markers {
                    chart
                        .draw_series(
                            s.points
                                .iter()
                                .map(|&p| Circle::new(p, 5, s.color.filled())),
                        )
                        .map_err(boxed)?;
                }
            }
        }};
    }
    let log = |lo: f64, hi: f64| (lo..hi).log_scale().with_key_points(log_ticks(lo, hi));
    match (x_log, y_log) {
        (false, false) => finish!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(boxed)?),
        (false, true) => finish!(builder
            .build_cartesian_2d(x0..x1, log(y0, y1))
            .map_err(boxed)?),
        (true, false) => finish!(builder
            .build_cartesian_2d(log(x0, x1), y0..y1)
            .map_err(boxed)?),
        (true, true) => finish!(builder
            .build_cartesian_2d(log(x0, x1), log(y0, y1))
            .map_err(boxed)?),
    }
    Ok(())
}

// ANCHOR: atomic
/// Writes `bytes` to `path` through a temporary file in the same folder,
/// renamed into place once complete (a rename within one folder is atomic):
/// a reader, or a run that dies halfway, sees the old file or the new one.
/// The temporary file is removed when anything fails.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), FigureError> {
    let tmp = temporary_path(path);
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: cannot write: {e}", path.display()).into());
    }
    Ok(())
}

/// `.NAME.PID.tmp.EXT` beside `path`: hidden, unique to this process, and
/// with the extension kept (plotters picks the image format from it).
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tmp".into());
    path.with_file_name(format!(".{name}.{}.tmp.{ext}", std::process::id()))
}

/// Draws `figure` into `DIR/STEM.svg` and `DIR/STEM.png`, each through a
/// temporary file; returns both paths.
pub fn save_figure(
    dir: &Path,
    stem: &str,
    figure: &LineFigure,
) -> Result<Vec<PathBuf>, FigureError> {
    register_font().map_err(|e| e.to_string())?;
    let size = figure.size();
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        figure
            .draw(&root)
            .map_err(|e| format!("{}: cannot draw: {e}", svg_path.display()))?;
    }
    write_file_atomically(&svg_path, svg.as_bytes())?;

    let png_path = dir.join(format!("{stem}.png"));
    let tmp = temporary_path(&png_path);
    let drawn = (|| -> Result<(), FigureError> {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        figure.draw(&root)?;
        drop(root);
        std::fs::rename(&tmp, &png_path)?;
        Ok(())
    })();
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: cannot write: {e}", png_path.display()).into());
    }
    Ok(vec![svg_path, png_path])
}
// ANCHOR_END: atomic

/// A CSV table built row by row; numbers are written with a fixed number
/// of significant digits so that the same run gives the same bytes.
#[derive(Debug, Clone, Default)]
pub struct Csv {
    text: String,
}

impl Csv {
    pub fn new(header: &[&str]) -> Csv {
        Csv {
            text: header.join(",") + "\n",
        }
    }

    pub fn row(&mut self, cells: &[String]) {
        self.text += &cells.join(",");
        self.text.push('\n');
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Writes the table to `DIR/STEM.csv` atomically.
    pub fn save(&self, dir: &Path, stem: &str) -> Result<PathBuf, FigureError> {
        let path = dir.join(format!("{stem}.csv"));
        write_file_atomically(&path, self.text.as_bytes())?;
        Ok(path)
    }
}

/// A number for a CSV cell: 6 significant digits.
pub fn num(v: f64) -> String {
    format!("{v:.6e}")
}
