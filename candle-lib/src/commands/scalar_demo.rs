//! `candle scalar-demo`: chapter 01's demo. Trains a scalar-autograd MLP on a
//! two-dimensional toy data set and writes the figures of the book: the
//! decision boundary, the training curve, and the expression graph of a
//! small example (DOT text, rendered to SVG when Graphviz's `dot` is on the
//! `PATH`).
//!
//! ```text
//! cargo run -p candle-lib -- scalar-demo --out book/src/figures
//! cargo run -p candle-lib -- scalar-demo --dataset spirals --points 200 --steps 400
//! cargo run -p candle-lib -- scalar-demo --sweep 16
//! ```

use super::values;
use crate::scalar::plot::{save_training_curve, DecisionBoundary};
use crate::scalar::{
    example_graph, moons, objective, spirals, train, Dataset, Init, Loss, Mlp, Sgd, StepReport,
    TrainConfig,
};
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which toy data set to learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetKind {
    /// Two interleaving half circles (scikit-learn's make_moons).
    Moons,
    /// Two interleaved spirals, 1.5 turns each (much harder).
    Spirals,
}

/// The per-example loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LossKind {
    /// max(0, 1 − y·s), as micrograd's demo.
    Hinge,
    /// ln(1 + e^(−y·s)).
    Logistic,
}

/// How the weights are initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitKind {
    /// He/Kaiming: U(±√(6/nin)) weights, zero biases.
    He,
    /// PyTorch's nn.Linear default: U(±1/√nin).
    Pytorch,
    /// U(±1) for everything, as micrograd.
    Unit,
}

/// Options of `candle scalar-demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Directory the figures are written to.
    #[arg(long, default_value = "book/src/figures")]
    pub out: PathBuf,
    /// Which data set to learn.
    #[arg(long, value_enum, default_value_t = DatasetKind::Moons)]
    pub dataset: DatasetKind,
    /// Number of points, 2 to 10000.
    #[arg(long, default_value_t = 100, value_parser = values::points)]
    pub points: usize,
    /// Standard deviation of the noise added to the points, in [0, 10]
    /// [default: 0.1 for moons, 0.05 for spirals].
    #[arg(long, value_parser = values::noise)]
    pub noise: Option<f64>,
    /// Seed of the data; the network is initialised from seed + 1.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hidden layer sizes, comma separated, each 1 to 1024 (the output layer
    /// of size 1 is added).
    #[arg(long, value_delimiter = ',', default_value = "16,16", value_parser = values::scalar_layer_width)]
    pub hidden: Vec<usize>,
    /// Weight initialisation.
    #[arg(long, value_enum, default_value_t = InitKind::He)]
    pub init: InitKind,
    /// Number of full-batch gradient steps, 1 to 1000000.
    #[arg(long, default_value_t = 100, value_parser = values::steps)]
    pub steps: usize,
    /// Per-example loss.
    #[arg(long, value_enum, default_value_t = LossKind::Hinge)]
    pub loss: LossKind,
    /// Weight of the L2 penalty α·Σp², in [0, 10].
    #[arg(long, default_value_t = 1e-4, value_parser = values::weight_decay)]
    pub alpha: f64,
    /// Learning rate at the first step, in (0, 10] (it falls linearly to --lr-end).
    #[arg(long, default_value_t = 1.0, value_parser = values::learning_rate)]
    pub lr_start: f64,
    /// Learning rate at the last step, in [0, 10].
    #[arg(long, default_value_t = 0.1, value_parser = values::final_learning_rate)]
    pub lr_end: f64,
    /// Print every n-th step, 1 to 1000000 (the first and last are always printed).
    #[arg(long, default_value_t = 10, value_parser = values::print_every)]
    pub print_every: usize,
    /// Instead of figures: train with seeds 0..N (N up to 10000) for each
    /// initialisation and print how often training reaches 100% accuracy
    /// and beats loss 0.011.
    #[arg(long, default_value_t = 0, value_parser = values::sweep_seeds)]
    pub sweep: u64,
}

/// The most `points × parameters` a run may have: each training step builds
/// a graph of about that many `Value` nodes (a few hundred bytes each), so
/// this keeps a step within about a gigabyte.
pub const MAX_GRAPH: usize = 5_000_000;

