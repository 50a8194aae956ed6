//! The dashboard: figures of a run's metrics, and one HTML page showing them.
//!
//! `candle dashboard RUN_DIR` reads `RUN_DIR/metrics.jsonl` and writes into
//! `RUN_DIR/dashboard/` one PNG and one SVG per figure plus `index.html`, a
//! self-contained page (the SVGs are inlined) that opens without a server.

use crate::metrics::{read_metrics_file, Record, METRICS_FILE};
use chapter_01::plot::{register_font, FONT_FAMILY};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

type DynError = Box<dyn Error>;

/// `(epoch, edges, counts)` of one recorded histogram.
type HistogramRef<'a> = (u64, &'a Vec<f64>, &'a Vec<u64>);

/// A named line: `(x, y)` points.
pub type Series = (String, Vec<(f64, f64)>);

/// One figure of the dashboard.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem (`loss` gives `loss.png` and `loss.svg`).
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub series: Vec<Series>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(38, 96, 200),
    RGBColor(214, 72, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

// ANCHOR: figures
/// The figures a run's records make: loss, accuracy, learning rate,
/// gradient norm, per-parameter norms, per-parameter gradient norms.
pub fn figures_from(records: &[Record]) -> Vec<Figure> {
    let mut train_loss = vec![];
    let mut train_acc = vec![];
    let mut lr = vec![];
    let mut gnorm = vec![];
    let mut test_loss = vec![];
    let mut test_acc = vec![];
    let mut epoch_train_loss = vec![];
    let mut pnorms: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut gnorms: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in records {
        match r {
            Record::Train {
                step,
                loss,
                accuracy,
                lr: l,
                grad_norm,
                param_norms,
                grad_norms,
                ..
            } => {
                let s = *step as f64;
                train_loss.push((s, *loss));
                train_acc.push((s, *accuracy));
                lr.push((s, *l));
                gnorm.push((s, *grad_norm));
                for (k, v) in param_norms {
                    pnorms.entry(k.clone()).or_default().push((s, *v));
                }
                for (k, v) in grad_norms {
                    gnorms.entry(k.clone()).or_default().push((s, *v));
                }
            }
            Record::Eval {
                step,
                train_loss,
                test_loss: tl,
                test_accuracy,
                ..
            } => {
                let s = *step as f64;
                test_loss.push((s, *tl));
                test_acc.push((s, *test_accuracy));
                epoch_train_loss.push((s, *train_loss));
            }
            Record::Histogram { .. } => {}
        }
    }
    let fig = |name: &str, title: &str, y: &str, log_y: bool, series: Vec<Series>| Figure {
        name: name.into(),
        title: title.into(),
        x_label: "step".into(),
        y_label: y.into(),
        log_y,
        series,
    };
    vec![
        fig(
            "loss",
            "Loss",
            "cross-entropy (log scale)",
            true,
            vec![
                ("train (batch)".into(), train_loss),
                ("train (epoch mean)".into(), epoch_train_loss),
                ("test".into(), test_loss),
            ],
        ),
        fig(
            "accuracy",
            "Accuracy",
            "accuracy",
            false,
            vec![
                ("train (batch)".into(), train_acc),
                ("test".into(), test_acc),
            ],
        ),
        fig(
            "learning_rate",
            "Learning rate",
            "learning rate",
            false,
            vec![("lr".into(), lr)],
        ),
        fig(
            "grad_norm",
            "Global gradient norm",
            "‖g‖₂ (log scale)",
            true,
            vec![("all parameters".into(), gnorm)],
        ),
        fig(
            "param_norms",
            "Parameter norms",
            "‖θ‖₂",
            false,
            pnorms.into_iter().collect(),
        ),
        fig(
            "grad_norms",
            "Gradient norms per parameter",
            "‖g‖₂ (log scale)",
            true,
            gnorms.into_iter().collect(),
        ),
    ]
}
// ANCHOR_END: figures

/// The largest magnitude drawn. Beyond it (up to `f64::MAX`) a value is
/// treated like NaN: left out, with a gap in its line. Axis arithmetic on
/// values near `f64::MAX` overflows to infinity, and plotters' search for
/// tick marks never ends on an infinite range.
pub const MAX_DRAWN: f64 = 1e300;

/// The range of values drawn on a log axis. Plotters counts the decades of
/// a log axis as `ln(hi / lo)`; with `lo` near the smallest float and `hi`
/// near the largest, the ratio overflows to infinity and the count loop
/// never ends. 200 decades are enough for any metric.
pub const LOG_RANGE: (f64, f64) = (1e-100, 1e100);

/// Whether a point can be drawn on a linear (or, with `log_y`, log) axis.
fn drawable(y: f64, log_y: bool) -> bool {
    if log_y {
        (LOG_RANGE.0..=LOG_RANGE.1).contains(&y)
    } else {
        y.is_finite() && y.abs() <= MAX_DRAWN
    }
}

// ANCHOR: bounds
/// The axis ranges that show every drawable point of `series`. Every range
/// is finite and has a width that is not negligible next to its values
/// (at least a millionth of the largest), so plotters can place ticks.
fn bounds(series: &[Series], log_y: bool) -> ((f64, f64), (f64, f64)) {
    let pts = series
        .iter()
        .flat_map(|(_, p)| p.iter())
        .filter(|(x, y)| x.is_finite() && x.abs() <= MAX_DRAWN && drawable(*y, log_y));
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return ((0.0, 1.0), (if log_y { 0.1 } else { 0.0 }, 1.0));
    }
    // Half-spans cannot overflow: |values| <= MAX_DRAWN.
    let widen = |lo: f64, hi: f64, fraction: f64| {
        let pad = ((hi / 2.0 - lo / 2.0) * 2.0 * fraction)
            .max(lo.abs().max(hi.abs()) * 1e-6)
            .max(1e-12);
        (lo - pad, hi + pad)
    };
    let x = if x1 > x0 {
        (x0, x1)
    } else {
        widen(x0, x1, 0.0)
    };
    if log_y {
        (x, (y0 / 1.5, y1 * 1.5))
    } else {
        (x, widen(y0, y1, 0.05))
    }
}
// ANCHOR_END: bounds

