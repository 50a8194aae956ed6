//! `candle experiment NAME`: regenerates the book's figures.
//!
//! ```text
//! candle experiment list               # every experiment, what it draws, how long it takes
//! candle experiment init-depth         # one experiment, into book/src/figures
//! candle experiment all                # every figure of the book, timed
//! candle experiment activations --out /tmp/figs --quick
//! ```
//!
//! Each experiment writes its figures (SVG and PNG) and the data behind
//! them (CSV, or the log it prints) into `--out`, each file through a
//! temporary file renamed into place: an experiment that fails or is
//! interrupted leaves the figures that were there before, never half a
//! file. Everything is seeded: the same command writes the same bytes,
//! except the timing figures of chapter 08, which measure this machine.

// Both measurement examples declare their shared `measure` module; each
// keeps its own copy, as when they are built as examples.
#![allow(clippy::duplicate_mod)]

use clap::Parser;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

type DynError = Box<dyn Error>;

// Chapter 03's figure is defined in its example (the book shows it from
// there); its `main` is not used here.
#[allow(dead_code)]
#[path = "../../../chapters/03-autograd/examples/graph_dot.rs"]
mod graph_dot;

// Chapter 08's timing measurements are examples of this crate (run them
// with `cargo run --example`, options and all); `candle experiment` runs
// them with the book's options.
#[allow(dead_code)]
#[path = "../../examples/kv_cache_speed.rs"]
mod kv_cache_speed;
#[allow(dead_code)]
#[path = "../../examples/speculative_speed.rs"]
mod speculative_speed;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `list`, `all`, or the name of an experiment (see `candle experiment list`).
    pub name: String,
    /// The folder the figures go to (created if missing).
    #[arg(long, default_value = "book/src/figures")]
    pub out: PathBuf,
    /// A small size of the same experiment (seconds instead of minutes), for
    /// tests; the book's figures use the default size.
    #[arg(long)]
    pub quick: bool,
}

