//! Elementwise kernels: unary functions, binary arithmetic, comparisons,
//! `where`, copies and dtype casts.

use super::strided::{for_each_row, map1, map2, map3};
use super::{on_storage, CpuStorage};
use crate::backend::{BinaryOp, CmpOp, UnaryOp};
use crate::{Error, Layout, Result, WithDType};

/// The float types the kernels are written for (`f32` and `f64`).
pub(crate) trait Float: num_traits::Float + Send + Sync + 'static {
    fn erf(self) -> Self;
    fn from_f64c(v: f64) -> Self;
}
impl Float for f32 {
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn from_f64c(v: f64) -> Self {
        v as f32
    }
}
impl Float for f64 {
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn from_f64c(v: f64) -> Self {
        v
    }
}

// ANCHOR: unary_float
/// Something that can run an elementwise function: over a strided view
/// ([`MapView`]), or, for fused programs, from one chunk buffer into
/// another or on a single number (`fused.rs`). Each op below is written once and each (op, applier)
/// pair compiles to its own tight loop.
pub(crate) trait Apply1<T> {
    type Out;
    fn apply(self, f: impl Fn(T) -> T + Sync) -> Self::Out;
}

/// Applies a function to every element of a view, into a new `Vec`.
pub(crate) struct MapView<'a, T>(pub &'a [T], pub &'a Layout);
impl<T: Copy + Send + Sync + 'static> Apply1<T> for MapView<'_, T> {
    type Out = Vec<T>;
    fn apply(self, f: impl Fn(T) -> T + Sync) -> Vec<T> {
        map1(self.0, self.1, f)
    }
}

/// One unary op on floats. Each arm is its own monomorphised loop.
#[inline(always)] // so a caller compiled for AVX2 gets AVX2 loops
pub(crate) fn unary_float<T: Float, A: Apply1<T>>(op: UnaryOp, ap: A) -> A::Out {
    let c = T::from_f64c;
    match op {
        UnaryOp::Neg => ap.apply(|v| -v),
        UnaryOp::Recip => ap.apply(|v| v.recip()),
        UnaryOp::Sqr => ap.apply(|v| v * v),
        UnaryOp::Sqrt => ap.apply(|v| v.sqrt()),
        UnaryOp::Exp => ap.apply(|v| v.exp()),
        UnaryOp::Log => ap.apply(|v| v.ln()),
        UnaryOp::Abs => ap.apply(|v| v.abs()),
        UnaryOp::Sign => ap.apply(|v| {
            if v > T::zero() {
                T::one()
            } else if v < T::zero() {
                -T::one()
            } else {
                v // keeps 0, -0 and NaN
            }
        }),
        UnaryOp::Sin => ap.apply(|v| v.sin()),
        UnaryOp::Cos => ap.apply(|v| v.cos()),
        UnaryOp::Tanh => ap.apply(|v| v.tanh()),
        // 1 / (1 + e^-x), written to never overflow: for x < 0 use e^x / (1 + e^x).
        UnaryOp::Sigmoid => ap.apply(|v| {
            if v >= T::zero() {
                T::one() / (T::one() + (-v).exp())
            } else {
                let e = v.exp();
                e / (T::one() + e)
            }
        }),
        UnaryOp::Relu => ap.apply(|v| if v > T::zero() { v } else { T::zero() }),
        UnaryOp::Erf => ap.apply(|v| v.erf()),
        UnaryOp::Affine { mul, add } => {
            let (m, a) = (c(mul), c(add));
            ap.apply(|v| v * m + a)
        }
        UnaryOp::Powf(e) => {
            let e = c(e);
            ap.apply(|v| v.powf(e))
        }
        UnaryOp::Clamp { min, max } => {
            let (lo, hi) = (c(min), c(max));
            ap.apply(|v| {
                if v < lo {
                    lo
                } else if v > hi {
                    hi
                } else {
                    v
                }
            })
        }
        UnaryOp::LeakyRelu(slope) => {
            let s = c(slope);
            ap.apply(|v| if v > T::zero() { v } else { v * s })
        }
    }
}
// ANCHOR_END: unary_float

