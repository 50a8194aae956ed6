//! Lesson: what skip connections do to the gradient of the first layer,
//! the book's figure at a small size. `cargo test -p chapter-09 --test grad_norm`.

use chapter_03::DType;
use chapter_06::data::{default_data_dir, load_digits};
use chapter_09::experiments::{fixed_batch, GradNormExperiment, GradNormPoint};

fn find(points: &[GradNormPoint], depth: usize, residual: bool, step: usize) -> &GradNormPoint {
    points
        .iter()
        .find(|p| p.depth == depth && p.residual == residual && p.step == step)
        .unwrap()
}

/// With batch norm in every block, a plain network's first-layer gradient
/// does not vanish with depth: it *grows*, far faster than a residual
/// network's (batch norm's gradient explosion, Yang et al. 2019), and the
/// deep plain network trains worse. At depths 6 and 22, width 8, on 32
/// digits: the plain/residual ratio of `‖∂L/∂W₁‖` at initialisation grows
/// with depth, and after 15 steps the residual network's loss is the lower.
#[test]
fn skips_keep_the_first_layer_gradient_in_scale_as_depth_grows() {
    let digits = load_digits(default_data_dir().join("digits/digits.csv.gz")).unwrap();
    let device = chapter_02::default_device().unwrap();
    let (x, labels) = fixed_batch(&digits, 32, 9, DType::F32, &device).unwrap();
    assert_eq!(x.dims(), vec![32, 1, 8, 8]);
    let experiment = GradNormExperiment {
        depths: vec![6, 22],
        width: 8,
        steps: 15,
        seeds: vec![0, 1],
        lr: 0.05,
    };
    let points = experiment.run(&x, &labels, 10, |_| {}).unwrap();
    assert_eq!(points.len(), 2 * 2 * 2);
    assert!(points
        .iter()
        .all(|p| p.first_layer.is_finite() && p.first_layer > 0.0));
    let ratio = |depth| {
        find(&points, depth, false, 0).first_layer / find(&points, depth, true, 0).first_layer
    };
    let (shallow, deep) = (ratio(6), ratio(22));
    assert!(
        deep > 2.0 * shallow,
        "plain/residual at init: depth 6 {shallow}, depth 22 {deep}"
    );
    let loss = |residual| find(&points, 22, residual, 15).loss;
    assert!(
        loss(true) < loss(false),
        "after 15 steps: residual {} plain {}",
        loss(true),
        loss(false)
    );
    // Training lowers the residual network's loss from its start.
    assert!(loss(true) < find(&points, 22, true, 0).loss);
}

#[test]
fn the_experiment_refuses_nothing_to_measure_and_oversized_batches() {
    let digits = load_digits(default_data_dir().join("digits/digits.csv.gz")).unwrap();
    let device = chapter_02::default_device().unwrap();
    let e = fixed_batch(&digits, 5000, 0, DType::F32, &device).unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot draw 5000 examples from a dataset of 1797"),
        "{e}"
    );
    let (x, y) = fixed_batch(&digits, 4, 0, DType::F32, &device).unwrap();
    let none = GradNormExperiment {
        seeds: vec![],
        ..GradNormExperiment::default()
    };
    assert!(none.run(&x, &y, 10, |_| {}).is_err());
    let odd = GradNormExperiment {
        depths: vec![7],
        ..GradNormExperiment::default()
    };
    assert!(odd
        .run(&x, &y, 10, |_| {})
        .unwrap_err()
        .to_string()
        .contains("depth 7"));
}
