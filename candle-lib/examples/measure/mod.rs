//! What the measurement examples share: reading their options, saying how
//! busy the machine was, and writing a table (CSV) and a figure (SVG and
//! PNG, with the book's font) into the book's figure folder.
//!
//! Timings mean little without the load they were taken under, so every
//! table these examples write carries the load average beside its numbers.

// Each example compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use candle::experiments::figure::{
    save_figure, write_file_atomically, LineFigure, Panel, Series as Line,
};
use plotters::style::RGBColor;
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
        Options::parse_from(program, known, usage, std::env::args().skip(1).collect())
    }

    /// Reads `args` (the options, without the program's name).
    pub fn parse_from(
        program: &'static str,
        known: &[&str],
        usage: &str,
        args: Vec<String>,
    ) -> Result<Self, DynError> {
        let mut values = BTreeMap::new();
        let mut args = args.into_iter();
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

/// Writes `text` to `path` (through a temporary file renamed into place)
/// and says so.
pub fn write(path: &Path, text: &str) -> Result<(), DynError> {
    write_file_atomically(path, text.as_bytes()).map_err(|e| e.to_string())?;
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
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
];

/// Draws `charts` side by side into `<stem>.svg` and `<stem>.png` in `dir`,
/// in the book's figure style (chapter 10: full width, legible text, the
/// legend below the charts), each file written atomically.
pub fn draw_figure(dir: &Path, stem: &str, charts: &[Chart]) -> Result<(), DynError> {
    let panels = charts
        .iter()
        .map(|chart| {
            let mut panel = Panel::new(&chart.title, &chart.x_desc, &chart.y_desc);
            panel.y_log = chart.log_y;
            for (i, s) in chart.series.iter().enumerate() {
                let mut series = Line::line(&s.name, COLORS[i % COLORS.len()], s.points.clone());
                if s.dashed {
                    series = series.dashed();
                } else if s.points.len() <= 30 {
                    series = series.with_markers();
                }
                panel.series.push(series);
            }
            panel
        })
        .collect();
    let files = save_figure(dir, stem, &LineFigure::new(panels, charts.len()))
        .map_err(|e| e.to_string())?;
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(())
}
