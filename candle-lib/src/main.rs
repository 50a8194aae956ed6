//! The `candle` command: runs the book's demos and experiments from the shell.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "candle", version, about = "Candle: deep learning from scratch, the command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chapter 01: train a scalar-autograd MLP on the moons data and draw its decision boundary.
    ScalarDemo(candle::commands::scalar_demo::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::ScalarDemo(args) => candle::commands::scalar_demo::run(&args),
    };
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
