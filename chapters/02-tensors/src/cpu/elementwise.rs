//! Elementwise kernels: unary functions, binary arithmetic, comparisons,
//! `where`, and dtype casts.

use super::strided::{map1, map2, map3};
use super::CpuStorage;
use crate::backend::{BinaryOp, CmpOp, UnaryOp};
use crate::{Error, Layout, Result};

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
/// ([`MapView`]) or from one chunk buffer into another ([`IntoSlice`], for
/// fused programs). Each op below is written once and each (op, applier)
/// pair compiles to its own tight loop.
pub(crate) trait Apply1<T> {
    type Out;
    fn apply(self, f: impl Fn(T) -> T) -> Self::Out;
}

/// Applies a function to every element of a view, into a new `Vec`.
pub(crate) struct MapView<'a, T>(pub &'a [T], pub &'a Layout);
impl<T: Copy> Apply1<T> for MapView<'_, T> {
    type Out = Vec<T>;
    fn apply(self, f: impl Fn(T) -> T) -> Vec<T> {
        map1(self.0, self.1, f)
    }
}

/// Applies a function from one slice into another of the same length.
pub(crate) struct IntoSlice<'a, T>(pub &'a [T], pub &'a mut [T]);
impl<T: Copy> Apply1<T> for IntoSlice<'_, T> {
    type Out = ();
    fn apply(self, f: impl Fn(T) -> T) {
        for (d, &s) in self.1.iter_mut().zip(self.0) {
            *d = f(s);
        }
    }
}

/// One unary op on floats. Each arm is its own monomorphised loop.
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
        UnaryOp::Neg => map1(x, l, |v| -v),
        UnaryOp::Abs => map1(x, l, |v| v.abs()),
        UnaryOp::Sqr => map1(x, l, |v| v * v),
        UnaryOp::Sign => map1(x, l, |v| v.signum()),
        UnaryOp::Relu => map1(x, l, |v| v.max(0)),
        UnaryOp::Clamp { min, max } => map1(x, l, |v| (v as f64).clamp(min, max) as i64),
        _ => return None,
    })
}

pub(crate) fn unary(op: UnaryOp, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
    Ok(match s {
        CpuStorage::F32(x) => CpuStorage::F32(unary_float(op, MapView(x, l))),
        CpuStorage::F64(x) => CpuStorage::F64(unary_float(op, MapView(x, l))),
        CpuStorage::I64(x) => match unary_int(op, x, l) {
            Some(v) => CpuStorage::I64(v),
            None => return Err(unsupported(op, s)),
        },
        CpuStorage::U8(_) => return Err(unsupported(op, s)),
    })
}

fn unsupported(op: UnaryOp, s: &CpuStorage) -> Error {
    Error::invalid(
        "unary",
        format!("{op:?} is not supported for dtype {}", s.dtype()),
    )
}

// ANCHOR: binary_float
/// The two-argument counterpart of [`Apply1`].
pub(crate) trait Apply2<T> {
    type Out;
    fn apply(self, f: impl Fn(T, T) -> T) -> Self::Out;
}

/// Applies a function to pairs of elements of two views (broadcast already).
pub(crate) struct MapViews<'a, T>(pub &'a [T], pub &'a Layout, pub &'a [T], pub &'a Layout);
impl<T: Copy> Apply2<T> for MapViews<'_, T> {
    type Out = Vec<T>;
    fn apply(self, f: impl Fn(T, T) -> T) -> Vec<T> {
        map2(self.0, self.1, self.2, self.3, f)
    }
}

