//! `candle generate`, run as a user would: from a tiny training run's
//! folder and from the tiny GPT-2 fixture in Hugging Face's layout, with
//! every kind of bad input. Nothing is downloaded: the Hugging Face cache
//! is pointed at an empty temporary folder.
//!
//! `cargo test -p candle-lib --test generate_cli`

mod common;

use candle::commands::gpt_run::load_run;
use candle::gpt::gpt2::load_gpt2;
use candle::gpt::sampling::{generate, ContextPolicy, Sampler, StopConditions};
use candle::gpt::{GptGenerator, TextCodec};
use candle::tensor::{DType, Device};
use common::*;
use std::path::Path;
use std::sync::Arc;

/// What the library's greedy `generate` writes after `prompt`.
fn library_greedy(
    model: GptGenerator,
    codec: &dyn TextCodec,
    prompt: &str,
    n: usize,
    eos: Option<u32>,
) -> String {
    let mut model = model;
    let mut stop = StopConditions::max_new_tokens(n);
    stop.eos_tokens.extend(eos);
    let decode = |ids: &[u32]| codec.decode(ids);
    let g = generate(
        &mut model,
        &codec.encode(prompt).unwrap(),
        &mut Sampler::greedy(),
        &stop,
        Some(&decode),
        ContextPolicy::Error,
        |_| {},
    )
    .unwrap();
    g.text
}

#[test]
fn generate_from_a_run_folder_streams_the_librarys_greedy_text() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path());
    let run_s = run.display().to_string();
    let o = ok(candle(&[
        "generate",
        "--model",
        &run_s,
        "--prompt",
        "Shall",
        "--max-new-tokens",
        "10",
        "--greedy",
    ]));
    let (model, vocab) = load_run(&run, &Device::cpu()).unwrap();
    let expected = library_greedy(
        GptGenerator::new(Arc::new(model)).unwrap(),
        &vocab,
        "Shall",
        10,
        None,
    );
    assert_eq!(expected.chars().count(), 10);
    assert_eq!(stdout(&o), format!("{expected}\n"));
    let err = stderr(&o);
    assert!(
        err.contains("10 tokens in") && err.contains("tokens/s"),
        "{err}"
    );
    assert!(err.contains("--max-new-tokens reached"), "{err}");
}

#[test]
fn generate_with_a_seed_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path()).display().to_string();
    let sample = |seed: &str| {
        stdout(&ok(candle(&[
            "generate",
            "--model",
            &run,
            "--prompt",
            "Thou",
            "--max-new-tokens",
            "12",
            "--temperature",
            "1.5",
            "--top-k",
            "20",
            "--top-p",
            "0.95",
            "--min-p",
            "0.01",
            "--repetition-penalty",
            "1.2",
            "--seed",
            seed,
        ])))
    };
    let a = sample("7");
    assert_eq!(a.trim_end_matches('\n').chars().count(), 12);
    assert_eq!(a, sample("7"));
    assert_ne!(a, sample("8"));
}

#[test]
fn generate_from_a_hugging_face_folder_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder(dir.path());
    let folder_s = folder.display().to_string();
    let prompt = "Shall I compare thee";
    let o = ok(candle(&[
        "generate",
        "--model",
        &folder_s,
        "--prompt",
        prompt,
        "--max-new-tokens",
        "12",
        "--greedy",
    ]));
    let model = load_gpt2(&folder, DType::F32, &Device::cpu()).unwrap();
    let tokenizer = tokenizer_of(&folder);
    // config.json names 511 as the end token.
    let expected = library_greedy(
        GptGenerator::new(Arc::new(model)).unwrap(),
        &tokenizer,
        prompt,
        12,
        Some(511),
    );
    assert_eq!(stdout(&o), format!("{expected}\n"));

    // The prompt from a file, and from standard input.
    let file = dir.path().join("prompt.txt");
    std::fs::write(&file, prompt).unwrap();
    let from_file = ok(candle(&[
        "generate",
        "--model",
        &folder_s,
        "--prompt-file",
        &file.display().to_string(),
        "--max-new-tokens",
        "12",
        "--greedy",
    ]));
    assert_eq!(stdout(&from_file), stdout(&o));
    let cache = tempfile::tempdir().unwrap();
    let from_stdin = ok(candle_in(
        cache.path(),
        &[
            "generate",
            "--model",
            &folder_s,
            "--prompt-file",
            "-",
            "--max-new-tokens",
            "12",
            "--greedy",
        ],
        Some(prompt),
    ));
    assert_eq!(stdout(&from_stdin), stdout(&o));
}