impl Args {
    /// Checks the options together (each was checked alone by its parser;
    /// this also covers `Args` built in code): the graph of one training
    /// step must fit in memory, and the noise must be a number, or the data
    /// and the figure's axes would be NaN.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                "--points",
                self.points.to_string(),
                values::points(&self.points.to_string()).err(),
            ),
            (
                "--steps",
                self.steps.to_string(),
                values::steps(&self.steps.to_string()).err(),
            ),
            (
                "--noise",
                format!("{:?}", self.noise),
                self.noise.and_then(|n| values::noise(&n.to_string()).err()),
            ),
            (
                "--alpha",
                self.alpha.to_string(),
                values::weight_decay(&self.alpha.to_string()).err(),
            ),
            (
                "--lr-start",
                self.lr_start.to_string(),
                values::learning_rate(&self.lr_start.to_string()).err(),
            ),
            (
                "--lr-end",
                self.lr_end.to_string(),
                values::final_learning_rate(&self.lr_end.to_string()).err(),
            ),
        ];
        for (option, value, err) in checks {
            if let Some(err) = err {
                return Err(format!("invalid value '{value}' for '{option}': {err}"));
            }
        }
        if let Some(&w) = self
            .hidden
            .iter()
            .find(|&&w| values::scalar_layer_width(&w.to_string()).is_err())
        {
            return Err(format!(
                "invalid value '{w}' for '--hidden': each width must be from 1 to 1024"
            ));
        }
        let params = self
            .sizes()
            .iter()
            .try_fold((2usize, 0usize), |(nin, acc), &nout| {
                Some((
                    nout,
                    acc.checked_add(nin.checked_add(1)?.checked_mul(nout)?)?,
                ))
            })
            .map(|(_, p)| p);
        let graph = params.and_then(|p| p.checked_mul(self.points));
        match graph {
            Some(g) if g <= MAX_GRAPH => Ok(()),
            _ => Err(format!(
                "--points {} with --hidden {:?}: {} points × {} parameters make a graph of more \
                 than {MAX_GRAPH} nodes per step; use fewer points or smaller layers",
                self.points,
                self.hidden,
                self.points,
                params.map_or_else(|| "too many".to_string(), |p| p.to_string()),
            )),
        }
    }

    fn data(&self, seed: u64) -> Dataset {
        match self.dataset {
            DatasetKind::Moons => moons(self.points, self.noise.unwrap_or(0.1), seed),
            DatasetKind::Spirals => spirals(self.points, self.noise.unwrap_or(0.05), seed),
        }
    }

    fn sizes(&self) -> Vec<usize> {
        self.hidden.iter().copied().chain([1]).collect()
    }

    fn config(&self) -> TrainConfig {
        let loss = match self.loss {
            LossKind::Hinge => Loss::Hinge,
            LossKind::Logistic => Loss::Logistic,
        };
        TrainConfig {
            steps: self.steps,
            loss,
            alpha: self.alpha,
        }
    }

    fn sgd(&self) -> Sgd {
        Sgd {
            lr_start: self.lr_start,
            lr_end: self.lr_end,
            total_steps: self.steps,
        }
    }

    fn dataset_name(&self) -> &'static str {
        match self.dataset {
            DatasetKind::Moons => "moons",
            DatasetKind::Spirals => "spirals",
        }
    }
}

fn init_of(kind: InitKind) -> Init {
    match kind {
        InitKind::He => Init::He,
        InitKind::Pytorch => Init::PyTorch,
        InitKind::Unit => Init::Unit,
    }
}

/// Runs the demo.
pub fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    args.validate()?;
    if args.sweep > 0 {
        return sweep(args);
    }
    // Make sure the figures can be written before spending time on training.
    create_out_dir(&args.out)?;
    let started = Instant::now();
    let data = args.data(args.seed);
    let sizes = args.sizes();
    let model = Mlp::seeded(2, &sizes, init_of(args.init), args.seed + 1);
    let config = args.config();
    let mut log = format!(
        "Mlp(2, {sizes:?}), {} parameters, {:?} init; {} {} points (seed {}); \
         {:?} loss + {:e}·Σp²; SGD, lr {} → {}\n",
        model.parameters().len(),
        args.init,
        data.len(),
        args.dataset_name(),
        args.seed,
        config.loss,
        config.alpha,
        args.lr_start,
        args.lr_end,
    );
    print!("{log}");
    let last_step = args.steps - 1;
    let mut sgd = args.sgd();
    let history = train(&model, &data, &config, &mut sgd, |r| {
        if r.step == 0 || r.step == last_step || r.step % args.print_every.max(1) == 0 {
            let line = report_line(&format!("step {:>3}", r.step), r);
            println!("{line}");
            log.push_str(&line);
            log.push('\n');
        }
    });
    let (_, after) = objective(&model, &data, config.loss, config.alpha);
    let line = report_line("trained ", &after);
    println!("{line}");
    let _ = writeln!(log, "{line}");
    let trained_in = started.elapsed();

    let name = args.dataset_name();
    let title = format!(
        "{name} after {} steps: loss {:.4}, {:.0}% correct",
        args.steps,
        after.loss,
        100.0 * after.accuracy
    );
    let boundary = DecisionBoundary::compute(&model, &data, 150);
    let mut written = Vec::new();
    for ext in ["png", "svg"] {
        let path = args.out.join(format!("01-{name}-boundary.{ext}"));
        boundary
            .save(&path, &title)
            .map_err(|e| format!("{}: cannot draw: {e}", path.display()))?;
        written.push(path);
        let path = args.out.join(format!("01-{name}-training.{ext}"));
        save_training_curve(&history, &path, &format!("training on {name}"))
            .map_err(|e| format!("{}: cannot draw: {e}", path.display()))?;
        written.push(path);
    }
    let log_path = args.out.join(format!("01-{name}-log.txt"));
    write_file(&log_path, log.as_bytes())?;
    written.push(log_path);
    written.extend(write_graph(&args.out)?);
    for path in &written {
        println!("wrote {}", path.display());
    }
    println!(
        "took {:.2} s (training {:.2} s, figures {:.2} s)",
        started.elapsed().as_secs_f64(),
        trained_in.as_secs_f64(),
        (started.elapsed() - trained_in).as_secs_f64()
    );
    Ok(())
}

