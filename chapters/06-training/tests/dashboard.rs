//! Lesson: a dashboard draws whatever a run recorded. A NaN loss or an
//! infinite gradient norm is drawn as a gap in its line, a histogram that
//! cannot be drawn is left out with a note, and values near the largest
//! float neither hang the axis computations nor crash them.
//!
//! `cargo test -p chapter-06 dashboard` runs these.

mod dashboard {
    use chapter_06::dashboard::{histogram_problem, segments, write_dashboard, Dashboard};
    use chapter_06::metrics::{MetricsWriter, Record, METRICS_FILE};
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::mpsc;
    use std::time::Duration;

    fn train(step: u64, loss: f64, grad_norm: f64) -> Record {
        Record::Train {
            step,
            epoch: 1,
            loss,
            accuracy: 0.5,
            lr: 1e-3,
            grad_norm,
            examples_per_sec: 100.0,
            param_norms: BTreeMap::from([("w".to_string(), loss)]),
            grad_norms: BTreeMap::from([("w".to_string(), grad_norm)]),
        }
    }

    fn eval(epoch: u64, loss: f64, accuracy: f64) -> Record {
        Record::Eval {
            step: 10 * epoch,
            epoch,
            train_loss: loss,
            train_accuracy: accuracy,
            test_loss: loss,
            test_accuracy: accuracy,
            seconds: epoch as f64,
        }
    }

    fn histogram(epoch: u64, name: &str, edges: Vec<f64>, counts: Vec<u64>) -> Record {
        Record::Histogram {
            step: 10 * epoch,
            epoch,
            name: name.into(),
            edges,
            counts,
        }
    }

    fn write(dir: &Path, records: &[Record]) {
        let mut w = MetricsWriter::open(dir).unwrap();
        for r in records {
            w.write(r).unwrap();
        }
    }

