//! Element types.
//!
//! A tensor's bytes mean nothing without a dtype. We keep four: `f32` (the
//! working type of deep learning), `f64` (for gradient checks, where we need
//! the extra digits), `i64` (indices and class labels, as in PyTorch) and `u8`
//! (booleans: masks and the results of comparisons).

use std::fmt;

// ANCHOR: dtype
/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    I64,
    U8,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
            DType::I64 => 8,
            DType::U8 => 1,
        }
    }

    /// Whether this is a floating-point type (the only ones that carry gradients).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
}
// ANCHOR_END: dtype

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::U8 => "u8",
        };
        f.write_str(s)
    }
}

/// A Rust scalar type that can be a tensor element.
///
/// It ties a Rust type to its [`DType`] and says how to move values in and out
/// of the host-side [`CpuStorage`](crate::CpuStorage), so that `Tensor::from_vec`
/// and `to_vec` can be generic.
pub trait WithDType: Copy + Send + Sync + 'static + fmt::Debug + PartialOrd {
    const DTYPE: DType;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn to_storage(data: Vec<Self>) -> crate::CpuStorage;
    fn from_storage(s: &crate::CpuStorage) -> Option<&[Self]>;
}

macro_rules! with_dtype {
    ($t:ty, $variant:ident) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$variant;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_storage(data: Vec<Self>) -> crate::CpuStorage {
                crate::CpuStorage::$variant(data)
            }
            fn from_storage(s: &crate::CpuStorage) -> Option<&[Self]> {
                match s {
                    crate::CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
with_dtype!(f32, F32);
with_dtype!(f64, F64);
with_dtype!(i64, I64);
with_dtype!(u8, U8);
