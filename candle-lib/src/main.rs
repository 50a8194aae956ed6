//! The `candle` command: runs the book's demos and experiments from the shell.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "candle",
    version,
    about = "Candle: deep learning from scratch, the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chapter 01: train a scalar-autograd MLP on the moons data and draw its decision boundary.
    ScalarDemo(candle::commands::scalar_demo::Args),
    /// Train a model on a data set shipped in data/ (`candle train mnist`, `candle train shakespeare`).
    Train(candle::commands::train::TrainArgs),
    /// Chapter 06: download data sets for a checkout without data/ (`candle data download mnist`).
    Data(candle::commands::data::Args),
    /// Regenerate the book's figures: `candle experiment list`, `candle experiment NAME`, `candle experiment all`.
    Experiment(candle::commands::experiment::Args),
    /// Chapter 06: draw a run's metrics as PNG/SVG figures and one HTML page.
    Dashboard(candle::commands::dashboard::Args),
    /// Chapter 08: print the GPT-2 token ids of a file or of standard input.
    Tokenize(candle::commands::tokenize::TokenizeArgs),
    /// Chapter 08: train a byte-level BPE vocabulary (`candle tokenizer train`).
    Tokenizer(candle::commands::tokenize::TokenizerArgs),
    /// Chapter 08: fetch a model from the Hugging Face Hub into its cache (`candle download gpt2`).
    Download(candle::commands::download::Args),
    /// Chapter 08: continue a prompt with a GPT, streaming the text (`candle generate --prompt ...`).
    Generate(candle::commands::generate::Args),
    /// Chapter 08: talk with a GPT playing a persona ("Taylor"), line by line on standard input.
    Chat(candle::commands::chat::Args),
}

fn main() {
    let cli = Cli::parse();
    // The GPU devices (chapter 07): known to --device and CANDLE_DEVICE.
    #[cfg(feature = "cuda")]
    candle::cuda::register();
    // The main thread does the training, so it joins the kernels' thread
    // pool rather than waking it and sleeping for every kernel.
    if let Err(err) = candle::tensor::join_kernel_threads() {
        eprintln!("warning: {err}");
    }
    let result = match cli.command {
        Command::ScalarDemo(args) => candle::commands::scalar_demo::run(&args),
        Command::Train(args) => candle::commands::train::run_command(&args),
        Command::Data(args) => candle::commands::data::run(&args),
        Command::Experiment(args) => candle::commands::experiment::run(&args),
        Command::Dashboard(args) => candle::commands::dashboard::run(&args),
        Command::Tokenize(args) => candle::commands::tokenize::run_tokenize(&args),
        Command::Tokenizer(args) => candle::commands::tokenize::run_tokenizer(&args),
        Command::Download(args) => candle::commands::download::run(&args),
        Command::Generate(args) => candle::commands::generate::run(&args),
        Command::Chat(args) => candle::commands::chat::run(&args),
    };
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
