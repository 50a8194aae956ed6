//! `candle train`: trains a model on a data set shipped in `data/`.

use super::values;
use chapter_02::{default_device, manual_seed, set_default_device, DType, Device};
use chapter_03::{RawTensor, Tensor};
use chapter_06::data::{
    default_data_dir, load_digits, DataLoader, Dataset, Mnist, DIGITS_FEATURES,
};
use chapter_06::{fit, Mlp, OnResume, OptimizerKind, RunDir, ScheduleKind, TrainConfig};
use clap::ValueEnum;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The data sets of the MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetName {
    /// 60 000 + 10 000 handwritten digits, 28x28 (data/mnist).
    Mnist,
    /// scikit-learn's 1 797 8x8 digits (data/digits), split 80/20.
    Digits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelName {
    /// A multi-layer perceptron (sizes from --hidden).
    Mlp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerName {
    Sgd,
    Adam,
    Adamw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleName {
    Constant,
    OneCycle,
    WarmupCosine,
}

/// `candle train <what>`: one sub-command per data set, each with the
/// options of its model.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    pub what: TrainWhat,
}

#[derive(Debug, clap::Subcommand)]
pub enum TrainWhat {
    /// Chapter 06: an MLP on MNIST, 60 000 + 10 000 handwritten digits, 28x28 (data/mnist).
    Mnist(Args),
    /// Chapter 06: an MLP on scikit-learn's 1 797 8x8 digits (data/digits), split 80/20.
    Digits(Args),
    /// Chapter 08: a character-level GPT on Shakespeare (nanoGPT's CPU recipe).
    Shakespeare(super::train_gpt::Args),
}

/// Runs `candle train <what>`.
pub fn run_command(args: &TrainArgs) -> Result<(), DynError> {
    match &args.what {
        TrainWhat::Mnist(a) => run(DatasetName::Mnist, a),
        TrainWhat::Digits(a) => run(DatasetName::Digits, a),
        TrainWhat::Shakespeare(a) => super::train_gpt::run(a),
    }
}

/// Options of `candle train mnist` and `candle train digits`. The defaults
/// are the measured recipe that reaches 98% on MNIST fastest (see the
/// chapter 06 page). Every number is checked when it is parsed (see
/// [`values`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ModelName,
    /// Hidden layer widths of the MLP (comma-separated, each 1 to 65536).
    /// Default: 256 for MNIST, 64,64,64,64 for digits.
    #[arg(long, value_delimiter = ',', value_parser = values::layer_width)]
    pub hidden: Option<Vec<usize>>,
    /// Number of passes over the training set, 1 to 100000 (default 5 for
    /// MNIST, 200 for digits).
    #[arg(long, value_parser = values::epochs)]
    pub epochs: Option<usize>,
    /// Examples per batch, 1 to 65536.
    #[arg(long, default_value_t = 128, value_parser = values::batch_size)]
    pub batch_size: usize,
    /// Peak learning rate, in (0, 10] (default 3e-3 for MNIST, 3e-2 for digits).
    #[arg(long, value_parser = values::learning_rate)]
    pub lr: Option<f64>,
    #[arg(long, value_enum, default_value = "adamw")]
    pub optimizer: OptimizerName,
    #[arg(long, value_enum, default_value = "one-cycle")]
    pub schedule: ScheduleName,
    /// Weight decay, in [0, 10] (default 1e-4 for MNIST, 1e-2 for digits).
    #[arg(long, value_parser = values::weight_decay)]
    pub weight_decay: Option<f64>,
    /// Dropout probability after each hidden layer, in [0, 1).
    #[arg(long, default_value_t = 0.0, value_parser = values::dropout)]
    pub dropout: f64,
    /// Clip the global gradient norm to this value (a finite number > 0).
    #[arg(long, value_parser = values::clip_norm)]
    pub clip_grad_norm: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run folder for metrics and checkpoints (default runs/<dataset>-<model>).
    /// A folder that already holds a run is refused unless --resume or
    /// --force is given.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint. The settings
    /// must be the run's; the differences are listed otherwise.
    #[arg(long)]
    pub resume: bool,
    /// Without --resume: replace the run in --out (its files are removed,
    /// each one named). With --resume: accept the changed settings that the
    /// saved state allows (epochs, learning rate, weight decay, schedule,
    /// clipping, dropout); never the seed, batch size, data set, model
    /// shape or optimizer.
    #[arg(long)]
    pub force: bool,
    /// Where the data sets live (default: the repository's data/ folder, or $CANDLE_DATA).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Report the training time at which test accuracy first reaches this, in (0, 1].
    #[arg(long, default_value_t = 0.98, value_parser = values::accuracy)]
    pub target: f64,
    /// No progress bars or per-epoch lines.
    #[arg(long)]
    pub quiet: bool,
    /// The device to train on: `cpu`, `cuda` (`cuda:1`, ... for another
    /// GPU) or `cuda-emu` (chapter 07's CUDA emulator, slow). Default:
    /// $CANDLE_DEVICE, else the CPU. A device that cannot be opened is an
    /// error, never a silent fallback to the CPU.
    #[arg(long)]
    pub device: Option<String>,
}

/// The most parameters `candle train` builds a model with: 50 million
/// (200 MB of weights, 800 MB with gradients and Adam's two moments).
pub const MAX_PARAMETERS: usize = 50_000_000;

type DynError = Box<dyn std::error::Error>;

/// A training set and a test set.
pub type TrainTest = (Arc<dyn Dataset>, Arc<dyn Dataset>);

/// The training and test sets of `dataset` in `data_dir`, with features in
/// `[0, 1]` (digits; MNIST is normalised with its mean and deviation). The
/// digits are split 80/20, stratified, by `seed`. An empty set is an error.
pub fn load_data(dataset: DatasetName, data_dir: &Path, seed: u64) -> Result<TrainTest, DynError> {
    let (source, train, test): (PathBuf, Arc<dyn Dataset>, Arc<dyn Dataset>) = match dataset {
        DatasetName::Mnist => {
            let dir = data_dir.join("mnist");
            let m = Mnist::load_normalized(&dir)?;
            (dir, Arc::new(m.train), Arc::new(m.test))
        }
        DatasetName::Digits => {
            // load_digits already scales the pixels 0..=16 to [0, 1].
            let path = data_dir.join("digits").join("digits.csv.gz");
            let d = load_digits(&path)?;
            let (train, test) = d.stratified_split(0.2, seed)?;
            (path, Arc::new(train), Arc::new(test))
        }
    };
    for (set, name) in [(&train, "training"), (&test, "test")] {
        if set.is_empty() {
            return Err(format!(
                "{}: the {name} set holds no examples: there is nothing to train on",
                source.display()
            )
            .into());
        }
    }
    Ok((train, test))
}

/// The number of parameters of an MLP with layer sizes `sizes`, or `None`
/// if it does not even fit in a `usize`.
pub fn mlp_parameters(sizes: &[usize]) -> Option<usize> {
    sizes.windows(2).try_fold(0usize, |acc, w| {
        w[0].checked_mul(w[1])?.checked_add(w[1])?.checked_add(acc)
    })
}

/// Trains an MLP on `dataset`.
pub fn run(dataset: DatasetName, args: &Args) -> Result<(), DynError> {
    // The device first: one that cannot be opened stops the command before
    // anything is read or written.
    if let Some(name) = &args.device {
        set_default_device(Some(Device::parse(name)?));
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let mnist = dataset == DatasetName::Mnist;
    let config = TrainConfig {
        epochs: args.epochs.unwrap_or(if mnist { 5 } else { 200 }),
        batch_size: args.batch_size,
        lr: args.lr.unwrap_or(if mnist { 3e-3 } else { 3e-2 }),
        optimizer: match args.optimizer {
            OptimizerName::Sgd => OptimizerKind::Sgd,
            OptimizerName::Adam => OptimizerKind::Adam,
            OptimizerName::Adamw => OptimizerKind::AdamW,
        },
        momentum: 0.9,
        weight_decay: args.weight_decay.unwrap_or(if mnist { 1e-4 } else { 1e-2 }),
        schedule: match args.schedule {
            ScheduleName::Constant => ScheduleKind::Constant,
            ScheduleName::OneCycle => ScheduleKind::OneCycle,
            ScheduleName::WarmupCosine => ScheduleKind::WarmupCosine,
        },
        clip_grad_norm: args.clip_grad_norm,
        seed: args.seed,
        log_every: 50,
        target_accuracy: Some(args.target),
        stop_after_epochs: None,
    };
    config.validate()?;
    let hidden = args
        .hidden
        .clone()
        .unwrap_or(if mnist { vec![256] } else { vec![64; 4] });
    let (features, classes) = (if mnist { 28 * 28 } else { DIGITS_FEATURES }, 10);
    let mut sizes = vec![features];
    sizes.extend(&hidden);
    sizes.push(classes);
    let shape: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    // Refuse a model too large for memory before allocating any of it.
    match mlp_parameters(&sizes) {
        Some(n) if n <= MAX_PARAMETERS => {}
        n => {
            return Err(format!(
                "--hidden {}: an MLP {} would have {} parameters; the limit is {MAX_PARAMETERS}",
                hidden
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                shape.join("-"),
                n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
            )
            .into())
        }
    }

    // ANCHOR: run_dir
    let name = if mnist { "mnist" } else { "digits" };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{name}-mlp")));
    let hidden_list: Vec<String> = hidden.iter().map(|h| h.to_string()).collect();
    let run_dir = RunDir::new(out)
        .force(args.force)
        .setting("dataset", name, OnResume::Fixed("it decides the data"))
        .setting("--model", "mlp", OnResume::Fixed("it decides the model"))
        .setting(
            "--hidden",
            hidden_list.join(","),
            OnResume::Fixed("it decides the shape of the model"),
        )
        .setting("--dropout", args.dropout, OnResume::Forceable);
    // Check the folder before the data is loaded, to fail fast; `fit`
    // checks again once it holds the folder's lock.
    let plan = run_dir.check(&config, args.resume)?;
    if let Some(ckpt) = &plan.checkpoint {
        if ckpt.epoch >= config.epochs as u64 {
            return Err(format!(
                "{}: run already finished ({} of {} epochs); to train it longer, pass a \
                 larger --epochs with --resume --force",
                run_dir.path.display(),
                ckpt.epoch,
                config.epochs
            )
            .into());
        }
    }
    // ANCHOR_END: run_dir

    let (train, test) = load_data(dataset, &data_dir, args.seed)?;
    let train = DataLoader::new(train, args.batch_size)?
        .shuffle(args.seed)
        .prefetch(2);
    let test = DataLoader::new(test, 1000)?;

    manual_seed(args.seed);
    let device = default_device()?;
    let model = Mlp::new(&sizes, args.dropout, DType::F32, &device)?;
    if !args.quiet {
        eprintln!(
            "training an MLP {} ({} parameters) on {} for {} epochs on {device}; run folder {}",
            shape.join("-"),
            chapter_05::ModuleExt::num_parameters(&model),
            if mnist { "MNIST" } else { "digits" },
            config.epochs,
            run_dir.path.display()
        );
    }
    let probe = |x: &Tensor| -> chapter_02::Result<Vec<(String, RawTensor)>> {
        let (_, acts) = model.forward_with_activations(x)?;
        Ok(acts
            .into_iter()
            .enumerate()
            .map(|(i, a)| (format!("layers.{i} (after ReLU)"), a))
            .collect())
    };
    let summary = fit(
        &model,
        &train,
        &test,
        &config,
        &run_dir,
        args.resume,
        Some(&probe),
        !args.quiet,
    )?;
    if summary.epochs_run == 0 {
        return Err(format!(
            "{}: no epoch was trained (the run had already finished)",
            run_dir.path.display()
        )
        .into());
    }
    if !args.quiet {
        match summary.reached_target {
            Some((epoch, secs)) => eprintln!(
                "reached {:.1}% test accuracy after epoch {epoch}: {secs:.2} s of training",
                100.0 * args.target
            ),
            None => eprintln!("did not reach {:.1}% test accuracy", 100.0 * args.target),
        }
        eprintln!(
            "training time: {:.2} s ({:.2} s per epoch)",
            summary.train_seconds,
            summary.train_seconds / summary.epochs_run.max(1) as f64
        );
    }
    println!("test accuracy: {:.2}%", 100.0 * summary.test_accuracy);
    Ok(())
}
