//! Reading a GPT-2 vocabulary from Hugging Face's `tokenizer.json`.
//!
//! Many model folders ship the `tokenizers` library's one-file format
//! instead of `vocab.json` + `merges.txt`. For a GPT-2-family model it holds
//! the same two tables, in the same [byte alphabet](super::byte_alphabet)
//! (`"Ġthe": 262`):
//!
//! ```text
//! { "added_tokens": [{"id": 50256, "content": "<|endoftext|>", "special": true, …}],
//!   "normalizer": null,
//!   "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true, …},
//!   "decoder": {"type": "ByteLevel", …},
//!   "model": {"type": "BPE", "vocab": {"!": 0, …}, "merges": ["Ġ t", …]} }
//! ```
//!
//! `model.merges` is a list of `"left right"` strings, or of
//! `["left", "right"]` pairs in files written by newer versions of the
//! library. Both become the `(place, left, right)` list that `vocab.bpe`
//! gives, and the checks of [`vocab_files`](super::vocab_files) run on them
//! unchanged, with errors that name `model.vocab` or `model.merges[i]`.
//!
//! The format describes many other tokenizers too (WordPiece for BERT,
//! Unigram for T5, BPE with a normalizer or a different pre-tokenizer for
//! Llama). Our tokenizer implements only GPT-2's pipeline, so every field
//! that would make the ids differ from it is refused by name, never
//! silently ignored.

use super::error::TokenizerError;
use super::vocab_files::{build_vocabulary, Entries, VocabSource};
use super::vocabulary::Vocabulary;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// Reads `tokenizer.json` from disk.
pub fn read_tokenizer_json_file(path: &Path) -> Result<Vocabulary, TokenizerError> {
    let bytes = std::fs::read(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    read_tokenizer_json(&bytes, path)
}

// ANCHOR: read_tokenizer_json
/// Builds a vocabulary from the contents of a `tokenizer.json`; `path`
/// only names it in errors.
pub fn read_tokenizer_json(bytes: &[u8], path: &Path) -> Result<Vocabulary, TokenizerError> {
    let refuse = |problem: String| TokenizerError::file(path, problem);
    let root = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(root)) => root,
        Ok(_) => return Err(refuse("not a JSON object".into())),
        Err(e) => return Err(refuse(format!("not JSON: {e}"))),
    };
    let Some(Value::Object(model)) = root.get("model") else {
        return Err(refuse("no `model` object".into()));
    };
    check_gpt2_pipeline(&root, model).map_err(refuse)?;

    // A `Value` keeps only the last of two equal keys; read `model.vocab`
    // again in file order so that a duplicate is an error, as in
    // encoder.json.
    let mut entries = serde_json::from_slice::<VocabOnly>(bytes)
        .map_err(|e| refuse(format!("model.vocab: not a JSON object of token ids: {e}")))?
        .model
        .vocab
        .0;
    let specials = append_added_tokens(&root, &mut entries).map_err(refuse)?;
    let merges = parse_merges(model).map_err(refuse)?;
    let merges: Vec<(usize, &str, &str)> = merges
        .iter()
        .enumerate()
        .map(|(i, (l, r))| (i, l.as_str(), r.as_str()))
        .collect();
    let is_special = |key: &str| specials.iter().any(|s| s == key);
    build_vocabulary(
        &entries,
        &is_special,
        &merges,
        &VocabSource::TokenizerJson(path),
    )
}
// ANCHOR_END: read_tokenizer_json

/// Just `model.vocab`, its entries in file order.
#[derive(serde::Deserialize)]
struct VocabOnly {
    model: ModelVocab,
}

#[derive(serde::Deserialize)]
struct ModelVocab {
    vocab: Entries,
}

/// A field that is absent or `null`.
fn is_unset(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// The `type` of a component, for messages.
fn type_of(v: &Value) -> String {
    match v.get("type") {
        Some(Value::String(t)) => format!("\"{t}\""),
        Some(other) => other.to_string(),
        None => "with no type".into(),
    }
}

/// A boolean option of a component, with the `tokenizers` library's default.
fn flag(component: &Value, name: &str, default: bool) -> Result<bool, String> {
    match component.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("{name} = {v} is not true or false")),
    }
}

