//! When generation ends, and the text it streams on the way.
//!
//! Token conditions (a token budget, an end-of-text token) are checked on
//! ids. Stop strings are checked on *text*, because a tokenizer can spell
//! `"\n\n"` as one token, as two, or glued to the letters around it: the
//! checker decodes everything generated so far after each token and
//! searches the text, so a stop string split across tokens is caught.
//!
//! The stop string is *not* part of the output (as in Hugging Face's
//! `stop_strings` and OpenAI's `stop`): a chat template that stops at
//! `"\nUser:"` wants the reply without it. Streaming therefore holds back
//! any tail of the text that could still grow into a stop string, and
//! prints it only once it cannot.

use chapter_02::{Error, Result};

/// Turns token ids back into text, for stop strings and streaming. A
/// tokenizer implements it, and so does any closure
/// `Fn(&[u32]) -> Result<String>`. Decoding must be lossy rather than fail
/// on ids that end in the middle of a UTF-8 character: the text is held
/// back while it ends in U+FFFD (the replacement character).
pub trait TokenDecoder {
    fn decode(&self, tokens: &[u32]) -> Result<String>;
}

impl<F: Fn(&[u32]) -> Result<String>> TokenDecoder for F {
    fn decode(&self, tokens: &[u32]) -> Result<String> {
        self(tokens)
    }
}

// ANCHOR: stop_conditions
/// When to stop generating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopConditions {
    /// At most this many new tokens (at least 1).
    pub max_new_tokens: usize,
    /// Tokens that end the text (GPT-2's `<|endoftext|>` is 50256). The end
    /// token is returned in [`Generation::tokens`] but adds no text.
    pub eos_tokens: Vec<u32>,
    /// Strings that end the text when they appear in the generated text
    /// (not in the prompt); the text is cut before the first one.
    pub stop_strings: Vec<String>,
}
// ANCHOR_END: stop_conditions

impl StopConditions {
    /// Only a token budget.
    pub fn max_new_tokens(n: usize) -> Self {
        StopConditions {
            max_new_tokens: n,
            eos_tokens: Vec::new(),
            stop_strings: Vec::new(),
        }
    }

    /// Adds an end-of-text token.
    pub fn with_eos(mut self, token: u32) -> Self {
        self.eos_tokens.push(token);
        self
    }

    /// Adds a stop string.
    pub fn with_stop_string(mut self, s: impl Into<String>) -> Self {
        self.stop_strings.push(s.into());
        self
    }

    /// A zero budget or an empty stop string (which would stop at once) is
    /// an error.
    pub fn validate(&self) -> Result<()> {
        if self.max_new_tokens == 0 {
            return Err(Error::Invalid {
                op: "StopConditions",
                msg: "max_new_tokens = 0 is out of range: it must lie in [1, ∞)".into(),
            });
        }
        if self.stop_strings.iter().any(|s| s.is_empty()) {
            return Err(Error::Invalid {
                op: "StopConditions",
                msg: "a stop string is empty (it would match before any token)".into(),
            });
        }
        Ok(())
    }
}

/// Why a generation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `max_new_tokens` tokens were generated.
    MaxNewTokens,
    /// This end-of-text token was generated.
    EndOfText(u32),
    /// This stop string appeared in the text.
    StopString(String),
    /// The model's context is full (only with [`ContextPolicy::Stop`](crate::sampling::ContextPolicy::Stop)).
    ContextFull,
}

/// What a generation produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// Every sampled token, in order, including an end token or the tokens
    /// that spelled a stop string.
    pub tokens: Vec<u32>,
    /// The decoded text, without the end token and cut before a stop
    /// string; empty when no decoder was given.
    pub text: String,
    pub stop_reason: StopReason,
}

/// One streamed step: a token was sampled, and `text` is the text that
/// became final with it (possibly empty: held back because it might begin
/// a stop string, or because it ends inside a UTF-8 character). The `text`
/// of all events, concatenated, is [`Generation::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenEvent<'a> {
    /// Position among the generated tokens (0 for the first).
    pub index: usize,
    pub token: u32,
    pub text: &'a str,
}

