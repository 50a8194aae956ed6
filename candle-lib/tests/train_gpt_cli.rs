//! `candle train shakespeare`, run as a user would, on a small text and a
//! small model so that it takes seconds.
//!
//! `cargo test -p candle-lib --test train_gpt_cli`

use std::path::Path;
use std::process::{Command, Output};

fn candle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candle"))
        .args(args)
        .env("CANDLE_DEVICE", "cpu")
        .output()
        .unwrap()
}

fn text(dir: &Path) -> String {
    let path = dir.join("verse.txt");
    let verse =
        "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate.\n";
    std::fs::write(&path, verse.repeat(30)).unwrap();
    path.display().to_string()
}

/// A tiny recipe: 1 layer, width 16, context 16, 30 steps.
fn tiny<'a>(text: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "shakespeare",
        "--text",
        text,
        "--out",
        out,
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
        "30",
        "--warmup-iters",
        "3",
        "--eval-interval",
        "10",
        "--eval-iters",
        "2",
        "--lr",
        "0.01",
        "--min-lr",
        "0.001",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn train_shakespeare_trains_reports_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let text = text(dir.path());
    let out = dir.path().join("run").display().to_string();
    let run = candle(&tiny(&text, &out, &["--samples", "40"]));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("step time: "), "{stdout}");
    assert!(stdout.contains("final: train "), "{stdout}");
    // The sample: 40 characters after the header line, all from the text.
    let sample = stdout.split_once("top-k 200):\n").unwrap().1;
    let chars: Vec<char> = sample.trim_end_matches('\n').chars().collect();
    assert_eq!(chars.len(), 40, "{sample:?}");
    assert!(chars.iter().all(|c| {
        "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate."
            .contains(*c)
    }));
    for file in [
        "config.json",
        "metrics.jsonl",
        "checkpoint.safetensors",
        "vocab.json",
    ] {
        assert!(Path::new(&out).join(file).exists(), "{file} missing");
    }
}

#[test]
fn train_shakespeare_resumes_and_refuses_misuse() {
    let dir = tempfile::tempdir().unwrap();
    let text = text(dir.path());
    let out = dir.path().join("run").display().to_string();
    let first = candle(&tiny(
        &text,
        &out,
        &["--samples", "0", "--stop-after", "10"],
    ));
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // A second run into the same folder needs --resume or --force.
    let again = candle(&tiny(&text, &out, &["--samples", "0"]));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a run"));
    // A changed model shape cannot resume.
    let mut wider = tiny(&text, &out, &["--samples", "0", "--resume"]);
    let i = wider.iter().position(|a| *a == "--width").unwrap();
    wider[i + 1] = "32";
    let refused = candle(&wider);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("--width"),
        "{err}"
    );
    let resumed = candle(&tiny(&text, &out, &["--samples", "0", "--resume"]));
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("(median of 20)"));
    // Bad numbers are refused, naming the option.
    for (args, what) in [
        (
            vec!["--heads", "3"],
            "n_embd 16 must be a multiple of n_head 3",
        ),
        (vec!["--iters", "0"], "--iters"),
        (vec!["--lr", "nan"], "--lr"),
        (vec!["--dropout", "1"], "--dropout"),
    ] {
        let mut a = tiny(&text, &out, &["--force"]);
        match a.iter().position(|x| *x == args[0]) {
            Some(i) => a[i + 1] = args[1],
            None => a.extend(args),
        }
        let r = candle(&a);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success() && err.contains(what), "{what}: {err}");
    }
    let missing = candle(&[
        "train",
        "shakespeare",
        "--text",
        "/no/such/file.txt",
        "--out",
        &out,
    ]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && err.contains("/no/such/file.txt"),
        "{err}"
    );
}

/// `--replicas`: recorded in the run, taken from it on resume, changed only
/// with `--force`, refused when it is not a count or the device is not the
/// CPU.
#[test]
fn train_shakespeare_replicas_are_part_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = text(dir.path());
    let out = dir.path().join("run").display().to_string();
    let ok = |r: &Output| {
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    };
    ok(&candle(&tiny(
        &text,
        &out,
        &["--samples", "0", "--stop-after", "10", "--replicas", "2"],
    )));
    let saved = std::fs::read_to_string(Path::new(&out).join("config.json")).unwrap();
    assert!(saved.contains("\"replicas\": 2"), "{saved}");
    // Resumed without --replicas: the run's two, no complaint.
    ok(&candle(&tiny(
        &text,
        &out,
        &["--samples", "0", "--stop-after", "10", "--resume"],
    )));
    // Another count changes the rounding: only with --force.
    let other = candle(&tiny(
        &text,
        &out,
        &["--samples", "0", "--resume", "--replicas", "1"],
    ));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success() && err.contains("--replicas: 2 in the run, 1 now"),
        "{err}"
    );
    ok(&candle(&tiny(
        &text,
        &out,
        &["--samples", "0", "--resume", "--replicas", "1", "--force"],
    )));
    let saved = std::fs::read_to_string(Path::new(&out).join("config.json")).unwrap();
    assert!(saved.contains("\"replicas\": 1"), "{saved}");
    // Not a count, or not the CPU.
    let fresh = dir.path().join("fresh").display().to_string();
    for (value, what) in [
        ("0", "from 1 to 256"),
        ("257", "from 1 to 256"),
        ("-1", "from 1 to 256"),
        ("nan", "not a whole number"),
        ("2.5", "not a whole number"),
    ] {
        // `--replicas=-1`, so that clap reads "-1" as a value, not a flag.
        let arg = format!("--replicas={value}");
        let r = candle(&tiny(&text, &fresh, &[&arg]));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            !r.status.success() && err.contains("--replicas") && err.contains(what),
            "{value}: {err}"
        );
    }
    let r = candle(&tiny(
        &text,
        &fresh,
        &["--replicas", "2", "--device", "cuda-emu"],
    ));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("--replicas 2") && err.contains("cuda-emu"),
        "{err}"
    );
    assert!(!Path::new(&fresh).exists(), "a refused run left a folder");
}