/// A tick label: plain for everyday numbers, scientific for huge or tiny ones.
fn tick_label(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:.2e}")
    } else {
        format!("{v}")
    }
}

/// Splits a line at the points that cannot be drawn (NaN, ±inf, beyond
/// [`MAX_DRAWN`], or outside [`LOG_RANGE`] on a log axis), so each gap shows as a
/// break in the line. Returns the pieces and how many points were left out.
pub fn segments(points: &[(f64, f64)], log_y: bool) -> (Vec<Vec<(f64, f64)>>, usize) {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut left_out = 0;
    for &(x, y) in points {
        if drawable(y, log_y) && x.is_finite() {
            current.push((x, y));
        } else {
            left_out += 1;
            if !current.is_empty() {
                pieces.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    (pieces, left_out)
}

fn draw_lines<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, f: &Figure) -> Result<(), DynError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let ((x0, x1), (y0, y1)) = bounds(&f.series, f.log_y);
    // The legend gets its own strip right of the chart, so it never
    // covers a line.
    let (plot_area, legend_area) =
        root.split_horizontally(root.dim_in_pixel().0 as i32 - LEGEND_WIDTH);
    let mut builder = ChartBuilder::on(&plot_area);
    builder
        .caption(&f.title, (FONT_FAMILY, 22))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(84);
    let mut legend_entries: Vec<(String, RGBColor)> = Vec::new();
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(&f.x_label)
                .y_desc(&f.y_label)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| tick_label(*y))
                .label_style((FONT_FAMILY, 17))
                .axis_desc_style((FONT_FAMILY, 19))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.1))
                .draw()?;
            for (i, (name, pts)) in f.series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let (mut pieces, left_out) = segments(pts, f.log_y);
                if pieces.is_empty() {
                    pieces.push(vec![]); // still a legend entry
                }
                let style = ShapeStyle::from(&color).stroke_width(2);
                let drawn: usize = pieces.iter().map(Vec::len).sum();
                if drawn < 30 {
                    chart.draw_series(
                        pieces
                            .iter()
                            .flatten()
                            .map(|&p| Circle::new(p, 3, color.filled())),
                    )?;
                }
                let label = if left_out > 0 {
                    format!("{name} ({left_out} not drawn: NaN, infinite or out of range)")
                } else {
                    name.clone()
                };
                // One series per unbroken piece; the legend entry once.
                for piece in pieces {
                    chart.draw_series(LineSeries::new(piece, style))?;
                }
                legend_entries.push((label, color));
            }
        }};
    }
    if f.log_y {
        finish!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?);
    } else {
        finish!(builder.build_cartesian_2d(x0..x1, y0..y1)?);
    }
    draw_legend(&legend_area, &legend_entries)?;
    root.present()?;
    Ok(())
}

