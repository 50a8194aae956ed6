//! # Chapter 01: scalar autograd
//!
//! Reverse-mode automatic differentiation on single numbers, the whole idea of
//! backpropagation in a few hundred lines, and a small neural network trained
//! with it.
//!
//! - [`Value`]: a scalar that records the operations applied to it, and
//!   [`Value::backward`], which computes the derivative of the result with
//!   respect to everything it was computed from.
//! - [`gradcheck`]: the finite-difference checks that keep us honest.
//! - [`Neuron`], [`Layer`], [`Mlp`]: a multi-layer perceptron on `Value`s.
//! - [`moons`], [`spirals`]: seeded two-dimensional toy data sets.
//! - [`train()`]: full-batch gradient descent on the hinge or logistic loss.
//! - [`Value::to_dot`] and [`plot`]: pictures of the graph and of what the
//!   network learned.
//!
//! ```
//! use chapter_01::Value;
//! let a = Value::new(3.0);
//! let b = &a * &a + 2.0 * &a; // b = a² + 2a
//! b.backward();
//! assert_eq!(b.grad(), 1.0);
//! assert_eq!(a.grad(), 8.0); // db/da = 2a + 2
//! ```

pub mod datasets;
pub mod dot;
pub mod gradcheck;
pub mod nn;
pub mod plot;
pub mod train;
pub mod value;

pub use datasets::{moons, spirals, standard_normal, Dataset};
pub use dot::example_graph;
pub use gradcheck::{central_difference, check_gradient, GradientMismatch};
pub use nn::{zero_grad, Activation, Init, Layer, Mlp, Neuron};
pub use train::{objective, train, Loss, Optimizer, Sgd, StepReport, TrainConfig};
pub use value::Value;