/// Applies a function to two slices, into a third.
pub(crate) struct IntoSlice2<'a, T>(pub &'a [T], pub &'a [T], pub &'a mut [T]);
impl<T: Copy> Apply2<T> for IntoSlice2<'_, T> {
    type Out = ();
    fn apply(self, f: impl Fn(T, T) -> T) {
        for ((d, &x), &y) in self.2.iter_mut().zip(self.0).zip(self.1) {
            *d = f(x, y);
        }
    }
}

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
        BinaryOp::Div | BinaryOp::Pow => {
            return Err(Error::invalid(
                "binary",
                format!("{op:?} is not supported for dtype i64 (cast to a float type first)"),
            ))
        }
    })
}

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
        _ => {
            return Err(Error::DTypeMismatch {
                op: "binary",
                lhs: a.dtype(),
                rhs: b.dtype(),
            })
        }
    })
}

fn cmp_typed<T: PartialOrd + Copy>(
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

pub(crate) fn cmp(
    op: CmpOp,
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
) -> Result<CpuStorage> {
    Ok(CpuStorage::U8(match (a, b) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => cmp_typed(op, a, la, b, lb),
        (CpuStorage::F64(a), CpuStorage::F64(b)) => cmp_typed(op, a, la, b, lb),
        (CpuStorage::I64(a), CpuStorage::I64(b)) => cmp_typed(op, a, la, b, lb),
        (CpuStorage::U8(a), CpuStorage::U8(b)) => cmp_typed(op, a, la, b, lb),
        _ => {
            return Err(Error::DTypeMismatch {
                op: "cmp",
                lhs: a.dtype(),
                rhs: b.dtype(),
            })
        }
    }))
}

#[inline(always)]
fn pick<T>(m: u8, x: T, y: T) -> T {
    if m != 0 {
        x
    } else {
        y
    }
}

pub(crate) fn where_cond(
    c: &CpuStorage,
    lc: &Layout,
    t: &CpuStorage,
    lt: &Layout,
    f: &CpuStorage,
    lf: &Layout,
) -> Result<CpuStorage> {
    let CpuStorage::U8(c) = c else {
        return Err(Error::UnsupportedDType {
            op: "where_cond (condition)",
            dtype: c.dtype(),
        });
    };
    Ok(match (t, f) {
        (CpuStorage::F32(t), CpuStorage::F32(f)) => {
            CpuStorage::F32(map3(c, lc, t, lt, f, lf, pick::<_>))
        }
        (CpuStorage::F64(t), CpuStorage::F64(f)) => {
            CpuStorage::F64(map3(c, lc, t, lt, f, lf, pick::<_>))
        }
        (CpuStorage::I64(t), CpuStorage::I64(f)) => {
            CpuStorage::I64(map3(c, lc, t, lt, f, lf, pick::<_>))
        }
        (CpuStorage::U8(t), CpuStorage::U8(f)) => {
            CpuStorage::U8(map3(c, lc, t, lt, f, lf, pick::<_>))
        }
        _ => {
            return Err(Error::DTypeMismatch {
                op: "where_cond",
                lhs: t.dtype(),
                rhs: f.dtype(),
            })
        }
    })
}

macro_rules! cast_from {
    ($x:expr, $l:expr, $dtype:expr) => {
        match $dtype {
            crate::DType::F32 => CpuStorage::F32(map1($x, $l, |v| v as f32)),
            crate::DType::F64 => CpuStorage::F64(map1($x, $l, |v| v as f64)),
            crate::DType::I64 => CpuStorage::I64(map1($x, $l, |v| v as i64)),
            crate::DType::U8 => CpuStorage::U8(map1($x, $l, |v| v as u8)),
        }
    };
}

/// Converts with Rust's `as` semantics (floats to integers truncate toward zero
/// and saturate).
pub(crate) fn cast(s: &CpuStorage, l: &Layout, dtype: crate::DType) -> CpuStorage {
    match s {
        CpuStorage::F32(x) => cast_from!(x, l, dtype),
        CpuStorage::F64(x) => cast_from!(x, l, dtype),
        CpuStorage::I64(x) => cast_from!(x, l, dtype),
        CpuStorage::U8(x) => cast_from!(x, l, dtype),
    }
}
