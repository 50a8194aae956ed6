//! Run folders: where a training run keeps its files, and the rules that
//! keep a run's files from being lost or mixed with another run's.
//!
//! A run folder holds `config.json` (the settings), `metrics.jsonl` (what
//! happened), `checkpoint.safetensors` (where it got to) and, while a
//! process is training into it, `run.lock`. Four rules protect it:
//!
//! 1. **No silent overwrite.** Starting a new run in a folder that already
//!    holds one is refused; with `force` the old run's files are removed,
//!    and each removal is announced.
//! 2. **One writer.** A lock file, created with `create_new` (which fails
//!    if the file exists, atomically, even between processes), holds the
//!    writer's process id. A second writer is refused and told which
//!    process holds the folder. A crashed writer leaves its lock behind;
//!    its process id no longer runs, so the next writer takes the lock over,
//!    with a warning.
//! 3. **Resume the same run.** Resuming compares the saved settings with
//!    the new ones and lists every difference. Some may change with `force`
//!    (more epochs, another learning rate: the saved state still fits);
//!    others never: the seed (it decides the data order, and for the digits
//!    the train/test split: a new seed would train on test examples), the
//!    batch size, the data set, the model's shape, the optimiser.
//! 4. **Metrics continue where the checkpoint stopped.** A crash between
//!    writing metrics and saving the next checkpoint leaves records of work
//!    the checkpoint does not hold. Resuming removes them (they will be
//!    written again), and the clock continues from the saved training time.

use crate::checkpoint::Checkpoint;
use crate::metrics::{read_metrics_file, MetricsWriter, Record, METRICS_FILE};
use crate::trainer::TrainConfig;
use chapter_05::state_dict::write_atomically;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = "run.lock";

// ANCHOR: on_resume
/// Whether a setting may differ when a run is resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnResume {
    /// Must be the same, for the reason given: the setting decides the data
    /// (its order or split) or the shape of the saved state.
    Fixed(&'static str),
    /// May change when forced: the saved state still fits, but the run is
    /// no longer the one first planned (a longer run, a new learning rate).
    Forceable,
    /// May change freely: it changes nothing about what is learned (how
    /// often to log, when to stop this call, the accuracy to report).
    Free,
}

/// How each field of [`TrainConfig`] may change on resume.
pub fn config_field_on_resume(field: &str) -> OnResume {
    match field {
        "seed" => OnResume::Fixed(
            "it decides the order of the examples, and the digits' train/test split",
        ),
        "batch_size" => OnResume::Fixed("it decides the batches and the steps per epoch"),
        "optimizer" => OnResume::Fixed("the saved optimizer state belongs to the other optimizer"),
        "epochs" | "lr" | "momentum" | "weight_decay" | "schedule" | "clip_grad_norm" => {
            OnResume::Forceable
        }
        "log_every" | "target_accuracy" | "stop_after_epochs" => OnResume::Free,
        _ => OnResume::Fixed("it is a setting this version does not know"),
    }
}
// ANCHOR_END: on_resume

// ANCHOR: run_config
/// What a run folder needs to know about a run's settings, whatever trains:
/// the classifier loop of this chapter ([`TrainConfig`]) or a later
/// chapter's own loop (a GPT trained for a number of steps). The settings
/// are saved as JSON in `config.json` and compared field by field on resume.
pub trait RunConfig: Serialize + DeserializeOwned + Clone {
    /// Checks every value, naming the field, the value and what is allowed.
    fn validate(&self) -> chapter_03::Result<()>;
    /// How the field `field` (its JSON name) may change when a run resumes.
    fn on_resume(field: &str) -> OnResume;
    /// The test accuracy whose first reaching the run reports, if any.
    fn target_accuracy(&self) -> Option<f64> {
        None
    }
}
// ANCHOR_END: run_config

