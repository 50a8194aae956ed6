//! Lesson: data parallelism. A batch split into shards, each shard's
//! forward and backward pass on a thread of its own, gives the gradient of
//! the whole batch once every shard's gradient is weighted by its share of
//! the examples: the same numbers up to rounding, and the same bits every
//! time for a given number of replicas.
//!
//! `cargo test -p chapter-06 data_parallel` runs these.

mod data_parallel {
    use chapter_02::{manual_seed, Generator};
    use chapter_03::{DType, RawTensor, Tensor};
    use chapter_04::prelude::*;
    use chapter_05::{dropout, mse_loss, Linear, Module, ModuleExt, Reduction};
    use chapter_06::{DataParallel, MAX_REPLICAS};
    use proptest::prelude::*;

    /// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
    fn dev() -> chapter_02::Device {
        chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A 5 -> 3 linear layer in f64 and a regression batch of `n` rows.
    fn setup(n: usize) -> (Linear, RawTensor, RawTensor) {
        let dev = dev();
        let mut rng = Generator::new(11);
        let mut randn = |shape: &[usize]| {
            RawTensor::randn_with(0.0, 1.0, shape, DType::F64, &dev, &mut rng).unwrap()
        };
        let weight = Tensor::param(randn(&[3, 5])).unwrap();
        let bias = Tensor::param(randn(&[3])).unwrap();
        let (x, y) = (randn(&[n, 5]), randn(&[n, 3]));
        (Linear::from_weights(weight, Some(bias)), x, y)
    }

    fn rows(t: &RawTensor, range: &std::ops::Range<usize>) -> Tensor {
        Tensor::from_raw(t.narrow(0, range.start, range.len()).unwrap())
    }

    fn gradients(model: &Linear) -> Vec<Vec<f64>> {
        model
            .parameters()
            .iter()
            .map(|p| p.grad_opt().unwrap().data().to_vec::<f64>().unwrap())
            .collect()
    }

    /// One step's loss and gradients with `replicas` replicas; the step
    /// returns the shard it was given, so the order can be checked.
    fn step(
        model: &Linear,
        x: &RawTensor,
        y: &RawTensor,
        replicas: usize,
    ) -> (f64, Vec<Vec<f64>>, Vec<std::ops::Range<usize>>) {
        model.zero_grad();
        let params = model.parameters();
        let n = x.dims()[0];
        let out = DataParallel::new(replicas)
            .unwrap()
            .backward(n, &params, |shard| {
                let pred = model.forward(&rows(x, &shard))?;
                let loss = mse_loss(&pred, &rows(y, &shard), Reduction::Mean)?;
                Ok((loss, shard))
            })
            .unwrap();
        let loss = out.loss.data().to_scalar::<f64>().unwrap();
        (loss, gradients(model), out.outputs)
    }

    // ANCHOR: data_parallel_lesson
    #[test]
    fn data_parallel_gradient_is_the_batch_gradient() {
        // 7 examples over 3 replicas: shards of 3, 2 and 2, weighted 3/7,
        // 2/7 and 2/7.
        let (model, x, y) = setup(7);
        let (loss1, grads1, shards1) = step(&model, &x, &y, 1);
        let (loss3, grads3, shards3) = step(&model, &x, &y, 3);
        assert_eq!(shards1, vec![0..7]);
        assert_eq!(shards3, [0..3, 3..5, 5..7]);
        assert!((loss1 - loss3).abs() <= 1e-12, "loss {loss1} vs {loss3}");
        for (a, b) in grads1.iter().flatten().zip(grads3.iter().flatten()) {
            assert!((a - b).abs() <= 1e-12, "gradient {a} vs {b}");
        }
    }
    // ANCHOR_END: data_parallel_lesson

    #[test]
    fn data_parallel_is_reproducible_bit_for_bit() {
        let (model, x, y) = setup(64);
        let first = step(&model, &x, &y, 4);
        for _ in 0..3 {
            let again = step(&model, &x, &y, 4);
            assert_eq!(first.0.to_bits(), again.0.to_bits());
            assert_eq!(first.1, again.1, "the gradients changed between runs");
        }
    }

    #[test]
    fn data_parallel_adds_into_the_gradient_already_there() {
        let (model, x, y) = setup(6);
        let (_, once, _) = step(&model, &x, &y, 2);
        // Without zeroing: a second backward adds, as `backward()` does.
        let params = model.parameters();
        DataParallel::new(2)
            .unwrap()
            .backward(6, &params, |shard| {
                let pred = model.forward(&rows(&x, &shard))?;
                Ok((mse_loss(&pred, &rows(&y, &shard), Reduction::Mean)?, ()))
            })
            .unwrap();
        for (a, b) in once
            .iter()
            .flatten()
            .zip(gradients(&model).iter().flatten())
        {
            assert!((2.0 * a - b).abs() <= 1e-12, "{b} is not twice {a}");
        }
    }

    #[test]
    fn data_parallel_with_more_replicas_than_examples_leaves_some_idle() {
        let (model, x, y) = setup(2);
        let (loss1, grads1, _) = step(&model, &x, &y, 1);
        let (loss8, grads8, shards) = step(&model, &x, &y, 8);
        assert_eq!(shards, [0..1, 1..2]);
        assert!((loss1 - loss8).abs() <= 1e-12);
        for (a, b) in grads1.iter().flatten().zip(grads8.iter().flatten()) {
            assert!((a - b).abs() <= 1e-12);
        }
    }

    #[test]
    fn data_parallel_refuses_bad_counts_and_reports_a_shard_error() {
        for bad in [0, MAX_REPLICAS + 1] {
            let err = DataParallel::new(bad)
                .err()
                .expect("a bad count")
                .to_string();
            assert!(
                err.contains("DataParallel") && err.contains(&format!("replicas = {bad}")),
                "{err}"
            );
        }
        let (model, x, _) = setup(4);
        let params = model.parameters();
        let dp = DataParallel::new(2).unwrap();
        let err = dp
            .backward(0, &params, |_| Ok((model.forward(&rows(&x, &(0..1)))?, ())))
            .err()
            .expect("an empty batch")
            .to_string();
        assert!(err.contains("empty"), "{err}");
        // A shard whose step fails: the error comes back, and no gradient
        // is written (not half a batch's).
        model.zero_grad();
        let err = dp
            .backward(4, &params, |shard| {
                let pred = model.forward(&rows(&x, &shard))?;
                if shard.start > 0 {
                    // A shape mismatch: [2, 3] against [2, 4].
                    let wrong = Tensor::zeros((2, 4), DType::F64, &dev())?;
                    Ok((mse_loss(&pred, &wrong, Reduction::Mean)?, ()))
                } else {
                    Ok((pred.sum_all()?, ()))
                }
            })
            .err()
            .expect("the second shard fails")
            .to_string();
        assert!(err.contains("[2, 3]") && err.contains("[2, 4]"), "{err}");
        assert!(model.parameters().iter().all(|p| p.grad_opt().is_none()));
    }

    /// Dropout in a replica draws from that replica's own generator, seeded
    /// from the calling thread's: a seeded step repeats exactly, another
    /// seed gives other masks, and the shards do not share a mask.
    #[test]
    fn data_parallel_dropout_follows_the_callers_seed() {
        let dev = dev();
        let n = 4;
        let x = Tensor::param(RawTensor::ones((n, 256), DType::F64, &dev).unwrap()).unwrap();
        let run = |seed: u64| {
            manual_seed(seed);
            x.zero_grad();
            DataParallel::new(2)
                .unwrap()
                .backward(n, std::slice::from_ref(&x), |shard| {
                    let kept = dropout(&x.narrow(0, shard.start, shard.len())?, 0.5, true)?;
                    Ok((kept.sum_all()?, ()))
                })
                .unwrap();
            x.grad_opt().unwrap().data().to_vec2::<f64>().unwrap()
        };
        let (a, b, c) = (run(3), run(3), run(4));
        assert_eq!(a, b, "the same seed gave other masks");
        assert_ne!(a, c, "another seed gave the same masks");
        // Rows 0-1 are shard 0's, rows 2-3 shard 1's: their masks differ.
        assert_ne!(a[0], a[2], "two replicas drew the same mask");
        // Each kept element's gradient is the shard's weight times 1/(1-p).
        for v in a.iter().flatten() {
            assert!(*v == 0.0 || (*v - 0.5 * 2.0).abs() < 1e-12, "{v}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The shards cover the batch in order, without gaps or overlaps,
        /// and their sizes differ by at most one, larger first.
        #[test]
        fn data_parallel_shards_cover_the_batch_evenly(
            replicas in 1usize..=64,
            batch in 1usize..=500,
        ) {
            let shards = DataParallel::new(replicas).unwrap().shards(batch);
            prop_assert_eq!(shards.len(), replicas.min(batch));
            prop_assert_eq!(shards[0].start, 0);
            prop_assert_eq!(shards.last().unwrap().end, batch);
            for pair in shards.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
                prop_assert!(pair[0].len() >= pair[1].len());
            }
            let (min, max) = (
                shards.iter().map(|s| s.len()).min().unwrap(),
                shards.iter().map(|s| s.len()).max().unwrap(),
            );
            prop_assert!(max - min <= 1 && min >= 1);
        }
    }
}
