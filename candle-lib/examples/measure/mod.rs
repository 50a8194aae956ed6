//! What the measurement examples share: reading their options, saying how
//! busy the machine was, and writing a table (CSV) and a figure (SVG and
//! PNG, with the book's font) into the book's figure folder.
//!
//! Timings mean little without the load they were taken under, so every
//! table these examples write carries the load average beside its numbers.

// Each example compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use chapter_01::plot::{register_font, FONT_FAMILY};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub type DynError = Box<dyn std::error::Error>;

/// `--name value` options, each allowed at most once and each one of
/// `known`: a misspelt or repeated option is an error, not ignored.
pub struct Options {
    program: &'static str,
    values: BTreeMap<String, String>,
}

impl Options {
    /// Reads the command line; `--help` prints `usage` and exits.
    pub fn parse(program: &'static str, known: &[&str], usage: &str) -> Result<Self, DynError> {
        let mut values = BTreeMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(name) = args.next() {
            if name == "--help" || name == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            if !known.contains(&name.as_str()) {
                return Err(format!(
                    "{program}: unknown option {name:?}; the options are {}\n\n{usage}",
                    known.join(", ")
                )
                .into());
            }
            let value = args
                .next()
                .ok_or_else(|| format!("{program}: {name} needs a value"))?;
            if values.insert(name.clone(), value).is_some() {
                return Err(format!("{program}: {name} is given twice").into());
            }
        }
        Ok(Options { program, values })
    }

    /// The option's text, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A whole number in `range` (or `default`), with a message naming the
    /// option, the value and the range when it is not.
    pub fn number(
        &self,
        name: &str,
        default: usize,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<usize, DynError> {
        let Some(text) = self.text(name) else {
            return Ok(default);
        };
        match text.parse::<usize>() {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(format!(
                "{}: {name} {text:?} is out of range: it must be a whole number in [{}, {}]",
                self.program,
                range.start(),
                range.end()
            )
            .into()),
        }
    }

    /// The folder the results go to (default `book/src/figures`), created.
    pub fn out_dir(&self) -> Result<PathBuf, DynError> {
        let dir = PathBuf::from(self.text("--out").unwrap_or("book/src/figures"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("{}: --out {}: {e}", self.program, dir.display()))?;
        Ok(dir)
    }
}

/// The 1-minute load average from `/proc/loadavg` ("unknown" elsewhere):
/// above the number of cores, another program was taking turns with ours.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The threads rayon runs the kernels on (`RAYON_NUM_THREADS`, or one per
/// core).
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Writes `text` to `path` and says so.
pub fn write(path: &Path, text: &str) -> Result<(), DynError> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// One line of a chart: its name, its points, and whether it is dashed
/// (a prediction rather than a measurement).
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// One chart of a figure.
pub struct Chart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    /// A logarithmic y axis (for values spanning decades).
    pub log_y: bool,
    pub series: Vec<Series>,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(38, 96, 200),
    RGBColor(214, 72, 40),
    RGBColor(60, 150, 80),
    RGBColor(120, 80, 170),
];

/// Draws `charts` side by side into `<stem>.svg` and `<stem>.png` in `dir`.
pub fn draw_figure(dir: &Path, stem: &str, charts: &[Chart]) -> Result<(), DynError> {
    register_font()?;
    let size = (560 * charts.len() as u32, 400);
    let svg = dir.join(format!("{stem}.svg"));
    draw_charts(SVGBackend::new(&svg, size).into_drawing_area(), charts)?;
    let png = dir.join(format!("{stem}.png"));
    draw_charts(BitMapBackend::new(&png, size).into_drawing_area(), charts)?;
    println!("wrote {} and {}", svg.display(), png.display());
    Ok(())
}

fn draw_charts<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    charts: &[Chart],
) -> Result<(), DynError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    for (area, chart) in root.split_evenly((1, charts.len())).iter().zip(charts) {
        draw_chart(area, chart)?;
    }
    root.present()?;
    Ok(())
}

fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), DynError>
where
    DB::ErrorType: 'static,
{
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let x_max = points().map(|p| p.0).fold(f64::MIN, f64::max);
    let x_min = points().map(|p| p.0).fold(f64::MAX, f64::min);
    let y_max = points().map(|p| p.1).fold(f64::MIN, f64::max);
    let y_min = points().map(|p| p.1).fold(f64::MAX, f64::min);
    let x_range = (x_min - 0.02 * (x_max - x_min))..(x_max + 0.02 * (x_max - x_min));
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&chart.title, (FONT_FAMILY, 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60);
    if chart.log_y {
        // Room above the lines for the legend.
        let y_range = (y_min / 1.5).max(1e-9)..(y_max * 4.0);
        let mut c = builder.build_cartesian_2d(x_range, y_range.log_scale())?;
        c.configure_mesh()
            .x_desc(chart.x_desc.as_str())
            .y_desc(chart.y_desc.as_str())
            .label_style((FONT_FAMILY, 12))
            .draw()?;
        draw_series(&mut c, chart)?;
    } else {
        // Room above the lines for the legend.
        let y_range = 0.0..(y_max * 1.4).max(1e-9);
        let mut c = builder.build_cartesian_2d(x_range, y_range)?;
        c.configure_mesh()
            .x_desc(chart.x_desc.as_str())
            .y_desc(chart.y_desc.as_str())
            .label_style((FONT_FAMILY, 12))
            .draw()?;
        draw_series(&mut c, chart)?;
    }
    Ok(())
}

fn draw_series<'a, DB, X, Y>(
    c: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    chart: &Chart,
) -> Result<(), DynError>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, s) in chart.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = color.stroke_width(2);
        let drawn = if s.dashed {
            c.draw_series(DashedLineSeries::new(s.points.iter().copied(), 6, 4, style))?
        } else {
            c.draw_series(LineSeries::new(s.points.iter().copied(), style))?
        };
        drawn
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        // Markers only where there are few points (one per measurement).
        if !s.dashed && s.points.len() <= 30 {
            c.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT_FAMILY, 12))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}
