//! Lesson: checkpoints. A checkpoint keeps every field of a run's state
//! exactly; a damaged file is an error that names the file, never a panic
//! or a silently wrong state; and because it is written atomically, killing
//! the process in the middle of a save leaves the previous checkpoint whole.
//!
//! `cargo test -p chapter-06 checkpoint` runs these.

mod checkpoint {
    use chapter_02::{DType, Device, Generator};
    use chapter_03::RawTensor;
    use chapter_06::{Checkpoint, OptimizerState};
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    use std::collections::{BTreeMap, HashMap};
    use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    /// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
    fn dev() -> chapter_02::Device {
        chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Checkpoint number `index`, with a model tensor of `elems` values:
    /// every field depends on `index`, so a loaded checkpoint tells which
    /// save it came from, and whether it is that save, whole.
    fn sample(index: u64, elems: usize) -> Checkpoint {
        let dev = dev();
        let k = index as f32;
        let mut model = BTreeMap::new();
        let weight: Vec<f32> = (0..elems).map(|i| (i % 1000) as f32 * 1e-3 + k).collect();
        model.insert(
            "layers.0.weight".to_string(),
            RawTensor::from_vec(weight, elems, &dev).unwrap(),
        );
        let bias = vec![0.1 + 0.2, f64::MIN_POSITIVE, -0.0, 1e300 * index as f64];
        model.insert(
            "layers.0.bias".to_string(),
            RawTensor::from_vec(bias, (2, 2), &dev).unwrap(),
        );
        let ids = vec![i64::MIN, -1, 0, index as i64, i64::MAX];
        model.insert(
            "embedding.ids".to_string(),
            RawTensor::from_vec(ids, 5, &dev).unwrap(),
        );
        model.insert(
            "mask".to_string(),
            RawTensor::from_vec(vec![0u8, 1, 255], 3, &dev).unwrap(),
        );
        model.insert("scalar".to_string(), RawTensor::scalar(k, &dev).unwrap());

        let mut optimizer = OptimizerState::default();
        let m: Vec<f32> = (0..6).map(|i| i as f32 * 1e-3 - k).collect();
        optimizer.tensors.insert(
            "0.0.exp_avg".into(),
            RawTensor::from_vec(m, (2, 3), &dev).unwrap(),
        );
        optimizer.tensors.insert(
            "1.0.momentum_buffer".into(),
            RawTensor::from_vec(vec![k as f64; 2], 2, &dev).unwrap(),
        );
        optimizer
            .scalars
            .insert("0.lr".into(), 3e-4 / (1.0 + index as f64));
        optimizer
            .scalars
            .insert("0.0.step".into(), (index * 1000) as f64);
        optimizer.scalars.insert("0.beta1".into(), 0.1 + 0.7);

        let mut rng = Generator::new(index);
        for _ in 0..(index % 7) {
            rng.normal(0.0, 1.0);
        }
        let extra = BTreeMap::from([
            (
                "config".to_string(),
                format!("{{\"lr\": {}, \"index\": {index}}}", 0.1),
            ),
            (
                "note".to_string(),
                "unicode ✓, \"quotes\", \\ and\nnewlines".to_string(),
            ),
            ("empty".to_string(), String::new()),
        ]);
        Checkpoint {
            model,
            optimizer,
            scheduler_steps: index as usize * 10 + 3,
            rng: rng.state(),
            epoch: index,
            global_step: index * 100 + 7,
            extra,
        }
    }

    /// A tensor's dtype, shape and exact bits.
    fn fingerprint(t: &RawTensor) -> (DType, Vec<usize>, Vec<u64>) {
        // Every dtype's exact bits, through its little-endian bytes.
        let bits = chapter_02::with_dtype!(t.dtype(), T => {
            t.to_vec::<T>()
                .unwrap()
                .into_iter()
                .map(|v| {
                    let mut bytes = Vec::new();
                    chapter_02::WithDType::extend_le_bytes(v, &mut bytes);
                    bytes.resize(8, 0);
                    u64::from_le_bytes(bytes.try_into().unwrap())
                })
                .collect()
        });
        (t.dtype(), t.dims().to_vec(), bits)
    }

    fn fingerprints(
        m: &BTreeMap<String, RawTensor>,
    ) -> BTreeMap<String, (DType, Vec<usize>, Vec<u64>)> {
        m.iter().map(|(k, v)| (k.clone(), fingerprint(v))).collect()
    }

    /// Every field equal, tensors bit for bit (dtype and shape included).
    fn assert_same(a: &Checkpoint, b: &Checkpoint) {
        assert_eq!(fingerprints(&a.model), fingerprints(&b.model), "model");
        assert_eq!(
            fingerprints(&a.optimizer.tensors),
            fingerprints(&b.optimizer.tensors),
            "optimizer tensors"
        );
        let scalar_bits = |s: &BTreeMap<String, f64>| -> Vec<(String, u64)> {
            s.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect()
        };
        assert_eq!(
            scalar_bits(&a.optimizer.scalars),
            scalar_bits(&b.optimizer.scalars),
            "optimizer scalars"
        );
        assert_eq!(a.scheduler_steps, b.scheduler_steps, "scheduler_steps");
        assert_eq!(a.rng, b.rng, "rng");
        assert_eq!(a.epoch, b.epoch, "epoch");
        assert_eq!(a.global_step, b.global_step, "global_step");
        assert_eq!(a.extra, b.extra, "extra");
    }

    // ANCHOR: round_trip
    #[test]
    fn checkpoint_save_load_round_trips_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ckpt");
        for index in [0, 1, 5] {
            let saved = sample(index, 100);
            saved.save(&path).unwrap();
            let loaded = Checkpoint::load(&path).unwrap();
            assert_same(&loaded, &saved);
            // The generator continues where it was saved.
            let mut a = Generator::from_state(&saved.rng);
            let mut b = Generator::from_state(&loaded.rng);
            assert_eq!(a.normal(0.0, 1.0).to_bits(), b.normal(0.0, 1.0).to_bits());
        }
        // An empty state saves and loads too.
        let empty = Checkpoint {
            model: BTreeMap::new(),
            optimizer: OptimizerState::default(),
            scheduler_steps: 0,
            rng: Generator::new(0).state(),
            epoch: 0,
            global_step: 0,
            extra: BTreeMap::new(),
        };
        empty.save(&path).unwrap();
        assert_same(&Checkpoint::load(&path).unwrap(), &empty);
    }
    // ANCHOR_END: round_trip