impl RunConfig for TrainConfig {
    fn validate(&self) -> chapter_03::Result<()> {
        TrainConfig::validate(self)
    }
    fn on_resume(field: &str) -> OnResume {
        config_field_on_resume(field)
    }
    fn target_accuracy(&self) -> Option<f64> {
        self.target_accuracy
    }
}

/// One setting that differs between a run and the command resuming it.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The option as typed on the command line (`--lr`, `dataset`).
    pub option: String,
    /// Its value in the run folder.
    pub saved: String,
    /// Its value now.
    pub now: String,
    pub on_resume: OnResume,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} in the run, {} now",
            self.option, self.saved, self.now
        )?;
        match self.on_resume {
            OnResume::Fixed(why) => write!(f, " (cannot change: {why})"),
            OnResume::Forceable => write!(f, " (may change with --force)"),
            OnResume::Free => Ok(()),
        }
    }
}

/// Why a run folder cannot be used as asked.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file or folder could not be read or written.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// A new run was asked for in a folder that holds one.
    #[error(
        "{}: already holds a run ({found}); pass --resume to continue it, \
         --force to replace it, or choose another --out",
        path.display()
    )]
    Exists { path: PathBuf, found: String },
    /// Another process is training into the folder.
    #[error(
        "{}: the run folder is in use by process {pid} (if no such process is \
         training, delete the lock file)",
        path.display()
    )]
    Locked { path: PathBuf, pid: String },
    /// The settings differ from the run's in a way that is not allowed.
    #[error("{}: cannot resume with other settings than the run's:\n  {}{}",
        path.display(),
        differences.iter().map(Difference::to_string).collect::<Vec<_>>().join("\n  "),
        if *forced { "\n--force does not apply to the settings that cannot change" }
        else { "\npass the run's values, or --force for the settings that may change" })]
    Mismatch {
        path: PathBuf,
        differences: Vec<Difference>,
        forced: bool,
    },
    /// Anything else wrong with the folder or the request, in words.
    #[error("{}: {msg}", path.display())]
    Invalid { path: PathBuf, msg: String },
}

/// What `config.json` holds: the training configuration and the settings
/// the caller added (data set, model shape), by command-line spelling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "C: Serialize + DeserializeOwned")]
pub struct SavedConfig<C = TrainConfig> {
    #[serde(flatten)]
    pub train: C,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

/// Where a run keeps its files, and how it may be started there.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
    force: bool,
    settings: BTreeMap<String, (String, OnResume)>,
}

/// What [`RunDir::check`] found: what starting the run will do.
#[derive(Debug)]
pub struct StartPlan {
    /// The checkpoint to continue from (when resuming).
    pub checkpoint: Option<Checkpoint>,
    /// The earlier run's files that a forced new start removes.
    pub replaces: Vec<PathBuf>,
    /// Settings that differ from the run's and may (forced) change.
    pub changes: Vec<Difference>,
}

/// A run folder opened for writing by [`RunDir::begin`]. Keep it (at least
/// its `lock`) until training ends: dropping the lock releases the folder.
pub struct RunSession {
    /// The checkpoint to continue from, when resuming.
    pub checkpoint: Option<Checkpoint>,
    /// The metrics file, ready for appending.
    pub metrics: MetricsWriter,
    /// Training seconds recorded before this session (0 for a new run).
    pub seconds_before: f64,
    /// `(epoch, training seconds)` at which the target accuracy was first
    /// reached in an earlier session.
    pub reached_target: Option<(u64, f64)>,
    pub lock: RunLock,
}

