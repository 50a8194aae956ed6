//! GPT-2's tokenizer read from Hugging Face's `tokenizer.json`: the same
//! vocabulary and the same ids as from `encoder.json` + `vocab.bpe`, in
//! both ways of writing the merges; every file that is not GPT-2's kind of
//! tokenizer, or is damaged, refused with an error naming the file and the
//! field, never a panic.
//!
//! `cargo test -p chapter-08 --test tokenizer_json`

use chapter_08::tokenizer::{
    default_gpt2_dir, BpeTrainer, Gpt2Tokenizer, TokenizerError, TokenizerFiles, Vocabulary,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PATH: &str = "dir/tokenizer.json";

/// The `tokenizer.json` the `tokenizers` library writes for GPT-2, made
/// from the contents of `encoder.json` and `vocab.bpe`: merges as
/// `"left right"` strings, or as `["left", "right"]` pairs.
fn tokenizer_json(encoder_json: &str, vocab_bpe: &str, pairs: bool) -> Value {
    let vocab: Value = serde_json::from_str(encoder_json).unwrap();
    // The first line is `#version: 0.2`; later ones may start with `#`
    // (`# #` makes `##`).
    let merges: Vec<Value> = vocab_bpe
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(' ') {
            Some((a, b)) if pairs => json!([a, b]),
            _ => json!(l),
        })
        .collect();
    let eot = vocab["<|endoftext|>"].clone();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": false,
                          "lstrip": false, "rstrip": false, "normalized": true, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                          "use_regex": true},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false,
                           "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false,
                  "byte_fallback": false, "ignore_merges": false, "vocab": vocab,
                  "merges": merges}
    })
}

fn gpt2_files() -> (String, String) {
    let dir = default_gpt2_dir();
    (
        std::fs::read_to_string(dir.join("encoder.json")).unwrap(),
        std::fs::read_to_string(dir.join("vocab.bpe")).unwrap(),
    )
}

fn gpt2() -> &'static Gpt2Tokenizer {
    static T: OnceLock<Gpt2Tokenizer> = OnceLock::new();
    T.get_or_init(|| Gpt2Tokenizer::from_dir(&default_gpt2_dir()).unwrap())
}

fn from_json(v: &Value) -> Result<Gpt2Tokenizer, TokenizerError> {
    Gpt2Tokenizer::from_tokenizer_json_bytes(v.to_string().as_bytes(), Path::new(PATH))
}

/// Texts to compare on: the parity strings of `tests/fixtures/tokenizer.json`
/// and chapter 08's adversarial strings.
fn texts() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for file in [
        root.join("../../tests/fixtures/tokenizer.json"),
        root.join("tests/fixtures/tokenizer_adversarial.json"),
    ] {
        let cases: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        out.extend(
            cases
                .iter()
                .map(|c| c["text"].as_str().unwrap().to_string()),
        );
    }
    assert!(out.len() > 440, "{} texts", out.len());
    out
}

#[test]
fn tokenizer_json_gives_gpt2s_vocabulary_and_ids_with_either_merges_format() {
    let (encoder, vocab_bpe) = gpt2_files();
    let texts = texts();
    for pairs in [false, true] {
        let t = from_json(&tokenizer_json(&encoder, &vocab_bpe, pairs)).unwrap();
        // The same tokens, kinds and merges by rank: every table built from
        // it is the same, so the ids are too.
        assert_eq!(t.vocabulary(), gpt2().vocabulary(), "pairs: {pairs}");
        assert_eq!(t.vocab_size(), 50257);
        assert_eq!(t.eot_token(), Some(50256));
        for s in &texts {
            assert_eq!(t.encode(s), gpt2().encode(s), "{s:?}");
            assert_eq!(
                t.encode_with_special(s),
                gpt2().encode_with_special(s),
                "{s:?}"
            );
        }
    }
}

/// A small vocabulary: the 256 bytes, a few merges, `<|endoftext|>`.
fn small() -> &'static Vocabulary {
    static V: OnceLock<Vocabulary> = OnceLock::new();
    V.get_or_init(|| {
        BpeTrainer::new(270)
            .train("the cat sat on the mat; the cat ate the rat. the end")
            .unwrap()
    })
}