// ANCHOR: check_gpt2_pipeline
/// Refuses what would make the ids differ from GPT-2's byte-level BPE:
/// another model, text rewritten before BPE, another way of cutting the
/// text into pieces, a leading space added, tokens added around the text.
fn check_gpt2_pipeline(
    root: &Map<String, Value>,
    model: &Map<String, Value>,
) -> Result<(), String> {
    match model.get("type") {
        Some(Value::String(t)) if t == "BPE" => {}
        // Files from old versions of the library may leave the type out.
        None if model.contains_key("merges") => {}
        other => {
            return Err(format!(
                "model.type is {}: only byte-level BPE (GPT-2's kind of tokenizer) is \
                 supported, not WordPiece, Unigram or WordLevel",
                other.map_or("missing".into(), |t| t.to_string())
            ))
        }
    }
    for (field, why) in [
        ("dropout", "BPE dropout skips merges at random"),
        ("unk_token", "a byte-level vocabulary has no unknown token"),
    ] {
        if !is_unset(model.get(field)) {
            return Err(format!(
                "model.{field} = {}: {why}; GPT-2 has none",
                model[field]
            ));
        }
    }
    for field in ["continuing_subword_prefix", "end_of_word_suffix"] {
        match model.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => {
                return Err(format!(
                    "model.{field} = {v}: GPT-2's tokens carry no prefix or suffix markers"
                ))
            }
        }
    }
    if model.get("byte_fallback") == Some(&Value::Bool(true)) {
        return Err(
            "model.byte_fallback = true: that is SentencePiece-style BPE \
                    (<0x41> tokens), not GPT-2's byte alphabet"
                .into(),
        );
    }
    if let Some(n) = root.get("normalizer").filter(|v| !v.is_null()) {
        return Err(format!(
            "normalizer {}: it rewrites the text before BPE; GPT-2 has no normalizer",
            type_of(n)
        ));
    }
    let pre = root.get("pre_tokenizer").unwrap_or(&Value::Null);
    if pre.get("type") != Some(&Value::String("ByteLevel".into())) {
        return Err(format!(
            "pre_tokenizer {}: GPT-2 cuts text into pieces with a ByteLevel pre-tokenizer",
            if pre.is_null() {
                "is missing".into()
            } else {
                type_of(pre)
            }
        ));
    }
    if flag(pre, "add_prefix_space", true).map_err(|e| format!("pre_tokenizer.{e}"))? {
        return Err(
            "pre_tokenizer.add_prefix_space is true (the default when absent): \
                    `Hello` would be encoded as ` Hello`; GPT-2 adds no space"
                .into(),
        );
    }
    if !flag(pre, "use_regex", true).map_err(|e| format!("pre_tokenizer.{e}"))? {
        return Err(
            "pre_tokenizer.use_regex = false: GPT-2 cuts the text with its \
                    pattern before BPE"
                .into(),
        );
    }
    for (field, what) in [("decoder", "decodes"), ("post_processor", "post-processes")] {
        if let Some(c) = root.get(field).filter(|v| !v.is_null()) {
            if c.get("type") != Some(&Value::String("ByteLevel".into())) {
                return Err(format!(
                    "{field} {}: GPT-2's tokenizer {what} with ByteLevel (or nothing)",
                    type_of(c)
                ));
            }
        }
    }
    Ok(())
}
// ANCHOR_END: check_gpt2_pipeline

/// Adds the `added_tokens` that `model.vocab` lacks to `entries` (GPT-2's
/// `<|endoftext|>` is in both) and returns the texts of the special ones.
fn append_added_tokens(
    root: &Map<String, Value>,
    entries: &mut Vec<(String, Value)>,
) -> Result<Vec<String>, String> {
    let added = match root.get("added_tokens") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(format!("added_tokens is not a list: {v}")),
    };
    let vocab_ids: HashMap<&str, Option<u64>> = entries
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_u64()))
        .collect();
    let vocab_keys_by_id: HashMap<u64, &str> = entries
        .iter()
        .filter_map(|(k, v)| v.as_u64().map(|id| (id, k.as_str())))
        .collect();
    let mut specials = Vec::new();
    let mut extra = Vec::new();
    for (i, token) in added.iter().enumerate() {
        let at = format!("added_tokens[{i}]");
        let id = token.get("id").and_then(Value::as_u64);
        let content = token.get("content").and_then(Value::as_str);
        let (Some(id), Some(content)) = (id, content) else {
            return Err(format!(
                "{at}: expected {{\"id\": a whole number, \"content\": a string, …}}, found {token}"
            ));
        };
        let special = flag(token, "special", false).map_err(|e| format!("{at}.{e}"))?;
        if !special {
            return Err(format!(
                "{at}: `{content}` is not special (\"special\": false); the tokenizer splits \
                 text only at special tokens such as <|endoftext|>"
            ));
        }
        match vocab_ids.get(content) {
            Some(&vocab_id) if vocab_id != Some(id) => {
                return Err(format!(
                    "{at}: `{content}` has id {id}, but model.vocab gives it {}",
                    vocab_id.map_or("a bad id".into(), |v| v.to_string())
                ))
            }
            Some(_) => {}
            None => {
                if let Some(other) = vocab_keys_by_id.get(&id) {
                    return Err(format!(
                        "{at}: `{content}` has id {id}, which model.vocab gives to `{other}`"
                    ));
                }
                extra.push((content.to_string(), Value::from(id)));
            }
        }
        specials.push(content.to_string());
    }
    // Twice in added_tokens, or two added tokens on one id, is caught with
    // the table's other duplicates when the vocabulary is built.
    entries.extend(extra);
    Ok(specials)
}

/// `model.merges` as `(left, right)` pairs in rank order.
fn parse_merges(model: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let Some(Value::Array(merges)) = model.get("merges") else {
        return Err("model.merges is missing or not a list".into());
    };
    merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let pair = match m {
                Value::String(s) => {
                    let mut parts = s.split(' ');
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(l), Some(r), None) => Some((l, r)),
                        _ => None,
                    }
                }
                Value::Array(a) => match a.as_slice() {
                    [Value::String(l), Value::String(r)] => Some((l.as_str(), r.as_str())),
                    _ => None,
                },
                _ => None,
            };
            match pair {
                Some((l, r)) if !l.is_empty() && !r.is_empty() => Ok((l.into(), r.into())),
                _ => Err(format!(
                    "model.merges[{i}]: expected \"left right\" or [\"left\", \"right\"], \
                     found {}",
                    shorten(&m.to_string())
                )),
            }
        })
        .collect()
}

/// At most 60 characters of `s`, for a message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
