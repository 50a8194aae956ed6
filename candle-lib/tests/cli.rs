//! The `candle` command used the wrong way: each misuse ends with a clear
//! error and a non-zero exit status, never a hang, a crash, a silently
//! overwritten run or an exit status 0 for work not done.
//!
//! `cargo test -p candle-lib --test cli` runs these (they run the `candle`
//! program itself, as a user would).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository's data folder.
fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_candle"));
    cmd.args(args)
        .env("CANDLE_DATA", data_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `candle args...`, failing the test if it takes more than `limit`
/// (a hang is a failure, not a stuck test run).
fn candle_within(args: &[&str], limit: Duration) -> Output {
    let mut child = command(args).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`candle {}` still ran after {limit:?}; stderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn candle(args: &[&str]) -> Output {
    candle_within(args, Duration::from_secs(300))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `candle args` failed and said each of `expected`.
fn assert_refused(args: &[&str], expected: &[&str]) -> String {
    let out = candle_within(args, Duration::from_secs(60));
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "`candle {}` succeeded; stderr: {err}",
        args.join(" ")
    );
    for e in expected {
        assert!(
            err.contains(e),
            "`candle {}`: `{e}` missing from: {err}",
            args.join(" ")
        );
    }
    err
}

fn assert_ok(args: &[&str]) -> String {
    let out = candle(args);
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "`candle {}` failed: {err}",
        args.join(" ")
    );
    err
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ANCHOR: bad_numbers
#[test]
fn train_refuses_every_bad_number_naming_the_option_the_value_and_the_range() {
    let cases: &[(&str, &str, &str)] = &[
        ("--lr", "nan", "(0, 10]"),
        ("--lr", "inf", "(0, 10]"),
        ("--lr", "-inf", "(0, 10]"),
        ("--lr", "-0.001", "(0, 10]"),
        ("--lr", "0", "(0, 10]"),
        ("--lr", "1e300", "(0, 10]"),
        ("--weight-decay", "-1e-4", "[0, 10]"),
        ("--weight-decay", "nan", "[0, 10]"),
        ("--dropout", "nan", "[0, 1)"),
        ("--dropout", "-0.1", "[0, 1)"),
        ("--dropout", "1", "[0, 1)"),
        ("--clip-grad-norm", "-1", "(0, ∞]"),
        ("--clip-grad-norm", "0", "(0, ∞]"),
        ("--clip-grad-norm", "inf", "(0, ∞]"),
        ("--hidden", "0", "from 1 to 65536"),
        ("--hidden", "1000000000", "from 1 to 65536"),
        ("--hidden", "64,0", "from 1 to 65536"),
        ("--epochs", "0", "from 1 to 100000"),
        ("--epochs", "-1", "from 1 to 100000"),
        ("--batch-size", "0", "from 1 to 65536"),
        ("--batch-size", "1000000000000", "from 1 to 65536"),
        ("--target", "2", "(0, 1]"),
        ("--target", "0", "(0, 1]"),
        ("--target", "nan", "(0, 1]"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    for (option, value, range) in cases {
        let value_arg = format!("{option}={value}");
        let err = assert_refused(
            &["train", "digits", &value_arg, "--out", path_str(&out)],
            // A list option names the element it refuses.
            &[
                option,
                &format!("'{}'", value.rsplit(',').next().unwrap()),
                range,
            ],
        );
        assert!(err.contains("invalid value"), "{err}");
    }
    assert!(!out.exists(), "a refused command created the run folder");
}
// ANCHOR_END: bad_numbers

#[test]
fn train_refuses_a_model_too_large_before_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let start = Instant::now();
    assert_refused(
        &[
            "train",
            "mnist",
            "--hidden",
            "65536,65536,65536",
            "--out",
            path_str(&out),
        ],
        &[
            "--hidden 65536,65536,65536",
            "parameters; the limit is 50000000",
        ],
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(!out.exists());
}

// ANCHOR: run_folder
#[test]
fn train_an_existing_run_folder_needs_resume_or_force_and_force_says_what_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = [
        "train",
        "digits",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        path_str(&out),
    ];
    assert_ok(&run);
    let metrics = std::fs::read(out.join("metrics.jsonl")).unwrap();
    assert_refused(
        &run,
        &[
            "already holds a run",
            "--resume",
            "--force",
            "checkpoint.safetensors (after epoch 2)",
        ],
    );
    assert_eq!(std::fs::read(out.join("metrics.jsonl")).unwrap(), metrics);

    let forced: Vec<&str> = run.iter().copied().chain(["--force"]).collect();
    let err = assert_ok(&forced);
    for file in [
        "checkpoint.safetensors (after epoch 2)",
        "metrics.jsonl (",
        "config.json",
    ] {
        assert!(
            err.contains(&format!(
                "replacing the earlier run (--force): removing {file}"
            )),
            "{err}"
        );
    }
    assert!(!out.join("run.lock").exists());
}
// ANCHOR_END: run_folder

#[test]
fn train_resume_of_a_finished_run_exits_non_zero_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = [
        "train",
        "digits",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        path_str(&out),
    ];
    assert_ok(&run);
    let resume: Vec<&str> = run.iter().copied().chain(["--resume"]).collect();
    assert_refused(&resume, &["run already finished (2 of 2 epochs)"]);
    // With more epochs (forced), it continues.
    let longer = [
        "train",
        "digits",
        "--epochs",
        "3",
        "--quiet",
        "--out",
        path_str(&out),
        "--resume",
        "--force",
    ];
    let err = assert_ok(&longer);
    assert!(err.contains("--epochs: 2 in the run, 3 now"), "{err}");
}

// ANCHOR: resume_mismatch
#[test]
fn train_resume_with_other_settings_lists_each_difference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = path_str(&out);
    assert_ok(&["train", "digits", "--epochs", "2", "--quiet", "--out", o]);
    let base = ["train", "digits", "--quiet", "--out", o, "--resume"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    assert_refused(
        &with(&["--epochs", "3", "--lr", "0.01", "--dropout", "0.1"]),
        &[
            "--epochs: 2 in the run, 3 now (may change with --force)",
            "--lr: 0.03 in the run, 0.01 now (may change with --force)",
            "--dropout: 0 in the run, 0.1 now (may change with --force)",
        ],
    );
    for (args, expected) in [
        (
            &["--epochs", "3", "--seed", "1", "--force"][..],
            "--seed: 0 in the run, 1 now (cannot change",
        ),
        (
            &["--epochs", "3", "--hidden", "32", "--force"][..],
            "--hidden: 64,64,64,64 in the run, 32 now (cannot change",
        ),
        (
            &["--epochs", "3", "--batch-size", "64", "--force"][..],
            "--batch-size: 128 in the run, 64 now (cannot change",
        ),
        (
            &["--epochs", "3", "--optimizer", "sgd", "--force"][..],
            "--optimizer: adamw in the run, sgd now (cannot change",
        ),
    ] {
        assert_refused(&with(args), &[expected, "--force does not apply"]);
    }
    let err = assert_ok(&with(&["--epochs", "3", "--lr", "0.01", "--force"]));
    assert!(err.contains("resuming with changed settings"), "{err}");
}
// ANCHOR_END: resume_mismatch

// ANCHOR: two_writers
#[test]
fn train_two_processes_writing_one_run_folder_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = [
        "train",
        "digits",
        "--epochs",
        "40",
        "--quiet",
        "--out",
        path_str(&out),
    ];
    let children: Vec<Child> = (0..2).map(|_| command(&args).spawn().unwrap()).collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ok = outputs.iter().filter(|o| o.status.success()).count();
    let errs: Vec<String> = outputs.iter().map(stderr).collect();
    assert_eq!(ok, 1, "{errs:?}");
    let refused = outputs.iter().find(|o| !o.status.success()).unwrap();
    let err = stderr(refused);
    assert!(
        err.contains("in use by process") || err.contains("already holds a run"),
        "{err}"
    );
    // One whole run in the folder: each epoch evaluated once.
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let evals = metrics
        .lines()
        .filter(|l| l.contains("\"kind\":\"eval\""))
        .count();
    assert_eq!(evals, 40);
    assert!(!out.join("run.lock").exists());
}
// ANCHOR_END: two_writers

#[test]
fn train_lock_of_a_killed_process_is_taken_over_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = path_str(&out);
    let mut child = command(&[
        "train", "digits", "--epochs", "100000", "--quiet", "--out", o,
    ])
    .spawn()
    .unwrap();
    let lock = out.join("run.lock");
    let start = Instant::now();
    while !lock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no lock file appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // While it runs, a second writer is refused.
    assert_refused(
        &[
            "train", "digits", "--epochs", "2", "--quiet", "--out", o, "--force",
        ],
        &[&format!("in use by process {}", child.id())],
    );
    child.kill().unwrap(); // SIGKILL: the lock stays behind
    child.wait().unwrap();
    assert!(lock.exists());
    let err = assert_ok(&[
        "train", "digits", "--epochs", "2", "--quiet", "--out", o, "--force",
    ]);
    assert!(
        err.contains("is no longer running") && err.contains("taking the lock over"),
        "{err}"
    );
    assert!(!lock.exists());
}

