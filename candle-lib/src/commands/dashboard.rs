//! `candle dashboard RUN_DIR`: draws a run's metrics.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run folder written by `candle train` (holds metrics.jsonl).
    pub run_dir: PathBuf,
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let dashboard = chapter_06::dashboard::write_dashboard(&args.run_dir)?;
    for note in &dashboard.notes {
        eprintln!("note: {note}");
    }
    for f in &dashboard.files {
        println!("{}", f.display());
    }
    Ok(())
}
