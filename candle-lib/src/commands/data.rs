//! `candle data download mnist`: fetches the MNIST files for users who did
//! not clone the repository's `data/` folder.

use chapter_06::data::{default_data_dir, download_mnist, MNIST_MIRROR};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Download a data set and verify its SHA-256 checksums.
    Download {
        /// Which data set (only `mnist` is downloadable; the others ship in data/).
        name: String,
        /// Base URL of a mirror holding the four MNIST .gz files.
        #[arg(long, default_value = MNIST_MIRROR)]
        url: String,
        /// Target folder (default: data/mnist).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    match &args.command {
        DataCommand::Download { name, url, dir } => {
            if name != "mnist" {
                return Err(
                    format!("unknown data set `{name}`: only `mnist` can be downloaded").into(),
                );
            }
            let dir = dir
                .clone()
                .unwrap_or_else(|| default_data_dir().join("mnist"));
            if dir.exists() && !dir.is_dir() {
                return Err(format!(
                    "--dir {}: is a file, expected the folder to download MNIST into",
                    dir.display()
                )
                .into());
            }
            // download_mnist creates the folder; its errors name the path.
            let outcomes = download_mnist(url, &dir)?;
            for o in outcomes {
                println!("{o:?}");
            }
            println!("MNIST is in {}", dir.display());
            Ok(())
        }
    }
}
