//! Chat: a conversation with a model that only continues text.
//!
//! GPT-2 was never taught to chat; it continues documents. A chat is
//! therefore a document we write for it, a transcript:
//!
//! ```text
//! System: Taylor is a friendly conversationalist who ...
//! User: Hi! How are you?
//! Taylor: I'm well, thanks. And you?
//! User: Fine. What should I read?
//! Taylor:
//! ```
//!
//! The model continues after `Taylor:`, and when it starts the next line
//! with `User:` (stop string `"\nUser:"`) it has finished its turn: the
//! text before is the reply. [`ChatTemplate`] writes the transcript.
//!
//! Two things make a long conversation work, and [`ChatSession`] does both:
//!
//! - **It fits in the context.** A model sees at most its context length
//!   of tokens. Before each reply the session drops the oldest turns until
//!   the system prompt, the turns kept, the new message and room for the
//!   reply fit. The system prompt is never dropped (it says who the model
//!   is); a message that does not fit even alone is an error.
//! - **It does not recompute what the model has seen.** The model's KV
//!   cache holds the keys and values of every token fed so far. The next
//!   prompt begins with the same tokens, so the session truncates the
//!   cache to the longest prefix the two share
//!   ([`LanguageModel::truncate`]) and feeds only the rest: a turn costs
//!   its own tokens, not the whole conversation's. When turns are dropped
//!   the tokens after the system prompt move to new positions, and a
//!   GPT's learned position embeddings make their keys and values depend
//!   on the position, so everything after the system prompt is fed again
//!   (once; the next turns reuse it).

use crate::language_model::LanguageModel;
use crate::sampling::{generate, ContextPolicy, Sampler, StopConditions, StopReason};
use crate::text_codec::TextCodec;
use chapter_02::{Error, Result};
use std::collections::VecDeque;

/// The persona `candle chat` talks as unless told otherwise.
pub const DEFAULT_NAME: &str = "Taylor";

/// The default system prompt for a persona called `name`.
pub fn default_system_prompt(name: &str) -> String {
    format!(
        "{name} is a friendly conversationalist. {name} is curious about people, answers in a \
         sentence or two, and often asks a question back."
    )
}

// ANCHOR: template
/// How a conversation is written as a document: a system line, then one
/// line per message, each starting with the speaker's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatTemplate {
    /// Who the model is: the text of the `System:` line.
    pub system: String,
    /// The name the user's lines start with (`User`).
    pub user_label: String,
    /// The name the model's lines start with (`Taylor`).
    pub bot_name: String,
}

impl ChatTemplate {
    /// `System: {system}\n`: the first line, kept however long the chat.
    pub fn system_block(&self) -> String {
        format!("System: {}\n", self.system)
    }

    /// `User: {message}\nTaylor:`: a message, and the cue for the reply.
    pub fn user_block(&self, message: &str) -> String {
        format!("{}: {message}\n{}:", self.user_label, self.bot_name)
    }

    /// `{reply}\n`: the reply as it stays in the transcript.
    pub fn reply_block(&self, reply: &str) -> String {
        format!("{reply}\n")
    }

    /// `\nUser:`: the model has started writing the user's next line, so
    /// its own turn is over.
    pub fn stop_string(&self) -> String {
        format!("\n{}:", self.user_label)
    }
}
// ANCHOR_END: template

impl ChatTemplate {
    /// The template of `candle chat`: `User` talks to `bot_name`, who is
    /// described by `system`.
    pub fn new(system: impl Into<String>, bot_name: impl Into<String>) -> Self {
        ChatTemplate {
            system: system.into(),
            user_label: "User".into(),
            bot_name: bot_name.into(),
        }
    }

    /// Names must be one line without `:` (a name with a colon or a line
    /// break would make the transcript ambiguous), and different from each
    /// other; the system prompt must not be empty.
    pub fn validate(&self) -> Result<()> {
        for (what, name) in [("user label", &self.user_label), ("name", &self.bot_name)] {
            if name.trim().is_empty() || name.contains([':', '\n', '\r']) {
                return Err(invalid(format!(
                    "the {what} {name:?} must be non-empty, on one line and without ':'"
                )));
            }
        }
        if self.user_label == self.bot_name {
            return Err(invalid(format!(
                "the name {:?} is the user's label too: the transcript could not tell them apart",
                self.bot_name
            )));
        }
        if self.system.trim().is_empty() {
            return Err(invalid("the system prompt is empty"));
        }
        Ok(())
    }
}

