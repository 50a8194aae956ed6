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
    /// Chapter 06: train a model on a data set shipped in data/ (`candle train mnist`).
    Train(candle::commands::train::Args),
    /// Chapter 06: download data sets for a checkout without data/ (`candle data download mnist`).
    Data(candle::commands::data::Args),
    /// Chapter 06: draw a run's metrics as PNG/SVG figures and one HTML page.
    Dashboard(candle::commands::dashboard::Args),
    /// Chapter 08: fetch a model from the Hugging Face Hub into its cache (`candle download gpt2`).
    Download(candle::commands::download::Args),
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
        Command::Train(args) => candle::commands::train::run(&args),
        Command::Data(args) => candle::commands::data::run(&args),
        Command::Dashboard(args) => candle::commands::dashboard::run(&args),
        Command::Download(args) => candle::commands::download::run(&args),
    };
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
