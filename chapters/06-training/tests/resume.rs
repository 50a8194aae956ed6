//! Lesson: resuming exactly. A run stopped after an epoch and resumed from
//! its checkpoint ends with the same weights, bit for bit, as a run that was
//! never interrupted: the checkpoint holds the weights, the optimiser's
//! moments and step counts, the scheduler's step and the random generator
//! (which dropout draws from), and the data loader's order depends only on
//! the seed and the epoch.
//!
//! `cargo test -p chapter-06 resume` runs these.

mod resume {
    use chapter_02::{manual_seed, DType, Generator};
    use chapter_03::RawTensor;
    use chapter_05::StateDictExt;
    use chapter_06::data::{default_data_dir, load_digits, DataLoader, Dataset};
    use chapter_06::metrics::{read_metrics, Record};
    use chapter_06::{fit, Checkpoint, Mlp, OptimizerKind, RunDir, ScheduleKind, TrainConfig};
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    /// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
    fn dev() -> chapter_02::Device {
        chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
    }

    const SEED: u64 = 11;

    fn config() -> TrainConfig {
        TrainConfig {
            epochs: 3,
            batch_size: 32,
            lr: 0.01,
            optimizer: OptimizerKind::AdamW,
            weight_decay: 0.01,
            schedule: ScheduleKind::OneCycle,
            clip_grad_norm: Some(1.0),
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

    /// A 64-32-10 MLP with dropout (so the random generator matters),
    /// initialised from the seed.
    fn model() -> Mlp {
        manual_seed(SEED);
        Mlp::new(&[64, 32, 10], 0.25, DType::F32, &dev()).unwrap()
    }

    /// Trains with `config` in `run` and returns the model's state dict.
    fn train(config: &TrainConfig, run: &Path, resume: bool) -> BTreeMap<String, RawTensor> {
        let (train, test) = loaders();
        let model = model();
        fit(
            &model,
            &train,
            &test,
            config,
            &RunDir::new(run),
            resume,
            None,
            false,
        )
        .unwrap();
        model.state_dict()
    }

    fn bits(state: &BTreeMap<String, RawTensor>) -> BTreeMap<String, Vec<u32>> {
        state
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.to_vec::<f32>()
                        .unwrap()
                        .iter()
                        .map(|x| x.to_bits())
                        .collect(),
                )
            })
            .collect()
    }

    /// The metrics that must not depend on the interruption (everything but
    /// timings): `(kind, epoch, step, numbers as bits)`.
    fn metrics(run: &Path) -> Vec<(&'static str, u64, u64, Vec<u64>)> {
        read_metrics(run)
            .unwrap()
            .into_iter()
            .filter_map(|r| match r {
                Record::Train {
                    step,
                    epoch,
                    loss,
                    accuracy,
                    lr,
                    grad_norm,
                    ..
                } => Some((
                    "train",
                    epoch,
                    step,
                    [loss, accuracy, lr, grad_norm].map(f64::to_bits).to_vec(),
                )),
                Record::Eval {
                    step,
                    epoch,
                    train_loss,
                    train_accuracy,
                    test_loss,
                    test_accuracy,
                    ..
                } => Some((
                    "eval",
                    epoch,
                    step,
                    [train_loss, train_accuracy, test_loss, test_accuracy]
                        .map(f64::to_bits)
                        .to_vec(),
                )),
                Record::Histogram { .. } => None,
            })
            .collect()
    }

    fn stopped_after(epochs: usize) -> TrainConfig {
        TrainConfig {
            stop_after_epochs: Some(epochs),
            ..config()
        }
    }

    // ANCHOR: resume
    #[test]
    fn resume_after_epoch_1_ends_bit_for_bit_where_the_straight_run_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (straight, resumed) = (dir.path().join("a"), dir.path().join("b"));

        // Run A: three epochs in one go.
        let a = train(&config(), &straight, false);

        // Run B: the same run, stopped after epoch 1...
        let after_one = train(&stopped_after(1), &resumed, false);
        assert_ne!(bits(&after_one), bits(&a));
        assert_eq!(
            Checkpoint::load(resumed.join("checkpoint.safetensors"))
                .unwrap()
                .epoch,
            1
        );
        // ...then resumed (in a fresh model, as a new process would) to the end.
        let b = train(&config(), &resumed, true);

        assert_eq!(
            bits(&b),
            bits(&a),
            "the resumed run must end with the same weights, bit for bit"
        );
        let (ca, cb) = (
            Checkpoint::load(straight.join("checkpoint.safetensors")).unwrap(),
            Checkpoint::load(resumed.join("checkpoint.safetensors")).unwrap(),
        );
        assert_eq!((cb.epoch, cb.global_step, cb.scheduler_steps), (3, 30, 30));
        assert_eq!(
            (ca.epoch, ca.global_step, ca.scheduler_steps),
            (cb.epoch, cb.global_step, cb.scheduler_steps)
        );
        assert_eq!(ca.rng, cb.rng);
        let optim_bits = |c: &Checkpoint| {
            let tensors: BTreeMap<String, Vec<u32>> = bits(&c.optimizer.tensors);
            let scalars: Vec<(String, u64)> = c
                .optimizer
                .scalars
                .iter()
                .map(|(k, v)| (k.clone(), v.to_bits()))
                .collect();
            (tensors, scalars)
        };
        assert_eq!(optim_bits(&ca), optim_bits(&cb), "optimizer state");

        // B's metrics hold all three epochs, with the same numbers as A's.
        let mb = metrics(&resumed);
        let epochs: Vec<u64> = mb.iter().filter(|m| m.0 == "eval").map(|m| m.1).collect();
        assert_eq!(epochs, [1, 2, 3]);
        assert_eq!(mb, metrics(&straight));
    }
    // ANCHOR_END: resume

    #[test]
    fn resume_in_three_parts_is_the_same_run_too() {
        let dir = tempfile::tempdir().unwrap();
        let (straight, parts) = (dir.path().join("a"), dir.path().join("c"));
        let a = train(&config(), &straight, false);
        train(&stopped_after(1), &parts, false);
        train(&stopped_after(1), &parts, true);
        assert_eq!(
            Checkpoint::load(parts.join("checkpoint.safetensors"))
                .unwrap()
                .epoch,
            2
        );
        let c = train(&stopped_after(1), &parts, true);
        assert_eq!(bits(&c), bits(&a));
        // Resuming a finished run trains nothing more.
        let again = train(&config(), &parts, true);
        assert_eq!(bits(&again), bits(&a));
        assert_eq!(metrics(&parts), metrics(&straight));
    }

    #[test]
    fn resume_needs_the_random_generator_state_because_dropout_draws_from_it() {
        // The same interruption, but the checkpoint's generator state is
        // replaced: the resumed run drops other units and ends elsewhere.
        let dir = tempfile::tempdir().unwrap();
        let (straight, tampered) = (dir.path().join("a"), dir.path().join("t"));
        let a = train(&config(), &straight, false);
        train(&stopped_after(1), &tampered, false);
        let path = tampered.join("checkpoint.safetensors");
        let mut ckpt = Checkpoint::load(&path).unwrap();
        ckpt.rng = Generator::new(12345).state();
        ckpt.save(&path).unwrap();
        let t = train(&config(), &tampered, true);
        assert_ne!(bits(&t), bits(&a));
    }

    #[test]
    fn resume_without_a_checkpoint_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (train_loader, test_loader) = loaders();
        let err = fit(
            &model(),
            &train_loader,
            &test_loader,
            &config(),
            &RunDir::new(dir.path()),
            true,
            None,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("checkpoint.safetensors"), "{err}");
    }

    #[test]
    fn resume_config_json_without_stop_after_epochs_still_parses() {
        // Run folders written before the field existed.
        let mut json = serde_json::to_value(config()).unwrap();
        json.as_object_mut().unwrap().remove("stop_after_epochs");
        let parsed: TrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(parsed, config());
    }
}
