//! `candle train`: trains a model on a data set shipped in `data/`.

use super::values;
use chapter_02::{default_device, manual_seed, set_default_device, DType, Device};
use chapter_03::{RawTensor, Tensor};
use chapter_06::data::{
    default_data_dir, load_digits, DataLoader, Dataset, InMemoryDataset, Mnist, RandomCrop,
    DIGITS_FEATURES, MNIST_MEAN, MNIST_STD,
};
use chapter_06::{
    fit, ActivationProbe, Mlp, OnResume, OptimizerKind, RunDir, ScheduleKind, TrainConfig,
};
use chapter_09::{ResNet, ResNetConfig};
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
    /// Chapter 09's ResNet14: a 3x3 stem and six basic blocks (MNIST:
    /// 16-16-32-32-64-64 channels; digits: 8-8-16-16, the seed project's model).
    Resnet14,
}

impl ModelName {
    fn as_str(self) -> &'static str {
        match self {
            ModelName::Mlp => "mlp",
            ModelName::Resnet14 => "resnet14",
        }
    }
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
    /// 5% warm-up, then the rate divided by 10 at 50% and 75% of the steps.
    WarmupStep,
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
    /// Chapters 06 and 09: an MLP or a ResNet14 on MNIST, 60 000 + 10 000
    /// handwritten digits, 28x28 (data/mnist).
    Mnist(Args),
    /// Chapters 06 and 09: an MLP or a ResNet14 on scikit-learn's 1 797 8x8
    /// digits (data/digits), split 80/20.
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
/// depend on the model and the data set: for the MLP they are the measured
/// recipe that reaches 98% on MNIST fastest (see the chapter 06 page), for
/// the ResNet14 the recipes of chapter 09 (see [`Recipe`]). Every number is
/// checked when it is parsed (see [`values`]).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ModelName,
    /// Hidden layer widths of the MLP (comma-separated, each 1 to 65536).
    /// Default: 256 for MNIST, 64,64,64,64 for digits. MLP only.
    #[arg(long, value_delimiter = ',', value_parser = values::layer_width)]
    pub hidden: Option<Vec<usize>>,
    /// Number of passes over the training set, 1 to 100000 (default: MLP 5
    /// for MNIST, 200 for digits; ResNet14 4 for MNIST, 100 for digits).
    #[arg(long, value_parser = values::epochs)]
    pub epochs: Option<usize>,
    /// Examples per batch, 1 to 65536.
    #[arg(long, default_value_t = 128, value_parser = values::batch_size)]
    pub batch_size: usize,
    /// Peak learning rate, in (0, 10] (default: MLP 3e-3 for MNIST, 3e-2
    /// for digits; ResNet14 3e-3 for MNIST, 3e-3 for digits).
    #[arg(long, value_parser = values::learning_rate)]
    pub lr: Option<f64>,
    #[arg(long, value_enum, default_value = "adamw")]
    pub optimizer: OptimizerName,
    /// Default: one-cycle, except warmup-step for the ResNet14 on digits
    /// (the seed project's recipe).
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleName>,
    /// Weight decay, in [0, 10] (default: MLP 1e-4 for MNIST, 1e-2 for
    /// digits; ResNet14 1e-4 for MNIST, 0.1 for digits).
    #[arg(long, value_parser = values::weight_decay)]
    pub weight_decay: Option<f64>,
    /// Dropout probability after each hidden layer, in [0, 1). MLP only.
    #[arg(long, value_parser = values::dropout)]
    pub dropout: Option<f64>,
    /// Random shifts of the training images by up to this many pixels in
    /// each direction, 0 to 8 (default: 0 for the MLP; ResNet14 2 for MNIST,
    /// 1 for digits).
    #[arg(long, value_parser = values::shift_pixels)]
    pub shift: Option<usize>,
    /// Clip the global gradient norm to this value (a finite number > 0).
    #[arg(long, value_parser = values::clip_norm)]
    pub clip_grad_norm: Option<f64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train at most this many epochs in this call, then stop with a
    /// checkpoint (continue later with --resume; the schedule still spans
    /// --epochs), 1 to 100000.
    #[arg(long, value_parser = values::epochs)]
    pub stop_after: Option<usize>,
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
    /// Report the training time at which test accuracy first reaches this,
    /// in (0, 1] (default 0.98 for the MLP, 0.995 for the ResNet14 on MNIST,
    /// 0.97 on digits).
    #[arg(long, value_parser = values::accuracy)]
    pub target: Option<f64>,
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
    let (train, test) = load_sets(dataset, data_dir, seed)?;
    Ok((Arc::new(train), Arc::new(test)))
}

/// [`load_data`] with every example shaped as a one-channel image,
/// `[1, 28, 28]` or `[1, 8, 8]`, for a convolutional network.
pub fn load_images(
    dataset: DatasetName,
    data_dir: &Path,
    seed: u64,
) -> Result<TrainTest, DynError> {
    let side = match dataset {
        DatasetName::Mnist => 28,
        DatasetName::Digits => 8,
    };
    let (train, test) = load_sets(dataset, data_dir, seed)?;
    Ok((
        Arc::new(train.with_feature_shape(&[1, side, side])?),
        Arc::new(test.with_feature_shape(&[1, side, side])?),
    ))
}

