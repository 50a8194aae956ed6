//! Lesson: per-example transforms. Normalisation is arithmetic; augmentation
//! (crop, flip) is random but seeded, and we can check it exactly by replaying
//! the generator. `cargo test -p chapter-06 transform` runs these.

mod data_transforms {
    use chapter_02::Generator;
    use chapter_06::data::{Compose, Normalize, RandomCrop, RandomHorizontalFlip, Transform};

    /// A `[c, h, w]` image whose pixels are 1, 2, 3, ... (so none is 0 = fill).
    fn image(c: usize, h: usize, w: usize) -> Vec<f32> {
        (1..=c * h * w).map(|v| v as f32).collect()
    }

    // ANCHOR: flip_twice
    #[test]
    fn transform_flip_twice_is_the_identity() {
        let flip = RandomHorizontalFlip::new(1.0).unwrap();
        let mut rng = Generator::new(0);
        let original = image(2, 3, 4);
        let mut x = original.clone();
        flip.apply(&mut x, &[2, 3, 4], &mut rng).unwrap();
        // Each row reversed: [1, 2, 3, 4] -> [4, 3, 2, 1].
        assert_eq!(x[..4], [4.0, 3.0, 2.0, 1.0]);
        assert_ne!(x, original);
        flip.apply(&mut x, &[2, 3, 4], &mut rng).unwrap();
        assert_eq!(x, original);
    }
    // ANCHOR_END: flip_twice

    #[test]
    fn transform_flip_probability_is_respected() {
        let mut rng = Generator::new(3);
        let never = RandomHorizontalFlip::new(0.0).unwrap();
        let half = RandomHorizontalFlip::new(0.5).unwrap();
        let original = image(1, 2, 3);
        let mut x = original.clone();
        never.apply(&mut x, &[2, 3], &mut rng).unwrap();
        assert_eq!(x, original);
        let flipped = (0..2000)
            .filter(|_| {
                let mut x = original.clone();
                half.apply(&mut x, &[2, 3], &mut rng).unwrap();
                x != original
            })
            .count();
        assert!((900..1100).contains(&flipped), "{flipped} of 2000 flipped");
        assert!(RandomHorizontalFlip::new(1.5).is_err());
    }

    // ANCHOR: crop_content
    #[test]
    fn transform_crop_with_padding_shifts_the_image_and_fills_the_border() {
        let crop = RandomCrop::new(2);
        // 1 channel, 3x4:      crop_at(dy = 1, dx = 3) shifts by (-1, +1):
        //  1  2  3  4          0  0  0  0
        //  5  6  7  8   ->     2  3  4  0
        //  9 10 11 12          6  7  8  0
        let mut x = image(1, 3, 4);
        crop.crop_at(&mut x, &[1, 3, 4], 1, 3).unwrap();
        assert_eq!(x, [0., 0., 0., 0., 2., 3., 4., 0., 6., 7., 8., 0.]);
        // (padding, padding) is the identity; the shape never changes.
        let mut x = image(2, 3, 4);
        crop.crop_at(&mut x, &[2, 3, 4], 2, 2).unwrap();
        assert_eq!(x, image(2, 3, 4));
        assert!(crop.crop_at(&mut x, &[2, 3, 4], 5, 0).is_err());
    }
    // ANCHOR_END: crop_content

    #[test]
    fn transform_random_crop_replays_from_the_generator() {
        let crop = RandomCrop::new(3).with_fill(-1.0);
        let mut rng = Generator::new(11);
        for _ in 0..50 {
            // The same draws, replayed: dy then dx, each in 0..=6.
            let mut replay = rng.clone();
            let (dy, dx) = (replay.below(7), replay.below(7));
            let mut x = image(3, 5, 5);
            let mut expected = x.clone();
            crop.apply(&mut x, &[3, 5, 5], &mut rng).unwrap();
            crop.crop_at(&mut expected, &[3, 5, 5], dy, dx).unwrap();
            assert_eq!(x, expected);
            // Every pixel is either fill or an original value shifted by (dy-3, dx-3).
            for c in 0..3 {
                for y in 0..5 {
                    for xx in 0..5 {
                        let v = x[c * 25 + y * 5 + xx];
                        let (sy, sx) =
                            (y as isize + dy as isize - 3, xx as isize + dx as isize - 3);
                        if (0..5).contains(&sy) && (0..5).contains(&sx) {
                            assert_eq!(v, (c * 25 + sy as usize * 5 + sx as usize + 1) as f32);
                        } else {
                            assert_eq!(v, -1.0);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transform_normalize_global_and_per_channel() {
        let mut rng = Generator::new(0);
        let mut x = vec![0.0, 0.5, 1.0, 1.0];
        Normalize::global(0.5, 0.25)
            .unwrap()
            .apply(&mut x, &[4], &mut rng)
            .unwrap();
        assert_eq!(x, [-2.0, 0.0, 2.0, 2.0]);
        // Two channels of 2 pixels each.
        let mut x = vec![1.0, 3.0, 10.0, 30.0];
        let norm = Normalize::new(&[2.0, 20.0], &[1.0, 10.0]).unwrap();
        norm.apply(&mut x, &[2, 1, 2], &mut rng).unwrap();
        assert_eq!(x, [-1.0, 1.0, -1.0, 1.0]);
        let e = norm.apply(&mut x, &[4], &mut rng).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Normalize: has statistics for 2 channels but the example has shape [4]"
        );
        assert!(Normalize::global(0.0, 0.0).is_err());
        assert!(Normalize::new(&[0.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn transform_compose_applies_in_order() {
        let mut rng = Generator::new(0);
        let t = Compose::new()
            .then(RandomHorizontalFlip::new(1.0).unwrap())
            .then(Normalize::global(1.0, 2.0).unwrap());
        let mut x = vec![1.0, 3.0, 5.0];
        t.apply(&mut x, &[1, 3], &mut rng).unwrap();
        assert_eq!(x, [2.0, 1.0, 0.0]);
        // Image transforms reject flat features with a hint.
        let e = t.apply(&mut x, &[3], &mut rng).unwrap_err().to_string();
        assert!(e.contains("with_feature_shape(&[1, 28, 28])"), "{e}");
    }
}
