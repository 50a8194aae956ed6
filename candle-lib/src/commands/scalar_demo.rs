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
    /// Number of points.
    #[arg(long, default_value_t = 100)]
    pub points: usize,
    /// Standard deviation of the noise added to the points [default: 0.1 for
    /// moons, 0.05 for spirals].
    #[arg(long)]
    pub noise: Option<f64>,
    /// Seed of the data; the network is initialised from seed + 1.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hidden layer sizes, comma separated (the output layer of size 1 is added).
    #[arg(long, value_delimiter = ',', default_value = "16,16")]
    pub hidden: Vec<usize>,
    /// Weight initialisation.
    #[arg(long, value_enum, default_value_t = InitKind::He)]
    pub init: InitKind,
    /// Number of full-batch gradient steps.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Per-example loss.
    #[arg(long, value_enum, default_value_t = LossKind::Hinge)]
    pub loss: LossKind,
    /// Weight of the L2 penalty α·Σp².
    #[arg(long, default_value_t = 1e-4)]
    pub alpha: f64,
    /// Learning rate at the first step (it falls linearly to --lr-end).
    #[arg(long, default_value_t = 1.0)]
    pub lr_start: f64,
    /// Learning rate at the last step.
    #[arg(long, default_value_t = 0.1)]
    pub lr_end: f64,
    /// Print every n-th step (the first and last are always printed).
    #[arg(long, default_value_t = 10)]
    pub print_every: usize,
    /// Instead of figures: train with seeds 0..N for each initialisation and
    /// print how often training reaches 100% accuracy and beats loss 0.011.
    #[arg(long, default_value_t = 0)]
    pub sweep: u64,
}

impl Args {
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
    if args.steps == 0 || args.points < 2 {
        return Err("scalar-demo needs --steps ≥ 1 and --points ≥ 2".into());
    }
    if args.sweep > 0 {
        return sweep(args);
    }
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

    std::fs::create_dir_all(&args.out)?;
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
        boundary.save(&path, &title)?;
        written.push(path);
        let path = args.out.join(format!("01-{name}-training.{ext}"));
        save_training_curve(&history, &path, &format!("training on {name}"))?;
        written.push(path);
    }
    let log_path = args.out.join(format!("01-{name}-log.txt"));
    std::fs::write(&log_path, &log)?;
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
    std::fs::write(&dot_path, example_graph().to_dot())?;
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