    /// Loads `path`, which must fail with an error naming it, and must not panic.
    fn assert_rejected(path: &Path, what: &str) -> String {
        let result = catch_unwind(AssertUnwindSafe(|| Checkpoint::load(path)));
        let loaded = result.unwrap_or_else(|_| panic!("{what}: loading panicked"));
        let err = loaded
            .err()
            .unwrap_or_else(|| panic!("{what}: a damaged checkpoint loaded"))
            .to_string();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            err.contains(name),
            "{what}: the error does not name the file: {err}"
        );
        err
    }

    #[test]
    fn checkpoint_truncated_at_any_length_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.ckpt");
        sample(3, 8).save(&good).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let bad = dir.path().join("truncated.ckpt");
        std::fs::write(&bad, &bytes).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&bad).unwrap();
        for len in (0..bytes.len()).rev() {
            file.set_len(len as u64).unwrap();
            assert_rejected(&bad, &format!("cut at {len} of {} bytes", bytes.len()));
        }
        // Trailing garbage is damage too.
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"\0\0");
        std::fs::write(&bad, &longer).unwrap();
        assert_rejected(&bad, "two bytes appended");
    }

    #[test]
    fn checkpoint_with_any_byte_flipped_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.ckpt");
        sample(4, 8).save(&good).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let bad = dir.path().join("flipped.ckpt");
        std::fs::write(&bad, &bytes).unwrap();
        let mut file = std::fs::OpenOptions::new().write(true).open(&bad).unwrap();
        let mut put = |at: usize, byte: u8| {
            file.seek(SeekFrom::Start(at as u64)).unwrap();
            file.write_all(&[byte]).unwrap();
        };
        for (i, &byte) in bytes.iter().enumerate() {
            for mask in [0x01u8, 0x80, 0xff] {
                put(i, byte ^ mask);
                assert_rejected(&bad, &format!("byte {i} ^ {mask:#04x}"));
            }
            put(i, byte);
        }
        // Put back, the file loads again: the damage was the only problem.
        Checkpoint::load(&bad).unwrap();
    }

    /// A safetensors file's metadata.
    type Metadata = HashMap<String, String>;
    /// A change to a crafted file's metadata.
    type Edit = fn(&mut Metadata);
    /// An f64 tensor (name, shape) to add to a crafted file.
    type ExtraTensor = Option<(&'static str, Vec<usize>)>;

    /// A safetensors file as another tool would write it (no checksum), with
    /// our metadata changed by `edit`.
    fn crafted(path: &Path, edit: Edit, extra_tensor: Option<(&str, Vec<usize>)>) {
        let good = sample(2, 4);
        let mut meta = Metadata::from([
            ("format".to_string(), "candle-checkpoint-v1".to_string()),
            ("epoch".to_string(), "2".to_string()),
            ("global_step".to_string(), "207".to_string()),
            ("scheduler_steps".to_string(), "23".to_string()),
            (
                "rng".to_string(),
                good.rng
                    .to_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            ),
        ]);
        edit(&mut meta);
        let data = vec![0u8; 16];
        let mut views = vec![(
            "model.w".to_string(),
            TensorView::new(Dtype::F32, vec![4], &data).unwrap(),
        )];
        if let Some((name, shape)) = extra_tensor {
            let n: usize = shape.iter().product();
            views.push((
                name.to_string(),
                TensorView::new(Dtype::F64, shape, &data[..n * 8]).unwrap(),
            ));
        }
        std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
    }

    #[test]
    fn checkpoint_errors_say_which_field_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crafted.ckpt");
        // The crafted file itself is fine: the checks below fail for their reason only.
        crafted(&path, |_| {}, Some(("optim.scalar.0.lr", vec![])));
        let ok = Checkpoint::load(&path).unwrap();
        assert_eq!((ok.epoch, ok.global_step, ok.scheduler_steps), (2, 207, 23));

        let cases: [(&str, Edit, ExtraTensor); 6] = [
            ("has no `format`", |m| drop(m.remove("format")), None),
            (
                "not a candle-checkpoint-v1 file",
                |m| drop(m.insert("format".into(), "v0".into())),
                None,
            ),
            (
                "`epoch` is not a number",
                |m| drop(m.insert("epoch".into(), "two".into())),
                None,
            ),
            (
                "has no `scheduler_steps`",
                |m| drop(m.remove("scheduler_steps")),
                None,
            ),
            (
                "`rng` is not a generator state",
                |m| drop(m.insert("rng".into(), "abc".into())),
                None,
            ),
            (
                "optimizer state",
                |_| {},
                Some(("optim.scalar.0.lr", vec![2])),
            ),
        ];
        for (expected, edit, extra) in cases {
            crafted(&path, edit, extra);
            let err = assert_rejected(&path, expected);
            assert!(err.contains(expected), "{err}");
        }
        // A missing file, and a model state dict that is not a checkpoint.
        assert_rejected(&dir.path().join("absent.ckpt"), "a missing file");
        let weights = dir.path().join("weights.safetensors");
        chapter_05::save_safetensors(&weights, &sample(1, 4).model, None).unwrap();
        assert!(assert_rejected(&weights, "a plain state dict").contains("format"));
    }

    // ANCHOR: same_bytes
    #[test]
    fn checkpoint_the_same_state_always_saves_the_same_bytes() {
        // The facts are a JSON object with sorted keys inside the file, not
        // a hash map in the header, so the bytes do not depend on the
        // process or the order of insertion.
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.ckpt"), dir.path().join("b.ckpt"));
        sample(3, 100).save(&a).unwrap();
        sample(3, 100).save(&b).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        assert!(bytes == std::fs::read(&b).unwrap(), "two saves differ");
        let again = Checkpoint::load(&a).unwrap();
        again.save(&b).unwrap();
        assert!(
            bytes == std::fs::read(&b).unwrap(),
            "load then save changed the bytes"
        );
    }
    // ANCHOR_END: same_bytes

    #[test]
    fn checkpoint_facts_that_are_damaged_but_sealed_are_an_error_naming_the_file() {
        // A file with a valid checksum (written by chapter 05's saver) whose
        // facts tensor is wrong: the checksum cannot catch it, the reader must.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("facts.ckpt");
        let dev = Device::cpu();
        let good = serde_json::json!({"format": "candle-checkpoint-v2", "epoch": "1",
            "global_step": "2", "scheduler_steps": "2",
            "rng": sample(1, 1).rng.to_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()})
        .to_string();
        let cases: [(Vec<u8>, &str); 5] = [
            (good.clone().into_bytes(), ""),
            (b"{\"format\": 1}".to_vec(), "not a JSON object of strings"),
            (b"\xff\xfe".to_vec(), "not a JSON object of strings"),
            (
                good.replace("v2", "v9").into_bytes(),
                "not a candle-checkpoint-v2 file",
            ),
            (
                good.replace("\"epoch\"", "\"epoc\"").into_bytes(),
                "has no `epoch`",
            ),
        ];
        for (facts, expected) in cases {
            let n = facts.len();
            let mut dict = BTreeMap::new();
            dict.insert(
                "checkpoint.facts".to_string(),
                RawTensor::from_vec(facts, n, &dev).unwrap(),
            );
            chapter_05::save_safetensors(&path, &dict, None).unwrap();
            if expected.is_empty() {
                assert_eq!(Checkpoint::load(&path).unwrap().global_step, 2);
            } else {
                let err = assert_rejected(&path, expected);
                assert!(err.contains(expected), "{err}");
            }
        }
        // The facts tensor must be bytes.
        let mut dict = BTreeMap::new();
        dict.insert(
            "checkpoint.facts".to_string(),
            RawTensor::from_vec(vec![1.0f32; 4], 4, &dev).unwrap(),
        );
        chapter_05::save_safetensors(&path, &dict, None).unwrap();
        assert!(assert_rejected(&path, "f32 facts").contains("u8 vector"));
    }

    // ANCHOR: kill
    /// The environment variable that turns the helper test below into the
    /// writer process of the kill test.
    const WRITER_ENV: &str = "CANDLE_TEST_CHECKPOINT_WRITER";
    const START_ENV: &str = "CANDLE_TEST_CHECKPOINT_START";
    /// Values in the writer's model tensor: 4 MiB checkpoints take a while
    /// to write, so a kill lands in the middle of one.
    const BIG: usize = 1 << 20;
    /// What the writer prints once its first checkpoint is saved.
    const READY: &str = "checkpoint-writer-ready";

    /// Not a lesson by itself: in a normal test run it does nothing. Run as a
    /// child process by the kill test (with `CANDLE_TEST_CHECKPOINT_WRITER`
    /// set to a path), it saves checkpoints `start, start + 1, ...` to that
    /// path as fast as it can, saying [`READY`] after the first, until killed.
    #[test]
    fn checkpoint_writer_for_the_kill_test() {
        let Some(path) = std::env::var_os(WRITER_ENV) else {
            return;
        };
        let start: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30); // in case nobody kills us
        for index in start.. {
            sample(index, BIG).save(&path).unwrap();
            if index == start {
                // libtest may print this on the line of the test's name.
                println!("{READY}");
                std::io::stdout().flush().unwrap();
            }
            if Instant::now() > deadline {
                break;
            }
        }
    }

    /// The files of `dir` other than the checkpoint itself.
    fn temporary_files(dir: &Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
            .collect()
    }

    #[test]
    fn checkpoint_a_kill_during_a_write_leaves_the_previous_checkpoint_loadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.safetensors");
        sample(0, BIG).save(&path).unwrap();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut rng = Generator::new(nanos as u64);
        let (mut killed_mid_save, mut seen_temporaries) = (0, 0);
        // The writer's test name as the harness knows it: this module's path
        // without the crate's name (the same file also runs inside chapter
        // 07's device suites, under another module path).
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let writer_test = format!("{module}::checkpoint_writer_for_the_kill_test");
        for round in 0..8u64 {
            let start = (round + 1) * 1_000_000;
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", &writer_test, "--nocapture", "--test-threads=1"])
                .env(WRITER_ENV, &path)
                .env(START_ENV, start.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Wait until the writer is busy saving, then kill it at a random moment.
            let stdout = BufReader::new(child.stdout.take().unwrap());
            let ready = stdout
                .lines()
                .map_while(Result::ok)
                .any(|line| line.contains(READY));
            if !ready {
                let _ = child.kill();
                panic!("the writer process did not start writing");
            }
            // A save takes some tens of milliseconds here.
            let delay = Duration::from_micros(rng.below(100_000) as u64);
            std::thread::sleep(delay);
            child.kill().unwrap(); // SIGKILL: no destructors, no flushing
            child.wait().unwrap();

            let loaded = Checkpoint::load(&path).unwrap_or_else(|e| {
                panic!("round {round}: after a kill the checkpoint must load: {e}")
            });
            // It is one of the checkpoints this writer saved (it had saved
            // one before saying it was ready), whole.
            let index = loaded.epoch;
            assert!(
                (start..start + 1_000_000).contains(&index),
                "round {round}: checkpoint {index} is not one this writer saved"
            );
            assert_same(&loaded, &sample(index, BIG));
            // A kill between creating the temporary file and renaming it
            // leaves it behind (harmless; nothing reads it): count those.
            let temporaries = temporary_files(dir.path());
            let mid_save = temporaries.len() > seen_temporaries;
            killed_mid_save += usize::from(mid_save);
            seen_temporaries = temporaries.len();
            eprintln!(
                "round {round}: killed {delay:?} after the first save{}; checkpoint {index} loads",
                if mid_save {
                    ", while writing a temporary file"
                } else {
                    ""
                }
            );
        }
        eprintln!("{killed_mid_save} of 8 kills interrupted the writing of a temporary file");
    }
    // ANCHOR_END: kill
}