// ANCHOR: stop_checker
/// Applies [`StopConditions`] one token at a time and decides how much of
/// the text is final.
pub struct StopChecker<'a> {
    conditions: &'a StopConditions,
    decoder: Option<&'a dyn TokenDecoder>,
    tokens: Vec<u32>,
    text: String,
    emitted: usize,
}

/// What [`StopChecker::push`] learned from a token.
pub struct Pushed {
    /// `Some` when generation must end with this token.
    pub stop: Option<StopReason>,
    /// The text that became final with this token.
    pub text: String,
}

impl<'a> StopChecker<'a> {
    /// A checker for `conditions`; stop strings need a `decoder`.
    pub fn new(
        conditions: &'a StopConditions,
        decoder: Option<&'a dyn TokenDecoder>,
    ) -> Result<Self> {
        conditions.validate()?;
        if decoder.is_none() && !conditions.stop_strings.is_empty() {
            return Err(Error::Invalid {
                op: "StopConditions",
                msg: "stop strings are checked on text, so they need a decoder".into(),
            });
        }
        Ok(StopChecker {
            conditions,
            decoder,
            tokens: Vec::new(),
            text: String::new(),
            emitted: 0,
        })
    }

    /// Takes the next generated token. `no_room` says the model cannot take
    /// another token, which ends generation unless something else does.
    pub fn push(&mut self, token: u32, no_room: bool) -> Result<Pushed> {
        self.tokens.push(token);
        if self.conditions.eos_tokens.contains(&token) {
            return Ok(self.finish(StopReason::EndOfText(token)));
        }
        if let Some(decoder) = self.decoder {
            self.text = decoder.decode(&self.tokens)?;
        }
        if let Some((at, s)) = self.first_stop_string() {
            self.text.truncate(at);
            return Ok(self.finish(StopReason::StopString(s)));
        }
        if self.tokens.len() >= self.conditions.max_new_tokens {
            return Ok(self.finish(StopReason::MaxNewTokens));
        }
        if no_room {
            return Ok(self.finish(StopReason::ContextFull));
        }
        let end = self.final_prefix_len();
        Ok(self.emit(end, None))
    }

    /// The generation so far, ended for `reason`.
    pub fn into_generation(self, reason: StopReason) -> Generation {
        Generation {
            tokens: self.tokens,
            text: self.text,
            stop_reason: reason,
        }
    }

    /// The number of tokens pushed.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token was pushed.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    fn finish(&mut self, reason: StopReason) -> Pushed {
        self.emit(self.text.len(), Some(reason))
    }

    fn emit(&mut self, end: usize, stop: Option<StopReason>) -> Pushed {
        let end = end.max(self.emitted);
        // `get` rather than indexing: a decoder that rewrote text it had
        // already produced must not make us panic.
        let text = self.text.get(self.emitted..end).unwrap_or("").to_string();
        self.emitted = end;
        Pushed { stop, text }
    }

    /// The earliest stop string in the text, where it starts and which.
    fn first_stop_string(&self) -> Option<(usize, String)> {
        // Text already emitted holds no stop string (nor the start of one).
        let from = self.emitted;
        let rest = self.text.get(from..).unwrap_or(&self.text);
        let from = self.text.len() - rest.len();
        self.conditions
            .stop_strings
            .iter()
            .filter_map(|s| rest.find(s.as_str()).map(|i| (from + i, s.clone())))
            .min_by_key(|(at, _)| *at)
    }

    /// How much of the text is final: all of it, minus a tail that is the
    /// beginning of some stop string (it may still complete) and minus a
    /// tail that ends in a replacement character (a UTF-8 character whose
    /// bytes have not all been generated).
    fn final_prefix_len(&self) -> usize {
        let text = self.text.as_str();
        let mut end = text.len();
        if text.ends_with('\u{FFFD}') {
            end = text.rfind(|c: char| c != '\u{FFFD}').map_or(0, |i| {
                i + text[i..].chars().next().map_or(0, char::len_utf8)
            });
        }
        for (start, _) in text.char_indices().filter(|(i, _)| *i >= self.emitted) {
            let tail = &text[start..];
            if self
                .conditions
                .stop_strings
                .iter()
                .any(|s| s.starts_with(tail))
            {
                end = end.min(start);
                break;
            }
        }
        end
    }
}
// ANCHOR_END: stop_checker
