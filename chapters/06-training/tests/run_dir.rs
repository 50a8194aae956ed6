//! Lesson: a run folder belongs to one run. A new run does not overwrite
//! an earlier one unless forced; a lock keeps a second process out (and a
//! crashed one's lock is taken over); a resumed run must have the run's
//! settings, and its metrics continue where its checkpoint stopped.
//!
//! `cargo test -p chapter-06 run_dir` runs these (and `resume` the ones
//! about resuming).

mod run_dir {
    use chapter_02::{default_device, manual_seed, DType};
    use chapter_06::data::{default_data_dir, load_digits, DataLoader, Dataset, InMemoryDataset};
    use chapter_06::metrics::{read_metrics, read_metrics_file, MetricsWriter, Record};
    use chapter_06::run_dir::{RunLock, LOCK_FILE};
    use chapter_06::{
        fit, Checkpoint, Mlp, OnResume, OptimizerKind, RunDir, RunError, ScheduleKind, TrainConfig,
        TrainSummary,
    };
    use std::path::Path;
    use std::sync::{Arc, Barrier};

    const SEED: u64 = 5;

    fn config() -> TrainConfig {
        TrainConfig {
            epochs: 3,
            batch_size: 32,
            lr: 0.01,
            optimizer: OptimizerKind::AdamW,
            weight_decay: 0.01,
            schedule: ScheduleKind::OneCycle,
            seed: SEED,
            log_every: 4,
            ..TrainConfig::default()
        }
    }

    /// 320 training digits (10 batches of 32) and 100 test digits.
    fn loaders() -> (DataLoader, DataLoader) {
        let digits = load_digits(default_data_dir().join("digits/digits.csv.gz")).unwrap();
        let train = digits.subset(&(0..320).collect::<Vec<_>>()).unwrap();
        let test = digits.subset(&(320..420).collect::<Vec<_>>()).unwrap();
        let train = DataLoader::new(Arc::new(train) as Arc<dyn Dataset>, 32)
            .unwrap()
            .shuffle(SEED);
        let test = DataLoader::new(Arc::new(test) as Arc<dyn Dataset>, 100).unwrap();
        (train, test)
    }

    fn fit_in(
        run: &RunDir,
        config: &TrainConfig,
        resume: bool,
    ) -> chapter_03::Result<TrainSummary> {
        let (train, test) = loaders();
        manual_seed(SEED);
        let model = Mlp::new(&[64, 32, 10], 0.0, DType::F32, &default_device().unwrap()).unwrap();
        fit(&model, &train, &test, config, run, resume, None, false)
    }

    fn stopped_after(epochs: usize) -> TrainConfig {
        TrainConfig {
            stop_after_epochs: Some(epochs),
            ..config()
        }
    }

    /// `(kind, epoch, step)` of every metrics record.
    fn steps(run: &Path) -> Vec<(&'static str, u64, u64)> {
        read_metrics(run)
            .unwrap()
            .iter()
            .map(|r| {
                let kind = match r {
                    Record::Train { .. } => "train",
                    Record::Eval { .. } => "eval",
                    Record::Histogram { .. } => "histogram",
                };
                (kind, r.epoch(), r.step())
            })
            .collect()
    }