fn small_json() -> Value {
    tokenizer_json(&small().encoder_json(), &small().vocab_bpe(), true)
}

/// Asserts that loading `text` fails with a message naming the file and
/// containing every part.
fn refused_text(text: &str, parts: &[&str]) {
    let err = Gpt2Tokenizer::from_tokenizer_json_bytes(text.as_bytes(), Path::new(PATH))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(PATH), "the file is not named first: {err}");
    for part in parts {
        assert!(err.contains(part), "`{part}` is not in: {err}");
    }
}

fn refused(v: &Value, parts: &[&str]) {
    refused_text(&v.to_string(), parts)
}

/// `small_json()` with `edit` applied.
fn edited(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = small_json();
    edit(&mut v);
    v
}

#[test]
fn a_small_tokenizer_json_loads_back() {
    let t = from_json(&small_json()).unwrap();
    assert_eq!(t.vocabulary(), small());
    let strings = tokenizer_json(&small().encoder_json(), &small().vocab_bpe(), false);
    assert_eq!(from_json(&strings).unwrap().vocabulary(), small());
}

#[test]
fn tokenizer_json_that_is_not_json_is_refused() {
    refused_text("not json", &["not JSON"]);
    refused_text("[1, 2]", &["not a JSON object"]);
    let whole = small_json().to_string();
    refused_text(&whole[..whole.len() / 2], &["not JSON"]);
    refused(&json!({"version": "1.0"}), &["no `model` object"]);
}

#[test]
fn other_kinds_of_tokenizer_are_refused_by_field() {
    refused(
        &edited(|v| v["model"]["type"] = json!("WordPiece")),
        &["model.type", "WordPiece", "byte-level BPE"],
    );
    refused(
        &json!({"model": {"type": "Unigram", "vocab": [["<unk>", 0.0]], "unk_id": 0}}),
        &["model.type", "Unigram"],
    );
    refused(
        &edited(|v| v["pre_tokenizer"] = json!({"type": "Metaspace", "replacement": "▁"})),
        &["pre_tokenizer", "Metaspace", "ByteLevel"],
    );
    refused(
        &edited(|v| v["pre_tokenizer"] = Value::Null),
        &["pre_tokenizer", "missing"],
    );
    refused(
        &edited(|v| v["pre_tokenizer"]["add_prefix_space"] = json!(true)),
        &["pre_tokenizer.add_prefix_space"],
    );
    refused(
        &edited(|v| {
            v["pre_tokenizer"]
                .as_object_mut()
                .unwrap()
                .remove("add_prefix_space");
        }),
        &["pre_tokenizer.add_prefix_space", "default"],
    );
    refused(
        &edited(|v| v["pre_tokenizer"]["use_regex"] = json!(false)),
        &["pre_tokenizer.use_regex"],
    );
    refused(
        &edited(|v| v["normalizer"] = json!({"type": "NFC"})),
        &["normalizer", "NFC"],
    );
    refused(
        &edited(|v| v["decoder"] = json!({"type": "WordPiece", "prefix": "##"})),
        &["decoder", "WordPiece"],
    );
    refused(
        &edited(|v| v["post_processor"] = json!({"type": "TemplateProcessing"})),
        &["post_processor", "TemplateProcessing"],
    );
    refused(
        &edited(|v| v["model"]["dropout"] = json!(0.1)),
        &["model.dropout"],
    );
    refused(
        &edited(|v| v["model"]["unk_token"] = json!("<unk>")),
        &["model.unk_token"],
    );
    refused(
        &edited(|v| v["model"]["byte_fallback"] = json!(true)),
        &["model.byte_fallback"],
    );
    refused(
        &edited(|v| v["model"]["continuing_subword_prefix"] = json!("##")),
        &["model.continuing_subword_prefix"],
    );
}

#[test]
fn a_file_without_a_model_type_but_with_merges_is_read_as_bpe() {
    let v = edited(|v| {
        v["model"].as_object_mut().unwrap().remove("type");
    });
    assert_eq!(from_json(&v).unwrap().vocabulary(), small());
}

