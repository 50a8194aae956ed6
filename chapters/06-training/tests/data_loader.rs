//! Lesson: the DataLoader. A batch is a gather of rows; the shuffle of epoch
//! `e` depends on `(seed, e)` only, so a resumed run sees the same batches;
//! prefetching on a thread changes when a batch is built, never what is in
//! it. `cargo test -p chapter-06 loader` runs these.

mod data_loader {
    use chapter_03::{DType, Tensor};
    use chapter_06::data::{
        default_data_dir, Compose, DataLoader, Dataset, InMemoryDataset, Mnist, RandomCrop,
        RandomHorizontalFlip,
    };
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Instant;

    /// `n` examples of shape `[2, 3]` whose features all equal the example's
    /// index, and whose label is the index: a batch shows where it came from.
    fn numbered(n: usize) -> Arc<InMemoryDataset> {
        let features = (0..n).flat_map(|i| [i as f32; 6]).collect();
        let labels = (0..n as i64).collect();
        Arc::new(InMemoryDataset::new(features, &[2, 3], labels).unwrap())
    }

    fn targets(batch: &(Tensor, Tensor)) -> Vec<i64> {
        batch.1.to_vec::<i64>().unwrap()
    }

    /// All batches of one epoch as `(inputs, targets)` vectors.
    fn collect(loader: &DataLoader, epoch: u64) -> Vec<(Vec<f32>, Vec<i64>)> {
        loader
            .epoch(epoch)
            .map(|b| {
                let (x, y) = b.unwrap();
                (x.to_vec::<f32>().unwrap(), y.to_vec::<i64>().unwrap())
            })
            .collect()
    }

    // ANCHOR: shapes
    #[test]
    fn loader_batch_shapes_and_drop_last() {
        let loader = DataLoader::new(numbered(10), 4).unwrap();
        assert_eq!(loader.num_batches(), 3);
        let batches: Vec<_> = loader.epoch(0).map(Result::unwrap).collect();
        let shapes: Vec<_> = batches.iter().map(|(x, y)| (x.dims(), y.dims())).collect();
        assert_eq!(
            shapes,
            [
                (vec![4, 2, 3], vec![4]),
                (vec![4, 2, 3], vec![4]),
                (vec![2, 2, 3], vec![2])
            ]
        );
        assert_eq!(batches[0].0.dtype(), DType::F32);
        assert_eq!(batches[0].1.dtype(), DType::I64);
        // Unshuffled: the examples in order.
        assert_eq!(targets(&batches[2]), [8, 9]);
        assert_eq!(
            batches[2].0.to_vec::<f32>().unwrap()[..7],
            [8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 9.0]
        );

        let loader = loader.drop_last(true);
        assert_eq!(loader.num_batches(), 2);
        assert_eq!(loader.epoch(0).len(), 2);
        assert!(loader.epoch(0).all(|b| b.unwrap().0.dims()[0] == 4));
    }
    // ANCHOR_END: shapes

    #[test]
    fn loader_visits_every_index_exactly_once_per_epoch() {
        let loader = DataLoader::new(numbered(103), 10).unwrap().shuffle(7);
        for epoch in 0..3 {
            let seen: Vec<i64> = loader
                .epoch(epoch)
                .flat_map(|b| targets(&b.unwrap()))
                .collect();
            assert_eq!(seen.len(), 103);
            assert_eq!(seen.iter().copied().collect::<BTreeSet<_>>().len(), 103);
            // Inputs travel with their labels.
            for (x, y) in loader.epoch(epoch).map(Result::unwrap) {
                let x = x.to_vec::<f32>().unwrap();
                for (row, label) in x.chunks(6).zip(y.to_vec::<i64>().unwrap()) {
                    assert!(row.iter().all(|&v| v == label as f32));
                }
            }
        }
        // With drop_last, the 3 examples of the short batch are skipped, a
        // different 3 each epoch.
        let loader = loader.drop_last(true);
        let seen: BTreeSet<i64> = loader.epoch(0).flat_map(|b| targets(&b.unwrap())).collect();
        assert_eq!(seen.len(), 100);
    }

    // ANCHOR: resume
    #[test]
    fn loader_order_depends_on_seed_and_epoch_only() {
        let a = DataLoader::new(numbered(50), 8).unwrap().shuffle(42);
        // A new loader, as after a restart: same seed, same epoch, same batches.
        let b = DataLoader::new(numbered(50), 8).unwrap().shuffle(42);
        assert_eq!(collect(&a, 3), collect(&b, 3));
        assert_eq!(a.epoch_order(3), b.epoch_order(3));
        // Epochs differ from each other, and seeds from each other.
        assert_ne!(a.epoch_order(3), a.epoch_order(4));
        let c = DataLoader::new(numbered(50), 8).unwrap().shuffle(43);
        assert_ne!(a.epoch_order(3), c.epoch_order(3));
        // Resuming in the middle of an epoch: batches 4.. of epoch 3.
        let resumed = collect_from(&b, 3, 4);
        assert_eq!(resumed, collect(&a, 3)[4..]);
        // Random access agrees with iteration.
        let (x, y) = a.batch(3, 5).unwrap();
        assert_eq!(
            (x.to_vec::<f32>().unwrap(), y.to_vec::<i64>().unwrap()),
            collect(&a, 3)[5]
        );
    }
    // ANCHOR_END: resume

