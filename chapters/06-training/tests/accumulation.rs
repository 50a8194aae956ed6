//! Lesson: gradient accumulation. `backward` adds into `.grad`, so several
//! small batches can stand in for one large one: run `backward` on each
//! micro-batch's loss divided by the number of micro-batches, then take one
//! optimiser step. With a mean loss, 4 micro-batches of 8 then give the
//! gradient of one batch of 32, up to float rounding.
//!
//! `cargo test -p chapter-06 accumulation` runs these.

mod accumulation {
    use chapter_02::Generator;
    use chapter_03::{DType, RawTensor, Tensor};
    use chapter_05::{mse_loss, Linear, Module, ModuleExt, Reduction};
    use chapter_06::{Optimizer, Sgd, SgdConfig};

    /// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
    fn dev() -> chapter_02::Device {
        chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
    }

    const BATCH: usize = 32;
    const MICRO: usize = 8;
    const STEPS: usize = 3;

    /// A 5 -> 3 linear layer with fixed weights, and regression data.
    fn setup() -> (Linear, RawTensor, RawTensor) {
        let dev = dev();
        let mut rng = Generator::new(6);
        let mut randn = |shape: &[usize]| {
            RawTensor::randn_with(0.0, 1.0, shape, DType::F32, &dev, &mut rng).unwrap()
        };
        let weight = Tensor::param(randn(&[3, 5])).unwrap();
        let bias = Tensor::param(randn(&[3])).unwrap();
        let (x, y) = (randn(&[STEPS * BATCH, 5]), randn(&[STEPS * BATCH, 3]));
        (Linear::from_weights(weight, Some(bias)), x, y)
    }

    fn rows(t: &RawTensor, start: usize, len: usize) -> Tensor {
        Tensor::from_raw(t.narrow(0, start, len).unwrap())
    }

    fn values(model: &Linear) -> Vec<Vec<f32>> {
        model
            .parameters()
            .iter()
            .map(|p| p.data().to_vec::<f32>().unwrap())
            .collect()
    }

    fn gradients(model: &Linear) -> Vec<Vec<f32>> {
        model
            .parameters()
            .iter()
            .map(|p| p.grad_opt().unwrap().data().to_vec::<f32>().unwrap())
            .collect()
    }

    fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((x - y).abs() <= 1e-6 + 1e-5 * y.abs(), "{what}: {x} vs {y}");
        }
    }

    // ANCHOR: accumulate
    #[test]
    fn accumulation_of_4_micro_batches_equals_one_batch_of_32() {
        let (big, x, y) = setup();
        let (small, _, _) = setup();
        let micro_batches = BATCH / MICRO;
        let mut big_opt = Sgd::new(big.parameters(), SgdConfig::new(0.1)).unwrap();
        let mut small_opt = Sgd::new(small.parameters(), SgdConfig::new(0.1)).unwrap();
        for step in 0..STEPS {
            let at = step * BATCH;
            // One batch of 32.
            big_opt.zero_grad();
            let loss = mse_loss(
                &big.forward(&rows(&x, at, BATCH)).unwrap(),
                &rows(&y, at, BATCH),
                Reduction::Mean,
            )
            .unwrap();
            loss.backward().unwrap();

            // Four micro-batches of 8, each loss divided by 4; backward adds
            // the gradients up; one step at the end.
            small_opt.zero_grad();
            for m in 0..micro_batches {
                let (xb, yb) = (
                    rows(&x, at + m * MICRO, MICRO),
                    rows(&y, at + m * MICRO, MICRO),
                );
                let loss = mse_loss(&small.forward(&xb).unwrap(), &yb, Reduction::Mean).unwrap();
                loss.mul_scalar(1.0 / micro_batches as f64)
                    .unwrap()
                    .backward()
                    .unwrap();
            }
            assert_close(&gradients(&small), &gradients(&big), "gradients");

            big_opt.step().unwrap();
            small_opt.step().unwrap();
            assert_close(&values(&small), &values(&big), "parameters");
        }
    }
    // ANCHOR_END: accumulate

    #[test]
    fn accumulation_without_scaling_gives_a_gradient_4_times_too_large() {
        let (big, x, y) = setup();
        let (small, _, _) = setup();
        mse_loss(
            &big.forward(&rows(&x, 0, BATCH)).unwrap(),
            &rows(&y, 0, BATCH),
            Reduction::Mean,
        )
        .unwrap()
        .backward()
        .unwrap();
        for m in 0..BATCH / MICRO {
            let (xb, yb) = (rows(&x, m * MICRO, MICRO), rows(&y, m * MICRO, MICRO));
            mse_loss(&small.forward(&xb).unwrap(), &yb, Reduction::Mean)
                .unwrap()
                .backward()
                .unwrap();
        }
        let four_times: Vec<Vec<f32>> = gradients(&big)
            .iter()
            .map(|g| g.iter().map(|v| 4.0 * v).collect())
            .collect();
        assert_close(&gradients(&small), &four_times, "unscaled gradients");
    }
}