/// How an experiment is run.
#[derive(Clone, Copy)]
enum Runner {
    /// One of chapter 10's experiments (`chapter_10::EXPERIMENTS`).
    Chapter10(&'static str),
    /// Chapter 01's demo on a data set (`candle scalar-demo`).
    ScalarDemo(&'static [&'static str]),
    /// The autograd graphs of chapters 01 and 03, DOT rendered by Graphviz.
    Graphs,
    /// Chapter 06's run and its dashboard.
    Dashboard,
    /// Needs a GPU: listed, skipped with a note.
    GpuOnly(&'static str),
    /// Chapter 08's KV-cache timing, for a model shape.
    KvCache(&'static str),
    /// Chapter 08's speculative sampling, on trained run folders.
    Speculative,
}

struct Entry {
    name: &'static str,
    chapter: &'static str,
    draws: &'static str,
    files: &'static str,
    time: &'static str,
    runner: Runner,
}

// ANCHOR: registry
const MOONS: &[&str] = &[];
const SPIRALS: &[&str] = &[
    "--dataset",
    "spirals",
    "--points",
    "200",
    "--hidden",
    "32,32",
    "--steps",
    "300",
    "--print-every",
    "50",
];

/// Every experiment, in the order `all` runs them.
fn registry() -> Vec<Entry> {
    let mut entries = vec![
        Entry {
            name: "moons",
            chapter: "01",
            draws: "scalar MLP on 100 moons points: decision boundary, training curve, log",
            files: "01-moons-{boundary,training}.{svg,png}, 01-moons-log.txt",
            time: "5 s",
            runner: Runner::ScalarDemo(MOONS),
        },
        Entry {
            name: "spirals",
            chapter: "01",
            draws: "scalar MLP on 200 spiral points: decision boundary, training curve, log",
            files: "01-spirals-{boundary,training}.{svg,png}, 01-spirals-log.txt",
            time: "1 min",
            runner: Runner::ScalarDemo(SPIRALS),
        },
        Entry {
            name: "graphs",
            chapter: "01, 03",
            draws: "the expression graph of chapter 01 and the autograd graph of chapter 03 (DOT; SVG with Graphviz)",
            files: "01-graph.{dot,svg}, 03-graph.{dot,svg}",
            time: "1 s",
            runner: Runner::Graphs,
        },
        Entry {
            name: "training-dashboard",
            chapter: "06",
            draws: "loss, accuracy, learning rate, gradient norms, activation histograms of `candle train mnist`",
            files: "06-{loss,accuracy,learning_rate,grad_norms,activations}.{png,svg}, 06-metrics.jsonl",
            time: "2 min",
            runner: Runner::Dashboard,
        },
        Entry {
            name: "kv-cache-shakespeare",
            chapter: "08",
            draws: "tokens/s with and without the KV cache, chapter 08's Shakespeare GPT, 512 tokens (a timing: not bit-deterministic)",
            files: "08-kv-cache-shakespeare.{svg,png,csv}, 08-kv-cache-shakespeare-table.txt",
            time: "1 min",
            runner: Runner::KvCache("shakespeare"),
        },
        Entry {
            name: "kv-cache-gpt2",
            chapter: "08",
            draws: "tokens/s with and without the KV cache, GPT-2 small's shape, 128 tokens (a timing: not bit-deterministic)",
            files: "08-kv-cache-gpt2.{svg,png,csv}, 08-kv-cache-gpt2-table.txt",
            time: "2 min",
            runner: Runner::KvCache("gpt2"),
        },
        Entry {
            name: "speculative",
            chapter: "08",
            draws: "speculative sampling: acceptance and speed-up for k = 1..8 (a timing; needs runs/speculative-{draft,target} from bench/speculative.sh, skipped without them)",
            files: "08-speculative.{svg,png,csv}, 08-speculative-table.txt",
            time: "3 min",
            runner: Runner::Speculative,
        },
        Entry {
            name: "gemm-ladder",
            chapter: "07",
            draws: "GFLOP/s of each GEMM kernel against cuBLAS (GPU only: `cargo run --release -p chapter-07 --example gemm_ladder`)",
            files: "07-gemm-ladder.*",
            time: "GPU",
            runner: Runner::GpuOnly(
                "needs a CUDA GPU; run `cargo run --release -p chapter-07 --example gemm_ladder` on one",
            ),
        },
    ];
    for e in chapter_10::EXPERIMENTS {
        let chapter = if e.figures.iter().all(|f| f.starts_with("09")) {
            "09"
        } else {
            "10"
        };
        entries.push(Entry {
            name: e.name,
            chapter,
            draws: e.draws,
            files: "",
            time: e.time,
            runner: Runner::Chapter10(e.name),
        });
    }
    entries
}
// ANCHOR_END: registry

fn files_of(e: &Entry) -> String {
    if let Runner::Chapter10(name) = e.runner {
        let exp = chapter_10::EXPERIMENTS
            .iter()
            .find(|x| x.name == name)
            .expect("registered");
        return exp
            .figures
            .iter()
            .map(|f| format!("{f}.{{svg,png,csv}}"))
            .collect::<Vec<_>>()
            .join(", ");
    }
    e.files.to_string()
}

fn list() {
    println!("experiments (candle experiment NAME [--out DIR] [--quick]; `all` runs every one):\n");
    for e in registry() {
        println!(
            "  {:<20} ch {:<6} ~{:<6} {}",
            e.name, e.chapter, e.time, e.draws
        );
        println!("  {:<20} {:<16} writes {}", "", "", files_of(&e));
    }
    println!(
        "\nAll are seeded and write the same bytes every run (on one kind of CPU), \
         except chapter 08's timing figures (08-kv-cache-*, 08-speculative): their counts are \
         seeded, but their timings measure this machine and its load."
    );
}

/// Checks that `out` is (or can be made) a folder we can write into, before
/// any time is spent; the error names the path.
fn prepare_out(out: &Path) -> Result<(), DynError> {
    if out.exists() && !out.is_dir() {
        return Err(format!("--out {}: is a file, expected a folder", out.display()).into());
    }
    std::fs::create_dir_all(out)
        .map_err(|e| format!("--out {}: cannot create the folder: {e}", out.display()))?;
    let probe = out.join(format!(".candle-write-test.{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("--out {}: cannot write into the folder: {e}", out.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

pub fn run(args: &Args) -> Result<(), DynError> {
    let entries = registry();
    if args.name == "list" {
        list();
        return Ok(());
    }
    let chosen: Vec<&Entry> = if args.name == "all" {
        entries.iter().collect()
    } else {
        match entries.iter().find(|e| e.name == args.name) {
            Some(e) => vec![e],
            None => {
                let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
                return Err(format!(
                    "no experiment is called {:?}; the experiments are: {} (or `all`, `list`)",
                    args.name,
                    names.join(", ")
                )
                .into());
            }
        }
    };
    prepare_out(&args.out)?;
    let started = Instant::now();
    let mut failed = Vec::new();
    for e in &chosen {
        let t = Instant::now();
        println!("== {} (chapter {}): {}", e.name, e.chapter, e.draws);
        match run_one(e, &args.out, args.quick) {
            Ok(()) => println!("== {} took {:.1} s", e.name, t.elapsed().as_secs_f64()),
            Err(err) => {
                eprintln!("error: {}: {err}", e.name);
                failed.push(e.name);
            }
        }
    }
    if chosen.len() > 1 {
        let s = started.elapsed().as_secs_f64();
        println!(
            "candle experiment all: {} experiments in {:.0} min {:.0} s ({s:.1} s){}",
            chosen.len(),
            (s / 60.0).floor(),
            s % 60.0,
            if failed.is_empty() {
                String::new()
            } else {
                format!("; failed: {}", failed.join(", "))
            }
        );
    }
    match failed.len() {
        0 => Ok(()),
        1 if chosen.len() == 1 => Err(format!("experiment {} failed", failed[0]).into()),
        _ => Err(format!("{} experiments failed: {}", failed.len(), failed.join(", ")).into()),
    }
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise}] {msg}")
            .expect("a valid template"),
    );
    bar
}

fn run_one(e: &Entry, out: &Path, quick: bool) -> Result<(), DynError> {
    match e.runner {
        Runner::Chapter10(name) => {
            let bar = progress_bar();
            let mut progress = chapter_10::Progress::new(|done, total, what| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(what.to_string());
            });
            let size = if quick {
                chapter_10::Size::Quick
            } else {
                chapter_10::Size::Book
            };
            let outcome =
                chapter_10::run(name, out, size, &mut progress).map_err(|e| e.to_string());
            bar.finish_and_clear();
            let outcome = outcome?;
            for line in &outcome.summary {
                println!("  {line}");
            }
            for f in &outcome.files {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        Runner::ScalarDemo(extra) => {
            #[derive(Parser)]
            struct Demo {
                #[command(flatten)]
                args: super::scalar_demo::Args,
            }
            let out = out.to_string_lossy().into_owned();
            let mut argv = vec!["scalar-demo", "--out", out.as_str()];
            argv.extend_from_slice(extra);
            if quick {
                argv.extend_from_slice(&["--steps", "5"]);
            }
            let demo = Demo::try_parse_from(argv)?;
            super::scalar_demo::run(&demo.args)
        }
        Runner::Graphs => graphs(out),
        Runner::Dashboard => dashboard(out, quick),
        Runner::KvCache(model) => {
            let mut argv = vec!["--model".to_string(), model.to_string()];
            argv.extend(["--out".to_string(), out.to_string_lossy().into_owned()]);
            if quick {
                argv.extend(["--max-tokens".to_string(), "16".to_string()]);
            }
            kv_cache_speed::run(argv)
        }
        Runner::Speculative => {
            let runs = ["runs/speculative-draft", "runs/speculative-target"];
            if let Some(missing) = runs.iter().find(|r| !Path::new(r).is_dir()) {
                println!(
                    "skipped: speculative needs the trained run folder {missing} \
                     (bench/speculative.sh trains both models, about an hour)"
                );
                return Ok(());
            }
            let mut argv = vec!["--out".to_string(), out.to_string_lossy().into_owned()];
            if quick {
                argv.extend(["--prompts", "2", "--tokens", "8", "--max-k", "2"].map(String::from));
            }
            speculative_speed::run(argv)
        }
        Runner::GpuOnly(why) => {
            println!("skipped: {} {why}", e.name);
            Ok(())
        }
    }
}

/// `01-graph.{dot,svg}` and `03-graph.{dot,svg}`; the SVGs need Graphviz.
fn graphs(out: &Path) -> Result<(), DynError> {
    let graphs = [
        ("01-graph", crate::scalar::example_graph().to_dot()),
        ("03-graph", graph_dot::figure_graph()?.to_dot()),
    ];
    for (stem, dot) in graphs {
        let dot_path = out.join(format!("{stem}.dot"));
        chapter_10::figure::write_file_atomically(&dot_path, dot.as_bytes())
            .map_err(|e| e.to_string())?;
        println!("wrote {}", dot_path.display());
        let svg_path = out.join(format!("{stem}.svg"));
        let tmp = chapter_10::figure::temporary_path(&svg_path);
        let rendered = std::process::Command::new("dot")
            .arg("-Tsvg")
            .arg(&dot_path)
            .arg("-o")
            .arg(&tmp)
            .status();
        match rendered {
            Ok(s) if s.success() => {
                std::fs::rename(&tmp, &svg_path)
                    .map_err(|e| format!("{}: cannot write: {e}", svg_path.display()))?;
                println!("wrote {}", svg_path.display());
            }
            _ => {
                let _ = std::fs::remove_file(&tmp);
                println!(
                    "note: Graphviz `dot` is not installed (or failed): {} was NOT rendered; \
                     install graphviz (apt-get install graphviz) and run again",
                    svg_path.display()
                );
            }
        }
    }
    Ok(())
}

/// Trains chapter 06's main job (`candle train mnist`; `--quick`: two
/// epochs on the digits) in a scratch run folder inside `out`, draws its
/// dashboard, and copies the figures in as `06-*`.
fn dashboard(out: &Path, quick: bool) -> Result<(), DynError> {
    #[derive(Parser)]
    struct Train {
        #[command(subcommand)]
        what: super::train::TrainWhat,
    }
    let run_dir = out.join(format!(".candle-experiment-run.{}", std::process::id()));
    let run_str = run_dir.to_string_lossy().into_owned();
    let argv: Vec<&str> = if quick {
        vec![
            "train", "digits", "--epochs", "2", "--out", &run_str, "--force", "--quiet",
        ]
    } else {
        vec!["train", "mnist", "--out", &run_str, "--force"]
    };
    let train = Train::try_parse_from(argv)?;
    let result = (|| -> Result<(), DynError> {
        super::train::run_command(&super::train::TrainArgs { what: train.what })?;
        let dashboard = chapter_06::dashboard::write_dashboard(&run_dir)?;
        for note in &dashboard.notes {
            println!("note: {note}");
        }
        let mut copies: Vec<(PathBuf, String)> = dashboard
            .files
            .iter()
            .filter(|f| {
                matches!(
                    f.extension().and_then(|e| e.to_str()),
                    Some("png") | Some("svg")
                )
            })
            .filter_map(|f| {
                let name = f.file_name()?.to_str()?.to_string();
                let stem = name.rsplit_once('.')?.0;
                // The five figures chapter 06's page shows.
                [
                    "loss",
                    "accuracy",
                    "learning_rate",
                    "grad_norms",
                    "activations",
                ]
                .contains(&stem)
                .then(|| (f.clone(), format!("06-{name}")))
            })
            .collect();
        copies.push((
            run_dir.join(chapter_06::metrics::METRICS_FILE),
            "06-metrics.jsonl".into(),
        ));
        for (from, name) in copies {
            let bytes = std::fs::read(&from).map_err(|e| format!("{}: {e}", from.display()))?;
            let to = out.join(&name);
            chapter_10::figure::write_file_atomically(&to, &bytes).map_err(|e| e.to_string())?;
            println!("wrote {}", to.display());
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&run_dir);
    result
}
