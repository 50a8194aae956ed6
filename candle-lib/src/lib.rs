//! # Candle
//!
//! The chapters of the Candle book, stacked into one library. Each chapter is its
//! own crate (`chapter-01`, `chapter-02`, ...); this crate re-exports them under
//! module names that say what they hold, and offers a [`prelude`] that brings the
//! everyday types into scope with one `use`.

/// Chapter 01: reverse-mode automatic differentiation on scalars (`Value`).
pub mod scalar {
    pub use chapter_01::*;
}

/// Chapter 02: raw n-dimensional tensors, dtypes, devices and the CPU backend.
pub mod tensor {
    pub use chapter_02::*;
}

/// Chapter 03: the autograd engine (the `Tensor` you train with).
pub mod autograd {
    pub use chapter_03::*;
}

/// Chapter 04: every differentiable operation, as extension traits.
pub mod ops {
    pub use chapter_04::prelude::*;
    pub use chapter_04::{elementwise, index, product, reduce, shape, softmax};
}

/// Chapter 05: modules, layers, initialisers, losses, state dicts.
pub mod nn {
    pub use chapter_05::*;
}

/// Chapter 06: optimisers, schedules, data, the training loop, checkpoints, metrics.
pub mod train {
    pub use chapter_06::*;
}

/// Chapter 08: GPT: attention and the KV cache, GPT-2's tokenizer and
/// weights, sampling.
pub mod gpt {
    pub use chapter_08::*;
}

/// Chapter 09: convolutions (im2col), pooling and batch norm for images.
pub mod vision {
    pub use chapter_09::*;
}

/// Chapter 10: initialisation experiments, and the book's figure style.
pub mod experiments {
    pub use chapter_10::*;
}

/// Chapter 07: the CUDA backend, its kernels and the CUDA emulator. Call
/// [`cuda::register`] once to make the `cuda` and `cuda-emu` devices known
/// to `Device::parse` and `CANDLE_DEVICE` (the `candle` command does).
#[cfg(feature = "cuda")]
pub mod cuda {
    pub use chapter_07::*;
}

pub mod commands;

// The measurement examples are also compiled into `candle experiment`,
// and they name this crate `candle`.
extern crate self as candle;

/// The everyday types, in one `use candle::prelude::*;`.
pub mod prelude {
    pub use chapter_02::{default_device, manual_seed, DType, Device, DeviceKind, Shape};
    pub use chapter_03::{no_grad, Tensor};
    pub use chapter_04::prelude::*;
    pub use chapter_05::loss::{cross_entropy, CrossEntropyOptions};
    pub use chapter_05::{Linear, Module, ModuleExt, Sequential, StateDictExt};
    pub use chapter_06::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
}
