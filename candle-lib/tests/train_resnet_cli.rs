//! `candle train mnist|digits --model resnet14`: chapter 09's ResNet14
//! trained by the command of chapter 06, on the digits (MNIST takes
//! minutes an epoch; its run is measured on the chapter 09 page instead).
//!
//! `cargo test -p candle-lib --test train_resnet_cli` runs these.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
}

fn candle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candle"))
        .args(args)
        .env("CANDLE_DATA", data_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn assert_ok(args: &[&str]) -> (String, String) {
    let out = candle(args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "`candle {}` failed: {stderr}",
        args.join(" ")
    );
    (stdout, stderr)
}

fn assert_refused(args: &[&str], expected: &[&str]) {
    let out = candle(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "`candle {}` succeeded",
        args.join(" ")
    );
    for e in expected {
        assert!(err.contains(e), "`{e}` missing from: {err}");
    }
}

#[test]
fn options_of_the_other_model_are_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = path_str(&out);
    assert_refused(
        &[
            "train", "digits", "--model", "resnet14", "--hidden", "64", "--out", o,
        ],
        &["--hidden applies to --model mlp"],
    );
    assert_refused(
        &[
            "train",
            "digits",
            "--model",
            "resnet14",
            "--dropout",
            "0.1",
            "--out",
            o,
        ],
        &["--dropout applies to --model mlp"],
    );
    assert_refused(
        &["train", "digits", "--shift", "1", "--out", o],
        &["--shift applies to --model resnet14"],
    );
    for bad in ["9", "-1", "nan", "1e9"] {
        let arg = format!("--shift={bad}");
        assert_refused(
            &["train", "digits", "--model", "resnet14", &arg, "--out", o],
            &["--shift", "from 0 to 8"],
        );
    }
    assert_refused(
        &["train", "digits", "--model", "resnet", "--out", o],
        &["--model", "resnet14"],
    );
    assert!(!out.exists(), "a refused command created the run folder");
}

#[test]
fn resnet14_trains_on_digits_and_a_resumed_run_ends_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, parts) = (dir.path().join("a"), dir.path().join("b"));
    let common = ["train", "digits", "--model", "resnet14", "--epochs", "3"];
    let (stdout, stderr) = assert_ok(&[&common[..], &["--out", path_str(&straight)]].concat());
    assert!(stderr.contains("ResNet14"), "{stderr}");
    let accuracy: f64 = stdout
        .trim()
        .strip_prefix("test accuracy: ")
        .and_then(|s| s.strip_suffix('%'))
        .unwrap_or_else(|| panic!("no accuracy line in {stdout:?}"))
        .parse()
        .unwrap();
    // Three epochs of the digits recipe are far from its end, but far
    // above chance (10%) too.
    assert!(accuracy > 30.0, "test accuracy {accuracy}% after 3 epochs");

    // Interrupted after one epoch, then resumed: the same run, bit for bit,
    // batch norm's running statistics and the random shifts included.
    let (_, stderr) = assert_ok(
        &[
            &common[..],
            &["--quiet", "--stop-after", "1", "--out", path_str(&parts)],
        ]
        .concat(),
    );
    assert!(stderr.contains("stopped after epoch 1 of 3"), "{stderr}");
    assert_ok(
        &[
            &common[..],
            &["--quiet", "--resume", "--out", path_str(&parts)],
        ]
        .concat(),
    );
    let bytes = |p: &Path| std::fs::read(p.join("checkpoint.safetensors")).unwrap();
    assert!(
        bytes(&straight) == bytes(&parts),
        "the resumed run's checkpoint differs from the uninterrupted run's"
    );
    let checkpoint = String::from_utf8_lossy(&bytes(&straight)).into_owned();
    assert!(
        checkpoint.contains("running_mean"),
        "batch norm's statistics are not saved"
    );

    // A resumption may not change the model.
    assert_refused(
        &[
            "train",
            "digits",
            "--epochs",
            "3",
            "--resume",
            "--out",
            path_str(&parts),
        ],
        &["--model"],
    );
}
