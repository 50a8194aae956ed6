//! `candle tokenize` and `candle tokenizer train`, run as a user would.
//!
//! `cargo test -p candle-lib --test tokenizer_cli`

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// Runs `candle args...` with `stdin` as its standard input.
fn candle_with_input(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_candle"))
        .args(args)
        .env("CANDLE_DATA", data_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused command exits without reading its input, closing the pipe.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

fn candle(args: &[&str]) -> Output {
    candle_with_input(args, b"")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn refused(args: &[&str], expected: &[&str]) {
    let out = candle(args);
    assert!(
        !out.status.success(),
        "`candle {}` succeeded",
        args.join(" ")
    );
    for e in expected {
        assert!(
            stderr(&out).contains(e),
            "`{e}` missing from: {}",
            stderr(&out)
        );
    }
}

#[test]
fn tokenize_prints_gpt2_ids_of_standard_input() {
    let out = candle_with_input(&["tokenize"], b"Hello world\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "15496 995 198\n");
}

#[test]
fn tokenize_reads_a_file_and_maps_end_of_text_only_with_special() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "a<|endoftext|>b").unwrap();
    let f = file.to_str().unwrap();
    let plain = candle(&["tokenize", f]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert!(!stdout(&plain).contains("50256"));
    let special = candle(&["tokenize", f, "--special"]);
    assert_eq!(stdout(&special), "64 50256 65\n");
}

#[test]
fn tokenize_refuses_a_missing_file_or_vocabulary_by_name() {
    refused(&["tokenize", "/no/such/file.txt"], &["/no/such/file.txt"]);
    refused(
        &["tokenize", "-", "--vocab-dir", "/no/such/vocab"],
        &[
            "/no/such/vocab",
            "encoder.json + vocab.bpe",
            "tokenizer.json",
        ],
    );
}

#[test]
fn tokenize_reads_a_folder_with_only_tokenizer_json() {
    let dir = tempfile::tempdir().unwrap();
    let gpt2 = data_dir().join("gpt2");
    common::write_tokenizer_json(
        &gpt2.join("encoder.json"),
        &gpt2.join("vocab.bpe"),
        &dir.path().join("tokenizer.json"),
    );
    let text = "Hello, world! <|endoftext|> It's 2024: naïve café 🦀\n";
    for special in [false, true] {
        let mut args = vec!["tokenize", "--vocab-dir", dir.path().to_str().unwrap()];
        let mut reference = vec!["tokenize"];
        if special {
            args.push("--special");
            reference.push("--special");
        }
        let from_json = candle_with_input(&args, text.as_bytes());
        assert!(from_json.status.success(), "{}", stderr(&from_json));
        let expected = stdout(&candle_with_input(&reference, text.as_bytes()));
        assert_eq!(stdout(&from_json), expected);
        assert_eq!(expected.contains("50256"), special);
    }
}

#[test]
fn tokenizer_train_writes_files_that_tokenize_reads() {
    let dir = tempfile::tempdir().unwrap();
    let input = data_dir().join("shakespeare/shakespeare_small.txt");
    let sample = dir.path().join("sample.txt");
    let text = std::fs::read_to_string(input).unwrap();
    std::fs::write(&sample, &text[..20_000]).unwrap();
    let out_dir = dir.path().join("vocab");
    let args = [
        "tokenizer",
        "train",
        "--input",
        sample.to_str().unwrap(),
        "--vocab-size",
        "300",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = candle(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("300 tokens"), "{}", stdout(&out));
    // The same again is refused, then allowed with --force.
    refused(&args, &["already holds", "--force"]);
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(candle(&forced).status.success());
    // `candle tokenize` reads what was written.
    let ids = candle_with_input(
        &["tokenize", "--vocab-dir", out_dir.to_str().unwrap()],
        b"First Citizen",
    );
    assert!(ids.status.success(), "{}", stderr(&ids));
    let ids: Vec<u32> = stdout(&ids)
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(!ids.is_empty() && ids.len() < 13 && ids.iter().all(|&i| i < 300));
}

#[test]
fn tokenizer_train_refuses_bad_vocab_sizes_and_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let o = out.to_str().unwrap();
    let input = data_dir().join("shakespeare/shakespeare_small.txt");
    let i = input.to_str().unwrap();
    for bad in ["0", "256", "-3", "many"] {
        let got = candle(&[
            "tokenizer",
            "train",
            "--input",
            i,
            "--vocab-size",
            bad,
            "--out",
            o,
        ]);
        assert!(!got.status.success(), "--vocab-size {bad} accepted");
    }
    refused(
        &[
            "tokenizer",
            "train",
            "--input",
            i,
            "--vocab-size",
            "256",
            "--out",
            o,
        ],
        &["--vocab-size 256", "at least 257"],
    );
    refused(
        &[
            "tokenizer",
            "train",
            "--input",
            "/no/such.txt",
            "--vocab-size",
            "300",
            "--out",
            o,
        ],
        &["/no/such.txt"],
    );
    refused(
        &[
            "tokenizer",
            "train",
            "--input",
            i,
            "--vocab-size",
            "300",
            "--out",
            i,
        ],
        &["is a file"],
    );
    assert!(!out.exists());
}
