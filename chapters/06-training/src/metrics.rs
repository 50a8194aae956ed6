//! Metrics: what a run writes down as it trains.
//!
//! A run folder holds `config.json` and `metrics.jsonl`, one JSON object per
//! line. Lines are appended and flushed as they happen, so a dashboard (or
//! `tail -f`) can read a run that is still going, and a crash loses nothing
//! already written. Each line has a `kind`:
//! - `train`: `step`, `epoch`, `loss`, `accuracy`, `lr`, `grad_norm`,
//!   `examples_per_sec`, and per-parameter `param_norms` / `grad_norms`;
//! - `eval`: `step`, `epoch`, `train_loss`, `train_accuracy`, `test_loss`,
//!   `test_accuracy`, `seconds` (training time so far, over every resumption);
//! - `histogram`: `step`, `epoch`, `name`, `edges` (bins + 1), `counts`.
//!
//! Two details make the file trustworthy. A line is written whole, with one
//! `write_all` of the complete line and its newline, so a crash can only cut
//! the *last* line short, and readers skip such a torn last line with a
//! warning. And a number that is not finite (a loss that became NaN, a
//! gradient norm that overflowed) is written as the string `"NaN"`, `"inf"`
//! or `"-inf"`: JSON has no spelling for them, and `serde_json` would write
//! `null`, losing the difference between NaN and infinity.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

// ANCHOR: record
/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Train {
        step: u64,
        epoch: u64,
        #[serde(with = "float")]
        loss: f64,
        #[serde(with = "float")]
        accuracy: f64,
        #[serde(with = "float")]
        lr: f64,
        #[serde(with = "float")]
        grad_norm: f64,
        #[serde(with = "float")]
        examples_per_sec: f64,
        #[serde(with = "float_map")]
        param_norms: BTreeMap<String, f64>,
        #[serde(with = "float_map")]
        grad_norms: BTreeMap<String, f64>,
    },
    Eval {
        step: u64,
        epoch: u64,
        #[serde(with = "float")]
        train_loss: f64,
        #[serde(with = "float")]
        train_accuracy: f64,
        #[serde(with = "float")]
        test_loss: f64,
        #[serde(with = "float")]
        test_accuracy: f64,
        #[serde(with = "float")]
        seconds: f64,
    },
    Histogram {
        step: u64,
        epoch: u64,
        name: String,
        #[serde(with = "float_vec")]
        edges: Vec<f64>,
        counts: Vec<u64>,
    },
}
// ANCHOR_END: record

impl Record {
    /// The optimiser step at which the record was written.
    pub fn step(&self) -> u64 {
        match self {
            Record::Train { step, .. }
            | Record::Eval { step, .. }
            | Record::Histogram { step, .. } => *step,
        }
    }

    /// The epoch (counted from 1) the record belongs to.
    pub fn epoch(&self) -> u64 {
        match self {
            Record::Train { epoch, .. }
            | Record::Eval { epoch, .. }
            | Record::Histogram { epoch, .. } => *epoch,
        }
    }
}

// ANCHOR: float
/// An `f64` as JSON, NaN and infinities included: finite values are JSON
/// numbers, the others the strings `"NaN"`, `"inf"` and `"-inf"`. Reading
/// also accepts `null` (what `serde_json` writes for them, so older files
/// still load) as NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsonFloat(pub f64);

impl Serialize for JsonFloat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        match () {
            _ if v.is_finite() => s.serialize_f64(v),
            _ if v.is_nan() => s.serialize_str("NaN"),
            _ if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }
}

impl<'de> Deserialize<'de> for JsonFloat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonFloatVisitor)
    }
}
// ANCHOR_END: float

struct JsonFloatVisitor;

