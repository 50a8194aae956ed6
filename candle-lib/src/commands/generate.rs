//! `candle generate`: continue a prompt with a GPT, streaming the text.
//!
//! The continuation goes to standard output as each token is sampled (the
//! prompt is not repeated); the statistics (tokens, tokens per second, why
//! generation stopped) go to standard error, so `candle generate ... >
//! out.txt` keeps only the text. Beam search is the exception to
//! streaming: which sequence wins is known only at the end.

use super::loaded_model::{load_model, LoadedModel};
use super::sampling_args::SamplingArgs;
use super::values;
use chapter_02::{default_device, set_default_device, Device};
use chapter_08::gpt::GptGenerator;
use chapter_08::sampling::{
    beam_search, generate, speculative_generate, BeamSearchConfig, ContextPolicy, Sampler,
    SamplingConfig, SpeculativeConfig, StopConditions, StopReason, TokenEvent,
};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

type DynError = Box<dyn std::error::Error>;

/// The longest prompt file read (bytes): far beyond any context.
const MAX_PROMPT_BYTES: u64 = 64 << 20;

/// What to do when the prompt and the tokens asked for exceed the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContextPolicyArg {
    /// Refuse before generating anything, naming the lengths.
    Error,
    /// Generate until the context is full, then stop.
    Stop,
}

/// Options of `candle generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model: a run folder of `candle train shakespeare`, a Hugging
    /// Face model folder (config.json, model.safetensors, and vocab.json +
    /// merges.txt or tokenizer.json), or a model id in the Hugging Face cache (`gpt2`,
    /// `user/model@revision`; fetch it with `candle download`).
    #[arg(long, default_value = "gpt2")]
    pub model: String,
    /// The text to continue.
    #[arg(
        long,
        required_unless_present = "prompt_file",
        conflicts_with = "prompt_file"
    )]
    pub prompt: Option<String>,
    /// Read the text to continue from this file (`-`: standard input).
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// The most tokens to generate, 1 to 1000000 (default: the model's
    /// generation_config.json, else 100).
    #[arg(long, value_parser = values::new_tokens)]
    pub max_new_tokens: Option<usize>,
    /// Stop when the text contains this string (which is not printed).
    /// Repeat for several.
    #[arg(long = "stop")]
    pub stop: Vec<String>,
    /// Do not stop at the model's end-of-text token.
    #[arg(long)]
    pub ignore_eos: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Beam search with this many beams (1 to 64) instead of sampling: the
    /// most likely continuation. Not streamed: printed when the search ends.
    #[arg(long, value_parser = values::beams, conflicts_with_all = [
        "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "greedy", "stop",
        "draft_model",
    ])]
    pub num_beams: Option<usize>,
    /// Beam search's α in score = Σ log p / length^α, in [-10, 10] (default 1).
    #[arg(long, value_parser = values::length_penalty, requires = "num_beams")]
    pub length_penalty: Option<f64>,
    /// Speculative sampling: this smaller model (same SPEC forms as --model,
    /// same tokenizer) drafts tokens that --model verifies several at a
    /// time; the text has --model's distribution.
    #[arg(long)]
    pub draft_model: Option<String>,
    /// Tokens the draft model proposes per round, 1 to 64 (default 4).
    #[arg(long, value_parser = values::draft_tokens, requires = "draft_model")]
    pub draft_tokens: Option<usize>,
    /// When the prompt plus --max-new-tokens exceed the model's context:
    /// `error` refuses before generating, `stop` generates until it is full.
    #[arg(long, value_enum, default_value = "error")]
    pub context_policy: ContextPolicyArg,
    /// The device: `cpu`, `cuda`, `cuda:N` or `cuda-emu`. Default:
    /// $CANDLE_DEVICE, else the CPU.
    #[arg(long)]
    pub device: Option<String>,
}