#[test]
fn generate_from_a_folder_with_only_tokenizer_json_matches_the_pair() {
    let dir = tempfile::tempdir().unwrap();
    let pair = gpt2_folder(&dir.path().join("pair"));
    let single = gpt2_folder_with_tokenizer_json(&dir.path().join("single"));
    assert!(!single.join("vocab.json").exists() && !single.join("merges.txt").exists());
    let run = |folder: &Path| {
        ok(candle(&[
            "generate",
            "--model",
            &folder.display().to_string(),
            "--prompt",
            "Shall I compare thee",
            "--max-new-tokens",
            "12",
            "--greedy",
        ]))
    };
    let (from_pair, from_json) = (run(&pair), run(&single));
    assert_eq!(stdout(&from_json), stdout(&from_pair));
    assert!(!stdout(&from_json).trim().is_empty());
    // Each says which tokenizer file it read.
    let err = stderr(&from_json);
    assert!(err.contains("tokenizer from tokenizer.json"), "{err}");
    let err = stderr(&from_pair);
    assert!(
        err.contains("tokenizer from vocab.json + merges.txt"),
        "{err}"
    );
    // With both, the pair is used (and tokenizer.json is not even read).
    std::fs::write(pair.join("tokenizer.json"), "{ damaged").unwrap();
    assert_eq!(stdout(&run(&pair)), stdout(&from_pair));
}

#[test]
fn generate_names_tokenizer_json_and_its_field_when_it_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder_with_tokenizer_json(dir.path());
    let path = folder.join("tokenizer.json");
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let folder_s = folder.display().to_string();
    let args = ["generate", "--model", &folder_s, "--prompt", "Thou"];
    let path_s = path.display().to_string();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        edit(&mut v);
        std::fs::write(&path, v.to_string()).unwrap();
        candle(&args)
    };
    fails_saying(
        with(&|v| v["model"]["type"] = serde_json::json!("WordPiece")),
        &[&path_s, "model.type", "WordPiece"],
    );
    fails_saying(
        with(&|v| v["pre_tokenizer"] = serde_json::json!({"type": "Whitespace"})),
        &[&path_s, "pre_tokenizer", "Whitespace"],
    );
    fails_saying(
        with(&|v| v["model"]["merges"][3] = serde_json::json!(["Ġnowhere", "x"])),
        &[&path_s, "model.merges[3]", "not a token of model.vocab"],
    );
    std::fs::write(&path, "{\"model\": ").unwrap();
    fails_saying(candle(&args), &[&path_s, "not JSON"]);
    std::fs::remove_file(&path).unwrap();
    fails_saying(
        candle(&args),
        &["no tokenizer", "merges.txt", "tokenizer.json"],
    );
}

#[test]
fn generate_with_beams_and_with_a_draft_model() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder(dir.path()).display().to_string();
    let base = [
        "generate",
        "--model",
        &folder,
        "--prompt",
        "Thou art",
        "--max-new-tokens",
        "8",
        "--ignore-eos",
    ];
    let beams = ok(candle(
        &[&base[..], &["--num-beams", "3", "--length-penalty", "0.5"]].concat(),
    ));
    let err = stderr(&beams);
    assert!(
        err.contains("beam search with 3 beams") && err.contains("score"),
        "{err}"
    );
    // Speculative sampling with the model as its own draft: greedy output
    // must be plain greedy output, every draft accepted.
    let greedy = ok(candle(&[&base[..], &["--greedy"]].concat()));
    let spec = ok(candle(
        &[
            &base[..],
            &["--greedy", "--draft-model", &folder, "--draft-tokens", "3"],
        ]
        .concat(),
    ));
    assert_eq!(stdout(&spec), stdout(&greedy));
    assert!(stderr(&spec).contains("(100%)"), "{}", stderr(&spec));
}