/// Creates the output folder; the error names it (and says when a file
/// stands where the folder should be).
fn create_out_dir(out: &Path) -> Result<(), Box<dyn Error>> {
    if out.exists() && !out.is_dir() {
        return Err(format!(
            "--out {}: is a file, expected a folder for the figures",
            out.display()
        )
        .into());
    }
    std::fs::create_dir_all(out)
        .map_err(|e| format!("--out {}: cannot create the folder: {e}", out.display()))?;
    // A folder we may not write to is found now, not after training.
    let probe = out.join(".candle-write-test");
    std::fs::write(&probe, b"")
        .map_err(|e| format!("--out {}: cannot write into the folder: {e}", out.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes a file through a temporary file renamed into place (so an
/// interrupted run leaves the old file whole); the error names it.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Box<dyn Error>> {
    chapter_10::figure::write_file_atomically(path, bytes).map_err(|e| e.to_string().into())
}

fn report_line(prefix: &str, r: &StepReport) -> String {
    format!(
        "{prefix}  loss {:.6} (data {:.6} + L2 {:.6})  accuracy {:5.1}%",
        r.loss,
        r.data_loss,
        r.reg_loss,
        100.0 * r.accuracy
    )
}

/// Writes `01-graph.dot` and, if Graphviz is installed, renders `01-graph.svg`.
fn write_graph(out: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let dot_path = out.join("01-graph.dot");
    write_file(&dot_path, example_graph().to_dot().as_bytes())?;
    let svg_path = out.join("01-graph.svg");
    let rendered = std::process::Command::new("dot")
        .arg("-Tsvg")
        .arg(&dot_path)
        .arg("-o")
        .arg(&svg_path)
        .status();
    match rendered {
        Ok(status) if status.success() => Ok(vec![dot_path, svg_path]),
        _ => {
            eprintln!(
                "note: Graphviz `dot` not found or failed; {} was not rendered \
                 (install graphviz, or paste the DOT text into any Graphviz viewer)",
                svg_path.display()
            );
            Ok(vec![dot_path])
        }
    }
}

/// Trains with seeds 0..n for each initialisation and prints a summary.
fn sweep(args: &Args) -> Result<(), Box<dyn Error>> {
    let config = args.config();
    println!(
        "{} seeds, {} {} points, Mlp(2, {:?}), {} steps",
        args.sweep,
        args.points,
        args.dataset_name(),
        args.sizes(),
        args.steps
    );
    println!("init      reached 100%   loss < 0.011   median loss at last step");
    for kind in [InitKind::Unit, InitKind::Pytorch, InitKind::He] {
        let (mut perfect, mut below, mut losses) = (0, 0, Vec::new());
        for seed in 0..args.sweep {
            let data = args.data(seed);
            let model = Mlp::seeded(2, &args.sizes(), init_of(kind), seed + 1);
            let history = train(&model, &data, &config, &mut args.sgd(), |_| {});
            let (_, after) = objective(&model, &data, config.loss, config.alpha);
            let last = history[history.len() - 1].loss;
            perfect += usize::from(after.accuracy == 1.0);
            below += usize::from(last < 0.011);
            losses.push(last);
        }
        losses.sort_by(f64::total_cmp);
        println!(
            "{:<9} {perfect:>4} / {:<6}  {below:>4} / {:<6}  {:.4}",
            format!("{kind:?}"),
            args.sweep,
            args.sweep,
            losses[losses.len() / 2]
        );
    }
    Ok(())
}