impl serde::de::Visitor<'_> for JsonFloatVisitor {
    type Value = JsonFloat;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, null, or one of \"NaN\", \"inf\", \"-inf\"")
    }
    fn visit_f64<E>(self, v: f64) -> Result<JsonFloat, E> {
        Ok(JsonFloat(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<JsonFloat, E> {
        Ok(JsonFloat(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<JsonFloat, E> {
        Ok(JsonFloat(v as f64))
    }
    fn visit_unit<E>(self) -> Result<JsonFloat, E> {
        Ok(JsonFloat(f64::NAN))
    }
    fn visit_none<E>(self) -> Result<JsonFloat, E> {
        Ok(JsonFloat(f64::NAN))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JsonFloat, E> {
        match v {
            "NaN" | "nan" => Ok(JsonFloat(f64::NAN)),
            "inf" | "+inf" | "Infinity" | "infinity" => Ok(JsonFloat(f64::INFINITY)),
            "-inf" | "-Infinity" | "-infinity" => Ok(JsonFloat(f64::NEG_INFINITY)),
            _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
        }
    }
}

/// `#[serde(with = "float")]`: one `f64` as a [`JsonFloat`].
mod float {
    use super::JsonFloat;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        JsonFloat(*v).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(JsonFloat::deserialize(d)?.0)
    }
}

/// `#[serde(with = "float_map")]`: a map of names to `f64`s.
mod float_map {
    use super::JsonFloat;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k, JsonFloat(*v))))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let m = BTreeMap::<String, JsonFloat>::deserialize(d)?;
        Ok(m.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

/// `#[serde(with = "float_vec")]`: a list of `f64`s.
mod float_vec {
    use super::JsonFloat;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|&x| JsonFloat(x)))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<JsonFloat>::deserialize(d)?
            .into_iter()
            .map(|x| x.0)
            .collect())
    }
}

/// Appends records to `<run>/metrics.jsonl`.
pub struct MetricsWriter {
    path: PathBuf,
    file: Box<dyn Write + Send>,
}

impl MetricsWriter {
    /// Opens (appending) the metrics file of a run folder.
    pub fn open(run_dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(run_dir)?;
        let path = run_dir.join(METRICS_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(MetricsWriter::from_writer(path, file))
    }

    /// Writes records to any `out` (a file, a socket, a test's recorder);
    /// `path` names it in errors.
    pub fn from_writer(path: impl Into<PathBuf>, out: impl Write + Send + 'static) -> Self {
        MetricsWriter {
            path: path.into(),
            file: Box::new(out),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    // ANCHOR: write_line
    /// Appends one record as one line. The line and its newline go to the
    /// file in a single `write_all` of one buffer: two writes (the JSON,
    /// then `\n`) could be separated by a crash, leaving a line without its
    /// end that the next record would be glued onto.
    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()
    }
    // ANCHOR_END: write_line
}

/// The name of a run folder's metrics file.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// One record of a metrics file, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsLine {
    /// Line number, counted from 1.
    pub number: usize,
    pub record: Record,
    /// The line's bytes as they are in the file, without the newline.
    pub text: Vec<u8>,
}

/// Everything [`read_metrics_file`] found in a metrics file.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsContents {
    pub path: PathBuf,
    pub lines: Vec<MetricsLine>,
    /// A last line that was skipped because a crash cut it short: its
    /// number and what is wrong with it.
    pub torn_last_line: Option<(usize, String)>,
}

impl MetricsContents {
    /// The records, in file order.
    pub fn records(&self) -> Vec<Record> {
        self.lines.iter().map(|l| l.record.clone()).collect()
    }

    /// The warning to show for a torn last line, if there is one.
    pub fn warning(&self) -> Option<String> {
        self.torn_last_line.as_ref().map(|(n, why)| {
            format!(
                "{}:{n}: skipping the last line, which a crash cut short ({why})",
                self.path.display()
            )
        })
    }
}

