//! # Chapter 03: autograd on tensors
//!
//! Chapter 01 differentiated scalars; this chapter does the same for the
//! tensors of chapter 02. A [`Tensor`] here wraps a raw tensor with the
//! bookkeeping of reverse-mode differentiation: each operation records a
//! node (its [`CustomOp`] and inputs), and [`Tensor::backward`] walks the
//! nodes in reverse topological order, calling each op's backward formula.
//!
//! Two tensor types meet here, and the names say which is which:
//!
//! - [`RawTensor`] is chapter 02's `Tensor`: numbers on a device, with no
//!   memory of how they were computed. Kernels, `CustomOp::forward` and
//!   optimiser updates work on it.
//! - [`Tensor`] (this crate's) wraps a `RawTensor` and records the
//!   operations applied to it, so gradients can flow back. Models, losses
//!   and `backward` work on it; [`Tensor::data`] gives the `RawTensor`
//!   inside, and [`Tensor::from_raw`] wraps one as a constant.

mod backward;
mod dot;
mod grad_mode;
mod gradcheck;
mod op;
mod ops;
mod sync;
mod tensor;

pub use backward::{grad, BackwardOptions};
pub use grad_mode::{
    detect_anomaly, is_anomaly_enabled, is_grad_enabled, no_grad, set_grad_enabled, AnomalyGuard,
    GradModeGuard,
};
pub use gradcheck::{gradcheck, GradcheckOptions, GradcheckReport};
pub use op::{BackwardCtx, CustomOp};
pub use tensor::Tensor;

/// Chapter 02's tensor, which this chapter wraps.
pub use chapter_02::Tensor as RawTensor;
pub use chapter_02::{DType, Device, Error, Result, Shape};
