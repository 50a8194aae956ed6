//! `candle chat`: talk with a GPT that plays a persona, line by line.
//!
//! The conversation logic (the transcript, dropping old turns, reusing the
//! KV cache) is [`chapter_08::chat::ChatSession`]; this command reads
//! standard input, prints the replies as they are sampled, and reports
//! what each turn cost on standard error.

use super::loaded_model::{is_not_cached, load_model};
use super::sampling_args::SamplingArgs;
use super::values;
use chapter_02::{default_device, set_default_device, Device};
use chapter_08::chat::{
    default_system_prompt, ChatOptions, ChatSession, ChatTemplate, DEFAULT_NAME,
};
use chapter_08::gpt::GptGenerator;
use chapter_08::sampling::{Sampler, SamplingConfig};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

type DynError = Box<dyn std::error::Error>;

/// Options of `candle chat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model: a Hugging Face model folder, a model id in the Hugging
    /// Face cache (`gpt2`: fetch it with `candle download gpt2`), or a run
    /// folder of `candle train shakespeare`.
    #[arg(long, default_value = "gpt2")]
    pub model: String,
    /// Who the model is, the first line of the transcript (default: NAME
    /// is a friendly conversationalist ...).
    #[arg(long, conflicts_with = "system_file")]
    pub system: Option<String>,
    /// Read the system prompt from this file.
    #[arg(long)]
    pub system_file: Option<PathBuf>,
    /// The persona's name, which starts the model's lines.
    #[arg(long, default_value = DEFAULT_NAME)]
    pub name: String,
    /// The longest reply in tokens, 1 to 1000000; this much room is kept
    /// free in the context.
    #[arg(long, default_value_t = 64, value_parser = values::new_tokens)]
    pub max_new_tokens: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// The device: `cpu`, `cuda`, `cuda:N` or `cuda-emu`. Default:
    /// $CANDLE_DEVICE, else the CPU.
    #[arg(long)]
    pub device: Option<String>,
}

/// The sampling settings of a chat unless told otherwise: warmer than
/// greedy (which loops), cooler than plain sampling (which rambles).
fn chat_sampling() -> SamplingConfig {
    SamplingConfig {
        temperature: 0.7,
        top_p: Some(0.9),
        repetition_penalty: 1.1,
        ..SamplingConfig::default()
    }
}

fn system_prompt(args: &Args) -> Result<String, DynError> {
    if let Some(path) = &args.system_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--system-file {}: cannot read: {e}", path.display()))?;
        return Ok(text.trim().to_string());
    }
    Ok(args
        .system
        .clone()
        .unwrap_or_else(|| default_system_prompt(&args.name)))
}

pub fn run(args: &Args) -> Result<(), DynError> {
    if let Some(name) = &args.device {
        set_default_device(Some(Device::parse(name)?));
    }
    let device = default_device()?;
    let system = system_prompt(args)?;
    let model = load_model(&args.model, &device).map_err(|e| -> DynError {
        if is_not_cached(&e) {
            format!(
                "{e}\nchat needs a model's weights: `candle download gpt2` fetches GPT-2 \
                 (about 550 MB) into the Hugging Face cache; or pass --model with a model \
                 folder, or with the run folder of `candle train shakespeare`"
            )
            .into()
        } else {
            e
        }
    })?;
    let description = model.description();
    let config = args.sampling.config(&model.defaults, &chat_sampling());
    let sampler = Sampler::new(config, args.sampling.seed)?;
    let options = ChatOptions {
        max_reply_tokens: args.max_new_tokens,
        eos_tokens: model.defaults.eos_tokens.clone(),
    };
    let template = ChatTemplate::new(system, args.name.clone());
    let generator = GptGenerator::new(model.gpt.clone())?;
    let mut session = ChatSession::new(generator, model.codec, template, options, sampler)
        .map_err(|e| format!("--system / --name / --max-new-tokens: {e}"))?;

    eprintln!(
        "chatting with {description} as {}. Type a message and press Enter; /reset starts \
         over, /quit or end of input (Ctrl-D) ends.",
        args.name
    );
    let (mut messages, mut failures) = (0usize, 0usize);
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::stdout();
    loop {
        eprint!("> ");
        let mut line = String::new();
        let read = stdin
            .read_line(&mut line)
            .map_err(|e| format!("standard input: {e}"))?;
        if read == 0 {
            break;
        }
        let message = line.trim();
        match message {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                session.reset()?;
                eprintln!("(the conversation is forgotten; the system prompt stays)");
                continue;
            }
            m if m.starts_with('/') => {
                eprintln!("unknown command {m}: the commands are /reset and /quit");
                continue;
            }
            _ => {}
        }
        messages += 1;
        let started = Instant::now();
        // The name is printed with the reply's first text, so a message
        // refused before any text leaves no dangling "Taylor:".
        let mut line_started = false;
        let mut write_error = None;
        let mut write = |text: &str, line_started: &mut bool| {
            let mut piece = String::new();
            if !*line_started {
                piece = format!("{}:", args.name);
                *line_started = true;
            }
            piece.push_str(text);
            if write_error.is_none() {
                if let Err(e) = out.write_all(piece.as_bytes()).and_then(|_| out.flush()) {
                    write_error = Some(e);
                }
            }
        };
        let reply = session.respond(message, |text| write(text, &mut line_started));
        if reply.is_ok() || line_started {
            write("\n", &mut line_started);
        }
        if let Some(e) = write_error {
            return Err(format!("standard output: {e}").into());
        }
        match reply {
            Ok(r) => {
                let seconds = started.elapsed().as_secs_f64();
                eprintln!(
                    "[{} tokens, {:.1} tokens/s; prompt: {} tokens from the cache, {} fed{}]",
                    r.generated,
                    r.generated as f64 / seconds.max(1e-9),
                    r.reused,
                    r.fed,
                    match r.dropped {
                        0 => String::new(),
                        n => format!("; {n} oldest turn(s) dropped to fit the context"),
                    }
                );
            }
            Err(e) => {
                failures += 1;
                eprintln!("error: {e}");
            }
        }
    }
    eprintln!();
    if failures > 0 {
        return Err(format!("{failures} of {messages} messages got no reply").into());
    }
    Ok(())
}