/// The prompt's text: `--prompt`, or the file (or standard input) of
/// `--prompt-file`.
fn prompt_text(args: &Args) -> Result<String, DynError> {
    if let Some(text) = &args.prompt {
        return Ok(text.clone());
    }
    let Some(path) = &args.prompt_file else {
        return Err("give the text to continue with --prompt or --prompt-file".into());
    };
    let mut bytes = Vec::new();
    let name = path.display().to_string();
    let read = if name == "-" {
        std::io::stdin()
            .take(MAX_PROMPT_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_PROMPT_BYTES + 1).read_to_end(&mut bytes))
    };
    let name = if name == "-" {
        "standard input".into()
    } else {
        name
    };
    read.map_err(|e| format!("--prompt-file {name}: cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_PROMPT_BYTES {
        return Err(format!("--prompt-file {name}: longer than {MAX_PROMPT_BYTES} bytes").into());
    }
    Ok(String::from_utf8(bytes).map_err(|e| format!("--prompt-file {name}: not UTF-8: {e}"))?)
}

/// Why generation ended, in words.
pub fn describe_stop(reason: &StopReason, context: usize) -> String {
    match reason {
        StopReason::MaxNewTokens => "--max-new-tokens reached".into(),
        StopReason::EndOfText(t) => format!("end-of-text token {t}"),
        StopReason::StopString(s) => format!("stop string {s:?}"),
        StopReason::ContextFull => format!("the context of {context} tokens is full"),
    }
}

/// Standard output, written and flushed token by token; the first write
/// error is kept for the end (a closed pipe must not look like success).
struct Stream {
    out: std::io::Stdout,
    error: Option<std::io::Error>,
}

impl Stream {
    fn write(&mut self, text: &str) {
        if self.error.is_none() {
            let mut out = self.out.lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                self.error = Some(e);
            }
        }
    }

    fn finish(mut self) -> Result<(), DynError> {
        self.write("\n");
        match self.error {
            Some(e) => Err(format!("standard output: {e}").into()),
            None => Ok(()),
        }
    }
}

