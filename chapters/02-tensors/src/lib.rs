//! # Chapter 02: tensors and the device trait
//!
//! An n-dimensional array is a flat buffer plus a rule for finding element
//! `[i, j, k]` in it. This crate builds that rule ([`Layout`]: shape,
//! strides, offset), the views it makes free (transpose, slice, broadcast),
//! the element types ([`DType`]), and the [`Backend`] trait that keeps every
//! later chapter independent of where the numbers live. The CPU backend
//! ([`CpuBackend`]) implements it with plain loops and the `gemm` crate.

mod arith;
pub mod backend;
mod counting;
mod cpu;
mod device;
pub mod dispatch;
mod display;
mod dtype;
mod error;
mod layout;
mod ops;
pub mod philox;
mod random;
mod shape;
mod tensor;
mod views;

pub use backend::{
    Backend, BackendStorage, BinaryOp, CmpOp, Distribution, Instr, Program, RandomStream, ReduceOp,
    Storage, UnaryOp,
};
pub use counting::{CountingBackend, CountingDevice, Counts, COUNTING};
pub use cpu::pool::{
    buffer_for_overwrite, empty_cache as cpu_empty_cache, pool_stats as cpu_pool_stats,
    scratch_buffer, PoolStats as CpuPoolStats, ScratchBuffer,
};
pub use cpu::{join_kernel_threads, CpuBackend, CpuStorage};
pub use device::{
    default_device, known_device_kinds, register_device_kind, set_default_device, Device, DeviceId,
    DeviceKind, DeviceOpener,
};
pub use dispatch::{DispatchPath, InPlaceKernel, InPlaceOperator, Kernel, Operator};
pub use dtype::{bf16, f16, DType, Scalar, WithDType};
pub use error::{Error, Result};
pub use layout::{Layout, StridedOffsets};
pub use random::{
    default_generator_state, manual_seed, set_default_generator_state, with_default_generator,
    Generator, GeneratorState,
};
pub use shape::{Dim, Dims, Shape};
pub use tensor::Tensor;
