//! Errors of tensor operations.
//!
//! Every error names the operation that failed and the shapes (or dtypes, or
//! devices) it was given, so that `add: cannot broadcast [2, 3] with [4]` tells
//! you what went wrong without a debugger.

use crate::{DType, Shape};

// ANCHOR: error
/// What can go wrong in a tensor operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two shapes that the operation needs to agree (after broadcasting) do not.
    #[error("{op}: cannot broadcast {lhs} with {rhs}")]
    Broadcast {
        op: &'static str,
        lhs: Shape,
        rhs: Shape,
    },

    /// Two shapes that must agree exactly (or in one dimension) do not.
    #[error("{op}: shape mismatch {lhs} vs {rhs}{detail}")]
    ShapeMismatch {
        op: &'static str,
        lhs: Shape,
        rhs: Shape,
        detail: String,
    },

    /// The operands of a binary operation have different element types.
    #[error("{op}: dtype mismatch {lhs} vs {rhs}")]
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },

    /// The operation is not defined for this element type (e.g. `exp` of `i64`).
    #[error("{op}: not supported for dtype {dtype}")]
    UnsupportedDType { op: &'static str, dtype: DType },

    /// The operands live on different devices.
    #[error("{op}: device mismatch {lhs} vs {rhs}")]
    DeviceMismatch {
        op: &'static str,
        lhs: String,
        rhs: String,
    },

    /// A dimension index is outside `-rank..rank`.
    #[error("{op}: dimension {dim} out of range for a tensor of shape {shape}")]
    DimOutOfRange {
        op: &'static str,
        dim: isize,
        shape: Shape,
    },

    /// The device failed: out of memory, a driver error, an index found out
    /// of range by a kernel. The tensors involved stay valid and the
    /// process can go on.
    #[error("{op} on {device}: {msg}")]
    Device {
        op: &'static str,
        device: String,
        msg: String,
    },

    /// Anything else, with a sentence saying what.
    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },
}
// ANCHOR_END: error

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Invalid {
            op,
            msg: msg.into(),
        }
    }
}

impl Error {
    /// Shorthand for [`Error::Device`].
    pub fn device(
        op: &'static str,
        device: impl std::fmt::Display,
        msg: impl Into<String>,
    ) -> Self {
        Error::Device {
            op,
            device: device.to_string(),
            msg: msg.into(),
        }
    }
}

/// The result type of fallible tensor operations.
pub type Result<T> = std::result::Result<T, Error>;
