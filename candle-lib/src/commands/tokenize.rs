//! `candle tokenize` (text to GPT-2 token ids) and `candle tokenizer train`
//! (learn a BPE vocabulary), chapter 08.

use chapter_08::tokenizer::{default_gpt2_dir, BpeTrainer, Gpt2Tokenizer, MIN_VOCAB_SIZE};
use std::io::{Read, Write};
use std::path::PathBuf;

/// `candle tokenize [FILE|-] [--vocab-dir DIR] [--special]`.
#[derive(Debug, clap::Args)]
pub struct TokenizeArgs {
    /// The text to encode: a file, or `-` (the default) for standard input.
    #[arg(default_value = "-")]
    pub input: String,
    /// The folder holding the tokenizer: encoder.json + vocab.bpe, vocab.json + merges.txt, or tokenizer.json (default: data/gpt2).
    #[arg(long)]
    pub vocab_dir: Option<PathBuf>,
    /// Encode special tokens such as <|endoftext|> as their ids, rather than as text.
    #[arg(long)]
    pub special: bool,
}

/// `candle tokenizer train ...`.
#[derive(Debug, clap::Args)]
pub struct TokenizerArgs {
    #[command(subcommand)]
    pub command: TokenizerCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenizerCommand {
    /// Learn a byte-level BPE vocabulary from a text file and save it as encoder.json + vocab.bpe.
    Train {
        /// The training text (UTF-8).
        #[arg(long)]
        input: PathBuf,
        /// Tokens wanted, counting the 256 bytes and <|endoftext|> (at least 257).
        #[arg(long)]
        vocab_size: usize,
        /// The folder to write encoder.json and vocab.bpe into.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite encoder.json and vocab.bpe if the folder already has them.
        #[arg(long)]
        force: bool,
    },
}

type CommandResult = Result<(), Box<dyn std::error::Error>>;

/// Prints the ids of the input, separated by spaces, on one line.
pub fn run_tokenize(args: &TokenizeArgs) -> CommandResult {
    let dir = args.vocab_dir.clone().unwrap_or_else(default_gpt2_dir);
    let (tokenizer, _) = Gpt2Tokenizer::from_folder(&dir)?;
    let bytes = if args.input == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("standard input: cannot read: {e}"))?;
        buf
    } else {
        std::fs::read(&args.input).map_err(|e| format!("{}: cannot read: {e}", args.input))?
    };
    let ids = match (args.special, std::str::from_utf8(&bytes)) {
        (true, Ok(text)) => tokenizer.encode_with_special(text),
        (false, Ok(text)) => tokenizer.encode(text),
        // Not UTF-8: every byte still has a token.
        (_, Err(_)) => tokenizer.encode_bytes(&bytes),
    };
    let line: Vec<String> = ids.iter().map(u32::to_string).collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", line.join(" ")).map_err(|e| format!("standard output: {e}"))?;
    Ok(())
}

/// Trains a vocabulary and saves it, refusing to overwrite one without `--force`.
pub fn run_tokenizer(args: &TokenizerArgs) -> CommandResult {
    match &args.command {
        TokenizerCommand::Train {
            input,
            vocab_size,
            out,
            force,
        } => {
            if *vocab_size < MIN_VOCAB_SIZE || *vocab_size > u32::MAX as usize {
                return Err(format!(
                    "--vocab-size {vocab_size}: must be at least {MIN_VOCAB_SIZE} (the 256 bytes \
                     and <|endoftext|>) and fit in 32 bits"
                )
                .into());
            }
            if out.exists() && !out.is_dir() {
                return Err(
                    format!("--out {}: is a file, expected a folder", out.display()).into(),
                );
            }
            let existing: Vec<PathBuf> = ["encoder.json", "vocab.bpe"]
                .iter()
                .map(|f| out.join(f))
                .filter(|p| p.exists())
                .collect();
            if !existing.is_empty() && !force {
                return Err(format!(
                    "--out {}: already holds {}; pass --force to overwrite",
                    out.display(),
                    existing
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" and ")
                )
                .into());
            }
            let text = std::fs::read(input)
                .map_err(|e| format!("--input {}: cannot read: {e}", input.display()))?;
            let text = String::from_utf8(text)
                .map_err(|e| format!("--input {}: not UTF-8: {e}", input.display()))?;
            let started = std::time::Instant::now();
            let vocabulary = BpeTrainer::new(*vocab_size).train(&text)?;
            vocabulary.save(out)?;
            let tokenizer = Gpt2Tokenizer::from_vocabulary(vocabulary);
            let n = tokenizer.encode(&text).len();
            println!(
                "learned {} merges ({} tokens) from {} bytes in {:.2} s; the text is {n} tokens \
                 ({:.2} bytes per token); wrote {} and {}",
                tokenizer.vocabulary().merges().len(),
                tokenizer.vocab_size(),
                text.len(),
                started.elapsed().as_secs_f64(),
                text.len() as f64 / n.max(1) as f64,
                out.join("encoder.json").display(),
                out.join("vocab.bpe").display()
            );
            Ok(())
        }
    }
}
