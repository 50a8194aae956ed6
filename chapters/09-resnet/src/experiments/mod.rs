//! Experiments the book's figures come from, as library code so that tests
//! can run them at a small size.

pub mod grad_norm;

pub use grad_norm::{fixed_batch, GradNormExperiment, GradNormPoint};