/// Integer tensors support the ops that stay in the integers.
fn unary_int(op: UnaryOp, x: &[i64], l: &Layout) -> Option<Vec<i64>> {
    Some(match op {
        UnaryOp::Neg => map1(x, l, |v| v.wrapping_neg()),
        UnaryOp::Abs => map1(x, l, |v| v.wrapping_abs()),
        UnaryOp::Sqr => map1(x, l, |v| v.wrapping_mul(v)),
        UnaryOp::Sign => map1(x, l, |v| v.signum()),
        UnaryOp::Relu => map1(x, l, |v| v.max(0)),
        UnaryOp::Clamp { min, max } => map1(x, l, |v| (v as f64).clamp(min, max) as i64),
        _ => return None,
    })
}

/// A unary op on `f32`, `f64` or (for the integer-safe ops) `i64`
/// storage. Half storage arrives widened (see `half.rs`).
pub(crate) fn unary(op: UnaryOp, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
    Ok(match s {
        CpuStorage::F32(x) => CpuStorage::F32(unary_float(op, MapView(x, l))),
        CpuStorage::F64(x) => CpuStorage::F64(unary_float(op, MapView(x, l))),
        CpuStorage::I64(x) => match unary_int(op, x, l) {
            Some(v) => CpuStorage::I64(v),
            None => return Err(unsupported("unary", s.dtype())),
        },
        _ => return Err(unsupported("unary", s.dtype())),
    })
}

fn unsupported(op: &'static str, dtype: crate::DType) -> Error {
    Error::UnsupportedDType { op, dtype }
}

// ANCHOR: binary_float
/// The two-argument counterpart of [`Apply1`].
pub(crate) trait Apply2<T> {
    type Out;
    fn apply(self, f: impl Fn(T, T) -> T + Sync) -> Self::Out;
}

/// Applies a function to pairs of elements of two views (broadcast already).
pub(crate) struct MapViews<'a, T>(pub &'a [T], pub &'a Layout, pub &'a [T], pub &'a Layout);
impl<T: Copy + Send + Sync + 'static> Apply2<T> for MapViews<'_, T> {
    type Out = Vec<T>;
    fn apply(self, f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
        map2(self.0, self.1, self.2, self.3, f)
    }
}

#[inline(always)] // so a caller compiled for AVX2 gets AVX2 loops
pub(crate) fn binary_float<T: Float, A: Apply2<T>>(op: BinaryOp, a: A) -> A::Out {
    match op {
        BinaryOp::Add => a.apply(|x, y| x + y),
        BinaryOp::Sub => a.apply(|x, y| x - y),
        BinaryOp::Mul => a.apply(|x, y| x * y),
        BinaryOp::Div => a.apply(|x, y| x / y),
        BinaryOp::Pow => a.apply(|x, y| x.powf(y)),
        // NaN-propagating, like torch.maximum.
        BinaryOp::Maximum => a.apply(|x, y| if x.is_nan() || x > y { x } else { y }),
        BinaryOp::Minimum => a.apply(|x, y| if x.is_nan() || x < y { x } else { y }),
    }
}
// ANCHOR_END: binary_float

fn binary_int(op: BinaryOp, a: &[i64], la: &Layout, b: &[i64], lb: &Layout) -> Result<Vec<i64>> {
    Ok(match op {
        BinaryOp::Add => map2(a, la, b, lb, |x, y| x.wrapping_add(y)),
        BinaryOp::Sub => map2(a, la, b, lb, |x, y| x.wrapping_sub(y)),
        BinaryOp::Mul => map2(a, la, b, lb, |x, y| x.wrapping_mul(y)),
        BinaryOp::Maximum => map2(a, la, b, lb, |x, y| x.max(y)),
        BinaryOp::Minimum => map2(a, la, b, lb, |x, y| x.min(y)),
        BinaryOp::Div | BinaryOp::Pow => return Err(unsupported("binary", crate::DType::I64)),
    })
}

/// A binary op on two storages of one dtype (`f32`, `f64` or `i64`).
pub(crate) fn binary(
    op: BinaryOp,
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
) -> Result<CpuStorage> {
    Ok(match (a, b) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => {
            CpuStorage::F32(binary_float(op, MapViews(a, la, b, lb)))
        }
        (CpuStorage::F64(a), CpuStorage::F64(b)) => {
            CpuStorage::F64(binary_float(op, MapViews(a, la, b, lb)))
        }
        (CpuStorage::I64(a), CpuStorage::I64(b)) => CpuStorage::I64(binary_int(op, a, la, b, lb)?),
        _ if a.dtype() != b.dtype() => return Err(mismatch("binary", a, b)),
        _ => return Err(unsupported("binary", a.dtype())),
    })
}