fn load_sets(
    dataset: DatasetName,
    data_dir: &Path,
    seed: u64,
) -> Result<(InMemoryDataset, InMemoryDataset), DynError> {
    let (source, train, test) = match dataset {
        DatasetName::Mnist => {
            let dir = data_dir.join("mnist");
            let m = Mnist::load_normalized(&dir)?;
            (dir, m.train, m.test)
        }
        DatasetName::Digits => {
            // load_digits already scales the pixels 0..=16 to [0, 1].
            let path = data_dir.join("digits").join("digits.csv.gz");
            let d = load_digits(&path)?;
            let (train, test) = d.stratified_split(0.2, seed)?;
            (path, train, test)
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

/// The defaults of one model on one data set: the recipes of chapters 06
/// and 09, each measured on the chapter's page.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub schedule: ScheduleName,
    /// Random shift of the training images, in pixels each way.
    pub shift: usize,
    /// The test accuracy whose time to reach is reported.
    pub target: f64,
}

impl Recipe {
    pub fn new(dataset: DatasetName, model: ModelName) -> Recipe {
        match (model, dataset) {
            (ModelName::Mlp, DatasetName::Mnist) => Recipe {
                epochs: 5,
                lr: 3e-3,
                weight_decay: 1e-4,
                schedule: ScheduleName::OneCycle,
                shift: 0,
                target: 0.98,
            },
            (ModelName::Mlp, DatasetName::Digits) => Recipe {
                epochs: 200,
                lr: 3e-2,
                weight_decay: 1e-2,
                schedule: ScheduleName::OneCycle,
                shift: 0,
                target: 0.98,
            },
            // The reference run of the chapter 09 page: AdamW 3e-3 over a
            // one-cycle schedule of 4 epochs, shifts of up to 2 pixels.
            (ModelName::Resnet14, DatasetName::Mnist) => Recipe {
                epochs: 4,
                lr: 3e-3,
                weight_decay: 1e-4,
                schedule: ScheduleName::OneCycle,
                shift: 2,
                target: 0.995,
            },
            // The seed project's digits experiment: AdamW with weight decay
            // 0.1, warm-up then step decay, random crops with padding 1.
            (ModelName::Resnet14, DatasetName::Digits) => Recipe {
                epochs: 100,
                lr: 3e-3,
                weight_decay: 0.1,
                schedule: ScheduleName::WarmupStep,
                shift: 1,
                target: 0.97,
            },
        }
    }
}

/// The model `candle train` builds, with what the command needs to know
/// about it.
enum Model {
    Mlp(Mlp),
    ResNet(Box<ResNet>),
}

impl Model {
    fn module(&self) -> &dyn chapter_05::Module {
        match self {
            Model::Mlp(m) => m,
            Model::ResNet(m) => m.as_ref(),
        }
    }
}

/// Trains an MLP or a ResNet14 on `dataset`.
pub fn run(dataset: DatasetName, args: &Args) -> Result<(), DynError> {
    // The device first: one that cannot be opened stops the command before
    // anything is read or written.
    if let Some(name) = &args.device {
        set_default_device(Some(Device::parse(name)?));
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let mnist = dataset == DatasetName::Mnist;
    let model_name = args.model.as_str();
    let recipe = Recipe::new(dataset, args.model);
    // Options that belong to one model only are refused for the other,
    // rather than silently ignored.
    let mlp_only = [
        ("--hidden", args.hidden.is_some()),
        ("--dropout", args.dropout.is_some()),
    ];
    let image_only = [("--shift", args.shift.is_some_and(|s| s > 0))];
    let (wrong, other) = match args.model {
        ModelName::Mlp => (&image_only[..], "resnet14"),
        ModelName::Resnet14 => (&mlp_only[..], "mlp"),
    };
    if let Some((flag, _)) = wrong.iter().find(|(_, given)| *given) {
        return Err(
            format!("{flag} applies to --model {other}, not to --model {model_name}").into(),
        );
    }
    let schedule = args.schedule.unwrap_or(recipe.schedule);
    let target = args.target.unwrap_or(recipe.target);
    let shift = args.shift.unwrap_or(recipe.shift);
    let dropout = args.dropout.unwrap_or(0.0);
    let config = TrainConfig {
        epochs: args.epochs.unwrap_or(recipe.epochs),
        batch_size: args.batch_size,
        lr: args.lr.unwrap_or(recipe.lr),
        optimizer: match args.optimizer {
            OptimizerName::Sgd => OptimizerKind::Sgd,
            OptimizerName::Adam => OptimizerKind::Adam,
            OptimizerName::Adamw => OptimizerKind::AdamW,
        },
        momentum: 0.9,
        weight_decay: args.weight_decay.unwrap_or(recipe.weight_decay),
        schedule: match schedule {
            ScheduleName::Constant => ScheduleKind::Constant,
            ScheduleName::OneCycle => ScheduleKind::OneCycle,
            ScheduleName::WarmupCosine => ScheduleKind::WarmupCosine,
            ScheduleName::WarmupStep => ScheduleKind::WarmupStep,
        },
        clip_grad_norm: args.clip_grad_norm,
        seed: args.seed,
        log_every: 50,
        target_accuracy: Some(target),
        stop_after_epochs: args.stop_after,
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
    if args.model == ModelName::Mlp {
        let too_large = |n: Option<usize>| -> DynError {
            let widths: Vec<String> = hidden.iter().map(|h| h.to_string()).collect();
            let count = n.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
            format!(
                "--hidden {}: an MLP {} would have {count} parameters; the limit is {MAX_PARAMETERS}",
                widths.join(","),
                shape.join("-"),
            )
            .into()
        };
        match mlp_parameters(&sizes) {
            Some(n) if n <= MAX_PARAMETERS => {}
            n => return Err(too_large(n)),
        }
    }

    // ANCHOR: run_dir
    let name = if mnist { "mnist" } else { "digits" };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{name}-{model_name}")));
    let mut run_dir = RunDir::new(out)
        .force(args.force)
        .setting("dataset", name, OnResume::Fixed("it decides the data"))
        .setting(
            "--model",
            model_name,
            OnResume::Fixed("it decides the model"),
        );
    run_dir = match args.model {
        ModelName::Mlp => {
            let hidden_list: Vec<String> = hidden.iter().map(|h| h.to_string()).collect();
            run_dir
                .setting(
                    "--hidden",
                    hidden_list.join(","),
                    OnResume::Fixed("it decides the shape of the model"),
                )
                .setting("--dropout", dropout, OnResume::Forceable)
        }
        ModelName::Resnet14 => run_dir.setting("--shift", shift, OnResume::Forceable),
    };
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

    let (train, test) = match args.model {
        ModelName::Mlp => load_data(dataset, &data_dir, args.seed)?,
        // The convolutions see images: [1, 28, 28] or [1, 8, 8].
        ModelName::Resnet14 => load_images(dataset, &data_dir, args.seed)?,
    };
    let mut train = DataLoader::new(train, args.batch_size)?
        .shuffle(args.seed)
        .prefetch(2);
    if shift > 0 {
        // A black pixel: 0 for the digits, MNIST's mean removed and scaled.
        let black = if mnist { -MNIST_MEAN / MNIST_STD } else { 0.0 };
        train = train.transform(RandomCrop::new(shift).with_fill(black));
    }
    let test = DataLoader::new(test, 1000)?;

    manual_seed(args.seed);
    let device = default_device()?;
    let (model, description) = match args.model {
        ModelName::Mlp => (
            Model::Mlp(Mlp::new(&sizes, dropout, DType::F32, &device)?),
            format!("an MLP {}", shape.join("-")),
        ),
        ModelName::Resnet14 => {
            let resnet_config = if mnist {
                ResNetConfig::resnet14_mnist()
            } else {
                ResNetConfig::resnet14_digits()
            };
            (
                Model::ResNet(Box::new(ResNet::new(&resnet_config, DType::F32, &device)?)),
                "a ResNet14".to_string(),
            )
        }
    };
    if !args.quiet {
        eprintln!(
            "training {description} ({} parameters) on {} for {} epochs on {device}; run folder {}",
            chapter_05::ModuleExt::num_parameters(model.module()),
            if mnist { "MNIST" } else { "digits" },
            config.epochs,
            run_dir.path.display()
        );
    }
    // The dashboard's activation histograms: the MLP's hidden layers.
    let probe = |x: &Tensor| -> chapter_02::Result<Vec<(String, RawTensor)>> {
        let Model::Mlp(mlp) = &model else {
            return Ok(Vec::new());
        };
        let (_, acts) = mlp.forward_with_activations(x)?;
        Ok(acts
            .into_iter()
            .enumerate()
            .map(|(i, a)| (format!("layers.{i} (after ReLU)"), a))
            .collect())
    };
    let probe = matches!(model, Model::Mlp(_)).then_some(&probe as ActivationProbe<'_>);
    let summary = fit(
        model.module(),
        &train,
        &test,
        &config,
        &run_dir,
        args.resume,
        probe,
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
                100.0 * target
            ),
            None => eprintln!("did not reach {:.1}% test accuracy", 100.0 * target),
        }
        eprintln!(
            "training time: {:.2} s ({:.2} s per epoch)",
            summary.train_seconds,
            summary.train_seconds / summary.epochs_run.max(1) as f64
        );
    }
    let done = plan.checkpoint.as_ref().map_or(0, |c| c.epoch as usize) + summary.epochs_run;
    if done < config.epochs {
        eprintln!(
            "stopped after epoch {done} of {}: continue with --resume --out {}",
            config.epochs,
            run_dir.path.display()
        );
    }
    println!("test accuracy: {:.2}%", 100.0 * summary.test_accuracy);
    Ok(())
}
