//! Exercises for the data-loading section. Each exercise is a stub in this
//! file with a test marked `#[ignore]`: fill in the stub, then run
//! `cargo test -p chapter-06 --test data_exercises -- --ignored`.

mod data_exercises {
    use chapter_02::Generator;
    use chapter_06::data::{default_data_dir, InMemoryDataset, Mnist, Result, Transform};

    // ANCHOR: exercise_cutout
    /// Exercise 1 (Cutout, DeVries & Taylor 2017): set a `size x size` square
    /// of every channel of an image (`[H, W]` or `[C, H, W]`) to `fill`. Draw
    /// the square's top-left corner as `top = rng.below(H - size + 1)`, then
    /// `left = rng.below(W - size + 1)`, so that it lies inside the image.
    /// Return an error (not a panic) if `size` is larger than the image.
    struct Cutout {
        size: usize,
        fill: f32,
    }

    impl Transform for Cutout {
        fn apply(&self, _x: &mut [f32], _shape: &[usize], _rng: &mut Generator) -> Result<()> {
            let _ = (self.size, self.fill);
            todo!("exercise: implement Cutout")
        }
    }
    // ANCHOR_END: exercise_cutout

    // ANCHOR: exercise_stats
    /// Exercise 2: the mean and standard deviation of all the feature values
    /// of a dataset, accumulated in `f64`: `mean = Σx / n`,
    /// `std = sqrt(Σ(x - mean)² / n)`. On MNIST's training set scaled to
    /// `[0, 1]` this gives the famous `(0.1307, 0.3081)`.
    fn feature_mean_std(_dataset: &InMemoryDataset) -> (f64, f64) {
        todo!("exercise: implement feature_mean_std")
    }
    // ANCHOR_END: exercise_stats

    // ANCHOR: cutout_test
    #[test]
    #[ignore = "exercise: implement Cutout in this file"]
    fn exercise_cutout_erases_one_square_per_channel() {
        let cutout = Cutout { size: 3, fill: 0.0 };
        let mut rng = Generator::new(5);
        for _ in 0..20 {
            // Replay the two draws to know where the square must be.
            let mut replay = rng.clone();
            let (top, left) = (replay.below(8 - 3 + 1), replay.below(6 - 3 + 1));
            let mut x = vec![1.0f32; 2 * 8 * 6];
            cutout.apply(&mut x, &[2, 8, 6], &mut rng).unwrap();
            for c in 0..2 {
                for y in 0..8 {
                    for xx in 0..6 {
                        let inside = (top..top + 3).contains(&y) && (left..left + 3).contains(&xx);
                        assert_eq!(x[c * 48 + y * 6 + xx], if inside { 0.0 } else { 1.0 });
                    }
                }
            }
        }
        let mut small = vec![1.0f32; 4];
        assert!(cutout.apply(&mut small, &[2, 2], &mut rng).is_err());
    }
    // ANCHOR_END: cutout_test

    // ANCHOR: stats_test
    #[test]
    #[ignore = "exercise: implement feature_mean_std in this file"]
    fn exercise_mnist_mean_and_std_are_the_famous_constants() {
        let mnist = Mnist::load(default_data_dir().join("mnist")).unwrap();
        let (mean, std) = feature_mean_std(&mnist.train);
        assert!((mean - 0.1307).abs() < 5e-5, "mean {mean}");
        assert!((std - 0.3081).abs() < 5e-5, "std {std}");
    }
    // ANCHOR_END: stats_test
}
