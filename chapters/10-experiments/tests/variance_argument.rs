//! The variance argument, checked against the experiments' own code at a
//! small size: the predicted *trend*, not a stored number.

use chapter_10::activations::{layer_stats, mean_ratio, predicted_ratio};
use chapter_10::grad_norm::{summary, GradNormSweep};
use chapter_10::{Init, Progress};

/// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
fn dev() -> chapter_03::Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

// ANCHOR: variance_test
/// Depth 20 with ReLU: under Xavier the spread of the pre-activations
/// shrinks by about 1/√2 per layer; under Kaiming it stays in a small band.
#[test]
fn variance_argument_xavier_relu_decays_by_one_over_root_two() {
    let (depth, width, batch) = (20, 256, 64);
    let xavier = layer_stats(Init::Xavier, true, depth, width, batch, 0, &dev()).unwrap();
    let ratio = mean_ratio(&xavier);
    let predicted = predicted_ratio(Init::Xavier, true, width);
    assert!((predicted - 0.5f64.sqrt()).abs() < 1e-12);
    assert!(
        (ratio - predicted).abs() < 0.05,
        "Xavier + ReLU: measured {ratio:.4} per layer, predicted {predicted:.4}"
    );
    // Twenty layers of 1/√2: the last layer's spread is about 2⁻⁹·⁵ of the first's.
    assert!(xavier[depth - 1].std < xavier[0].std / 200.0);

    let kaiming = layer_stats(Init::Kaiming, true, depth, width, batch, 0, &dev()).unwrap();
    let first = kaiming[0].std;
    for s in &kaiming {
        assert!(
            s.std > first / 2.0 && s.std < first * 2.0,
            "Kaiming + ReLU: layer {} has std {:.4}, layer 1 {first:.4}",
            s.layer,
            s.std
        );
    }
    assert!((predicted_ratio(Init::Kaiming, true, width) - 1.0).abs() < 1e-12);
}
// ANCHOR_END: variance_test

/// Without ReLU the roles swap: Xavier keeps the spread, Kaiming (twice
/// the variance) grows it by √2 per layer.
#[test]
fn variance_argument_linear_stack_swaps_the_roles() {
    let (depth, width, batch) = (12, 256, 64);
    let xavier =
        mean_ratio(&layer_stats(Init::Xavier, false, depth, width, batch, 1, &dev()).unwrap());
    let kaiming =
        mean_ratio(&layer_stats(Init::Kaiming, false, depth, width, batch, 1, &dev()).unwrap());
    assert!(
        (xavier - 1.0).abs() < 0.05,
        "Xavier linear: {xavier:.4} per layer"
    );
    assert!(
        (kaiming - 2f64.sqrt()).abs() < 0.07,
        "Kaiming linear: {kaiming:.4} per layer"
    );
}

fn tiny_sweep(depths: Vec<usize>, widths: Vec<usize>) -> GradNormSweep {
    GradNormSweep {
        depths,
        widths,
        trials: 3,
        steps: 0,
        lr: 0.01,
        record_at: vec![0],
        batch: 32,
    }
}

// ANCHOR: grad_depth_test
/// The first layer's gradient: under Xavier it shrinks with depth (by about
/// 1/2 per layer in squared norm); under Kaiming it does not.
#[test]
fn grad_norm_vanishes_with_depth_under_xavier_not_kaiming() {
    let sweep = tiny_sweep(vec![2, 12], vec![64]);
    let cells = sweep.run(&dev(), &mut Progress::silent()).unwrap();
    let g = |init: Init, depth: usize| {
        let c = cells
            .iter()
            .find(|c| c.init == init && c.depth == depth)
            .unwrap();
        summary(&c.grad_sq[0]).0
    };
    let xavier = g(Init::Xavier, 12) / g(Init::Xavier, 2);
    let kaiming = g(Init::Kaiming, 12) / g(Init::Kaiming, 2);
    // Ten more layers: 2⁻¹⁰ ≈ 0.001 predicted.
    assert!(xavier < 0.02, "Xavier: depth 12 / depth 2 = {xavier:.2e}");
    assert!(
        (0.1..10.0).contains(&kaiming),
        "Kaiming: depth 12 / depth 2 = {kaiming:.3}"
    );
}
// ANCHOR_END: grad_depth_test

/// Against width the picture is flat for both: the variance argument has no
/// width in it (for square layers), only depth. Xavier stays below Kaiming
/// by the depth's factor at every width.
#[test]
fn grad_norm_does_not_depend_on_width() {
    let sweep = tiny_sweep(vec![6], vec![16, 128]);
    let cells = sweep.run(&dev(), &mut Progress::silent()).unwrap();
    let g = |init: Init, width: usize| {
        let c = cells
            .iter()
            .find(|c| c.init == init && c.width == width)
            .unwrap();
        summary(&c.grad_sq[0]).0
    };
    let kaiming = g(Init::Kaiming, 128) / g(Init::Kaiming, 16);
    assert!(
        (0.2..5.0).contains(&kaiming),
        "Kaiming: width 128 / width 16 = {kaiming:.3}"
    );
    for w in [16, 128] {
        let r = g(Init::Xavier, w) / g(Init::Kaiming, w);
        assert!(r < 0.3, "width {w}: Xavier / Kaiming = {r:.3}");
    }
}

/// A sweep that records an iteration it never reaches is refused.
#[test]
fn grad_norm_sweep_rejects_a_record_past_the_last_step() {
    let mut sweep = tiny_sweep(vec![2], vec![8]);
    sweep.record_at = vec![0, 5];
    let err = sweep.run(&dev(), &mut Progress::silent()).unwrap_err();
    assert!(err.to_string().contains("iteration 5"), "{err}");
}