/// Width of the legend strip right of each line chart, in pixels.
const LEGEND_WIDTH: i32 = 250;

/// The legend, one entry per line (long names wrap), from the top of its
/// strip.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor)],
) -> Result<(), DynError>
where
    DB::ErrorType: 'static,
{
    let font = (FONT_FAMILY, 17).into_font().color(&BLACK);
    let mut y = 60;
    for (name, color) in entries {
        area.draw(&PathElement::new(
            vec![(6, y + 9), (34, y + 9)],
            color.stroke_width(3),
        ))?;
        // About 20 characters fit beside the line.
        let mut line = String::new();
        for word in name.split(' ') {
            if !line.is_empty() && line.chars().count() + word.chars().count() > 19 {
                area.draw(&Text::new(line.clone(), (40, y), font.clone()))?;
                y += 21;
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        area.draw(&Text::new(line, (40, y), font.clone()))?;
        y += 30;
    }
    Ok(())
}

// ANCHOR: check_histogram
/// Why a recorded histogram cannot be drawn, if it cannot: its edges must
/// be one more than its counts, finite (and within [`MAX_DRAWN`]) and
/// increasing, and it must count something.
pub fn histogram_problem(edges: &[f64], counts: &[u64]) -> Option<String> {
    if counts.is_empty() {
        return Some("it has no bins".into());
    }
    if edges.len() != counts.len() + 1 {
        return Some(format!(
            "it has {} edges for {} bins (needs {})",
            edges.len(),
            counts.len(),
            counts.len() + 1
        ));
    }
    if let Some(e) = edges
        .iter()
        .find(|e| !(e.is_finite() && e.abs() <= MAX_DRAWN))
    {
        return Some(format!("an edge is {e}"));
    }
    if edges.windows(2).any(|w| w[1] <= w[0]) {
        return Some("its edges do not increase".into());
    }
    if counts.iter().all(|&c| c == 0) {
        return Some("every count is zero".into());
    }
    None
}
// ANCHOR_END: check_histogram

/// The histograms of `records` that can be drawn, by name; a note for each
/// one left out.
fn drawable_histograms<'a>(
    records: &'a [Record],
    notes: &mut Vec<String>,
) -> BTreeMap<&'a str, Vec<HistogramRef<'a>>> {
    let mut by_name: BTreeMap<&str, Vec<HistogramRef<'_>>> = BTreeMap::new();
    for r in records {
        if let Record::Histogram {
            epoch,
            name,
            edges,
            counts,
            ..
        } = r
        {
            match histogram_problem(edges, counts) {
                Some(why) => notes.push(format!(
                    "histogram `{name}` of epoch {epoch} is not drawn: {why}"
                )),
                None => by_name
                    .entry(name.as_str())
                    .or_default()
                    .push((*epoch, edges, counts)),
            }
        }
    }
    by_name
}

/// The activation histograms of the last epoch recorded, one panel per layer,
/// with the first epoch's histogram drawn faintly behind for comparison.
fn draw_histograms<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    by_name: &BTreeMap<&str, Vec<HistogramRef<'_>>>,
) -> Result<(), DynError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(
        "Activation histograms (first epoch grey, last epoch blue)",
        (FONT_FAMILY, 22),
    )?;
    let columns = by_name.len().clamp(1, 2);
    let panels = root.split_evenly((by_name.len().div_ceil(columns).max(1), columns));
    for (panel, (name, hists)) in panels.into_iter().zip(by_name) {
        let (first, last) = (hists[0], hists[hists.len() - 1]);
        // The x range holds the bins with at least 1 in 1000 of the values
        // (of either epoch): a long sparse tail would squeeze the bulk.
        let (lo, hi) = visible_range(&[first, last]);
        let total = |c: &Vec<u64>| c.iter().sum::<u64>().max(1) as f64;
        let ymax = [first, last]
            .iter()
            .flat_map(|(_, _, c)| c.iter().map(move |&v| v as f64 / total(c)))
            .fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(&panel)
            .caption(
                format!("{name}, epochs {} and {}", first.0, last.0),
                (FONT_FAMILY, 19),
            )
            .margin(14)
            .x_label_area_size(52)
            .y_label_area_size(80)
            .build_cartesian_2d(lo..hi, 0.0..ymax * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("activation value (after ReLU)")
            .y_desc("fraction of values")
            .x_label_formatter(&|x| tick_label(*x))
            .x_labels(6)
            .label_style((FONT_FAMILY, 17))
            .axis_desc_style((FONT_FAMILY, 19))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.1))
            .draw()?;
        for (i, (_, edges, counts)) in [first, last].into_iter().enumerate() {
            let color = if i == 0 {
                PALETTE[6].mix(0.35)
            } else {
                PALETTE[0].mix(0.8)
            };
            let t = total(counts);
            let shown = |b: &usize| edges[*b] >= lo && edges[*b + 1] <= hi;
            chart.draw_series(counts.iter().enumerate().filter(|(b, _)| shown(b)).map(
                |(b, &c)| {
                    Rectangle::new(
                        [(edges[b], 0.0), (edges[b + 1], c as f64 / t)],
                        color.filled(),
                    )
                },
            ))?;
        }
    }
    root.present()?;
    Ok(())
}