#[test]
fn train_identical_runs_write_byte_identical_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        assert_ok(&[
            "train",
            "digits",
            "--epochs",
            "3",
            "--dropout",
            "0.2",
            "--quiet",
            "--out",
            path_str(out),
        ]);
    }
    let bytes = |p: &Path| std::fs::read(p.join("checkpoint.safetensors")).unwrap();
    assert!(
        bytes(&a) == bytes(&b),
        "the checkpoints of two identical runs differ"
    );
    let config = |p: &Path| std::fs::read(p.join("config.json")).unwrap();
    assert!(config(&a) == config(&b));
}

#[test]
fn train_resumed_run_continues_metrics_and_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, parts) = (dir.path().join("a"), dir.path().join("b"));
    assert_ok(&[
        "train",
        "digits",
        "--epochs",
        "4",
        "--quiet",
        "--out",
        path_str(&straight),
    ]);
    assert_ok(&[
        "train",
        "digits",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        path_str(&parts),
    ]);
    assert_ok(&[
        "train",
        "digits",
        "--epochs",
        "4",
        "--quiet",
        "--out",
        path_str(&parts),
        "--resume",
        "--force",
    ]);
    let evals = |p: &Path| -> Vec<(u64, f64)> {
        std::fs::read_to_string(p.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter_map(eval_epoch_seconds)
            .collect()
    };
    let (a, b) = (evals(&straight), evals(&parts));
    assert_eq!(a.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(b.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(
        b.windows(2).all(|w| w[1].1 > w[0].1),
        "the clock restarted: {b:?}"
    );
}

/// `(epoch, seconds)` of an eval line.
fn eval_epoch_seconds(line: &str) -> Option<(u64, f64)> {
    if !line.contains("\"kind\":\"eval\"") {
        return None;
    }
    let field = |name: &str| -> f64 {
        let at = line.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
        let end = line[at..].find([',', '}']).unwrap();
        line[at..at + end].parse().unwrap()
    };
    Some((field("epoch") as u64, field("seconds")))
}

#[test]
fn train_digits_pixels_are_scaled_to_0_1_once() {
    use candle::commands::train::{load_data, DatasetName};
    let (train, test) = load_data(DatasetName::Digits, &data_dir(), 0).unwrap();
    for set in [train, test] {
        let (mut x, mut y) = (vec![], vec![]);
        let all: Vec<usize> = (0..set.len()).collect();
        set.get_batch(&all, &mut x, &mut y).unwrap();
        let max = x.iter().copied().fold(0.0f32, f32::max);
        assert_eq!(max, 1.0, "ink 16 of 16 must be 1.0");
        assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }
}

#[test]
fn train_an_empty_data_set_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("digits")).unwrap();
    let file = dir.path().join("digits").join("digits.csv.gz");
    std::fs::write(&file, "").unwrap();
    let out = dir.path().join("run");
    assert_refused(
        &[
            "train",
            "digits",
            "--data-dir",
            path_str(dir.path()),
            "--out",
            path_str(&out),
        ],
        &[path_str(&file), "holds no examples"],
    );
}

