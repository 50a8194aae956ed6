//! Text to token ids and back, whichever tokenizer a model was trained with.
//!
//! This chapter has two tokenizers: the [`CharVocab`] of a character-level
//! GPT (`candle train shakespeare`) and GPT-2's byte-level BPE
//! ([`Gpt2Tokenizer`]). Generation and chat need only three things from
//! either: encode the prompt, decode what was sampled, and know which
//! token (if any) ends a text. [`TextCodec`] is those three, so the
//! [`chat`](crate::chat) session and the `candle generate` command work
//! with both.

use crate::char_data::CharVocab;
use crate::tokenizer::Gpt2Tokenizer;
use chapter_02::Result;

// ANCHOR: text_codec
/// A tokenizer as generation sees it.
pub trait TextCodec {
    /// Number of token ids the tokenizer can produce (ids are below it).
    fn vocab_size(&self) -> usize;

    /// The token ids of `text`. A text the tokenizer cannot spell (a
    /// character outside a character vocabulary) is an error naming it.
    fn encode(&self, text: &str) -> Result<Vec<u32>>;

    /// The text of `ids`, for streaming: ids that end inside a UTF-8
    /// character decode to U+FFFD (the stop checker holds such text back
    /// until the character is complete) rather than failing.
    fn decode(&self, ids: &[u32]) -> Result<String>;

    /// The token that ends a text (GPT-2's `<|endoftext|>`), if any.
    fn end_of_text(&self) -> Option<u32> {
        None
    }
}
// ANCHOR_END: text_codec

impl TextCodec for CharVocab {
    fn vocab_size(&self) -> usize {
        self.len()
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        CharVocab::encode(self, text)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        CharVocab::decode(self, ids)
    }
}

impl TextCodec for Gpt2Tokenizer {
    fn vocab_size(&self) -> usize {
        Gpt2Tokenizer::vocab_size(self)
    }

    /// Special tokens in `text` are encoded as text: a user typing
    /// `<|endoftext|>` does not end the conversation.
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(Gpt2Tokenizer::encode(self, text))
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.decode_lossy(ids))
    }

    fn end_of_text(&self) -> Option<u32> {
        self.eot_token()
    }
}

impl<T: TextCodec + ?Sized> TextCodec for Box<T> {
    fn vocab_size(&self) -> usize {
        (**self).vocab_size()
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        (**self).encode(text)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        (**self).decode(ids)
    }

    fn end_of_text(&self) -> Option<u32> {
        (**self).end_of_text()
    }
}