/// `(lo, hi)`: from the first to the last bin holding at least 1 in 1000
/// of the values in any of `hists`.
fn visible_range(hists: &[HistogramRef<'_>]) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, edges, counts) in hists {
        let total = counts.iter().sum::<u64>().max(1) as f64;
        for (b, &c) in counts.iter().enumerate() {
            if c as f64 / total >= 1e-3 {
                lo = lo.min(edges[b]);
                hi = hi.max(edges[b + 1]);
            }
        }
    }
    if lo < hi {
        (lo, hi)
    } else {
        let (_, edges, _) = hists[0];
        (edges[0], edges[edges.len() - 1])
    }
}

fn save_both(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    draw: &dyn Fn(&Path, bool) -> Result<(), DynError>,
) -> Result<Vec<PathBuf>, DynError> {
    let png = dir.join(format!("{name}.png"));
    let svg = dir.join(format!("{name}.svg"));
    let _ = size;
    for (path, svg) in [(&png, false), (&svg, true)] {
        draw(path, svg).map_err(|e| format!("{}: cannot draw: {e}", path.display()))?;
    }
    Ok(vec![png, svg])
}

// ANCHOR: dashboard
/// What [`write_dashboard`] wrote, and what it could not draw.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    pub files: Vec<PathBuf>,
    /// One line per thing left out (a torn last metrics line, a histogram
    /// that cannot be drawn, values that are NaN or infinite).
    pub notes: Vec<String>,
}