#[test]
fn train_a_folder_where_the_mnist_file_should_be_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("mnist").join("train-images-idx3-ubyte.gz");
    std::fs::create_dir_all(&bad).unwrap();
    assert_refused(
        &[
            "train",
            "mnist",
            "--data-dir",
            path_str(dir.path()),
            "--out",
            path_str(&dir.path().join("run")),
        ],
        &[path_str(&bad), "is a directory, expected the file"],
    );
}

#[test]
fn train_out_that_is_a_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    assert_refused(
        &["train", "digits", "--epochs", "1", "--out", path_str(&file)],
        &[path_str(&file), "is not a folder"],
    );
}

#[test]
fn train_on_a_device_that_cannot_be_opened_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    assert_refused(
        &[
            "train",
            "digits",
            "--device",
            "tpu:3",
            "--out",
            path_str(&out),
        ],
        &["unknown device `tpu:3`", "known devices: cpu"],
    );
    assert!(!out.exists(), "no run folder is made for a refused device");
}

#[test]
fn train_on_cuda_without_a_gpu_is_refused_and_on_the_emulator_trains() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    if std::env::var("CANDLE_DEVICE").as_deref() != Ok("cuda") && !chapter_07_gpu_present() {
        assert_refused(
            &[
                "train",
                "digits",
                "--device",
                "cuda",
                "--out",
                path_str(&out),
            ],
            &["cuda:0"],
        );
        assert!(!out.exists(), "no run folder is made for a refused device");
    }
    // The emulator runs the same kernels on the CPU: one epoch of digits.
    let err = assert_ok(&[
        "train",
        "digits",
        "--device",
        "cuda-emu",
        "--epochs",
        "1",
        "--out",
        path_str(&out),
    ]);
    assert!(err.contains("on cuda-emu"), "{err}");
}

