//! Metrics: what a run writes down as it trains.
//!
//! A run folder holds `config.json` and `metrics.jsonl`, one JSON object per
//! line. Lines are appended and flushed as they happen, so a dashboard (or
//! `tail -f`) can read a run that is still going, and a crash loses nothing
//! already written. Each line has a `kind`:
//! - `train`: `step`, `epoch`, `loss`, `accuracy`, `lr`, `grad_norm`,
//!   `examples_per_sec`, and per-parameter `param_norms` / `grad_norms`;
//! - `eval`: `step`, `epoch`, `train_loss`, `train_accuracy`, `test_loss`,
//!   `test_accuracy`, `seconds` (training time so far);
//! - `histogram`: `step`, `epoch`, `name`, `edges` (bins + 1), `counts`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

// ANCHOR: record
/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Train {
        step: u64,
        epoch: u64,
        loss: f64,
        accuracy: f64,
        lr: f64,
        grad_norm: f64,
        examples_per_sec: f64,
        param_norms: BTreeMap<String, f64>,
        grad_norms: BTreeMap<String, f64>,
    },
    Eval {
        step: u64,
        epoch: u64,
        train_loss: f64,
        train_accuracy: f64,
        test_loss: f64,
        test_accuracy: f64,
        seconds: f64,
    },
    Histogram {
        step: u64,
        epoch: u64,
        name: String,
        edges: Vec<f64>,
        counts: Vec<u64>,
    },
}
// ANCHOR_END: record

/// Appends records to `<run>/metrics.jsonl`.
pub struct MetricsWriter {
    path: PathBuf,
    file: File,
}

impl MetricsWriter {
    /// Opens (appending) the metrics file of a run folder.
    pub fn open(run_dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(run_dir)?;
        let path = run_dir.join("metrics.jsonl");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(MetricsWriter { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        let line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        writeln!(self.file, "{line}")?;
        self.file.flush()
    }
}

/// Reads every record of a run's `metrics.jsonl`. A line that does not
/// parse is reported with its number (a truncated last line, from a run
/// killed mid-write, is skipped).
pub fn read_metrics(run_dir: &Path) -> Result<Vec<Record>, String> {
    let path = run_dir.join("metrics.jsonl");
    let file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() => {} // partial last line
            Err(e) => return Err(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    Ok(out)
}

/// A histogram of `values` over `bins` equal-width bins spanning their range.
pub fn histogram(values: &[f64], bins: usize) -> (Vec<f64>, Vec<u64>) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if finite.is_empty() || bins == 0 {
        return (vec![], vec![]);
    }
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let width = (hi - lo) / bins as f64;
    let edges = (0..=bins).map(|i| lo + width * i as f64).collect();
    let mut counts = vec![0u64; bins];
    for v in finite {
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    (edges, counts)
}
