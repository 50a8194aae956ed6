//! The chapter's exercises. Each one is a stub in this file plus a test that
//! is ignored until you solve it. Fill in the stub, then run
//!
//! ```text
//! cargo test -p chapter-01 --test exercises -- --ignored
//! ```
//!
//! (or delete the `#[ignore]` line of one test). Everything here uses only the
//! public API, exactly as a user of the library would extend it.

use approx::assert_relative_eq;
use chapter_01::{check_gradient, moons, train, Loss, Mlp, Optimizer, Sgd, TrainConfig, Value};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------
// ANCHOR: exercise_sin
/// Exercise 1: a new operation, sin x.
///
/// Build it with [`Value::from_op`]: the forward result is sin x, and the
/// local derivative ∂out/∂x is cos x.
fn sin(x: &Value) -> Value {
    let _ = x;
    todo!("exercise 1: return Value::from_op(forward, \"sin\", [(x, local derivative)])")
}
// ANCHOR_END: exercise_sin

#[test]
#[ignore = "exercise 1: implement sin() in tests/exercises.rs"]
fn exercise_sin_gradient_matches_central_difference() {
    assert_relative_eq!(sin(&Value::new(std::f64::consts::FRAC_PI_2)).data(), 1.0);
    for x in [-2.0, -0.5, 0.0, 1.0, 3.0] {
        check_gradient(|v| sin(&v[0]), &[x]).unwrap();
    }
    // composed with other operations: d/dx sin(x·y) = y·cos(x·y)
    check_gradient(|v| sin(&(&v[0] * &v[1])), &[0.7, -1.3]).unwrap();
}

// ---------------------------------------------------------------------------
// ANCHOR: exercise_leaky_relu
/// Exercise 2: leaky ReLU, which keeps a small slope for negative inputs so
/// that a neuron stuck on the negative side still receives gradient:
/// out = x for x > 0, slope·x otherwise; ∂out/∂x = 1 or slope.
fn leaky_relu(x: &Value, slope: f64) -> Value {
    let _ = (x, slope);
    todo!("exercise 2: leaky ReLU with Value::from_op")
}
// ANCHOR_END: exercise_leaky_relu

#[test]
#[ignore = "exercise 2: implement leaky_relu() in tests/exercises.rs"]
fn exercise_leaky_relu_passes_a_small_gradient_for_negative_inputs() {
    assert_eq!(leaky_relu(&Value::new(2.0), 0.01).data(), 2.0);
    assert_eq!(leaky_relu(&Value::new(-2.0), 0.01).data(), -0.02);
    let x = Value::new(-3.0);
    leaky_relu(&x, 0.1).backward();
    assert_relative_eq!(x.grad(), 0.1);
    for x in [-1.5, -0.2, 0.3, 2.0] {
        check_gradient(|v| leaky_relu(&v[0], 0.05), &[x]).unwrap();
    }
}

// ---------------------------------------------------------------------------
// ANCHOR: exercise_momentum
/// Exercise 3: SGD with momentum. Each parameter keeps a velocity, a running
/// sum of its past gradients, and moves along it:
///
/// v ← β·v + ∂L/∂p,    p ← p − lr·v
///
/// so a direction that the gradient keeps pointing to gathers speed, and
/// zig-zags cancel out. Start with v = 0 for every parameter.
struct Momentum {
    lr: f64,
    beta: f64,
    /// One velocity per parameter, created on the first step.
    velocity: Vec<f64>,
}

impl Optimizer for Momentum {
    fn step(&mut self, params: &[Value], _step: usize) {
        let _ = (params, self.lr, self.beta, &mut self.velocity);
        todo!("exercise 3: update self.velocity and the parameters")
    }
}
// ANCHOR_END: exercise_momentum

#[test]
#[ignore = "exercise 3: implement Momentum::step in tests/exercises.rs"]
fn exercise_momentum_accumulates_velocity() {
    // L = 2p has ∂L/∂p = 2 at every step.
    let p = Value::new(1.0);
    let mut momentum = Momentum {
        lr: 0.1,
        beta: 0.9,
        velocity: Vec::new(),
    };
    for step in 0..2 {
        p.zero_grad();
        (2.0 * &p).backward();
        momentum.step(std::slice::from_ref(&p), step);
    }
    // v₁ = 2, p₁ = 1 − 0.2 = 0.8;  v₂ = 0.9·2 + 2 = 3.8, p₂ = 0.8 − 0.38
    assert_relative_eq!(p.data(), 0.42, epsilon = 1e-12);
}

#[test]
#[ignore = "exercise 3: implement Momentum::step in tests/exercises.rs"]
fn exercise_momentum_trains_faster_than_plain_sgd() {
    // With a small constant learning rate, 40 steps of plain SGD leave the
    // moons half-learned (loss ≈ 0.35, 82% correct); momentum, whose steps
    // grow up to 1/(1 − β) = 10× longer along a steady gradient, gets further.
    let data = moons(100, 0.1, 0);
    let config = TrainConfig {
        steps: 40,
        loss: Loss::Hinge,
        alpha: 1e-4,
    };
    let fresh = || Mlp::new(2, &[16, 16, 1], &mut ChaCha8Rng::seed_from_u64(1));

    let model = fresh();
    let mut sgd = Sgd {
        lr_start: 0.05,
        lr_end: 0.05,
        total_steps: 40,
    };
    let plain = train(&model, &data, &config, &mut sgd, |_| {});

    let model = fresh();
    let mut momentum = Momentum {
        lr: 0.05,
        beta: 0.9,
        velocity: Vec::new(),
    };
    let fast = train(&model, &data, &config, &mut momentum, |_| {});

    let (plain, fast) = (plain[39], fast[39]);
    assert!(
        fast.loss < 0.7 * plain.loss,
        "momentum {fast:?} vs plain {plain:?}"
    );
    assert!(
        fast.accuracy > plain.accuracy,
        "momentum {fast:?} vs plain {plain:?}"
    );
}

// ---------------------------------------------------------------------------
// ANCHOR: exercise_max
/// Exercise 4: the maximum of two values. Its derivative is 1 for the larger
/// input and 0 for the other (pick `a` on a tie): max routes the whole
/// gradient to the winner, which is how max-pooling layers backpropagate.
fn max(a: &Value, b: &Value) -> Value {
    let _ = (a, b);
    todo!("exercise 4: max with Value::from_op and two inputs")
}
// ANCHOR_END: exercise_max

#[test]
#[ignore = "exercise 4: implement max() in tests/exercises.rs"]
fn exercise_max_routes_the_gradient_to_the_larger_input() {
    let (a, b) = (Value::new(1.5), Value::new(-0.5));
    let m = max(&a, &b);
    assert_eq!(m.data(), 1.5);
    (&m * 3.0).backward();
    assert_eq!((a.grad(), b.grad()), (3.0, 0.0));
    check_gradient(|v| max(&v[0], &v[1]) * &v[1], &[0.2, 0.9]).unwrap();
    check_gradient(|v| max(&v[0], &v[1]) * &v[1], &[1.2, 0.9]).unwrap();
}
