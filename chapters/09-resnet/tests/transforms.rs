//! Lessons: `RandomAffine`, the shift-and-rotate augmentation.
//! `cargo test -p chapter-09 --test transforms`.

use chapter_02::Generator;
use chapter_06::data::Transform;
use chapter_09::RandomAffine;

/// An `h × w` image, zero but for `lit` pixels `(y, x, value)`.
fn image(h: usize, w: usize, lit: &[(usize, usize, f32)]) -> Vec<f32> {
    let mut x = vec![0.0; h * w];
    for &(y, xx, v) in lit {
        x[y * w + xx] = v;
    }
    x
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37).sin() + 1.5).collect()
}

#[test]
fn zero_shift_and_angle_is_the_identity() {
    let t = RandomAffine::new(0.0, 0.0).unwrap();
    let original = ramp(2 * 5 * 6);
    let mut x = original.clone();
    t.apply(&mut x, &[2, 5, 6], &mut Generator::new(1)).unwrap();
    assert_eq!(x, original);
    // A full turn is the identity too, up to rounding.
    let mut x = original.clone();
    t.apply_with(&mut x, &[2, 5, 6], 0.0, 0.0, 360.0).unwrap();
    for (a, b) in x.iter().zip(&original) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn a_whole_pixel_shift_moves_a_lit_pixel_exactly() {
    let t = RandomAffine::new(3.0, 0.0).unwrap();
    let mut x = image(6, 7, &[(2, 3, 1.0)]);
    // Two right, one up.
    t.apply_with(&mut x, &[6, 7], 2.0, -1.0, 0.0).unwrap();
    assert_eq!(x, image(6, 7, &[(1, 5, 1.0)]));
    // Off the edge: the picture is gone, zeros come in.
    t.apply_with(&mut x, &[6, 7], 2.0, 0.0, 0.0).unwrap();
    assert!(x.iter().all(|v| *v == 0.0));
    // Half a pixel: bilinear interpolation splits it in two.
    let mut x = image(4, 4, &[(1, 1, 1.0)]);
    t.apply_with(&mut x, &[4, 4], 0.5, 0.0, 0.0).unwrap();
    assert_eq!(x, image(4, 4, &[(1, 1, 0.5), (1, 2, 0.5)]));
}

#[test]
fn integer_shifts_only_move_whole_pixels() {
    let t = RandomAffine::new(2.0, 0.0).unwrap().integer_shifts();
    let mut rng = Generator::new(7);
    for _ in 0..20 {
        let mut x = image(9, 9, &[(4, 4, 1.0)]);
        t.apply(&mut x, &[1, 9, 9], &mut rng).unwrap();
        // The pixel lands, whole, within two pixels of where it was.
        let lit: Vec<usize> = (0..81).filter(|&i| x[i] != 0.0).collect();
        assert_eq!(lit.len(), 1, "{x:?}");
        assert_eq!(x[lit[0]], 1.0);
        let (y, xx) = (lit[0] / 9, lit[0] % 9);
        assert!(y.abs_diff(4) <= 2 && xx.abs_diff(4) <= 2);
    }
}

#[test]
fn a_quarter_turn_maps_corners_counter_clockwise() {
    // On the screen (y down), a counter-clockwise quarter turn takes the
    // top-left corner to the bottom-left, bottom-left to bottom-right,
    // bottom-right to top-right, top-right to top-left.
    let t = RandomAffine::new(0.0, 90.0).unwrap();
    let n = 5;
    let mut x = image(
        n,
        n,
        &[
            (0, 0, 1.0),
            (n - 1, 0, 2.0),
            (n - 1, n - 1, 3.0),
            (0, n - 1, 4.0),
        ],
    );
    t.apply_with(&mut x, &[1, n, n], 0.0, 0.0, 90.0).unwrap();
    let want = image(
        n,
        n,
        &[
            (n - 1, 0, 1.0),
            (n - 1, n - 1, 2.0),
            (0, n - 1, 3.0),
            (0, 0, 4.0),
        ],
    );
    for (i, (a, b)) in x.iter().zip(&want).enumerate() {
        assert!((a - b).abs() < 1e-5, "pixel {i}: {a} vs {b}");
    }
    // Every channel turns together, and an even-sized image about its
    // centre between pixels: −90° undoes +90°.
    let original = ramp(3 * 4 * 4);
    let mut x = original.clone();
    t.apply_with(&mut x, &[3, 4, 4], 0.0, 0.0, 90.0).unwrap();
    assert!(x.iter().zip(&original).any(|(a, b)| (a - b).abs() > 0.1));
    t.apply_with(&mut x, &[3, 4, 4], 0.0, 0.0, -90.0).unwrap();
    for (a, b) in x.iter().zip(&original) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn the_same_seed_gives_the_same_augmentation() {
    let t = RandomAffine::new(2.5, 15.0).unwrap();
    let original = ramp(8 * 8);
    let run = |seed: u64| {
        let mut rng = Generator::new(seed);
        (0..3)
            .map(|_| {
                let mut x = original.clone();
                t.apply(&mut x, &[8, 8], &mut rng).unwrap();
                x
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
    // Three draws per example, whatever the options.
    let mut a = Generator::new(5);
    let mut x = original.clone();
    RandomAffine::new(0.0, 0.0)
        .unwrap()
        .apply(&mut x, &[8, 8], &mut a)
        .unwrap();
    let mut b = Generator::new(5);
    (0..3).for_each(|_| {
        b.uniform(0.0, 1.0);
    });
    assert_eq!(a.next_word(), b.next_word());
}

#[test]
fn bad_options_and_shapes_are_refused() {
    for (shift, degrees, want) in [
        (f64::NAN, 0.0, "max_shift = NaN"),
        (-1.0, 0.0, "max_shift = -1"),
        (f64::INFINITY, 0.0, "max_shift = inf"),
        (1.0, -5.0, "max_degrees = -5"),
        (1.0, f64::NAN, "max_degrees = NaN"),
        (1.0, 270.0, "max_degrees = 270"),
    ] {
        let e = RandomAffine::new(shift, degrees).unwrap_err().to_string();
        assert!(e.starts_with("RandomAffine: ") && e.contains(want), "{e}");
    }
    let t = RandomAffine::new(1.0, 10.0).unwrap();
    let mut rng = Generator::new(0);
    let e = t
        .apply(&mut [0.0; 64], &[64], &mut rng)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[H, W] or [C, H, W], got [64]"), "{e}");
    let e = t
        .apply(&mut [0.0; 63], &[8, 8], &mut rng)
        .unwrap_err()
        .to_string();
    assert!(e.contains("63 values do not have shape [8, 8]"), "{e}");
    let e = t
        .apply(&mut [0.0; 16], &[1, 1, 4, 4], &mut rng)
        .unwrap_err()
        .to_string();
    assert!(e.contains("got [1, 1, 4, 4]"), "{e}");
}