impl RunDir {
    /// A run folder at `path`: a new run must find it without a run, a
    /// resumed one with the same settings.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir {
            path: path.into(),
            force: false,
            settings: BTreeMap::new(),
        }
    }

    /// With `force`, a new run replaces the folder's earlier run, and a
    /// resumed run accepts the settings that may change ([`OnResume::Forceable`]).
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Records a setting that [`TrainConfig`] does not hold (the data set,
    /// the model's sizes), named as the command line spells it. It is saved
    /// in `config.json` and compared on resume.
    pub fn setting(mut self, option: &str, value: impl fmt::Display, on_resume: OnResume) -> Self {
        self.settings
            .insert(option.to_string(), (value.to_string(), on_resume));
        self
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.path.join("checkpoint.safetensors")
    }
    pub fn config(&self) -> PathBuf {
        self.path.join("config.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.path.join(METRICS_FILE)
    }
    pub fn lock_file(&self) -> PathBuf {
        self.path.join(LOCK_FILE)
    }

    fn invalid(&self, msg: impl Into<String>) -> RunError {
        RunError::Invalid {
            path: self.path.clone(),
            msg: msg.into(),
        }
    }

    /// The files of an earlier run in the folder.
    fn run_files(&self) -> Vec<PathBuf> {
        [self.config(), self.metrics(), self.checkpoint()]
            .into_iter()
            .filter(|p| p.exists())
            .collect()
    }

    // ANCHOR: check
    /// Checks, without changing anything, that a run with `config` can start
    /// here (`resume`: continue the folder's run), and says what starting
    /// will do. [`begin`](Self::begin) checks again under the lock.
    pub fn check<C: RunConfig>(&self, config: &C, resume: bool) -> Result<StartPlan, RunError> {
        if self.path.exists() && !self.path.is_dir() {
            return Err(self.invalid("is not a folder; --out must name a run folder"));
        }
        config
            .validate()
            .map_err(|e| self.invalid(format!("invalid configuration: {e}")))?;
        let existing = self.run_files();
        if !resume {
            if existing.is_empty() || self.force {
                return Ok(StartPlan {
                    checkpoint: None,
                    replaces: existing,
                    changes: vec![],
                });
            }
            return Err(RunError::Exists {
                path: self.path.clone(),
                found: describe_files(&existing),
            });
        }
        let path = self.checkpoint();
        if !path.exists() {
            let why = if existing.is_empty() {
                "there is no run to resume".to_string()
            } else {
                format!(
                    "the run ({}) stopped before its first checkpoint; pass --force \
                     without --resume to start it again",
                    describe_files(&existing)
                )
            };
            return Err(self.invalid(format!("no {} to resume from: {why}", path.display())));
        }
        let checkpoint = Checkpoint::load(&path).map_err(|e| self.invalid(e.to_string()))?;
        let saved = self.saved_config::<C>()?;
        let differences = self.differences(&saved, config)?;
        let fixed = differences
            .iter()
            .any(|d| matches!(d.on_resume, OnResume::Fixed(_)));
        if fixed || (!differences.is_empty() && !self.force) {
            return Err(RunError::Mismatch {
                path: self.path.clone(),
                differences,
                forced: self.force,
            });
        }
        Ok(StartPlan {
            checkpoint: Some(checkpoint),
            replaces: vec![],
            changes: differences,
        })
    }
    // ANCHOR_END: check

    /// Reads `config.json` (`C`: the configuration type the run was saved
    /// with, [`TrainConfig`] for this chapter's runs).
    pub fn saved_config<C: RunConfig>(&self) -> Result<SavedConfig<C>, RunError> {
        let path = self.config();
        let text = std::fs::read(&path).map_err(|source| RunError::Io {
            path: path.clone(),
            action: "read the run's settings",
            source,
        })?;
        serde_json::from_slice(&text).map_err(|e| RunError::Invalid {
            path,
            msg: format!("not a run configuration: {e}"),
        })
    }

    /// The settings that differ between `saved` and (`config`, this
    /// folder's added settings), free ones left out.
    fn differences<C: RunConfig>(
        &self,
        saved: &SavedConfig<C>,
        config: &C,
    ) -> Result<Vec<Difference>, RunError> {
        let as_map = |c: &C| match serde_json::to_value(c) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(self.invalid("the training configuration does not serialise")),
        };
        let (old, new) = (as_map(&saved.train)?, as_map(config)?);
        let mut out = Vec::new();
        for (key, now) in &new {
            let before = old.get(key).unwrap_or(&Value::Null);
            let on_resume = C::on_resume(key);
            if before != now && on_resume != OnResume::Free {
                out.push(Difference {
                    option: format!("--{}", key.replace('_', "-")),
                    saved: show(before),
                    now: show(now),
                    on_resume,
                });
            }
        }
        if saved.settings.is_empty() {
            // A run folder from before settings were recorded: only the
            // training configuration can be compared.
            return Ok(out);
        }
        let mut options: Vec<&String> = saved.settings.keys().collect();
        options.extend(self.settings.keys());
        options.sort();
        options.dedup();
        for option in options {
            let before = saved.settings.get(option);
            let now = self.settings.get(option);
            let on_resume = now.map_or(
                OnResume::Fixed("the run recorded it and this command does not give it"),
                |s| s.1,
            );
            if before != now.map(|s| &s.0) && on_resume != OnResume::Free {
                out.push(Difference {
                    option: option.clone(),
                    saved: before.cloned().unwrap_or_else(|| "(none)".into()),
                    now: now.map_or_else(|| "(none)".into(), |s| s.0.clone()),
                    on_resume,
                });
            }
        }
        Ok(out)
    }

    // ANCHOR: begin
    /// Opens the folder for a run with `config`: takes the lock, checks the
    /// request ([`check`](Self::check)), and prepares the files. A new run
    /// writes `config.json` (removing an earlier run's files when forced,
    /// saying so). A resumed run restores nothing yet (the caller loads the
    /// returned checkpoint) but cuts the metrics back to the checkpoint's
    /// step and finds the training time already spent.
    pub fn begin<C: RunConfig>(&self, config: &C, resume: bool) -> Result<RunSession, RunError> {
        if self.path.exists() && !self.path.is_dir() {
            return Err(self.invalid("is not a folder; --out must name a run folder"));
        }
        // Before anything is created: a bad configuration leaves no trace.
        config
            .validate()
            .map_err(|e| self.invalid(format!("invalid configuration: {e}")))?;
        std::fs::create_dir_all(&self.path).map_err(|source| RunError::Io {
            path: self.path.clone(),
            action: "create the run folder",
            source,
        })?;
        let lock = RunLock::acquire(&self.path)?;
        let plan = self.check(config, resume)?;
        let (mut seconds_before, mut reached_target) = (0.0, None);
        if let Some(ckpt) = &plan.checkpoint {
            if !plan.changes.is_empty() {
                let list: Vec<String> = plan.changes.iter().map(|d| d.to_string()).collect();
                eprintln!(
                    "warning: {}: resuming with changed settings (forced):\n  {}",
                    self.path.display(),
                    list.join("\n  ")
                );
                self.write_config(config)?;
            }
            let earlier = self.cut_metrics_at(ckpt.global_step)?;
            for record in &earlier {
                if let Record::Eval {
                    epoch,
                    test_accuracy,
                    seconds,
                    ..
                } = record
                {
                    seconds_before = *seconds;
                    let reached = config
                        .target_accuracy()
                        .is_some_and(|t| *test_accuracy >= t);
                    if reached && reached_target.is_none() {
                        reached_target = Some((*epoch, *seconds));
                    }
                }
            }
        } else {
            for file in &plan.replaces {
                eprintln!(
                    "warning: {}: replacing the earlier run (--force): removing {}",
                    self.path.display(),
                    describe_file(file)
                );
                std::fs::remove_file(file).map_err(|source| RunError::Io {
                    path: file.clone(),
                    action: "remove the earlier run's file",
                    source,
                })?;
            }
            self.write_config(config)?;
        }
        let metrics = MetricsWriter::open(&self.path).map_err(|source| RunError::Io {
            path: self.metrics(),
            action: "open for appending",
            source,
        })?;
        Ok(RunSession {
            checkpoint: plan.checkpoint,
            metrics,
            seconds_before,
            reached_target,
            lock,
        })
    }
    // ANCHOR_END: begin

    /// Writes `config.json` (atomically) with `config` and the added settings.
    fn write_config<C: RunConfig>(&self, config: &C) -> Result<(), RunError> {
        let saved = SavedConfig {
            train: config.clone(),
            settings: self
                .settings
                .iter()
                .map(|(k, (v, _))| (k.clone(), v.clone()))
                .collect(),
        };
        let mut json =
            serde_json::to_vec_pretty(&saved).map_err(|e| self.invalid(e.to_string()))?;
        json.push(b'\n');
        write_atomically(&self.config(), &json).map_err(|e| self.invalid(e.to_string()))
    }

    // ANCHOR: cut_metrics
    /// Keeps the metrics records up to `step` (those the checkpoint's state
    /// has seen) and returns them. Later records, written before a crash
    /// that came before the next checkpoint, are removed: the resumed run
    /// writes them again. A torn last line is dropped too.
    fn cut_metrics_at(&self, step: u64) -> Result<Vec<Record>, RunError> {
        let path = self.metrics();
        if !path.exists() {
            return Ok(vec![]);
        }
        let contents = read_metrics_file(&path).map_err(|msg| self.invalid(msg))?;
        if let Some(warning) = contents.warning() {
            eprintln!("warning: {warning}");
        }
        let (kept, dropped): (Vec<_>, Vec<_>) = contents
            .lines
            .into_iter()
            .partition(|l| l.record.step() <= step);
        if !dropped.is_empty() {
            eprintln!(
                "warning: {}: removing {} records of steps after the checkpoint's step {step} \
                 (lines {} to {}); the resumed run writes them again",
                path.display(),
                dropped.len(),
                dropped[0].number,
                dropped[dropped.len() - 1].number
            );
        }
        if !dropped.is_empty() || contents.torn_last_line.is_some() {
            let mut bytes = Vec::new();
            for line in &kept {
                bytes.extend_from_slice(&line.text);
                bytes.push(b'\n');
            }
            write_atomically(&path, &bytes).map_err(|e| self.invalid(e.to_string()))?;
        }
        Ok(kept.into_iter().map(|l| l.record).collect())
    }
    // ANCHOR_END: cut_metrics
}

