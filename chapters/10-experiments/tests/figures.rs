//! The figures: deterministic, written atomically, legible.

use chapter_10::figure::{save_figure, tick_label, LineFigure, Panel, Series, BLUE, FULL_WIDTH};
use chapter_10::{run, Progress, Size, EXPERIMENTS};
use std::path::Path;

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

#[test]
fn determinism_same_seed_same_csv_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&a, &b] {
        run(
            "init-depth",
            dir.path(),
            Size::Quick,
            &mut Progress::silent(),
        )
        .unwrap();
    }
    for stem in ["10-grad-norm-depth", "10-loss-by-depth"] {
        let read =
            |d: &tempfile::TempDir| std::fs::read(d.path().join(format!("{stem}.csv"))).unwrap();
        assert_eq!(read(&a), read(&b), "{stem}.csv differs between two runs");
    }
}

#[test]
fn every_experiment_writes_svg_png_and_csv_quick() {
    let dir = tempfile::tempdir().unwrap();
    for e in EXPERIMENTS.iter().filter(|e| e.name != "resnet-depth") {
        let mut calls = 0;
        let outcome = run(
            e.name,
            dir.path(),
            Size::Quick,
            &mut Progress::new(|_, _, _| calls += 1),
        )
        .unwrap();
        assert!(calls > 1, "{}: no progress reported", e.name);
        for stem in e.figures {
            for ext in ["svg", "png", "csv"] {
                let path = dir.path().join(format!("{stem}.{ext}"));
                assert!(
                    path.is_file(),
                    "{} did not write {}",
                    e.name,
                    path.display()
                );
                assert!(
                    outcome.files.contains(&path),
                    "{} not reported",
                    path.display()
                );
            }
        }
    }
    assert!(leftovers(dir.path()).is_empty());
}

fn small_figure() -> LineFigure {
    let mut panel = Panel::new("title", "x (units)", "y (units)");
    panel
        .series
        .push(Series::line("a line", BLUE, vec![(0.0, 1.0), (1.0, 2.0)]));
    LineFigure::new(vec![panel], 1)
}

// ANCHOR: atomic_test
/// A figure that fails halfway (its SVG cannot be renamed into place,
/// because a folder stands there) leaves the old PNG untouched and no
/// temporary file behind.
#[test]
fn atomic_writes_a_failed_figure_leaves_old_files_whole() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fig.png"), b"the old figure").unwrap();
    std::fs::create_dir(dir.path().join("fig.svg")).unwrap();
    std::fs::write(dir.path().join("fig.svg/keep"), b"x").unwrap();
    let err = save_figure(dir.path(), "fig", &small_figure()).unwrap_err();
    assert!(err.to_string().contains("fig.svg"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("fig.png")).unwrap(),
        b"the old figure"
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}
// ANCHOR_END: atomic_test

#[test]
fn atomic_writes_into_a_missing_folder_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/folder");
    let err = save_figure(&missing, "fig", &small_figure()).unwrap_err();
    assert!(err.to_string().contains("no/such/folder"), "{err}");
}

#[test]
fn figures_are_full_width_with_the_legend_below_the_panels() {
    let fig = small_figure();
    let (w, h) = fig.size();
    assert_eq!(w, FULL_WIDTH);
    assert!(h > fig.row_height, "no room for the legend strip: {h}");
}

#[test]
fn tick_labels_are_short() {
    assert_eq!(tick_label(0.0), "0");
    assert_eq!(tick_label(1e-6), "1e-6");
    assert_eq!(tick_label(0.25), "0.25");
    assert_eq!(tick_label(2048.0), "2048");
    assert_eq!(tick_label(3e7), "3.0e7");
}
