//! The chapter's exercises: fill in a `todo!()`, then run
//! `cargo test -p chapter-10 --test exercises -- --ignored`.

use chapter_10::activations::{layer_stats, mean_ratio, predicted_ratio};
use chapter_10::Init;

// ANCHOR: leaky_ratio
/// Exercise 1. The per-layer ratio of pre-activation spreads in a stack of
/// square layers of `width` drawn by `init`, when each layer is followed by
/// a leaky ReLU of negative `slope` (`x` for `x > 0`, `slope · x` otherwise).
/// Hint: what fraction of `E[z²]` survives a leaky ReLU of a symmetric `z`?
fn leaky_relu_ratio(init: Init, slope: f64, width: usize) -> f64 {
    let _ = (init, slope, width);
    todo!("exercise 1")
}
// ANCHOR_END: leaky_ratio

#[test]
#[ignore = "exercise 1: fill in leaky_relu_ratio"]
fn exercise_leaky_relu_ratio() {
    for init in Init::BOTH {
        // Slope 0 is a ReLU; slope 1 is no nonlinearity at all.
        assert!((leaky_relu_ratio(init, 0.0, 256) - predicted_ratio(init, true, 256)).abs() < 1e-9);
        assert!(
            (leaky_relu_ratio(init, 1.0, 256) - predicted_ratio(init, false, 256)).abs() < 1e-9
        );
    }
    // Slope 0.5 under Xavier: √((1 + 0.25) / 2) ≈ 0.79 per layer.
    assert!((leaky_relu_ratio(Init::Xavier, 0.5, 256) - (0.625f64).sqrt()).abs() < 1e-9);
}

// ANCHOR: layers_to_shrink
/// Exercise 2. How many layers of Xavier + ReLU (width 256) it takes for
/// the spread of the pre-activations to fall to a thousandth of the first
/// layer's, from the variance argument alone (no measuring).
fn layers_to_shrink_a_thousandfold() -> usize {
    todo!("exercise 2")
}
// ANCHOR_END: layers_to_shrink

#[test]
#[ignore = "exercise 2: fill in layers_to_shrink_a_thousandfold"]
fn exercise_layers_to_shrink() {
    let n = layers_to_shrink_a_thousandfold();
    // Check the prediction against the experiment's own code.
    let stats = layer_stats(
        Init::Xavier,
        true,
        n + 1,
        256,
        64,
        0,
        &chapter_02::default_device().unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap();
    let fallen = stats[0].std / stats[n].std;
    assert!(
        (500.0..2000.0).contains(&fallen),
        "after {n} layers the spread fell {fallen:.0}×"
    );
    assert!(mean_ratio(&stats) < 0.75);
}
