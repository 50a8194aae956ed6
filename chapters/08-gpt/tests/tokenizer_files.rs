//! Broken vocabulary files: every problem is an error that names the file
//! (and the line of `vocab.bpe`), never a panic.
//!
//! `cargo test -p chapter-08 --test tokenizer_files`

use chapter_08::tokenizer::{BpeTrainer, Gpt2Tokenizer, TokenizerError, Vocabulary};
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

const ENCODER: &str = "dir/encoder.json";
const VOCAB: &str = "dir/vocab.bpe";

/// A small valid vocabulary: 256 bytes, a few merges, `<|endoftext|>`.
fn small() -> &'static Vocabulary {
    static V: OnceLock<Vocabulary> = OnceLock::new();
    V.get_or_init(|| {
        BpeTrainer::new(270)
            .train("the cat sat on the mat; the cat ate the rat. the end")
            .unwrap()
    })
}

fn load(encoder_json: &str, vocab_bpe: &str) -> Result<Gpt2Tokenizer, TokenizerError> {
    Gpt2Tokenizer::from_bytes(
        encoder_json.as_bytes(),
        Path::new(ENCODER),
        vocab_bpe.as_bytes(),
        Path::new(VOCAB),
    )
}

/// Asserts that loading fails with a message containing every part.
fn refused(encoder_json: &str, vocab_bpe: &str, parts: &[&str]) {
    let err = load(encoder_json, vocab_bpe).unwrap_err().to_string();
    for part in parts {
        assert!(err.contains(part), "`{part}` is not in: {err}");
    }
}

fn encoder() -> String {
    small().encoder_json()
}

fn vocab() -> String {
    small().vocab_bpe()
}

#[test]
fn a_saved_vocabulary_loads_back() {
    let t = load(&encoder(), &vocab()).unwrap();
    assert_eq!(t.vocabulary(), small());
}

#[test]
fn missing_file_is_named() {
    let err = Gpt2Tokenizer::from_dir(Path::new("/no/such/dir")).unwrap_err();
    assert!(
        err.to_string().contains("/no/such/dir/encoder.json"),
        "{err}"
    );
}

#[test]
fn encoder_json_that_is_not_a_json_object_is_refused() {
    refused("not json", &vocab(), &[ENCODER, "not a JSON object"]);
    refused("[1, 2]", &vocab(), &[ENCODER, "not a JSON object"]);
    let cut = encoder();
    refused(&cut[..cut.len() / 2], &vocab(), &[ENCODER]);
}

#[test]
fn encoder_json_with_wrong_types_or_ids_is_refused() {
    let e = encoder();
    refused(
        &e.replacen("\"!\": 0", "\"!\": \"0\"", 1),
        &vocab(),
        &[ENCODER, "`!`", "not a whole number"],
    );
    refused(
        &e.replacen("\"!\": 0", "\"!\": -1", 1),
        &vocab(),
        &[ENCODER, "not a whole number"],
    );
    refused(
        &e.replacen("\"!\": 0", "\"!\": 0.5", 1),
        &vocab(),
        &[ENCODER, "not a whole number"],
    );
    let range = format!("0..{}", small().len());
    refused(
        &e.replacen("\"!\": 0", "\"!\": 99999", 1),
        &vocab(),
        &[ENCODER, "id 99999", &range],
    );
    refused(
        &e.replacen("\"\\\"\": 1", "\"\\\"\": 0", 1),
        &vocab(),
        &[ENCODER, "both have id 0"],
    );
    refused(
        &e.replacen("\"\\\"\": 1", "\"!\": 1", 1),
        &vocab(),
        &[ENCODER, "`!` appears twice"],
    );
    refused(
        &e.replacen("\"!\": 0", "\"a b\": 0", 1),
        &vocab(),
        &[ENCODER, "' '", "byte alphabet"],
    );
}

#[test]
fn encoder_json_without_a_byte_is_refused() {
    // Rename the token of byte '!' to something no merge makes.
    let e = encoder().replacen("\"!\": 0", "\"<|pad|>\": 0", 1);
    refused(&e, &vocab(), &[ENCODER, "no token for byte 0x21"]);
}

#[test]
fn encoder_json_with_a_token_no_merge_makes_is_refused() {
    let v = vocab();
    let last = v.lines().last().unwrap().to_string();
    let without_last = v.replacen(&format!("{last}\n"), "", 1);
    refused(
        &encoder(),
        &without_last,
        &[ENCODER, "is neither a byte, nor made by a merge"],
    );
}

#[test]
fn vocab_bpe_line_that_is_not_two_tokens_is_refused_with_its_line() {
    let mut lines: Vec<String> = vocab().lines().map(str::to_string).collect();
    lines[2] = "justone".into();
    refused(
        &encoder(),
        &(lines.join("\n") + "\n"),
        &[&format!("{VOCAB}:3:"), "two tokens"],
    );
    lines[2] = "a b c".into();
    refused(
        &encoder(),
        &(lines.join("\n") + "\n"),
        &[&format!("{VOCAB}:3:"), "two tokens"],
    );
    lines[2] = String::new();
    refused(
        &encoder(),
        &(lines.join("\n") + "\n"),
        &[&format!("{VOCAB}:3:"), "two tokens"],
    );
}