    fn collect_from(loader: &DataLoader, epoch: u64, start: usize) -> Vec<(Vec<f32>, Vec<i64>)> {
        loader
            .epoch_from(epoch, start)
            .map(|b| {
                let (x, y) = b.unwrap();
                (x.to_vec::<f32>().unwrap(), y.to_vec::<i64>().unwrap())
            })
            .collect()
    }

    #[test]
    fn loader_without_shuffle_keeps_the_order_every_epoch() {
        let loader = DataLoader::new(numbered(9), 4).unwrap();
        assert_eq!(loader.epoch_order(0), (0..9).collect::<Vec<_>>());
        assert_eq!(collect(&loader, 0), collect(&loader, 5));
    }

    // ANCHOR: prefetch_same
    #[test]
    fn loader_prefetch_thread_yields_the_same_batches_as_the_synchronous_path() {
        // Images [1, 4, 4] with distinct pixels, and random augmentation.
        let n = 37;
        let features = (0..n * 16).map(|i| i as f32).collect();
        let data =
            Arc::new(InMemoryDataset::new(features, &[1, 4, 4], (0..n as i64).collect()).unwrap());
        let augment = || {
            Compose::new()
                .then(RandomCrop::new(1))
                .then(RandomHorizontalFlip::new(0.5).unwrap())
        };
        let sync = DataLoader::new(data.clone(), 5)
            .unwrap()
            .shuffle(1)
            .transform(augment());
        for depth in [1, 2, 8] {
            let ahead = DataLoader::new(data.clone(), 5)
                .unwrap()
                .shuffle(1)
                .transform(augment())
                .prefetch(depth);
            for epoch in 0..2 {
                assert_eq!(
                    collect(&sync, epoch),
                    collect(&ahead, epoch),
                    "depth {depth}"
                );
            }
            assert_eq!(collect_from(&sync, 1, 3), collect_from(&ahead, 1, 3));
        }
        // The augmentation did something (and differs between epochs).
        let plain = DataLoader::new(data, 5).unwrap().shuffle(1);
        assert_ne!(collect(&plain, 0), collect(&sync, 0));
        assert_ne!(collect(&sync, 0), collect(&sync, 1));
    }
    // ANCHOR_END: prefetch_same

    #[test]
    fn loader_dropping_a_prefetching_epoch_early_stops_its_thread() {
        let loader = DataLoader::new(numbered(1000), 1).unwrap().prefetch(2);
        for _ in 0..20 {
            let mut batches = loader.epoch(0);
            assert_eq!(targets(&batches.next().unwrap().unwrap()), [0]);
            // Dropped here, with the worker blocked on a full channel.
        }
    }

    #[test]
    fn loader_errors_are_returned_not_panicked() {
        let e = DataLoader::new(numbered(3), 0).err().unwrap();
        assert_eq!(
            e.to_string(),
            "DataLoader::new: batch size must be at least 1"
        );
        // A crop on flat features: the first batch is an error, then the epoch ends.
        let flat = Arc::new(InMemoryDataset::new(vec![0.0; 8], &[4], vec![0, 1]).unwrap());
        for depth in [0, 2] {
            let loader = DataLoader::new(flat.clone(), 1)
                .unwrap()
                .transform(RandomCrop::new(1))
                .prefetch(depth);
            let results: Vec<_> = loader.epoch(0).collect();
            assert_eq!(results.len(), 1);
            let msg = results[0].as_ref().err().unwrap().to_string();
            assert!(
                msg.starts_with("RandomCrop: needs an image of shape [H, W] or [C, H, W], got [4]"),
                "{msg}"
            );
        }
        assert!(DataLoader::new(flat, 1).unwrap().batch(0, 2).is_err());
    }

    // ANCHOR: timing
    /// Prints (does not assert) how long batches of MNIST take: run with
    /// `cargo test -p chapter-06 loader_mnist -- --nocapture`.
    #[test]
    fn loader_mnist_batch_of_128_takes_microseconds() {
        let start = Instant::now();
        let mnist = Mnist::load(default_data_dir().join("mnist")).unwrap();
        println!(
            "load MNIST (gz): {:.0} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
        let train = Arc::new(mnist.train);

        // The gather alone: 128 random rows into one buffer.
        let order: Vec<usize> = (0..60_000).map(|i| (i * 7919) % 60_000).collect();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let reps = 500;
        let mut times = Vec::with_capacity(reps);
        for r in 0..reps {
            let start = Instant::now();
            x.clear();
            y.clear();
            train
                .get_batch(&order[r * 128 % 59_000..][..128], &mut x, &mut y)
                .unwrap();
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let gather = times[reps / 2];
        println!(
            "gather 128 x 784 rows: median {:.1} us, fastest {:.1} us",
            gather * 1e6,
            times[0] * 1e6
        );

        // Whole epochs through the loader, tensors included.
        for depth in [0, 2] {
            let loader = DataLoader::new(train.clone(), 128)
                .unwrap()
                .shuffle(0)
                .prefetch(depth);
            let start = Instant::now();
            let mut n = 0;
            for batch in loader.epoch(0) {
                let (x, _) = batch.unwrap();
                assert_eq!(x.dims()[1], 784);
                n += 1;
            }
            let t = start.elapsed().as_secs_f64();
            println!(
                "epoch of {n} batches, prefetch {depth}: {:.1} ms ({:.1} us per batch)",
                t * 1e3,
                t / n as f64 * 1e6
            );
        }
        assert!(
            gather < 0.05,
            "a batch should take microseconds, took {gather} s"
        );
    }
    // ANCHOR_END: timing
}