/// The options of a [`ChatSession`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatOptions {
    /// The longest reply, in tokens; the session keeps this much room in
    /// the context for it.
    pub max_reply_tokens: usize,
    /// Tokens that end a reply (GPT-2's `<|endoftext|>`).
    pub eos_tokens: Vec<u32>,
}

/// One exchange that stays in the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub user: String,
    pub reply: String,
    /// The tokens of `user_block(user)` then `reply_block(reply)`.
    pub tokens: Vec<u32>,
}

/// What [`ChatSession::respond`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The reply, without the stop string or end token.
    pub text: String,
    pub stop_reason: StopReason,
    /// Tokens sampled (an end token or the stop string's tokens included).
    pub generated: usize,
    /// Prompt tokens the model already held: work saved by the KV cache.
    pub reused: usize,
    /// Prompt tokens fed for this reply.
    pub fed: usize,
    /// Oldest turns dropped to make room.
    pub dropped: usize,
}

/// A conversation with `model`, which the session owns: it alone feeds and
/// truncates the model's cache, so it knows what the cache holds.
pub struct ChatSession<M, C> {
    model: M,
    codec: C,
    template: ChatTemplate,
    options: ChatOptions,
    sampler: Sampler,
    /// Tokens of the system block.
    system: Vec<u32>,
    turns: VecDeque<Turn>,
    /// The tokens the model holds, in order (its cache's contents).
    held: Vec<u32>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid("chat", msg.into())
}