pub fn run(args: &Args) -> Result<(), DynError> {
    if let Some(name) = &args.device {
        set_default_device(Some(Device::parse(name)?));
    }
    let device = default_device()?;
    for s in &args.stop {
        if s.is_empty() {
            return Err("--stop: an empty stop string would stop before any token".into());
        }
    }
    let text = prompt_text(args)?;
    let model = load_model(&args.model, &device)?;
    let prompt = model
        .codec
        .encode(&text)
        .map_err(|e| format!("--prompt: {e}"))?;
    let context = model.gpt.config().context_length;
    if prompt.is_empty() {
        return Err("--prompt: the prompt is empty: generation needs a token to start from".into());
    }
    if prompt.len() > context {
        return Err(format!(
            "--prompt: the prompt is {} tokens, longer than the context of {context} tokens of \
             {}",
            prompt.len(),
            model.description()
        )
        .into());
    }
    let max_new = args
        .max_new_tokens
        .or(model.defaults.max_new_tokens)
        .unwrap_or(100);
    let policy = match args.context_policy {
        ContextPolicyArg::Error => ContextPolicy::Error,
        ContextPolicyArg::Stop => ContextPolicy::Stop,
    };
    // The last generated token is never fed, so n tokens need n - 1 places.
    let need = prompt.len() + max_new - 1;
    if policy == ContextPolicy::Error && need > context {
        return Err(format!(
            "--prompt ({} tokens) and --max-new-tokens {max_new} need {need} positions, more \
             than the context of {context} tokens: lower --max-new-tokens, shorten the prompt, \
             or pass --context-policy stop",
            prompt.len()
        )
        .into());
    }
    let stop = StopConditions {
        max_new_tokens: max_new,
        eos_tokens: if args.ignore_eos {
            Vec::new()
        } else {
            model.defaults.eos_tokens.clone()
        },
        stop_strings: args.stop.clone(),
    };
    eprintln!(
        "generating up to {max_new} tokens after a prompt of {} tokens with {} on {device}",
        prompt.len(),
        model.description()
    );
    if let Some(beams) = args.num_beams {
        return run_beam_search(args, &model, &prompt, &stop, beams);
    }
    let config = args
        .sampling
        .config(&model.defaults, &SamplingConfig::default());
    let mut sampler = Sampler::new(config, args.sampling.seed)?;
    let codec = &model.codec;
    let decode = |ids: &[u32]| codec.decode(ids);
    let mut generator = GptGenerator::new(model.gpt.clone())?;
    let mut stream = Stream {
        out: std::io::stdout(),
        error: None,
    };
    let started = Instant::now();
    let on_token = |event: TokenEvent<'_>| stream.write(event.text);
    let (generation, extra) = match &args.draft_model {
        None => {
            let g = generate(
                &mut generator,
                &prompt,
                &mut sampler,
                &stop,
                Some(&decode),
                policy,
                on_token,
            )?;
            (g, String::new())
        }
        Some(spec) => {
            if policy == ContextPolicy::Stop {
                return Err(
                    "--draft-model: speculative sampling needs --context-policy error \
                            (it checks the lengths before it starts)"
                        .into(),
                );
            }
            let draft = load_model(spec, &device).map_err(|e| format!("--draft-model: {e}"))?;
            let draft_prompt = draft.codec.encode(&text).ok();
            if draft.gpt.config().vocab_size != model.gpt.config().vocab_size
                || draft_prompt.as_deref() != Some(prompt.as_slice())
            {
                return Err(format!(
                    "--draft-model {spec}: its tokenizer or vocabulary ({} tokens) is not \
                     --model's ({} tokens): the draft's tokens must be the target's",
                    draft.gpt.config().vocab_size,
                    model.gpt.config().vocab_size
                )
                .into());
            }
            let mut draft_generator = GptGenerator::new(draft.gpt.clone())?;
            let spec = SpeculativeConfig::new(args.draft_tokens.unwrap_or(4));
            let out = speculative_generate(
                &mut generator,
                &mut draft_generator,
                &prompt,
                &mut sampler,
                &spec,
                &stop,
                Some(&decode),
                on_token,
            )?;
            let s = out.stats;
            let extra = format!(
                "; speculative: {} of {} drafted tokens accepted ({:.0}%), {:.2} tokens per \
                 call of --model",
                s.accepted,
                s.proposed,
                100.0 * s.acceptance_rate(),
                s.tokens_per_target_call()
            );
            (out.generation, extra)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    stream.finish()?;
    let n = generation.tokens.len();
    eprintln!(
        "{n} tokens in {seconds:.2} s ({:.1} tokens/s); stopped: {}{extra}",
        n as f64 / seconds.max(1e-9),
        describe_stop(&generation.stop_reason, context)
    );
    Ok(())
}

/// Beam search: the best of `beams` sequences, printed when found.
fn run_beam_search(
    args: &Args,
    model: &LoadedModel,
    prompt: &[u32],
    stop: &StopConditions,
    beams: usize,
) -> Result<(), DynError> {
    if args.context_policy == ContextPolicyArg::Stop {
        return Err("--num-beams: beam search needs --context-policy error".into());
    }
    eprintln!("beam search with {beams} beams: the text is printed when the search ends");
    let config = BeamSearchConfig {
        length_penalty: args.length_penalty.unwrap_or(1.0),
        eos_tokens: stop.eos_tokens.clone(),
        ..BeamSearchConfig::new(beams, stop.max_new_tokens)
    };
    let mut generator = GptGenerator::new(model.gpt.clone())?;
    let started = Instant::now();
    let out = beam_search(&mut generator, prompt, &config)?;
    let seconds = started.elapsed().as_secs_f64();
    let Some(best) = out.hypotheses.first() else {
        return Err("beam search returned no sequence".into());
    };
    let text_tokens: Vec<u32> = best
        .tokens
        .iter()
        .copied()
        .filter(|t| !stop.eos_tokens.contains(t))
        .collect();
    let mut stream = Stream {
        out: std::io::stdout(),
        error: None,
    };
    stream.write(&model.codec.decode(&text_tokens)?);
    stream.finish()?;
    eprintln!(
        "{} tokens in {seconds:.2} s ({:.1} tokens/s); score {:.4} (Σ log p {:.4}); stopped: {}",
        best.tokens.len(),
        best.tokens.len() as f64 / seconds.max(1e-9),
        best.score,
        best.sum_logprob,
        if best.finished {
            "end-of-text token"
        } else {
            "--max-new-tokens reached"
        }
    );
    Ok(())
}
