//! # Chapter 07: a GPU backend with our own kernels
//!
//! Chapters 02–06 run on the CPU through the small [`chapter_02::Backend`]
//! trait and the kernel registry. This chapter adds NVIDIA GPUs without
//! editing them: a backend on the CUDA driver API (through `cudarc`, loaded
//! at run time), kernels written here in CUDA C, and an emulator that
//! compiles the same kernel files for the CPU so that every kernel is
//! tested on a machine without a GPU.

pub mod allocator;
pub mod backend;
pub mod codegen;
pub mod cublas;
pub mod device;
pub mod driver;
pub mod emulator;
pub mod nvrtc;
pub mod ops;
pub mod ptx;
pub mod runtime;

pub use backend::{CudaBackend, CudaStorage};
pub use device::{backend_of, open_emulator, open_gpu, register, CUDA, CUDA_EMU};
pub use emulator::{Emulator, Schedule};
pub use runtime::{DevicePtr, LaunchConfig, Runtime};
