//! Registry kernels: operators of chapters 04 and 05 that deserve one
//! kernel of their own, registered for the CUDA device kinds.
//!
//! Chapter 04 declares softmax and log-softmax over the last dimension
//! (and their backward formulas) as [`Operator`](chapter_02::Operator)s,
//! chapter 05 does the same for layer norm; each comes with a composite
//! made of primitives that runs on any device. Here each gets a kernel of
//! `kernels/softmax.cu`, registered per (operator, device kind) with
//! [`register_kernel`], without editing chapters 04 and 05: one launch
//! that reads each row once or twice, instead of five to ten primitives
//! that each read and write the whole tensor.

mod adam;
mod layer_norm;
mod softmax;

use crate::backend::{CudaBackend, CudaStorage};
use crate::device::backend_of;
use crate::runtime::Runtime;
use chapter_02::dispatch::{register_in_place_kernel, register_kernel};
use chapter_02::{DeviceKind, Layout, Result, Shape, Tensor};
use chapter_04::softmax::{LogSoftmaxBackward, LogSoftmaxLastDim, SoftmaxBackward, SoftmaxLastDim};
use chapter_05::norm::{LayerNormBackward, LayerNormForward};
use chapter_06::optim::{AdamRule, UpdateStep};
use std::sync::Arc;

// ANCHOR: register_kernels
/// Registers every kernel of this module for device kind `kind`, whose
/// backends run on runtime `R`.
pub fn register_kernels<R: Runtime>(kind: DeviceKind) {
    // Registration fails only if another thread panicked while holding
    // the registry's lock; the composites then keep serving.
    let _ = register_kernel::<SoftmaxLastDim>(kind, softmax::softmax::<R>);
    let _ = register_kernel::<LogSoftmaxLastDim>(kind, softmax::log_softmax::<R>);
    let _ = register_kernel::<SoftmaxBackward>(kind, softmax::softmax_backward::<R>);
    let _ = register_kernel::<LogSoftmaxBackward>(kind, softmax::log_softmax_backward::<R>);
    let _ = register_kernel::<LayerNormForward>(kind, layer_norm::forward::<R>);
    let _ = register_kernel::<LayerNormBackward>(kind, layer_norm::backward::<R>);
    let _ = register_in_place_kernel::<UpdateStep<AdamRule>>(kind, adam::update::<R>);
}
// ANCHOR_END: register_kernels

/// A tensor's backend, and its storage on it.
fn on_device<R: Runtime>(t: &Tensor) -> Result<(Arc<CudaBackend<R>>, &CudaStorage<R>)> {
    let backend = backend_of::<R>(t.device())?;
    let storage = backend.cuda(t.storage().as_ref())?;
    Ok((backend, storage))
}

/// A contiguous result of `shape` on `device` as a tensor.
fn wrap<R: Runtime>(s: CudaStorage<R>, shape: impl Into<Shape>, t: &Tensor) -> Tensor {
    Tensor::from_storage(Arc::new(s), Layout::contiguous(shape), t.device().clone())
}
