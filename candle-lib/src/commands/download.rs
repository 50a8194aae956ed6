//! `candle download MODEL`: fetches a model from the Hugging Face Hub into
//! Hugging Face's cache (chapter 08, `hub`), with a progress bar on stderr.
//! The last line on stdout is the snapshot folder, for scripts.

use chapter_08::hub::{DownloadEvent, HubClient, HubConfig, ModelId, MODEL_FILES};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model id on the Hub: `gpt2`, `openai-community/gpt2`, `owner/name`.
    pub model: String,
    /// Branch, tag or commit hash.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Hub URL [default: $HF_ENDPOINT, else https://huggingface.co].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Cache folder [default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let model = ModelId::parse(&args.model)?;
    // The options override the environment variables they stand for.
    let cache_dir = args
        .cache_dir
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let config = HubConfig::from_vars(|name| match name {
        "HF_ENDPOINT" if args.endpoint.is_some() => args.endpoint.clone(),
        "HF_HUB_CACHE" if cache_dir.is_some() => cache_dir.clone(),
        _ => std::env::var(name).ok(),
    })?;
    let client = HubClient::new(config)?;
    eprintln!(
        "{model} (revision {}) from {} into {}",
        args.revision,
        client.config().endpoint,
        client.cache().root().display()
    );

    let mut bar: Option<ProgressBar> = None;
    let style = ProgressStyle::with_template(
        "{msg:24} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {eta:>4}",
    )
    .expect("a valid template");
    let done = client.download_model(
        &model,
        &args.revision,
        &MODEL_FILES,
        &mut |event| match event {
            DownloadEvent::Started {
                file,
                total,
                resumed_from,
            } => {
                if *resumed_from > 0 {
                    eprintln!("{event}");
                }
                let b = ProgressBar::new(total.unwrap_or(0)).with_style(style.clone());
                b.set_message(file.to_string());
                b.set_position(*resumed_from);
                bar = Some(b);
            }
            DownloadEvent::Progress { done, .. } => {
                if let Some(b) = &bar {
                    b.set_position(*done);
                }
            }
            DownloadEvent::Finished { .. } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                eprintln!("{event}");
            }
            // Printed above the bar (a hidden bar, off a terminal, prints
            // nothing itself).
            _ => match &bar {
                Some(b) => b.suspend(|| eprintln!("{event}")),
                None => eprintln!("{event}"),
            },
        },
    );
    if let Some(b) = bar.take() {
        b.abandon();
    }
    let done = done?;
    if done.all_cached() {
        eprintln!("{model}: every file was cached; nothing downloaded");
    } else {
        eprintln!("{model}: downloaded {} bytes", done.downloaded_bytes());
    }
    println!("{}", done.snapshot.display());
    Ok(())
}