#[test]
fn generate_refuses_prompts_that_do_not_fit_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder(dir.path()).display().to_string();
    let long = "summer ".repeat(100);
    fails_saying(
        candle(&["generate", "--model", &folder, "--prompt", &long]),
        &[
            "--prompt: the prompt is",
            "longer than the context of 64 tokens",
        ],
    );
    // Fits alone, not with the tokens asked for: an error, or with
    // --context-policy stop, generation until the context is full.
    let medium = "summer ".repeat(20);
    fails_saying(
        candle(&[
            "generate",
            "--model",
            &folder,
            "--prompt",
            &medium,
            "--max-new-tokens",
            "100",
        ]),
        &[
            "--max-new-tokens 100",
            "more than the context of 64",
            "--context-policy stop",
        ],
    );
    let o = ok(candle(&[
        "generate",
        "--model",
        &folder,
        "--prompt",
        &medium,
        "--max-new-tokens",
        "100",
        "--context-policy",
        "stop",
        "--ignore-eos",
        "--greedy",
    ]));
    assert!(
        stderr(&o).contains("the context of 64 tokens is full"),
        "{}",
        stderr(&o)
    );
    fails_saying(
        candle(&["generate", "--model", &folder, "--prompt", ""]),
        &["the prompt is empty"],
    );
}

#[test]
fn generate_names_the_file_and_the_problem_of_a_broken_model() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder(dir.path());
    let folder_s = folder.display().to_string();
    let args = ["generate", "--model", &folder_s, "--prompt", "Thou"];
    // Corrupt weights.
    let weights = folder.join("model.safetensors");
    let good = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &good[..good.len() / 2]).unwrap();
    fails_saying(candle(&args), &["model.safetensors"]);
    std::fs::write(&weights, b"not safetensors at all").unwrap();
    fails_saying(candle(&args), &["model.safetensors"]);
    // A config that does not match the weights.
    std::fs::write(&weights, &good).unwrap();
    let config_path = folder.join("config.json");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        config.replace("\"n_embd\": 64", "\"n_embd\": 32"),
    )
    .unwrap();
    fails_saying(
        candle(&args),
        &["model.safetensors", "does not match", "config.json"],
    );
    std::fs::write(&config_path, "{ not json").unwrap();
    fails_saying(candle(&args), &["config.json", "not a GPT-2 config"]);
    std::fs::write(&config_path, &config).unwrap();
    // A tokenizer bigger than the model's vocabulary.
    let gpt2_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/gpt2");
    std::fs::copy(gpt2_dir.join("encoder.json"), folder.join("vocab.json")).unwrap();
    std::fs::copy(gpt2_dir.join("vocab.bpe"), folder.join("merges.txt")).unwrap();
    fails_saying(
        candle(&args),
        &["vocab.json", "50257 tokens", "vocabulary of 512"],
    );
    // Missing files.
    std::fs::remove_file(folder.join("merges.txt")).unwrap();
    fails_saying(candle(&args), &["no tokenizer", "merges.txt"]);
    std::fs::remove_file(&weights).unwrap();
    fails_saying(
        candle(&args),
        &["not a model folder", "model.safetensors is missing"],
    );
    // A bad generation_config.json.
    let folder2 = gpt2_folder(&dir.path().join("second"));
    std::fs::write(folder2.join("generation_config.json"), r#"{"top_p": 7}"#).unwrap();
    let f2 = folder2.display().to_string();
    fails_saying(
        candle(&["generate", "--model", &f2, "--prompt", "Thou"]),
        &["generation_config.json", "top_p = 7"],
    );
}

