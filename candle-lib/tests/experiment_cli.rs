//! `candle experiment`: misuse is refused with a message that helps, and a
//! fast experiment runs end to end into a temporary folder.

mod common;
use common::{candle, fails_saying, ok, stdout};

#[test]
fn experiment_unknown_name_lists_the_known_ones() {
    fails_saying(
        candle(&["experiment", "no-such-thing"]),
        &["no-such-thing", "init-depth", "activations", "moons", "all"],
    );
}

#[test]
fn experiment_list_names_every_experiment_and_its_time() {
    let out = stdout(&ok(candle(&["experiment", "list"])));
    for name in [
        "moons",
        "graphs",
        "training-dashboard",
        "gemm-ladder",
        "init-depth",
        "init-width",
        "activations",
        "resnet-depth",
        "gpt-norm",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert!(
        out.contains("08-kv-cache"),
        "the timing figures are not mentioned:\n{out}"
    );
}

#[test]
fn experiment_out_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("figures");
    std::fs::write(&file, "not a folder").unwrap();
    fails_saying(
        candle(&[
            "experiment",
            "init-depth",
            "--quick",
            "--out",
            file.to_str().unwrap(),
        ]),
        &["--out", file.to_str().unwrap(), "is a file"],
    );
}

#[cfg(unix)]
#[test]
fn experiment_out_that_cannot_be_written_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // root may write anyway; then there is nothing to test.
    if std::fs::write(locked.join("probe"), b"").is_ok() {
        return;
    }
    fails_saying(
        candle(&[
            "experiment",
            "init-depth",
            "--quick",
            "--out",
            locked.to_str().unwrap(),
        ]),
        &["--out", "locked", "cannot"],
    );
}

#[test]
fn experiment_bad_options_are_refused() {
    fails_saying(candle(&["experiment"]), &["NAME"]);
    fails_saying(
        candle(&["experiment", "init-depth", "--quick=3"]),
        &["--quick"],
    );
    fails_saying(
        candle(&["experiment", "init-depth", "--size", "7"]),
        &["--size"],
    );
}

#[test]
fn experiment_quick_run_writes_figures_and_data_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = stdout(&ok(candle(&[
        "experiment",
        "activations",
        "--quick",
        "--out",
        dir.path().to_str().unwrap(),
    ])));
    assert!(out.contains("ratio per layer"), "{out}");
    for stem in ["10-activations", "10-activation-std"] {
        for ext in ["svg", "png", "csv"] {
            let path = dir.path().join(format!("{stem}.{ext}"));
            assert!(path.is_file(), "{} missing; output:\n{out}", path.display());
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
