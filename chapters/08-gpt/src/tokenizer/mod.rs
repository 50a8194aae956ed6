//! # GPT-2's tokenizer, byte for byte
//!
//! A language model reads integers. GPT-2 turns text into them with
//! *byte-level byte-pair encoding*:
//!
//! 1. the text's UTF-8 bytes are the alphabet, so nothing is ever unknown
//!    ([`byte_alphabet`] writes each byte as a printable character in the
//!    vocabulary files);
//! 2. a [pre-tokenizer](pretokenize) cuts the text into pieces (words with
//!    their leading space, numbers, punctuation, white space) that no token
//!    crosses;
//! 3. within a piece, adjacent tokens are [merged](bpe) by rank until no
//!    pair forms a token of the [vocabulary](vocabulary).
//!
//! [`Gpt2Tokenizer`] reads GPT-2's `encoder.json` and `vocab.bpe`
//! ([`vocab_files`], which check them), or Hugging Face's `tokenizer.json`
//! ([`tokenizer_json`]), and gives the same ids as tiktoken's `gpt2`
//! encoding; [`BpeTrainer`] learns a vocabulary of the same form from
//! any text.

pub mod bpe;
pub mod byte_alphabet;
pub mod char_class;
pub mod error;
pub mod fast_hash;
pub mod gpt2_tokenizer;
pub mod pretokenize;
pub mod tokenizer_files;
pub mod tokenizer_json;
pub mod trainer;
pub mod unicode_classes;
pub mod vocab_files;
pub mod vocabulary;

pub use error::TokenizerError;
pub use gpt2_tokenizer::{default_gpt2_dir, Gpt2Tokenizer};
pub use pretokenize::pieces;
pub use tokenizer_files::TokenizerFiles;
pub use tokenizer_json::{read_tokenizer_json, read_tokenizer_json_file};
pub use trainer::{BpeTrainer, MIN_VOCAB_SIZE};
pub use vocab_files::{read_vocabulary, read_vocabulary_files};
pub use vocabulary::{MergeRule, TokenKind, Vocabulary, END_OF_TEXT, VOCAB_BPE_HEADER};