#[test]
fn bad_merges_are_refused_by_index() {
    let first = small().vocab_bpe().lines().nth(1).unwrap().to_string();
    refused(
        &edited(|v| v["model"]["merges"][1] = json!("t h e")),
        &["model.merges[1]", "expected \"left right\""],
    );
    refused(
        &edited(|v| v["model"]["merges"][0] = json!(["t"])),
        &["model.merges[0]"],
    );
    refused(
        &edited(|v| v["model"]["merges"][0] = json!(7)),
        &["model.merges[0]"],
    );
    refused(
        &edited(|v| v["model"]["merges"][2] = json!(["zz", "q"])),
        &["model.merges[2]", "`zz` is not a token of model.vocab"],
    );
    refused(
        &edited(|v| v["model"]["merges"][2] = json!(["▁", "q"])),
        &["model.merges[2]", "byte alphabet"],
    );
    // The first merge again: its token is made twice.
    refused(
        &edited(|v| {
            let (a, b) = first.split_once(' ').unwrap();
            v["model"]["merges"]
                .as_array_mut()
                .unwrap()
                .push(json!([a, b]));
        }),
        &["is already made by model.merges[0]"],
    );
    refused(
        &edited(|v| v["model"]["merges"] = json!({})),
        &["model.merges", "not a list"],
    );
    // Without its merges, merged tokens cannot be made.
    refused(
        &edited(|v| v["model"]["merges"] = json!([])),
        &[
            "model.vocab",
            "neither a byte, nor made by a merge of model.merges",
        ],
    );
}

#[test]
fn a_merge_used_before_it_is_made_names_the_merge_that_makes_it() {
    // The trainer's merges build on each other; find one whose part is
    // made by an earlier merge, and move that one after it.
    let merges: Vec<(String, String)> = small()
        .vocab_bpe()
        .lines()
        .skip(1)
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect();
    let (later, earlier) = (0..merges.len())
        .find_map(|j| {
            (0..j)
                .find(|&i| {
                    let made = format!("{}{}", merges[i].0, merges[i].1);
                    merges[j].0 == made || merges[j].1 == made
                })
                .map(|i| (j, i))
        })
        .expect("the trainer built one merge on another");
    let mut reordered = merges.clone();
    let moved = reordered.remove(earlier);
    reordered.insert(later, moved);
    refused(
        &edited(|v| v["model"]["merges"] = json!(reordered)),
        &[
            &format!("model.merges[{}]", later - 1),
            "before a merge makes it",
            &format!("(model.merges[{later}] makes it)"),
        ],
    );
}

#[test]
fn bad_vocab_entries_are_refused() {
    let n = small().len();
    refused(
        &edited(|v| v["model"]["vocab"]["!"] = json!(n + 5)),
        &["model.vocab", "`!`", &format!("ids 0..{n}")],
    );
    refused(
        &edited(|v| v["model"]["vocab"]["!"] = json!(-1)),
        &["model.vocab", "not a whole number"],
    );
    refused(
        &edited(|v| v["model"]["vocab"]["!"] = json!("0")),
        &["model.vocab", "not a whole number"],
    );
    refused(
        &edited(|v| v["model"]["vocab"]["\""] = json!(0)),
        &["model.vocab", "both have id 0"],
    );
    refused(
        &edited(|v| v["model"]["vocab"] = json!([["!", 0]])),
        &["model.vocab", "not a JSON object of token ids"],
    );
    refused(
        &edited(|v| {
            v["model"].as_object_mut().unwrap().remove("vocab");
        }),
        &["model.vocab"],
    );
    // A key written twice: a JSON map would keep the last one silently.
    let text = small_json().to_string();
    assert!(text.contains("\"vocab\":{"));
    refused_text(
        &text.replacen("\"vocab\":{", "\"vocab\":{\"!\":1,", 1),
        &["model.vocab", "the token `!` appears twice"],
    );
    // A SentencePiece-style token is not in the byte alphabet.
    refused(
        &edited(|v| v["model"]["vocab"]["▁the"] = json!(n)),
        &["model.vocab", "`▁the`", "byte alphabet"],
    );
}