fn mismatch(op: &'static str, a: &CpuStorage, b: &CpuStorage) -> Error {
    Error::DTypeMismatch {
        op,
        lhs: a.dtype(),
        rhs: b.dtype(),
    }
}

fn cmp_typed<T: PartialOrd + Copy + Sync>(
    op: CmpOp,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
) -> Vec<u8> {
    match op {
        CmpOp::Eq => map2(a, la, b, lb, |x, y| (x == y) as u8),
        CmpOp::Ne => map2(a, la, b, lb, |x, y| (x != y) as u8),
        CmpOp::Lt => map2(a, la, b, lb, |x, y| (x < y) as u8),
        CmpOp::Le => map2(a, la, b, lb, |x, y| (x <= y) as u8),
        CmpOp::Gt => map2(a, la, b, lb, |x, y| (x > y) as u8),
        CmpOp::Ge => map2(a, la, b, lb, |x, y| (x >= y) as u8),
    }
}

/// The elements of `b` as a slice of `a`'s element type, or a mismatch error.
fn same_type<'a, T: WithDType>(
    a: &CpuStorage,
    b: &'a CpuStorage,
    op: &'static str,
) -> Result<&'a [T]> {
    T::from_storage(b).ok_or_else(|| mismatch(op, a, b))
}

/// Compares two storages of any one dtype (half types compare exactly).
pub(crate) fn cmp(
    op: CmpOp,
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
) -> Result<CpuStorage> {
    Ok(CpuStorage::U8(on_storage!(a, x: T => {
        cmp_typed(op, x, la, same_type::<T>(a, b, "cmp")?, lb)
    })))
}

#[inline(always)]
fn pick<T>(m: u8, x: T, y: T) -> T {
    if m != 0 {
        x
    } else {
        y
    }
}

/// `c ? t : f` for `t`, `f` of any one dtype and a `u8` condition.
pub(crate) fn where_cond(
    c: &CpuStorage,
    lc: &Layout,
    t: &CpuStorage,
    lt: &Layout,
    f: &CpuStorage,
    lf: &Layout,
) -> Result<CpuStorage> {
    let CpuStorage::U8(c) = c else {
        return Err(unsupported("where_cond (condition)", c.dtype()));
    };
    Ok(on_storage!(t, x: T => {
        CpuStorage::from(map3(c, lc, x, lt, same_type::<T>(t, f, "where_cond")?, lf, pick::<T>))
    }))
}

// ANCHOR: cast
/// Converts with Rust's `as` semantics between the primitive types (floats
/// to integers truncate toward zero and saturate; integers wrap into `u8`)
/// and round-to-nearest-even into `f16`/`bf16`: each value travels as an
/// exact [`Scalar`] and is rounded once, at the destination.
pub(crate) fn cast(s: &CpuStorage, l: &Layout, dtype: crate::DType) -> CpuStorage {
    on_storage!(s, x: S => crate::with_dtype!(dtype, D => {
        CpuStorage::from(map1(x, l, |v: S| D::from_scalar(v.to_scalar())))
    }))
}
// ANCHOR_END: cast

/// A contiguous copy of a view, in its own dtype.
pub(crate) fn copy(s: &CpuStorage, l: &Layout) -> CpuStorage {
    on_storage!(s, x: T => CpuStorage::from(map1(x, l, |v: T| v)))
}

/// Writes the view `s` (through `ls`) into the elements of `d` that `ld`
/// selects.
pub(crate) fn copy_into(
    d: &mut CpuStorage,
    ld: &Layout,
    s: &CpuStorage,
    ls: &Layout,
) -> Result<()> {
    fn rows<T: Copy>(dst: &mut [T], ld: &Layout, src: &[T], ls: &Layout) {
        for_each_row([ld, ls], |[od, os], len, [sd, ss]| {
            for i in 0..len {
                dst[od + i * sd] = src[os + i * ss];
            }
        });
    }
    let dtype = d.dtype();
    on_storage!(d, x: T => {
        let src = T::from_storage(s).ok_or(Error::DTypeMismatch {
            op: "copy_into",
            lhs: dtype,
            rhs: s.dtype(),
        })?;
        rows(x, ld, src, ls);
    });
    Ok(())
}