/// Whether this machine has an NVIDIA driver library at all.
fn chapter_07_gpu_present() -> bool {
    [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib64/libcuda.so.1",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
}

// ANCHOR: scalar_demo
#[test]
fn scalar_demo_refuses_bad_numbers_at_once_nan_noise_included() {
    let dir = tempfile::tempdir().unwrap();
    let out = path_str(dir.path());
    for (option, value, range) in [
        ("--noise", "nan", "[0, 10]"),
        ("--noise", "inf", "[0, 10]"),
        ("--noise", "-0.1", "[0, 10]"),
        ("--noise", "1e300", "[0, 10]"),
        ("--points", "0", "from 2 to 10000"),
        ("--points", "1", "from 2 to 10000"),
        ("--points", "100000000", "from 2 to 10000"),
        ("--hidden", "1000000000", "from 1 to 1024"),
        ("--hidden", "16,0", "from 1 to 1024"),
        ("--steps", "0", "from 1 to 1000000"),
        ("--lr-start", "nan", "(0, 10]"),
        ("--lr-end", "-1", "[0, 10]"),
        ("--alpha", "inf", "[0, 10]"),
        ("--print-every", "0", "from 1 to 1000000"),
        ("--sweep", "100000000", "from 0 to 10000"),
    ] {
        let arg = format!("{option}={value}");
        let element = format!("'{}'", value.rsplit(',').next().unwrap());
        assert_refused(
            &["scalar-demo", &arg, "--out", out],
            &[option, &element, range],
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}
// ANCHOR_END: scalar_demo

#[test]
fn scalar_demo_refuses_a_graph_too_large_for_memory() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(
        &[
            "scalar-demo",
            "--points",
            "10000",
            "--hidden",
            "1024,1024",
            "--out",
            path_str(dir.path()),
        ],
        &["make a graph of more than 5000000 nodes per step"],
    );
}

#[test]
fn scalar_demo_out_that_cannot_be_written_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    assert_refused(
        &["scalar-demo", "--steps", "1", "--out", path_str(&file)],
        &[path_str(&file), "is a file, expected a folder"],
    );
    let below = file.join("figures");
    assert_refused(
        &["scalar-demo", "--steps", "1", "--out", path_str(&below)],
        &[path_str(&below), "cannot create the folder"],
    );
}

#[test]
fn scalar_demo_with_good_options_writes_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_ok(&[
        "scalar-demo",
        "--steps",
        "3",
        "--points",
        "20",
        "--out",
        path_str(dir.path()),
    ]);
    let _ = out;
    assert!(dir.path().join("01-moons-boundary.png").exists());
}

#[test]
fn data_download_into_a_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    assert_refused(
        &[
            "data",
            "download",
            "mnist",
            "--dir",
            path_str(&file),
            "--url",
            "http://127.0.0.1:9",
        ],
        &[path_str(&file), "is a file, expected the folder"],
    );
    // A folder that cannot be created is named too.
    let below = file.join("mnist");
    assert_refused(
        &[
            "data",
            "download",
            "mnist",
            "--dir",
            path_str(&below),
            "--url",
            "http://127.0.0.1:9",
        ],
        &[path_str(&below)],
    );
}

#[test]
fn dashboard_of_a_run_with_nan_metrics_draws_and_notes_the_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let line = |step: u64, loss: &str| {
        format!(
            "{{\"kind\":\"train\",\"step\":{step},\"epoch\":1,\"loss\":{loss},\"accuracy\":0.5,\"lr\":0.001,\
             \"grad_norm\":1.0,\"examples_per_sec\":1.0,\"param_norms\":{{}},\"grad_norms\":{{}}}}\n"
        )
    };
    let text = [
        line(1, "1.0"),
        line(2, "null"),
        line(3, "\"NaN\""),
        line(4, "\"inf\""),
        line(5, "0.5"),
    ]
    .concat();
    std::fs::write(dir.path().join("metrics.jsonl"), text).unwrap();
    let out = candle_within(
        &["dashboard", path_str(dir.path())],
        Duration::from_secs(120),
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("drawn as gaps"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("index.html"));
    // No metrics at all is an error naming the file.
    let empty = tempfile::tempdir().unwrap();
    assert_refused(&["dashboard", path_str(empty.path())], &["metrics.jsonl"]);
}