/// Draws every figure of the run in `run_dir` into `run_dir/dashboard/`
/// and writes `index.html`.
pub fn write_dashboard(run_dir: &Path) -> Result<Dashboard, DynError> {
    register_font()?;
    let contents = read_metrics_file(&run_dir.join(METRICS_FILE))?;
    let mut notes: Vec<String> = contents.warning().into_iter().collect();
    let records = contents.records();
    if records.is_empty() {
        return Err(format!(
            "{}: no metrics recorded yet",
            run_dir.join(METRICS_FILE).display()
        )
        .into());
    }
    let out = run_dir.join("dashboard");
    std::fs::create_dir_all(&out)
        .map_err(|e| format!("{}: cannot create the folder: {e}", out.display()))?;
    let mut written = Vec::new();
    let size = (960, 440);
    for f in figures_from(&records) {
        for (name, pts) in &f.series {
            let left_out = segments(pts, f.log_y).1;
            if left_out > 0 {
                notes.push(format!(
                    "{}: {left_out} values of `{name}` are NaN, infinite, out of range \
                     or (on a log axis) not positive, and are drawn as gaps",
                    f.title
                ));
            }
        }
        written.extend(save_both(&out, &f.name, size, &|p, svg| {
            if svg {
                draw_lines(SVGBackend::new(p, size).into_drawing_area(), &f)
            } else {
                draw_lines(BitMapBackend::new(p, size).into_drawing_area(), &f)
            }
        })?);
    }
    let histograms = drawable_histograms(&records, &mut notes);
    if !histograms.is_empty() {
        let hsize = (960, 440 * histograms.len().div_ceil(2).max(1) as u32);
        written.extend(save_both(&out, "activations", hsize, &|p, svg| {
            if svg {
                draw_histograms(SVGBackend::new(p, hsize).into_drawing_area(), &histograms)
            } else {
                draw_histograms(
                    BitMapBackend::new(p, hsize).into_drawing_area(),
                    &histograms,
                )
            }
        })?);
    }
    let html = out.join("index.html");
    std::fs::write(&html, html_page(run_dir, &records, &written)?)
        .map_err(|e| format!("{}: cannot write: {e}", html.display()))?;
    written.push(html);
    Ok(Dashboard {
        files: written,
        notes,
    })
}
// ANCHOR_END: dashboard

fn html_page(run_dir: &Path, records: &[Record], files: &[PathBuf]) -> Result<String, DynError> {
    let mut rows = String::new();
    for r in records {
        if let Record::Eval {
            epoch,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds,
            ..
        } = r
        {
            rows.push_str(&format!(
                "<tr><td>{epoch}</td><td>{train_loss:.4}</td><td>{:.2}%</td><td>{test_loss:.4}</td><td>{:.2}%</td><td>{seconds:.2}</td></tr>\n",
                100.0 * train_accuracy,
                100.0 * test_accuracy
            ));
        }
    }
    let mut figures = String::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "svg"))
    {
        let svg =
            std::fs::read_to_string(f).map_err(|e| format!("{}: cannot read: {e}", f.display()))?;
        let svg = svg.trim_start_matches(|c| c != '<');
        let svg = if svg.starts_with("<?xml") {
            &svg[svg.find("?>").map(|i| i + 2).unwrap_or(0)..]
        } else {
            svg
        };
        figures.push_str(&format!("<figure>{svg}</figure>\n"));
    }
    let title = format!("Candle run: {}", run_dir.display());
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>body{{font-family:sans-serif;margin:2em;}}figure{{display:inline-block;margin:0.5em;}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:0.3em 0.8em;text-align:right}}</style></head>\n<body><h1>{title}</h1>\n<h2>Per epoch</h2>\n<table><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>test loss</th><th>test acc</th><th>training s</th></tr>\n{rows}</table>\n<h2>Figures</h2>\n{figures}</body></html>\n"
    ))
}
