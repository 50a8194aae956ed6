//! Lesson: metrics that survive a crash and a NaN. A line of
//! `metrics.jsonl` is written with one write, so a crash can only tear the
//! last line, which readers skip with a warning; a damaged line anywhere
//! else is an error naming the file and the line; and NaN and infinities
//! are written so that they read back as what they were.
//!
//! `cargo test -p chapter-06 metrics` runs these.

mod metrics {
    use chapter_06::metrics::{
        histogram, read_metrics, read_metrics_file, MetricsWriter, Record, METRICS_FILE,
    };
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    fn train_record(step: u64, loss: f64, grad_norm: f64) -> Record {
        Record::Train {
            step,
            epoch: 1,
            loss,
            accuracy: 0.5,
            lr: 1e-3,
            grad_norm,
            examples_per_sec: 1000.0,
            param_norms: BTreeMap::from([("w".to_string(), f64::NAN)]),
            grad_norms: BTreeMap::from([("w".to_string(), f64::NEG_INFINITY)]),
        }
    }

    /// Equality that counts NaN equal to NaN (bit for bit).
    fn same(a: &Record, b: &Record) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    // ANCHOR: nan
    #[test]
    fn metrics_nan_and_infinities_survive_writing_and_reading() {
        let dir = tempfile::tempdir().unwrap();
        let records = [
            train_record(1, f64::NAN, f64::INFINITY),
            train_record(2, f64::NEG_INFINITY, 0.5),
            Record::Histogram {
                step: 2,
                epoch: 1,
                name: "h".into(),
                edges: vec![f64::NEG_INFINITY, 0.0, f64::NAN],
                counts: vec![1, 2],
            },
        ];
        let mut w = MetricsWriter::open(dir.path()).unwrap();
        for r in &records {
            w.write(r).unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert!(text.contains(r#""loss":"NaN""#), "{text}");
        assert!(text.contains(r#""grad_norm":"inf""#), "{text}");
        assert!(text.contains(r#""w":"-inf""#), "{text}");
        assert!(!text.contains("null"), "{text}");
        let back = read_metrics(dir.path()).unwrap();
        assert_eq!(back.len(), records.len());
        for (a, b) in back.iter().zip(&records) {
            assert!(same(a, b), "{a:?} != {b:?}");
        }
    }
    // ANCHOR_END: nan

    #[test]
    fn metrics_null_written_by_older_versions_reads_as_nan() {
        let dir = tempfile::tempdir().unwrap();
        let line = r#"{"kind":"eval","step":10,"epoch":1,"train_loss":null,"train_accuracy":0.5,"test_loss":null,"test_accuracy":0.25,"seconds":1.5}"#;
        std::fs::write(dir.path().join(METRICS_FILE), format!("{line}\n")).unwrap();
        let back = read_metrics(dir.path()).unwrap();
        match &back[..] {
            [Record::Eval {
                train_loss,
                test_loss,
                test_accuracy,
                ..
            }] => {
                assert!(train_loss.is_nan() && test_loss.is_nan());
                assert_eq!(*test_accuracy, 0.25);
            }
            other => panic!("{other:?}"),
        }
    }

    /// A writer that keeps every `write` call apart.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // ANCHOR: one_write
    #[test]
    fn metrics_each_line_goes_out_in_one_write_with_its_newline() {
        let recorder = Recorder::default();
        let mut w = MetricsWriter::from_writer("memory", recorder.clone());
        for step in 0..3 {
            w.write(&train_record(step, 0.1, 0.2)).unwrap();
        }
        let writes = recorder.0.lock().unwrap();
        assert_eq!(writes.len(), 3, "one write per record");
        for bytes in writes.iter() {
            assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
            assert!(bytes.ends_with(b"\n"));
            serde_json::from_slice::<Record>(bytes).unwrap();
        }
    }
    // ANCHOR_END: one_write

    fn write_lines(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
        let path = dir.join(METRICS_FILE);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn line(step: u64) -> String {
        serde_json::to_string(&train_record(step, 0.5, 1.0))
            .unwrap()
            .replace("\"NaN\"", "1.0")
    }

    // ANCHOR: torn
    #[test]
    fn metrics_torn_last_line_is_skipped_with_a_warning_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (line(1), line(2), line(3));
        // Cut in the middle of line 3 (no newline, does not parse) ...
        let path = write_lines(dir.path(), &format!("{a}\n{b}\n{}", &c[..c.len() / 2]));
        let read = read_metrics_file(&path).unwrap();
        assert_eq!(read.lines.len(), 2);
        assert_eq!(read.torn_last_line.as_ref().unwrap().0, 3);
        let warning = read.warning().unwrap();
        assert!(
            warning.contains(&format!("{}:3", path.display())),
            "{warning}"
        );
        // ... or just before its newline: it parses, but was not finished.
        let path = write_lines(dir.path(), &format!("{a}\n{b}\n{c}"));
        let read = read_metrics_file(&path).unwrap();
        assert_eq!((read.lines.len(), read.torn_last_line.unwrap().0), (2, 3));
        // A last line with its newline that does not parse: torn too.
        let path = write_lines(dir.path(), &format!("{a}\n{b}\n{{\"kind\":\"tr\n"));
        let read = read_metrics_file(&path).unwrap();
        assert_eq!((read.lines.len(), read.torn_last_line.unwrap().0), (2, 3));
        // A whole file has no warning.
        let path = write_lines(dir.path(), &format!("{a}\n{b}\n{c}\n\n"));
        let read = read_metrics_file(&path).unwrap();
        assert_eq!((read.lines.len(), read.warning()), (3, None));
    }

    #[test]
    fn metrics_corrupt_line_in_the_middle_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let (a, c) = (line(1), line(3));
        for bad in [
            "{\"kind\":\"train\",",
            "\u{0}\u{0}\u{0}",
            "[1,2]",
            "{\"kind\":\"eval\"}",
        ] {
            let path = write_lines(dir.path(), &format!("{a}\n{bad}\n{c}\n"));
            let err = read_metrics_file(&path).unwrap_err();
            assert!(err.contains(&format!("{}:2:", path.display())), "{err}");
        }
        // Bytes that are not UTF-8 are damage too, not a panic.
        let mut bytes = format!("{a}\n").into_bytes();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        bytes.extend_from_slice(format!("{c}\n").as_bytes());
        let path = dir.path().join(METRICS_FILE);
        std::fs::write(&path, bytes).unwrap();
        let err = read_metrics_file(&path).unwrap_err();
        assert!(err.contains(":2:"), "{err}");
    }
    // ANCHOR_END: torn

    #[test]
    fn metrics_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_metrics(dir.path()).unwrap_err();
        assert!(err.contains(METRICS_FILE), "{err}");
    }

    #[test]
    fn metrics_histogram_edges_stay_finite_for_values_near_the_largest_float() {
        for values in [
            vec![f64::MAX, -f64::MAX, 0.0],
            vec![f64::MAX; 3],
            vec![-f64::MAX, 1.0],
            vec![1e300, 1e300],
            vec![0.0, 0.0, f64::NAN, f64::INFINITY],
        ] {
            let (edges, counts) = histogram(&values, 10);
            assert_eq!(edges.len(), 11, "{values:?}");
            assert!(edges.iter().all(|e| e.is_finite()), "{values:?}: {edges:?}");
            assert!(
                edges.windows(2).all(|w| w[0] <= w[1]),
                "{values:?}: {edges:?}"
            );
            let finite = values.iter().filter(|v| v.is_finite()).count() as u64;
            assert_eq!(counts.iter().sum::<u64>(), finite, "{values:?}");
        }
        assert_eq!(histogram(&[f64::NAN], 10), (vec![], vec![]));
    }
}