#[test]
fn generate_names_the_file_and_the_problem_of_a_broken_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path());
    let run_s = run.display().to_string();
    let args = ["generate", "--model", &run_s, "--prompt", "Thou"];
    fails_saying(
        candle(&["generate", "--model", &run_s, "--prompt", "Zebra"]),
        &["--prompt", "'Z'", "not in the vocabulary"],
    );
    let vocab = run.join("vocab.json");
    let good_vocab = std::fs::read(&vocab).unwrap();
    std::fs::write(&vocab, "[\"ab\"]").unwrap();
    fails_saying(candle(&args), &["vocab.json", "not a single character"]);
    // A vocabulary of another size than the checkpoint's embedding.
    std::fs::write(&vocab, "[\"a\", \"b\"]").unwrap();
    fails_saying(
        candle(&args),
        &["checkpoint.safetensors", "does not match", "vocab.json"],
    );
    std::fs::write(&vocab, good_vocab).unwrap();
    let ckpt = run.join("checkpoint.safetensors");
    std::fs::write(&ckpt, b"garbage").unwrap();
    fails_saying(candle(&args), &["checkpoint.safetensors"]);
    std::fs::remove_file(&ckpt).unwrap();
    fails_saying(
        candle(&args),
        &["training run's folder without checkpoint.safetensors"],
    );
}

#[test]
fn generate_refuses_invalid_options_naming_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder(dir.path()).display().to_string();
    for (option, value, why) in [
        ("--temperature", "nan", "NaN is not allowed"),
        ("--temperature", "-1", "[0, 100]"),
        ("--top-p", "1.5", "(0, 1]"),
        ("--top-p", "0", "(0, 1]"),
        ("--min-p", "inf", "infinite"),
        ("--top-k", "0", "from 1 to"),
        ("--repetition-penalty", "0", "(0, 100]"),
        ("--max-new-tokens", "0", "from 1 to"),
        ("--max-new-tokens", "99999999999", "out of range"),
        ("--num-beams", "0", "from 1 to 64"),
        ("--seed", "-1", "--seed"),
        ("--length-penalty", "0.5", "--num-beams"),
        ("--draft-tokens", "3", "--draft-model"),
        ("--context-policy", "maybe", "error, stop"),
    ] {
        // `--option=value`, so that clap reads "-1" as a value, not a flag.
        let arg = format!("{option}={value}");
        fails_saying(
            candle(&["generate", "--model", &folder, "--prompt", "Thou", &arg]),
            &[option, why],
        );
    }
    fails_saying(
        candle(&[
            "generate", "--model", &folder, "--prompt", "Thou", "--greedy", "--top-k", "5",
        ]),
        &["--greedy", "--top-k"],
    );
    fails_saying(
        candle(&[
            "generate", "--model", &folder, "--prompt", "Thou", "--stop", "",
        ]),
        &["--stop", "empty stop string"],
    );
    fails_saying(
        candle(&[
            "generate",
            "--model",
            &folder,
            "--prompt",
            "a",
            "--prompt-file",
            "x",
        ]),
        &["--prompt-file"],
    );
    fails_saying(
        candle(&[
            "generate",
            "--model",
            &folder,
            "--prompt-file",
            "/no/such/file",
        ]),
        &["--prompt-file /no/such/file", "cannot read"],
    );
}

#[test]
fn generate_says_to_download_a_model_id_that_is_not_cached() {
    fails_saying(
        candle(&["generate", "--model", "gpt2", "--prompt", "Hello"]),
        &[
            "model `gpt2`",
            "not in the Hugging Face cache",
            "candle download gpt2",
        ],
    );
    fails_saying(
        candle(&[
            "generate",
            "--model",
            "someone/some-model@v2",
            "--prompt",
            "Hello",
        ]),
        &["someone/some-model", "v2", "candle download"],
    );
    fails_saying(
        candle(&[
            "generate",
            "--model",
            "./no/such/folder",
            "--prompt",
            "Hello",
        ]),
        &["./no/such/folder", "not a folder"],
    );
}
