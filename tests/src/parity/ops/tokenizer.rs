//! Group `tokenizer` (chapter 08): GPT-2's byte-level BPE against
//! tiktoken's `gpt2` (r50k_base) encoding.
//!
//! The case's file (`tokenizer.json`) lists `{text, ids}`: `ids` is
//! tiktoken's `encode_ordinary(text)`, and entries whose text holds
//! `<|endoftext|>` add `ids_allowed_special`, tiktoken's
//! `encode(text, allowed_special="all")`. Ids must match exactly, and
//! decoding them must give the text back. The vocabulary is GPT-2's own
//! `encoder.json` and `vocab.bpe` from `data/gpt2`.

use crate::parity::{CaseEnv, Failure};
use chapter_08::tokenizer::Gpt2Tokenizer;
use serde_json::Value;

/// Encodes every string of the case's file and compares the ids.
pub fn check(env: &CaseEnv<'_>) -> Result<(), Failure> {
    let case = env.case;
    let name = case.file.as_deref().unwrap_or("tokenizer.json");
    let path = env.dir.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::new(format!("{}: cannot read: {e}", path.display())))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::new(format!("{}: not valid JSON: {e}", path.display())))?;
    let entries = json
        .as_array()
        .ok_or_else(|| Failure::new(format!("{}: not a list of {{text, ids}}", path.display())))?;
    if let Some(n) = case.extra.get("count").and_then(Value::as_u64) {
        if n as usize != entries.len() {
            return Err(Failure::new(format!(
                "the manifest counts {n} strings, {} lists {}",
                path.display(),
                entries.len()
            )));
        }
    }
    let tokenizer = Gpt2Tokenizer::gpt2().map_err(|e| Failure::new(e.to_string()))?;
    for (i, entry) in entries.iter().enumerate() {
        let s = entry["text"]
            .as_str()
            .ok_or_else(|| Failure::new(format!("entry {i}: no `text` string")))?;
        let expected = ids(&entry["ids"], i, "ids")?;
        compare(i, s, "encode", &tokenizer.encode(s), &expected)?;
        if !entry["ids_allowed_special"].is_null() {
            let special = ids(&entry["ids_allowed_special"], i, "ids_allowed_special")?;
            compare(
                i,
                s,
                "encode_with_special",
                &tokenizer.encode_with_special(s),
                &special,
            )?;
        }
        let back = tokenizer
            .decode(&expected)
            .map_err(|e| Failure::new(format!("entry {i} ({s:?}): {e}")))?;
        if back != s.as_bytes() {
            return Err(Failure::new(format!(
                "entry {i} ({s:?}): decode(ids) gives {:?}",
                String::from_utf8_lossy(&back)
            )));
        }
    }
    Ok(())
}

fn ids(v: &Value, i: usize, name: &str) -> Result<Vec<u32>, Failure> {
    v.as_array()
        .and_then(|a| {
            a.iter()
                .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
                .collect()
        })
        .ok_or_else(|| Failure::new(format!("entry {i}: `{name}` should be a list of token ids")))
}

/// The first position where `ours` and `expected` differ, as a failure.
fn compare(i: usize, s: &str, op: &str, ours: &[u32], expected: &[u32]) -> Result<(), Failure> {
    if ours == expected {
        return Ok(());
    }
    let at = ours
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(expected.len()));
    Err(Failure::new(format!(
        "entry {i} ({s:?}): {op} differs at token {at}: ours {:?}, tiktoken {:?}",
        &ours[at..ours.len().min(at + 5)],
        &expected[at..expected.len().min(at + 5)]
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::{default_fixtures_dir, run_suite_with, Coverage, Precision};
    use std::fs;

    /// The shipped fixtures with `tokenizer.json` edited by `edit`.
    fn run_edited(tag: &str, edit: impl FnOnce(&mut Value)) -> Option<String> {
        let src = default_fixtures_dir();
        let dir = std::env::temp_dir().join(format!("candle-tok-{tag}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::copy(src.join("manifest.json"), dir.join("manifest.json")).unwrap();
        let text = fs::read_to_string(src.join("tokenizer.json")).unwrap();
        let mut json: Value = serde_json::from_str(&text).unwrap();
        edit(&mut json);
        fs::write(dir.join("tokenizer.json"), json.to_string()).unwrap();
        let coverage = [Coverage::custom("tokenizer", check)];
        let report = run_suite_with(&dir, Precision::F32, &coverage).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(report.total(), 1);
        report.outcomes[0].failure.clone()
    }

    #[test]
    fn every_tokenizer_string_is_checked_and_a_wrong_id_is_named() {
        assert_eq!(run_edited("same", |_| {}), None);
        let f = run_edited("id", |j| j[0]["ids"][1] = Value::from(12)).unwrap();
        assert!(
            f.contains("entry 0 (\"Hello, world!\"): encode differs at token 1"),
            "{f}"
        );
        let f = run_edited("count", |j| {
            j.as_array_mut().unwrap().pop();
        })
        .unwrap();
        assert!(f.contains("the manifest counts 40 strings"), "{f}");
    }
}
