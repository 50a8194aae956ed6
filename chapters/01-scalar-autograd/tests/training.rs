//! Lessons about learning: the network, the data, the loss, the training
//! loop, and the figures. `cargo test -p chapter-01 training` runs the
//! training lessons.

use approx::assert_relative_eq;
use chapter_01::plot::{save_training_curve, DecisionBoundary};
use chapter_01::{
    moons, objective, spirals, train, Activation, Init, Layer, Loss, Mlp, Neuron, Sgd, StepReport,
    TrainConfig, Value,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The setting of the book: 100 moons points with noise 0.1 (seed 0),
/// `Mlp(2, [16, 16, 1])` with He initialisation (seed 1), 100 steps of
/// full-batch SGD with the learning rate falling from 1.0 to 0.1, and the
/// per-example loss plus 1e-4 · Σp².
fn train_on_moons(loss: Loss, steps: usize) -> (Vec<StepReport>, StepReport) {
    let data = moons(100, 0.1, 0);
    let model = Mlp::new(2, &[16, 16, 1], &mut ChaCha8Rng::seed_from_u64(1));
    let config = TrainConfig {
        steps,
        loss,
        alpha: 1e-4,
    };
    let mut sgd = Sgd {
        lr_start: 1.0,
        lr_end: 0.1,
        total_steps: 100,
    };
    let history = train(&model, &data, &config, &mut sgd, |_| {});
    let (_, after) = objective(&model, &data, loss, config.alpha);
    (history, after)
}

// ANCHOR: training_test
#[test]
fn training_on_moons_reaches_full_accuracy_with_hinge_loss() {
    let (history, after) = train_on_moons(Loss::Hinge, 100);
    let (first, last) = (history[0], history[99]);
    println!("step 0: {first:?}\nstep 99: {last:?}\nafter training: {after:?}");
    assert_eq!(
        after.accuracy, 1.0,
        "every training point classified correctly"
    );
    assert!(
        last.loss < 0.011,
        "micrograd's demo has 0.011 at step 99; we got {}",
        last.loss
    );
    assert!(last.loss < first.loss / 10.0);
}
// ANCHOR_END: training_test

#[test]
fn training_on_moons_reaches_full_accuracy_with_logistic_loss() {
    let (history, after) = train_on_moons(Loss::Logistic, 100);
    println!("step 99: {:?}\nafter training: {after:?}", history[99]);
    assert_eq!(after.accuracy, 1.0);
}

#[test]
fn training_is_deterministic_for_a_seed() {
    assert_eq!(
        train_on_moons(Loss::Hinge, 10),
        train_on_moons(Loss::Hinge, 10)
    );
}

#[test]
fn training_needs_a_good_initialisation() {
    // PyTorch's default scale, 1/√nin, shrinks the signal through two ReLU
    // layers: the same 100 steps end far from the He-initialised network.
    let data = moons(100, 0.1, 0);
    let mut losses = Vec::new();
    for init in [Init::PyTorch, Init::He] {
        let model = Mlp::with_init(2, &[16, 16, 1], init, &mut ChaCha8Rng::seed_from_u64(1));
        let config = TrainConfig {
            steps: 30,
            ..TrainConfig::default()
        };
        let mut sgd = Sgd {
            lr_start: 1.0,
            lr_end: 0.1,
            total_steps: 100,
        };
        losses.push(train(&model, &data, &config, &mut sgd, |_| {})[29].data_loss);
    }
    assert!(
        losses[1] < losses[0],
        "He {} vs PyTorch default {}",
        losses[1],
        losses[0]
    );
}

#[test]
fn sgd_learning_rate_falls_linearly() {
    let sgd = Sgd {
        lr_start: 1.0,
        lr_end: 0.1,
        total_steps: 100,
    };
    assert_relative_eq!(sgd.learning_rate(0), 1.0);
    assert_relative_eq!(sgd.learning_rate(50), 0.55);
    assert_relative_eq!(sgd.learning_rate(99), 1.0 - 0.9 * 0.99);
}

#[test]
fn hinge_loss_is_zero_beyond_the_margin() {
    let score = Value::new(1.5);
    let loss = Loss::Hinge.of(&score, 1.0);
    loss.backward();
    assert_eq!(loss.data(), 0.0);
    assert_eq!(
        score.grad(),
        0.0,
        "a confident, correct point does not pull"
    );
    let score = Value::new(0.25);
    let loss = Loss::Hinge.of(&score, 1.0);
    loss.backward();
    assert_eq!(loss.data(), 0.75);
    assert_eq!(score.grad(), -1.0);
}

#[test]
fn mlp_has_the_expected_number_of_parameters() {
    let model = Mlp::new(2, &[16, 16, 1], &mut ChaCha8Rng::seed_from_u64(0));
    // (2+1)·16 + (16+1)·16 + (16+1)·1
    assert_eq!(model.parameters().len(), 48 + 272 + 17);
    let layer = Layer::new(
        3,
        4,
        Activation::Relu,
        Init::He,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    assert_eq!(layer.parameters().len(), 16);
}

#[test]
fn neuron_computes_weighted_sum_plus_bias() {
    let mut neuron = Neuron::new(
        2,
        Activation::Linear,
        Init::He,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    neuron.weights = vec![Value::new(0.5), Value::new(-2.0)];
    neuron.bias = Value::new(0.25);
    let out = neuron.forward(&[Value::new(4.0), Value::new(1.0)]);
    assert_eq!(out.data(), 0.5 * 4.0 - 2.0 + 0.25);
    out.backward();
    assert_eq!(neuron.weights[0].grad(), 4.0);
    neuron.zero_grad();
    assert!(neuron.parameters().iter().all(|p| p.grad() == 0.0));
}

#[test]
fn mlp_zero_grad_clears_every_parameter() {
    let model = Mlp::new(2, &[4, 1], &mut ChaCha8Rng::seed_from_u64(3));
    let out = model
        .forward(&[Value::new(1.0), Value::new(-1.0)])
        .remove(0);
    (&out * &out).backward();
    assert!(model.parameters().iter().any(|p| p.grad() != 0.0));
    model.zero_grad();
    assert!(model.parameters().iter().all(|p| p.grad() == 0.0));
}

#[test]
fn moons_are_seeded_balanced_and_labelled_plus_minus_one() {
    let a = moons(100, 0.1, 7);
    assert_eq!(a, moons(100, 0.1, 7));
    assert_ne!(a, moons(100, 0.1, 8));
    assert_eq!(a.len(), 100);
    assert_eq!(a.labels.iter().filter(|&&l| l == 1.0).count(), 50);
    assert!(a.labels.iter().all(|&l| l == 1.0 || l == -1.0));
    // without noise the points lie exactly on the two half circles
    let clean = moons(11, 0.0, 0);
    for (p, &l) in clean.points.iter().zip(&clean.labels) {
        let center = if l < 0.0 { [0.0, 0.0] } else { [1.0, 0.5] };
        let r = ((p[0] - center[0]).powi(2) + (p[1] - center[1]).powi(2)).sqrt();
        assert_relative_eq!(r, 1.0, epsilon = 1e-12);
    }
}

#[test]
fn spirals_are_seeded_and_balanced() {
    let a = spirals(200, 0.05, 3);
    assert_eq!(a, spirals(200, 0.05, 3));
    assert_eq!(a.len(), 200);
    assert_eq!(a.labels.iter().filter(|&&l| l == -1.0).count(), 100);
}

#[test]
fn standard_normal_has_mean_zero_and_variance_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let samples: Vec<f64> = (0..20_000)
        .map(|_| chapter_01::standard_normal(&mut rng))
        .collect();
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
    assert!(mean.abs() < 0.03, "mean {mean}");
    assert!((var - 1.0).abs() < 0.05, "variance {var}");
}

#[test]
fn plot_writes_decision_boundary_and_training_curve_as_png_and_svg() {
    let data = moons(40, 0.1, 1);
    let model = Mlp::new(2, &[8, 1], &mut ChaCha8Rng::seed_from_u64(2));
    let config = TrainConfig {
        steps: 5,
        ..TrainConfig::default()
    };
    let mut sgd = Sgd {
        lr_start: 0.5,
        lr_end: 0.1,
        total_steps: 5,
    };
    let history = train(&model, &data, &config, &mut sgd, |_| {});
    let boundary = DecisionBoundary::compute(&model, &data, 40);
    let dir = std::env::temp_dir().join(format!("chapter-01-plot-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for ext in ["png", "svg"] {
        let path = dir.join(format!("boundary.{ext}"));
        boundary.save(&path, "test").unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
        let path = dir.join(format!("curve.{ext}"));
        save_training_curve(&history, &path, "test").unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
    }
    assert!(boundary.save(&dir.join("boundary.gif"), "test").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