/// How many leading tokens `a` and `b` share.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<M: LanguageModel, C: TextCodec> ChatSession<M, C> {
    /// A new conversation. The model is reset; the template is checked,
    /// and the system prompt must leave room in the context for a message
    /// and a reply of `options.max_reply_tokens`.
    pub fn new(
        mut model: M,
        codec: C,
        template: ChatTemplate,
        options: ChatOptions,
        sampler: Sampler,
    ) -> Result<Self> {
        template.validate()?;
        if options.max_reply_tokens == 0 {
            return Err(invalid(
                "max_reply_tokens = 0: a reply needs at least one token",
            ));
        }
        if codec.vocab_size() > model.vocab_size() {
            return Err(invalid(format!(
                "the tokenizer has {} tokens, more than the model's vocabulary of {}",
                codec.vocab_size(),
                model.vocab_size()
            )));
        }
        let system = codec.encode(&template.system_block())?;
        let context = model.context_length();
        // The smallest message is a few tokens; ask for at least one.
        if system.len() + options.max_reply_tokens + 1 > context {
            return Err(invalid(format!(
                "the system prompt ({} tokens) and room for a reply ({} tokens) leave no room \
                 for a message in the model's context of {context} tokens: shorten the system \
                 prompt or the longest reply",
                system.len(),
                options.max_reply_tokens
            )));
        }
        model.reset()?;
        Ok(ChatSession {
            model,
            codec,
            template,
            options,
            sampler,
            system,
            turns: VecDeque::new(),
            held: Vec::new(),
        })
    }

    /// The turns still in the conversation, oldest first.
    pub fn turns(&self) -> impl Iterator<Item = &Turn> {
        self.turns.iter()
    }

    /// The model (to inspect its cache; the session keeps the only
    /// mutable access).
    pub fn model(&self) -> &M {
        &self.model
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The conversation as the model reads it, up to the last reply.
    pub fn transcript(&self) -> String {
        let mut text = self.template.system_block();
        for turn in &self.turns {
            text.push_str(&self.template.user_block(&turn.user));
            text.push_str(&self.template.reply_block(&turn.reply));
        }
        text
    }

    // ANCHOR: respond
    /// Answers `message`, calling `on_text` with each piece of the reply as
    /// it becomes final. On an error nothing is added to the conversation.
    pub fn respond(&mut self, message: &str, mut on_text: impl FnMut(&str)) -> Result<Reply> {
        let message = message.trim();
        if message.is_empty() {
            return Err(invalid("the message is empty"));
        }
        if message.contains(['\n', '\r']) {
            return Err(invalid("a message is one line (it has a line break)"));
        }
        let user = self.codec.encode(&self.template.user_block(message))?;
        let dropped = self.make_room(user.len())?;

        // The prompt: the system block, the turns kept, the new message.
        let mut prompt = self.system.clone();
        for turn in &self.turns {
            prompt.extend_from_slice(&turn.tokens);
        }
        prompt.extend_from_slice(&user);

        // Keep the cache's longest prefix shared with the prompt; feed the
        // rest (at least one token: the reply is sampled from its logits).
        let reused = common_prefix(&self.held, &prompt).min(prompt.len().saturating_sub(1));
        self.model.truncate(reused)?;
        self.held.truncate(reused);
        let new = &prompt[reused..];

        let stop = StopConditions {
            max_new_tokens: self.options.max_reply_tokens,
            eos_tokens: self.options.eos_tokens.clone(),
            stop_strings: vec![self.template.stop_string()],
        };
        let codec = &self.codec;
        let decode = |ids: &[u32]| codec.decode(ids);
        let result = generate(
            &mut self.model,
            new,
            &mut self.sampler,
            &stop,
            Some(&decode),
            ContextPolicy::Error,
            |event| on_text(event.text),
        );
        let generation = match result {
            Ok(g) => g,
            Err(e) => {
                // What the cache holds is unknown now: start it afresh.
                self.forget_cache();
                return Err(e);
            }
        };
        // The model holds the prompt and every sampled token but the last.
        self.held.extend_from_slice(new);
        let sampled = &generation.tokens;
        self.held
            .extend_from_slice(&sampled[..sampled.len().saturating_sub(1)]);
        if self.model.cached_len() != self.held.len() {
            self.forget_cache();
        }

        let reply = generation.text.trim_end().to_string();
        let mut tokens = user;
        tokens.extend(self.codec.encode(&self.template.reply_block(&reply))?);
        self.turns.push_back(Turn {
            user: message.to_string(),
            reply: reply.clone(),
            tokens,
        });
        Ok(Reply {
            text: reply,
            stop_reason: generation.stop_reason,
            generated: generation.tokens.len(),
            reused,
            fed: new.len(),
            dropped,
        })
    }
    // ANCHOR_END: respond

    // ANCHOR: make_room
    /// Drops the oldest turns until the system block, the turns kept, a
    /// message of `message` tokens and a whole reply fit in the context;
    /// returns how many were dropped. A message that does not fit even
    /// alone is an error, and then no turn is dropped.
    fn make_room(&mut self, message: usize) -> Result<usize> {
        let context = self.model.context_length();
        let reply = self.options.max_reply_tokens;
        let fixed = self.system.len() + message + reply;
        if fixed > context {
            return Err(invalid(format!(
                "this message does not fit: the system prompt ({} tokens), the message \
                 ({message} tokens) and room for a reply ({reply} tokens) need {fixed} tokens, \
                 more than the model's context of {context}; send a shorter message",
                self.system.len()
            )));
        }
        let mut total = fixed + self.turns.iter().map(|t| t.tokens.len()).sum::<usize>();
        let mut dropped = 0;
        while total > context {
            // `fixed` fits, so while the total does not, a turn remains.
            let Some(oldest) = self.turns.pop_front() else {
                break;
            };
            total -= oldest.tokens.len();
            dropped += 1;
        }
        Ok(dropped)
    }
    // ANCHOR_END: make_room

    /// Forgets the conversation but not who the model is: the system
    /// prompt stays, and so do its keys and values in the cache.
    pub fn reset(&mut self) -> Result<()> {
        self.turns.clear();
        let keep = common_prefix(&self.held, &self.system);
        self.model.truncate(keep)?;
        self.held.truncate(keep);
        Ok(())
    }

    fn forget_cache(&mut self) {
        self.held.clear();
        // A model that cannot even reset keeps what it holds; the next
        // turn's `truncate` reports the problem.
        let _ = self.model.reset();
    }
}