#[test]
fn added_tokens_must_agree_with_the_vocabulary() {
    let eot = small().len() - 1;
    refused(
        &edited(|v| v["added_tokens"][0]["id"] = json!(3)),
        &["added_tokens[0]", "has id 3, but model.vocab gives it"],
    );
    refused(
        &edited(|v| v["added_tokens"][0]["special"] = json!(false)),
        &["added_tokens[0]", "not special"],
    );
    refused(
        &edited(|v| v["added_tokens"][0] = json!({"content": "<|endoftext|>"})),
        &["added_tokens[0]", "expected"],
    );
    refused(
        &edited(|v| v["added_tokens"] = json!({})),
        &["added_tokens", "not a list"],
    );
    refused(
        &edited(|v| {
            v["added_tokens"]
                .as_array_mut()
                .unwrap()
                .push(json!({"id": 0, "content": "<pad>", "special": true}));
        }),
        &["added_tokens[1]", "which model.vocab gives to `!`"],
    );
    refused(
        &edited(|v| {
            v["added_tokens"]
                .as_array_mut()
                .unwrap()
                .push(json!({"id": eot + 7, "content": "<pad>", "special": true}));
        }),
        &["model.vocab", "`<pad>`", &format!("ids 0..{}", eot + 2)],
    );
}

#[test]
fn a_special_token_missing_from_the_vocab_is_added_after_it() {
    let n = small().len() as u32;
    let v = edited(|v| {
        v["added_tokens"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": n, "content": "<pad>", "special": true}));
    });
    let t = from_json(&v).unwrap();
    assert_eq!(t.vocab_size(), small().len() + 1);
    assert_eq!(t.special_token("<pad>"), Some(n));
    assert_eq!(t.encode_with_special("the<pad>"), {
        let mut ids = t.encode("the");
        ids.push(n);
        ids
    });
    assert_eq!(t.decode(&[n]).unwrap(), b"<pad>");
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn a_folder_prefers_the_pair_and_falls_back_to_tokenizer_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = Gpt2Tokenizer::from_folder(d).unwrap_err().to_string();
    assert!(err.contains("no tokenizer here") && err.contains("tokenizer.json"));
    let json = write(d, "tokenizer.json", &small_json().to_string());
    let (t, files) = Gpt2Tokenizer::from_folder(d).unwrap();
    assert_eq!(files, TokenizerFiles::TokenizerJson(json.clone()));
    assert_eq!(files.to_string(), "tokenizer.json");
    assert_eq!(t.vocabulary(), small());
    // A lone vocab.json is not a tokenizer: tokenizer.json still serves.
    let vocab = write(d, "vocab.json", &small().encoder_json());
    assert_eq!(Gpt2Tokenizer::from_folder(d).unwrap().1, files);
    let merges = write(d, "merges.txt", &small().vocab_bpe());
    let (_, files) = Gpt2Tokenizer::from_folder(d).unwrap();
    assert_eq!(files, TokenizerFiles::Pair { vocab, merges });
    assert_eq!(files.to_string(), "vocab.json + merges.txt");
    // A damaged tokenizer.json that is not chosen is not read.
    write(d, "tokenizer.json", "{");
    assert!(Gpt2Tokenizer::from_folder(d).is_ok());
    std::fs::remove_file(d.join("merges.txt")).unwrap();
    let err = Gpt2Tokenizer::from_folder(d).unwrap_err().to_string();
    assert!(err.contains(&json.display().to_string()), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any byte changed, any cut: an error or a tokenizer, never a panic.
    #[test]
    fn damaged_tokenizer_json_never_panics(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = small_json().to_string().into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let end = cut.index(bytes.len() + 1);
        for b in [&bytes[..], &bytes[..end]] {
            if let Err(e) = Gpt2Tokenizer::from_tokenizer_json_bytes(b, Path::new(PATH)) {
                prop_assert!(e.to_string().starts_with(PATH), "{e}");
            }
        }
    }
}