    /// Draws the dashboard on another thread and gives up after two
    /// minutes: a hang is a failure, not a stuck test run.
    fn draw(dir: &Path) -> Dashboard {
        let (tx, rx) = mpsc::channel();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(write_dashboard(&dir).map_err(|e| e.to_string()));
        });
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the dashboard hangs (or panicked)")
            .unwrap()
    }

    #[test]
    fn dashboard_splits_lines_at_values_it_cannot_draw() {
        let pts = [
            (0.0, 1.0),
            (1.0, f64::NAN),
            (2.0, 3.0),
            (3.0, 4.0),
            (4.0, f64::INFINITY),
        ];
        let (pieces, left_out) = segments(&pts, false);
        assert_eq!(pieces, vec![vec![(0.0, 1.0)], vec![(2.0, 3.0), (3.0, 4.0)]]);
        assert_eq!(left_out, 2);
        // On a log axis, zero and negative values are gaps too.
        let (pieces, left_out) = segments(&[(0.0, 1.0), (1.0, 0.0), (2.0, -1.0), (3.0, 2.0)], true);
        assert_eq!((pieces.len(), left_out), (2, 2));
        assert_eq!(segments(&[(0.0, f64::NAN)], false), (vec![], 1));
    }

    // ANCHOR: nan_gaps
    #[test]
    fn dashboard_draws_nan_and_infinities_as_gaps_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                train(1, 2.0, 1.0),
                train(2, f64::NAN, f64::INFINITY),
                train(3, 1.0, f64::NEG_INFINITY),
                train(4, 0.5, 0.5),
                eval(1, f64::NAN, 0.5),
                eval(2, 0.4, f64::NAN),
            ],
        );
        // An older file with `null` for NaN, and a torn last line.
        let mut bytes = std::fs::read(dir.path().join(METRICS_FILE)).unwrap();
        bytes.extend_from_slice(
            b"{\"kind\":\"train\",\"step\":5,\"epoch\":1,\"loss\":null,\"accuracy\":null,\"lr\":0.001,\
              \"grad_norm\":null,\"examples_per_sec\":1.0,\"param_norms\":{},\"grad_norms\":{}}\n\
              {\"kind\":\"tr",
        );
        std::fs::write(dir.path().join(METRICS_FILE), bytes).unwrap();
        let out = draw(dir.path());
        assert!(out.files.iter().all(|f| f.exists()));
        assert!(out.files.iter().any(|f| f.ends_with("index.html")));
        let notes = out.notes.join("\n");
        assert!(
            notes.contains("values of `train (batch)` are NaN"),
            "{notes}"
        );
        assert!(notes.contains("drawn as gaps"), "{notes}");
        assert!(
            notes.contains(&format!("{}:8", METRICS_FILE)),
            "torn line: {notes}"
        );
    }
    // ANCHOR_END: nan_gaps

    #[test]
    fn dashboard_leaves_out_a_histogram_it_cannot_draw_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let good = || (vec![0.0, 1.0, 2.0], vec![3, 4]);
        write(
            dir.path(),
            &[
                train(1, 1.0, 1.0),
                histogram(1, "empty edges", vec![], vec![]),
                histogram(1, "no bins", vec![0.0], vec![]),
                histogram(1, "zero counts", vec![0.0, 1.0], vec![0]),
                histogram(1, "short edges", vec![0.0, 1.0], vec![1, 2]),
                histogram(1, "nan edge", vec![0.0, f64::NAN], vec![1]),
                histogram(1, "infinite edge", vec![0.0, f64::INFINITY], vec![1]),
                histogram(1, "backwards", vec![1.0, 0.0], vec![1]),
                histogram(1, "good", good().0, good().1),
                histogram(2, "good", good().0, good().1),
            ],
        );
        let out = draw(dir.path());
        assert!(out.files.iter().any(|f| f.ends_with("activations.png")));
        for name in [
            "empty edges",
            "no bins",
            "zero counts",
            "short edges",
            "nan edge",
            "infinite edge",
            "backwards",
        ] {
            assert!(
                out.notes
                    .iter()
                    .any(|n| n.contains(&format!("histogram `{name}`"))),
                "{name}: {:?}",
                out.notes
            );
        }
        assert!(!out.notes.iter().any(|n| n.contains("`good`")));
        assert_eq!(
            histogram_problem(&[0.0, 1.0], &[0]).unwrap(),
            "every count is zero"
        );
        // Only broken histograms: no activations figure, still a dashboard.
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[train(1, 1.0, 1.0), histogram(1, "h", vec![], vec![])],
        );
        let out = draw(dir.path());
        assert!(!out.files.iter().any(|f| f.ends_with("activations.png")));
    }

    // ANCHOR: huge
    #[test]
    fn dashboard_values_near_the_largest_float_do_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let big = f64::MAX;
        write(
            dir.path(),
            &[
                train(1, big, big),
                train(2, -big, 1e300),
                train(3, 1e-300, f64::MIN_POSITIVE),
                train(4, 1e20, 1e20),
                train(5, 1e20 * (1.0 + 1e-15), 5e-324),
                eval(1, big, 0.5),
                eval(2, 1e300, 0.5),
                histogram(1, "huge", vec![-big, 0.0, big], vec![1, 1]),
                histogram(1, "wide", vec![-1e300, 0.0, 1e300], vec![1, 1]),
                histogram(2, "wide", vec![1e299, 1e299 * (1.0 + 1e-15)], vec![2]),
                // A few floats wide, alone in its panel.
                histogram(1, "narrow", vec![1e299, 1e299 * (1.0 + 1e-15)], vec![2]),
                histogram(1, "narrow small", vec![1.0, 1.0 + 1e-15], vec![2]),
            ],
        );
        let out = draw(dir.path());
        assert!(out.files.iter().any(|f| f.ends_with("loss.png")));
        assert!(
            out.notes.iter().any(|n| n.contains("histogram `huge`")),
            "{:?}",
            out.notes
        );
    }
    // ANCHOR_END: huge

    #[test]
    fn dashboard_of_a_run_without_metrics_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_dashboard(dir.path()).unwrap_err().to_string();
        assert!(err.contains(METRICS_FILE), "{err}");
        std::fs::write(dir.path().join(METRICS_FILE), "").unwrap();
        let err = write_dashboard(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no metrics recorded yet"), "{err}");
    }
}