// ANCHOR: read_metrics
/// Reads a metrics file. Blank lines are ignored. The last line is allowed
/// to be torn, because only the last line can be: it is skipped (and
/// reported in [`MetricsContents::torn_last_line`]) when it has no newline
/// or does not parse. Any other line that does not parse is an error naming
/// the file and the line: that is damage, not an interrupted write.
pub fn read_metrics_file(path: &Path) -> Result<MetricsContents, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse_metrics(path, &bytes)
}

/// [`read_metrics_file`] on bytes already read; `path` names them in errors.
pub fn parse_metrics(path: &Path, bytes: &[u8]) -> Result<MetricsContents, String> {
    let mut pieces: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // After the last newline comes either nothing or a line without its end.
    let unterminated = pieces.pop().filter(|rest| !rest.is_empty());
    let blank = |l: &[u8]| l.iter().all(u8::is_ascii_whitespace);
    let last_full = pieces.iter().rposition(|l| !blank(l));
    let mut contents = MetricsContents {
        path: path.to_path_buf(),
        lines: Vec::with_capacity(pieces.len()),
        torn_last_line: None,
    };
    for (i, text) in pieces.iter().enumerate() {
        if blank(text) {
            continue;
        }
        match serde_json::from_slice::<Record>(text) {
            Ok(record) => contents.lines.push(MetricsLine {
                number: i + 1,
                record,
                text: text.to_vec(),
            }),
            Err(e) if unterminated.is_none() && Some(i) == last_full => {
                contents.torn_last_line = Some((i + 1, format!("it does not parse: {e}")));
            }
            Err(e) => {
                return Err(format!(
                    "{}:{}: corrupt metrics line: {e}",
                    path.display(),
                    i + 1
                ))
            }
        }
    }
    if unterminated.is_some_and(|rest| !blank(rest)) {
        let why = "it has no newline at its end".to_string();
        contents.torn_last_line = Some((pieces.len() + 1, why));
    }
    Ok(contents)
}
// ANCHOR_END: read_metrics

/// Reads every record of a run's `metrics.jsonl`, printing a warning to
/// standard error for a torn last line (see [`read_metrics_file`]).
pub fn read_metrics(run_dir: &Path) -> Result<Vec<Record>, String> {
    let contents = read_metrics_file(&run_dir.join(METRICS_FILE))?;
    if let Some(warning) = contents.warning() {
        eprintln!("warning: {warning}");
    }
    Ok(contents.records())
}

/// A histogram of `values` over `bins` equal-width bins spanning their range.
/// Values that are not finite are left out. Every edge is finite, even for
/// values near `f64::MAX` (the width is computed as `hi/bins - lo/bins`,
/// which cannot overflow, and so are the edges), and a range of one value
/// gets a small width.
pub fn histogram(values: &[f64], bins: usize) -> (Vec<f64>, Vec<u64>) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (mut lo, mut hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if finite.is_empty() || bins == 0 {
        return (vec![], vec![]);
    }
    if hi <= lo {
        // One distinct value: give the bins a width, on the side that
        // cannot overflow.
        let d = lo.abs().max(1.0) * 1e-6;
        if lo > 0.0 {
            lo -= d;
        } else {
            hi = lo + d;
        }
    }
    let n = bins as f64;
    let width = hi / n - lo / n;
    let mut edges: Vec<f64> = (0..=bins)
        .map(|i| match lo + width * i as f64 {
            // Past the middle of a range of ±f64::MAX, width·i overflows:
            // there, interpolate instead (each product is at most |hi|).
            e if e.is_finite() => e,
            _ => lo * (1.0 - i as f64 / n) + hi * (i as f64 / n),
        })
        .collect();
    edges[bins] = hi;
    let mut counts = vec![0u64; bins];
    for v in finite {
        // (v - lo) may overflow to +inf: the cast saturates and `min` keeps
        // it in the last bin, where it belongs.
        let b = ((v - lo) / width) as usize;
        counts[b.min(bins - 1)] += 1;
    }
    (edges, counts)
}
