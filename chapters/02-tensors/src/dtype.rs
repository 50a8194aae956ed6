//! Element types.
//!
//! A tensor's bytes mean nothing without a dtype. We keep six: `f32` (the
//! working type of deep learning), `f64` (for gradient checks, where we need
//! the extra digits), `f16` and `bf16` (half-size storage for weights and
//! activations), `i64` (indices and class labels, as in PyTorch) and `u8`
//! (booleans: masks and the results of comparisons).
//!
//! Everything that depends on the Rust type behind a dtype is written once,
//! here: the [`WithDType`] trait ties each Rust type to its [`DType`], and the
//! macro [`with_dtype!`](crate::with_dtype) is the one place that turns a
//! runtime `DType` into a Rust type. Adding a dtype means adding a variant,
//! an impl of `WithDType` and a line of that macro (and of
//! [`CpuStorage`](crate::CpuStorage)), nothing else.

use std::fmt;

pub use half::{bf16, f16};

// ANCHOR: dtype
/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE half precision: 5 exponent bits, 10 mantissa bits (max 65504).
    F16,
    /// "Brain float": `f32`'s 8 exponent bits with 7 mantissa bits, so the
    /// same range as `f32` at a quarter of its precision.
    BF16,
    F32,
    F64,
    I64,
    U8,
}

impl DType {
    /// Every dtype, in declaration order (for tests and messages).
    pub const ALL: [DType; 6] = [
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::I64,
        DType::U8,
    ];

    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::U8 => 1,
        }
    }

    /// Whether this is a floating-point type (the only ones that carry gradients).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    /// Whether this is one of the 16-bit float types, which are stored
    /// small but computed in `f32`.
    pub fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }

    /// The type arithmetic on this dtype runs in: `f32` for the half types
    /// (each result is rounded back once), the dtype itself otherwise.
    pub fn compute_dtype(self) -> DType {
        if self.is_half() {
            DType::F32
        } else {
            self
        }
    }

    /// The dtype named `f16`, `bf16`, `f32`, `f64`, `i64` or `u8`.
    pub fn parse(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The short name: `f32`, `bf16`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::U8 => "u8",
        }
    }
}
// ANCHOR_END: dtype

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number in transit between two element types: floats travel as `f64`
/// and integers as `i64`, both exactly, so a cast needs one rounding at
/// most, at the destination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    Float(f64),
    Int(i64),
}

// ANCHOR: with_dtype_trait
/// A Rust scalar type that can be a tensor element.
///
/// It ties a Rust type to its [`DType`] and says how to move values in and
/// out of the host-side [`CpuStorage`](crate::CpuStorage), so that
/// `Tensor::from_vec`, `to_vec` and every CPU kernel can be generic.
pub trait WithDType: Copy + Default + Send + Sync + 'static + fmt::Debug + PartialOrd {
    const DTYPE: DType;
    /// The value as an `f64` (exact for every dtype but large `i64`s).
    fn to_f64(self) -> f64;
    /// The nearest value of this type (integers truncate toward zero and
    /// saturate, as Rust's `as` does).
    fn from_f64(v: f64) -> Self;
    /// The value, exactly, for [`from_scalar`](Self::from_scalar).
    fn to_scalar(self) -> Scalar;
    /// Converts with Rust's `as` semantics between the primitive types
    /// (integers wrap into `u8`; floats truncate and saturate into
    /// integers) and round-to-nearest-even into the half types.
    fn from_scalar(v: Scalar) -> Self;
    fn to_storage(data: Vec<Self>) -> crate::CpuStorage;
    fn from_storage(s: &crate::CpuStorage) -> Option<&[Self]>;
    fn from_storage_mut(s: &mut crate::CpuStorage) -> Option<&mut [Self]>;
    /// Appends the value's little-endian bytes (for files: safetensors).
    fn extend_le_bytes(self, out: &mut Vec<u8>);
    /// The value from its little-endian bytes; `None` unless `bytes` has
    /// exactly the dtype's size.
    fn from_le_slice(bytes: &[u8]) -> Option<Self>;
}
// ANCHOR_END: with_dtype_trait

macro_rules! primitive_dtype {
    ($t:ty, $variant:ident, $scalar:ident) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$variant;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_scalar(self) -> Scalar {
                primitive_dtype!(@to $scalar, self)
            }
            fn from_scalar(v: Scalar) -> Self {
                match v {
                    Scalar::Float(f) => f as $t,
                    Scalar::Int(i) => i as $t,
                }
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
            fn from_storage_mut(s: &mut crate::CpuStorage) -> Option<&mut [Self]> {
                match s {
                    crate::CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn extend_le_bytes(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_le_slice(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_le_bytes(bytes.try_into().ok()?))
            }
        }
    };
    (@to Float, $v:expr) => {
        Scalar::Float($v as f64)
    };
    (@to Int, $v:expr) => {
        Scalar::Int($v as i64)
    };
}
primitive_dtype!(f32, F32, Float);
primitive_dtype!(f64, F64, Float);
primitive_dtype!(i64, I64, Int);
primitive_dtype!(u8, U8, Int);

macro_rules! half_dtype {
    ($t:ty, $variant:ident) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$variant;
            fn to_f64(self) -> f64 {
                <$t>::to_f64(self)
            }
            fn from_f64(v: f64) -> Self {
                <$t>::from_f64(v)
            }
            fn to_scalar(self) -> Scalar {
                Scalar::Float(<$t>::to_f64(self))
            }
            fn from_scalar(v: Scalar) -> Self {
                match v {
                    Scalar::Float(f) => <$t>::from_f64(f),
                    Scalar::Int(i) => <$t>::from_f64(i as f64),
                }
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
            fn from_storage_mut(s: &mut crate::CpuStorage) -> Option<&mut [Self]> {
                match s {
                    crate::CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn extend_le_bytes(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn from_le_slice(bytes: &[u8]) -> Option<Self> {
                Some(<$t>::from_le_bytes(bytes.try_into().ok()?))
            }
        }
    };
}
half_dtype!(f16, F16);
half_dtype!(bf16, BF16);

// ANCHOR: with_dtype
/// Evaluates `$body` with `$T` naming the Rust type of the runtime dtype
/// `$dtype`: `with_dtype!(dtype, T => vec![T::from_f64(v); n])`. This match
/// is the only place in the library that lists the dtypes.
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F16 => {
                #[allow(dead_code)]
                type $T = $crate::f16;
                $body
            }
            $crate::DType::BF16 => {
                #[allow(dead_code)]
                type $T = $crate::bf16;
                $body
            }
            $crate::DType::F32 => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            $crate::DType::I64 => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
            $crate::DType::U8 => {
                #[allow(dead_code)]
                type $T = u8;
                $body
            }
        }
    };
}
// ANCHOR_END: with_dtype