/// A JSON value as a person would type it: strings without quotes, `null`
/// as `none`.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// `checkpoint.safetensors (epoch 3)`, `metrics.jsonl (57 lines)`, `config.json`.
fn describe_file(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    if name == "checkpoint.safetensors" {
        if let Ok(c) = Checkpoint::load(path) {
            return format!("{name} (after epoch {})", c.epoch);
        }
    }
    if name == METRICS_FILE {
        if let Ok(bytes) = std::fs::read(path) {
            let lines = bytes.iter().filter(|&&b| b == b'\n').count();
            return format!("{name} ({lines} lines)");
        }
    }
    name
}

fn describe_files(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| describe_file(f))
        .collect::<Vec<_>>()
        .join(", ")
}

// ANCHOR: lock
/// The lock of a run folder: the file `run.lock`, holding the process id of
/// the one process allowed to write the folder. Dropping it (at the end of
/// training, or on an error, which unwinds through it) deletes the file.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    pid: String,
    /// The lock file's canonical path, under which this process records it.
    key: PathBuf,
}

impl RunLock {
    /// Takes the lock of the run folder `dir`, or says who holds it. A lock
    /// left by a process that no longer runs (it crashed, or was killed) is
    /// taken over with a warning.
    pub fn acquire(dir: &Path) -> Result<RunLock, RunError> {
        let path = dir.join(LOCK_FILE);
        let key = std::fs::canonicalize(dir).map_or_else(|_| path.clone(), |d| d.join(LOCK_FILE));
        let pid = std::process::id().to_string();
        let io = |action, source| RunError::Io {
            path: path.clone(),
            action,
            source,
        };
        for _attempt in 0..10 {
            // `create_new` is atomic: of two processes, exactly one creates it.
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let lock = RunLock {
                        path: path.clone(),
                        pid: pid.clone(),
                        key: key.clone(),
                    };
                    set_held(&key, true);
                    file.write_all(format!("{pid}\n").as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| io("write the lock file", e))?;
                    return Ok(lock);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("create the lock file", e)),
            }
            let holder = match read_holder(&path) {
                Ok(Some(holder)) => holder,
                Ok(None) => continue, // released meanwhile: try again
                Err(e) => return Err(io("read the lock file", e)),
            };
            let ours = holder == pid;
            if (ours && held_here(&key)) || (!ours && process_is_running(&holder)) {
                return Err(RunError::Locked { path, pid: holder });
            }
            if ours {
                // Our own id, but not a lock this process holds: an earlier
                // process with the same id (in a container, every first
                // process is 1) left it.
                eprintln!(
                    "warning: {}: an earlier process with this process's id ({holder}) locked \
                     this run folder and is gone; taking the lock over",
                    path.display()
                );
            } else {
                eprintln!(
                    "warning: {}: process {holder} locked this run folder and is no longer \
                     running (it crashed or was killed); taking the lock over",
                    path.display()
                );
            }
            take_over(&path, &holder).map_err(|e| io("take over the stale lock", e))?;
        }
        Err(RunError::Invalid {
            path,
            msg: "could not take the lock: other processes keep taking it".into(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Only our own lock: never one another process took over.
        if read_holder(&self.path).ok().flatten().as_deref() == Some(self.pid.as_str()) {
            let _ = std::fs::remove_file(&self.path);
        }
        set_held(&self.key, false);
    }
}
// ANCHOR_END: lock

/// The lock files this process holds. A lock file with our own process id
/// is held by us only if it is in this set (another thread may be training
/// into the folder); otherwise an earlier process with the same id left it.
static HELD: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

fn set_held(path: &Path, held: bool) {
    let mut set = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held {
        set.insert(path.to_path_buf());
    } else {
        set.remove(path);
    }
}

fn held_here(path: &Path) -> bool {
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(path)
}

/// The process id in a lock file; `None` if the file is gone. A lock file
/// is written right after it is created, so an empty one is given a moment
/// to be filled before it counts as holding nothing (an id that can never
/// run, so that it is taken over).
fn read_holder(path: &Path) -> std::io::Result<Option<String>> {
    for _ in 0..20 {
        match std::fs::read_to_string(path) {
            Ok(text) if text.ends_with('\n') => return Ok(Some(text.trim().to_string())),
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(25)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(String::new()))
}

/// Whether the process `pid` (as written in a lock file) is running. On
/// Linux, a running process has a folder `/proc/<pid>`; elsewhere on Unix,
/// `kill -0 <pid>` succeeds for it. Where we cannot tell, we answer yes:
/// refusing to start is safer than two writers.
fn process_is_running(pid: &str) -> bool {
    let Ok(pid) = pid.parse::<u32>() else {
        return false; // not a process id: nobody can hold it
    };
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else if cfg!(unix) {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .map_or(true, |s| s.success())
    } else {
        true
    }
}

/// Removes a stale lock held by `holder`, unless another process took it
/// over first: the lock is renamed to a name of our own (of two processes
/// renaming it, one gets it), and if the file we got is not the stale one,
/// it is put back.
fn take_over(path: &Path, holder: &str) -> std::io::Result<()> {
    let mut mine = path.as_os_str().to_owned();
    mine.push(format!(".stale.{}", std::process::id()));
    let mine = PathBuf::from(mine);
    match std::fs::rename(path, &mine) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    let got = std::fs::read_to_string(&mine).unwrap_or_default();
    if got.trim() != holder {
        // A live lock taken meanwhile: put it back (hard_link fails rather
        // than replace a lock created since).
        let _ = std::fs::hard_link(&mine, path);
    }
    std::fs::remove_file(&mine)
}
