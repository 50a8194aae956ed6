//! Helpers shared by the CLI tests of `candle generate` and `candle chat`:
//! running the program with an empty Hugging Face cache, and the two tiny
//! models (a training run's folder, and GPT-2 in Hugging Face's layout).
#![allow(dead_code)]

use candle::gpt::tokenizer::{BpeTrainer, Gpt2Tokenizer};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs `candle args...` on the CPU with `stdin` as its standard input and
/// `cache` as `HF_HOME` (so that no real cache is read).
pub fn candle_in(cache: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_candle"))
        .args(args)
        .env("CANDLE_DEVICE", "cpu")
        .env("HF_HOME", cache)
        .env_remove("HF_HUB_CACHE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that refuses its options exits without reading its input:
    // then the pipe is closed before (or while) we write, which is not an
    // error of the test.
    match input.write_all(stdin.unwrap_or("").as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn candle(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    candle_in(cache.path(), args, None)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Succeeds, or fails the test showing standard error.
pub fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// Fails with a message containing every one of `wanted`.
pub fn fails_saying(o: Output, wanted: &[&str]) {
    let err = stderr(&o);
    assert!(!o.status.success(), "succeeded: {}", stdout(&o));
    for w in wanted {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
}

pub const VERSE: &str =
    "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate.\n";

/// A run folder of `candle train shakespeare`: 1 layer, width 16, context
/// 16, 5 steps.
pub fn trained_run(dir: &Path) -> PathBuf {
    let text = dir.join("verse.txt");
    std::fs::write(&text, VERSE.repeat(20)).unwrap();
    let out = dir.join("run");
    let (text, out_s) = (text.display().to_string(), out.display().to_string());
    ok(candle(&[
        "train",
        "shakespeare",
        "--text",
        &text,
        "--out",
        &out_s,
        "--layers",
        "1",
        "--heads",
        "2",
        "--width",
        "16",
        "--context",
        "16",
        "--batch-size",
        "4",
        "--iters",
        "5",
        "--warmup-iters",
        "1",
        "--eval-interval",
        "5",
        "--eval-iters",
        "1",
        "--samples",
        "0",
        "--quiet",
    ]));
    out
}

/// The workspace's tiny GPT-2 (`tests/fixtures/gpt2_tiny`: vocabulary 512,
/// context 64) copied into a Hugging Face folder, with a 512-token BPE
/// vocabulary learned from the verse as its `vocab.json` + `merges.txt`.
pub fn gpt2_folder(dir: &Path) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gpt2_tiny");
    let out = dir.join("gpt2-tiny");
    std::fs::create_dir_all(&out).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture.join(f), out.join(f)).unwrap();
    }
    let vocabulary = BpeTrainer::new(512).train(&VERSE.repeat(20)).unwrap();
    std::fs::write(out.join("vocab.json"), vocabulary.encoder_json()).unwrap();
    std::fs::write(out.join("merges.txt"), vocabulary.vocab_bpe()).unwrap();
    out
}

/// Writes `out`: the `tokenizer.json` the `tokenizers` library would
/// write for the vocabulary in `vocab` (`vocab.json` / `encoder.json`) and
/// `merges` (`merges.txt` / `vocab.bpe`), merges as `["left", "right"]`.
pub fn write_tokenizer_json(vocab: &Path, merges: &Path, out: &Path) {
    let vocab: serde_json::Value = serde_json::from_slice(&std::fs::read(vocab).unwrap()).unwrap();
    let merges: Vec<serde_json::Value> = std::fs::read_to_string(merges)
        .unwrap()
        .lines()
        .skip(1) // #version: 0.2
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            serde_json::json!([a, b])
        })
        .collect();
    let eot = vocab["<|endoftext|>"].clone();
    let json = serde_json::json!({
        "version": "1.0",
        "added_tokens": [{"id": eot, "content": "<|endoftext|>", "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                          "use_regex": true},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "vocab": vocab,
                  "merges": merges}
    });
    std::fs::write(out, json.to_string()).unwrap();
}

/// [`gpt2_folder`] with its tokenizer as one `tokenizer.json` instead of
/// `vocab.json` + `merges.txt`, which are removed.
pub fn gpt2_folder_with_tokenizer_json(dir: &Path) -> PathBuf {
    let out = gpt2_folder(dir);
    let (vocab, merges) = (out.join("vocab.json"), out.join("merges.txt"));
    write_tokenizer_json(&vocab, &merges, &out.join("tokenizer.json"));
    std::fs::remove_file(vocab).unwrap();
    std::fs::remove_file(merges).unwrap();
    out
}

pub fn tokenizer_of(dir: &Path) -> Gpt2Tokenizer {
    Gpt2Tokenizer::from_files(&dir.join("vocab.json"), &dir.join("merges.txt")).unwrap()
}