#[test]
fn vocab_bpe_naming_an_unknown_token_is_refused() {
    let v = vocab().replacen('\n', "\nzz qq\n", 1);
    refused(
        &encoder(),
        &v,
        &[&format!("{VOCAB}:2:"), "`zz` is not a token of", ENCODER],
    );
    let v = vocab().replacen('\n', "\nĠ \u{3000}\n", 1);
    refused(&encoder(), &v, &[&format!("{VOCAB}:2:"), "byte alphabet"]);
}

#[test]
fn vocab_bpe_with_merges_out_of_rank_order_is_refused() {
    // Swap a merge that uses an earlier merge's token with that merge.
    let mut lines: Vec<String> = vocab().lines().map(str::to_string).collect();
    let merges = small().merges();
    let (user, made) = merges
        .iter()
        .enumerate()
        .find_map(|(i, m)| {
            merges[..i]
                .iter()
                .position(|e| e.result == m.left || e.result == m.right)
                .map(|j| (i, j))
        })
        .expect("some merge builds on another");
    lines.swap(1 + user, 1 + made);
    let err = load(&encoder(), &(lines.join("\n") + "\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("{VOCAB}:{}:", 2 + made)), "{err}");
    assert!(err.contains("rank order"), "{err}");
}

#[test]
fn vocab_bpe_making_a_token_twice_or_one_not_in_encoder_json_is_refused() {
    let v = vocab();
    let first = v.lines().nth(1).unwrap().to_string();
    refused(
        &encoder(),
        &format!("{v}{first}\n"),
        &["already made by line 2", VOCAB],
    );
    refused(
        &encoder(),
        &v.replacen('\n', "\n! !\n", 1),
        &["makes `!!`", "not a token of", ENCODER],
    );
}

#[test]
fn vocab_bpe_without_version_header_or_with_crlf_is_read() {
    let v = vocab();
    let no_header = v.split_once('\n').unwrap().1;
    assert_eq!(load(&encoder(), no_header).unwrap().vocabulary(), small());
    let crlf = v.replace('\n', "\r\n");
    assert_eq!(load(&encoder(), &crlf).unwrap().vocabulary(), small());
    let no_final_newline = v.trim_end_matches('\n');
    assert_eq!(
        load(&encoder(), no_final_newline).unwrap().vocabulary(),
        small()
    );
}

#[test]
fn vocab_bpe_that_is_not_utf8_is_refused() {
    let mut bytes = vocab().into_bytes();
    let second_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes[second_line] = 0xFF;
    let err = Gpt2Tokenizer::from_bytes(
        encoder().as_bytes(),
        Path::new(ENCODER),
        &bytes,
        Path::new(VOCAB),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!("{VOCAB}:2:")) && err.contains("UTF-8"),
        "{err}"
    );
}

/// Random, truncated and spliced files: loading may fail, it may not
/// panic, and its errors name one of the files.
fn load_never_panics(encoder_json: &[u8], vocab_bpe: &[u8]) -> Result<(), TestCaseError> {
    match Gpt2Tokenizer::from_bytes(
        encoder_json,
        Path::new(ENCODER),
        vocab_bpe,
        Path::new(VOCAB),
    ) {
        Ok(t) => {
            // What loads, encodes and decodes.
            let ids = t.encode("the cat");
            prop_assert_eq!(t.decode(&ids).unwrap(), b"the cat".to_vec());
        }
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(msg.contains(ENCODER) || msg.contains(VOCAB), "{}", msg);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn loaders_refuse_truncated_files_by_name(cut_e in 0.0..1.0f64, cut_v in 0.0..1.0f64) {
        let (e, v) = (encoder(), vocab());
        let e = &e.as_bytes()[..(e.len() as f64 * cut_e) as usize];
        let v = &v.as_bytes()[..(v.len() as f64 * cut_v) as usize];
        load_never_panics(e, vocab().as_bytes())?;
        load_never_panics(encoder().as_bytes(), v)?;
    }

    #[test]
    fn loaders_refuse_random_bytes_by_name(
        junk in proptest::collection::vec(any::<u8>(), 0..300),
        at in 0.0..1.0f64,
    ) {
        load_never_panics(&junk, vocab().as_bytes())?;
        load_never_panics(encoder().as_bytes(), &junk)?;
        // Junk spliced into the middle of each file.
        let (e, v) = (encoder(), vocab());
        let mut e2 = e.as_bytes().to_vec();
        let i = (e2.len() as f64 * at) as usize;
        e2.splice(i..i, junk.iter().copied());
        load_never_panics(&e2, v.as_bytes())?;
        let mut v2 = v.as_bytes().to_vec();
        let i = (v2.len() as f64 * at) as usize;
        v2.splice(i..i, junk.iter().copied());
        load_never_panics(e.as_bytes(), &v2)?;
    }
}