    // ANCHOR: refuse
    #[test]
    fn run_dir_refuses_a_new_run_over_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        fit_in(&run, &stopped_after(1), false).unwrap();
        let before = std::fs::read(run.metrics()).unwrap();
        let err = fit_in(&run, &config(), false).unwrap_err().to_string();
        assert!(err.contains("already holds a run"), "{err}");
        assert!(err.contains("--resume") && err.contains("--force"), "{err}");
        assert!(
            err.contains("checkpoint.safetensors (after epoch 1)"),
            "{err}"
        );
        // Nothing was touched.
        assert_eq!(std::fs::read(run.metrics()).unwrap(), before);
        assert_eq!(Checkpoint::load(run.checkpoint()).unwrap().epoch, 1);
    }
    // ANCHOR_END: refuse

    #[test]
    fn run_dir_force_replaces_the_earlier_run() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        fit_in(&run, &config(), false).unwrap();
        let forced = RunDir::new(&run.path).force(true);
        fit_in(&forced, &stopped_after(1), false).unwrap();
        // Only the new run's records and checkpoint remain.
        let evals: Vec<u64> = steps(&run.path)
            .iter()
            .filter(|s| s.0 == "eval")
            .map(|s| s.1)
            .collect();
        assert_eq!(evals, [1]);
        assert_eq!(Checkpoint::load(run.checkpoint()).unwrap().epoch, 1);
        // A folder without a run needs no force; a file is not a folder.
        fit_in(
            &RunDir::new(dir.path().join("fresh")),
            &stopped_after(1),
            false,
        )
        .unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = fit_in(&RunDir::new(&file), &config(), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a-file") && err.contains("is not a folder"),
            "{err}"
        );
    }

    // ANCHOR: mismatch
    #[test]
    fn resume_refuses_changed_settings_listing_each_difference() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        fit_in(&run, &stopped_after(1), false).unwrap();
        let changed = TrainConfig {
            lr: 0.02,
            seed: SEED + 1,
            epochs: 4,
            log_every: 7, // free: changes nothing about what is learned
            ..config()
        };
        let err = fit_in(&run, &changed, true).unwrap_err().to_string();
        for line in [
            "--lr: 0.01 in the run, 0.02 now (may change with --force)",
            "--epochs: 3 in the run, 4 now (may change with --force)",
            "--seed: 5 in the run, 6 now (cannot change",
        ] {
            assert!(err.contains(line), "missing `{line}` in: {err}");
        }
        assert!(!err.contains("log-every"), "{err}");
        assert_eq!(Checkpoint::load(run.checkpoint()).unwrap().epoch, 1);
    }
    // ANCHOR_END: mismatch

    #[test]
    fn resume_forced_accepts_the_changes_the_state_allows_but_never_the_seed() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        fit_in(&run, &stopped_after(1), false).unwrap();
        let forced = RunDir::new(&run.path).force(true);
        for (what, changed) in [
            (
                "seed",
                TrainConfig {
                    seed: 0,
                    ..config()
                },
            ),
            (
                "batch-size",
                TrainConfig {
                    batch_size: 16,
                    ..config()
                },
            ),
            (
                "optimizer",
                TrainConfig {
                    optimizer: OptimizerKind::Adam,
                    ..config()
                },
            ),
        ] {
            let err = fit_in(&forced, &changed, true).unwrap_err().to_string();
            assert!(
                err.contains(&format!("--{what}:")) && err.contains("cannot change"),
                "{err}"
            );
            assert!(err.contains("--force does not apply"), "{err}");
        }
        let longer = TrainConfig {
            epochs: 4,
            lr: 0.005,
            ..config()
        };
        let summary = fit_in(&forced, &longer, true).unwrap();
        assert_eq!(summary.epochs_run, 3);
        // The run's settings are now the forced ones: resuming with them
        // needs no force, and with the old ones it does.
        assert_eq!(run.saved_config::<TrainConfig>().unwrap().train.epochs, 4);
        assert_eq!(run.saved_config::<TrainConfig>().unwrap().train.lr, 0.005);
        let err = fit_in(&run, &config(), true).unwrap_err().to_string();
        assert!(err.contains("--epochs: 4 in the run, 3 now"), "{err}");
    }

    #[test]
    fn resume_compares_the_settings_the_caller_added() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run");
        let with = |hidden: &str, dropout: f64| {
            RunDir::new(&path)
                .setting(
                    "--hidden",
                    hidden,
                    OnResume::Fixed("it decides the model's shape"),
                )
                .setting("--dropout", dropout, OnResume::Forceable)
        };
        fit_in(&with("32", 0.0), &stopped_after(1), false).unwrap();
        let err = fit_in(&with("16", 0.1), &config(), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "--hidden: 32 in the run, 16 now (cannot change: it decides the model's shape)"
            ),
            "{err}"
        );
        assert!(
            err.contains("--dropout: 0 in the run, 0.1 now (may change with --force)"),
            "{err}"
        );
        fit_in(&with("32", 0.0), &config(), true).unwrap();
    }

    #[test]
    fn resume_without_a_checkpoint_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        // A run that crashed in its first epoch: config and metrics, no checkpoint.
        fit_in(&run, &stopped_after(1), false).unwrap();
        std::fs::remove_file(run.checkpoint()).unwrap();
        let err = fit_in(&run, &config(), true).unwrap_err().to_string();
        assert!(
            err.contains("checkpoint.safetensors")
                && err.contains("stopped before its first checkpoint"),
            "{err}"
        );
    }

    // ANCHOR: lock
    #[test]
    fn run_dir_lock_refuses_a_second_writer_and_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let pid = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(lock.path()).unwrap().trim(), pid);
        match RunLock::acquire(dir.path()) {
            Err(RunError::Locked { pid: holder, .. }) => assert_eq!(holder, pid),
            other => panic!("a second writer got {other:?}"),
        }
        // Training is refused too, before it touches anything.
        let run = RunDir::new(dir.path());
        let err = fit_in(&run, &config(), false).unwrap_err().to_string();
        assert!(err.contains(&format!("in use by process {pid}")), "{err}");
        assert!(!run.config().exists());
        drop(lock);
        assert!(!dir.path().join(LOCK_FILE).exists());
        RunLock::acquire(dir.path()).unwrap();
    }
    // ANCHOR_END: lock

    #[test]
    fn run_dir_lock_of_a_process_that_died_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // The id of a process that has exited (ids are not reused at once).
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let dead = child.id();
        child.wait().unwrap();
        // A dead process's id, garbage, an empty file, and our own id written
        // by an earlier process (this process holds no lock there).
        let own = format!("{}\n", std::process::id());
        for stale in [
            format!("{dead}\n"),
            "not a pid\n".into(),
            String::new(),
            own,
        ] {
            std::fs::write(dir.path().join(LOCK_FILE), &stale).unwrap();
            let lock = RunLock::acquire(dir.path()).unwrap();
            let holder = std::fs::read_to_string(lock.path()).unwrap();
            assert_eq!(
                holder.trim(),
                std::process::id().to_string(),
                "after {stale:?}"
            );
        }
        // And training takes it over as well.
        std::fs::write(dir.path().join(LOCK_FILE), format!("{dead}\n")).unwrap();
        fit_in(&RunDir::new(dir.path()), &stopped_after(1), false).unwrap();
        assert!(!dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn run_dir_lock_is_released_when_training_ends_and_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        fit_in(&run, &stopped_after(1), false).unwrap();
        assert!(!run.lock_file().exists());
        // Refused under the lock (settings differ): released all the same.
        let err = fit_in(
            &run,
            &TrainConfig {
                seed: 0,
                ..config()
            },
            true,
        );
        assert!(err.is_err());
        assert!(!run.lock_file().exists());
        fit_in(&run, &config(), true).unwrap();
    }

    // ANCHOR: concurrent
    #[test]
    fn run_dir_two_trainings_started_together_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run");
        let start = Arc::new(Barrier::new(2));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    fit_in(&RunDir::new(path), &config(), false).map_err(|e| e.to_string())
                })
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "{results:?}");
        let err = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(
            err.contains("in use by process") || err.contains("already holds a run"),
            "{err}"
        );
        // The folder holds one whole run: each epoch evaluated once.
        let evals: Vec<u64> = steps(&path)
            .iter()
            .filter(|s| s.0 == "eval")
            .map(|s| s.1)
            .collect();
        assert_eq!(evals, [1, 2, 3]);
    }
    // ANCHOR_END: concurrent

    // ANCHOR: metrics_continue
    #[test]
    fn resume_after_a_crash_between_metrics_and_checkpoint_repeats_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let (straight, crashed) = (dir.path().join("a"), dir.path().join("b"));
        fit_in(&RunDir::new(&straight), &config(), false).unwrap();
        let run = RunDir::new(&crashed);
        fit_in(&run, &stopped_after(1), false).unwrap();
        // The crash: records of epoch 2 were written, its checkpoint was
        // not, and the last line was cut short.
        let epoch_2: Vec<Record> = read_metrics(&straight)
            .unwrap()
            .into_iter()
            .filter(|r| r.epoch() == 2 && r.step() <= 16)
            .collect();
        assert!(!epoch_2.is_empty());
        let mut w = MetricsWriter::open(&crashed).unwrap();
        for r in &epoch_2 {
            w.write(r).unwrap();
        }
        drop(w);
        let mut bytes = std::fs::read(run.metrics()).unwrap();
        bytes.extend_from_slice(b"{\"kind\":\"train\",\"step\":17,");
        std::fs::write(run.metrics(), bytes).unwrap();

        fit_in(&run, &config(), true).unwrap();
        assert_eq!(steps(&crashed), steps(&straight));
        let file = read_metrics_file(&run.metrics()).unwrap();
        assert_eq!(file.torn_last_line, None);
    }
    // ANCHOR_END: metrics_continue

    #[test]
    fn resume_continues_the_clock_from_the_saved_training_time() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        fit_in(&run, &stopped_after(1), false).unwrap();
        // Pretend epoch 1 took 1000 s.
        let mut records = read_metrics(&run.path).unwrap();
        for r in &mut records {
            if let Record::Eval { seconds, .. } = r {
                *seconds = 1000.0;
            }
        }
        std::fs::remove_file(run.metrics()).unwrap();
        let mut w = MetricsWriter::open(&run.path).unwrap();
        for r in &records {
            w.write(r).unwrap();
        }
        drop(w);
        let config = TrainConfig {
            target_accuracy: Some(0.01),
            ..config()
        };
        let summary = fit_in(&run, &config, true).unwrap();
        let seconds: Vec<f64> = read_metrics(&run.path)
            .unwrap()
            .iter()
            .filter_map(|r| match r {
                Record::Eval { seconds, .. } => Some(*seconds),
                _ => None,
            })
            .collect();
        assert_eq!(seconds.len(), 3);
        assert_eq!(seconds[0], 1000.0);
        assert!(
            seconds[1] > 1000.0 && seconds[2] > seconds[1],
            "{seconds:?}"
        );
        // The target was reached in epoch 1, before the resumption.
        assert_eq!(summary.reached_target, Some((1, 1000.0)));
    }

    #[test]
    fn fit_refuses_an_empty_data_set_and_a_config_that_cannot_train() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path().join("run"));
        let empty = InMemoryDataset::new(vec![], &[64], vec![]).unwrap();
        let empty = DataLoader::new(Arc::new(empty) as Arc<dyn Dataset>, 32).unwrap();
        let (train, test) = loaders();
        let model = Mlp::new(&[64, 10], 0.0, DType::F32, &default_device().unwrap()).unwrap();
        for (train, test, which) in [(&empty, &test, "training"), (&train, &empty, "test")] {
            let err = fit(&model, train, test, &config(), &run, false, None, false)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("the {which} set is empty")), "{err}");
        }
        let bad = [
            (
                "epochs = 0",
                TrainConfig {
                    epochs: 0,
                    ..config()
                },
            ),
            (
                "lr = NaN",
                TrainConfig {
                    lr: f64::NAN,
                    ..config()
                },
            ),
            (
                "lr = -0.1",
                TrainConfig {
                    lr: -0.1,
                    ..config()
                },
            ),
            (
                "lr = inf",
                TrainConfig {
                    lr: f64::INFINITY,
                    ..config()
                },
            ),
            (
                "weight_decay = -1",
                TrainConfig {
                    weight_decay: -1.0,
                    ..config()
                },
            ),
            (
                "clip_grad_norm = -1",
                TrainConfig {
                    clip_grad_norm: Some(-1.0),
                    ..config()
                },
            ),
            (
                "clip_grad_norm = 0",
                TrainConfig {
                    clip_grad_norm: Some(0.0),
                    ..config()
                },
            ),
            (
                "target_accuracy = 2",
                TrainConfig {
                    target_accuracy: Some(2.0),
                    ..config()
                },
            ),
            (
                "momentum = 1",
                TrainConfig {
                    momentum: 1.0,
                    ..config()
                },
            ),
        ];
        for (what, config) in bad {
            let err = fit_in(&run, &config, false).unwrap_err().to_string();
            assert!(
                err.contains(what) && err.contains("must be"),
                "{what}: {err}"
            );
        }
        assert!(!run.path.exists(), "a refused run leaves no folder behind");
    }

    #[test]
    fn run_dir_identical_runs_write_byte_identical_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fit_in(&RunDir::new(&a), &config(), false).unwrap();
        fit_in(&RunDir::new(&b), &config(), false).unwrap();
        let bytes = |p: &Path| std::fs::read(p.join("checkpoint.safetensors")).unwrap();
        assert!(bytes(&a) == bytes(&b), "the checkpoints differ");
    }
}
