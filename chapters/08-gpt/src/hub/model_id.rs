//! Model ids (`gpt2`, `openai-community/gpt2`) and the other names that end
//! up in URLs and in cache paths.
//!
//! An id becomes both a URL path and a folder name, so it is validated before
//! anything else: an id like `../../etc` must never reach the file system.

use super::error::{HubError, Result};
use std::fmt;

// ANCHOR: model_id
/// A Hub model id: `owner/name`, or a bare canonical `name` (`gpt2`, kept
/// by the Hub for models older than namespaces).
///
/// Each part is 1–96 characters from `A–Z a–z 0–9 - _ .`, starts and ends
/// with a letter, digit or `_`, and holds neither `--` (the cache uses it
/// as the separator) nor `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelId {
    id: String,
}

impl ModelId {
    /// Validates `id`; the error says which rule it breaks.
    pub fn parse(id: &str) -> Result<ModelId> {
        let bad = |reason: String| HubError::InvalidModelId {
            id: id.to_string(),
            reason,
        };
        if id.starts_with('/') || id.starts_with('\\') || id.contains(':') {
            return Err(bad("an id is `name` or `owner/name`, not a path".into()));
        }
        let parts: Vec<&str> = id.split('/').collect();
        if parts.len() > 2 {
            return Err(bad("at most one `/` (owner/name)".into()));
        }
        for part in &parts {
            check_part(part).map_err(&bad)?;
        }
        Ok(ModelId { id: id.to_string() })
    }

    /// The id as written: `gpt2` or `owner/name`.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The model's folder in the cache: `models--{owner}--{name}`, the
    /// `/` replaced by `--` (which is why `--` is not allowed in ids).
    pub fn cache_folder(&self) -> String {
        format!("models--{}", self.id.replace('/', "--"))
    }
}
// ANCHOR_END: model_id

fn check_part(part: &str) -> std::result::Result<(), String> {
    if part.is_empty() {
        return Err("an empty owner or name".into());
    }
    if part.len() > 96 {
        return Err(format!("`{part}` is longer than 96 characters"));
    }
    if let Some(c) = part
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "`{c}` is not allowed (letters, digits, - _ . only)"
        ));
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if !part.starts_with(word) || !part.ends_with(word) {
        return Err(format!(
            "`{part}` must start and end with a letter, a digit or `_`"
        ));
    }
    if part.contains("..") || part.contains("--") {
        return Err(format!("`{part}` contains `..` or `--`"));
    }
    Ok(())
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl std::str::FromStr for ModelId {
    type Err = HubError;
    fn from_str(s: &str) -> Result<ModelId> {
        ModelId::parse(s)
    }
}

/// Checks a revision (`main`, a tag, a 40-hex commit, `refs/pr/1`) or a
/// file name in a repository (`model.safetensors`, `onnx/model.onnx`): both
/// become paths under the cache, so no empty part, no `.`/`..`, no leading
/// `/`, no backslash.
pub fn validate_relative_name(what: &'static str, value: &str) -> Result<()> {
    let bad = |reason: &str| HubError::InvalidName {
        what,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    if value.contains('\\') || value.contains('\0') {
        return Err(bad("it contains a backslash or a NUL"));
    }
    if value
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(bad(
            "it has an empty, `.` or `..` path part (or a leading `/`)",
        ));
    }
    Ok(())
}

/// Whether `revision` is a full commit hash (40 lower-case hex digits),
/// which names one immutable snapshot.
pub fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40
        && revision
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
