//! Shapes, dimension indices and the broadcasting rule.

use crate::{Error, Result};
use std::fmt;

// ANCHOR: shape
/// The extent of a tensor along each dimension, outermost first.
///
/// A shape `[2, 3]` holds 6 elements: 2 rows of 3. The empty shape `[]` is a
/// scalar and holds one element.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Number of elements: the product of the dimensions (1 for a scalar).
    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }
    /// Row-major ("C") strides: the last dimension moves fastest.
    /// `[2, 3, 4]` has strides `[12, 4, 1]`.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![0; self.rank()];
        let mut acc = 1;
        for (s, &d) in strides.iter_mut().zip(&self.0).rev() {
            *s = acc;
            acc *= d;
        }
        strides
    }
}
// ANCHOR_END: shape

// ANCHOR: broadcast_rule
impl Shape {
    /// The NumPy broadcasting rule. Align the two shapes on the right; each
    /// pair of dimensions must be equal or one of them must be 1, and the
    /// result takes the larger. `[2, 3, 4]` with `[3, 1]` gives `[2, 3, 4]`.
    pub fn broadcast_with(&self, rhs: &Shape, op: &'static str) -> Result<Shape> {
        let (a, b) = (self.dims(), rhs.dims());
        let rank = a.len().max(b.len());
        let mut out = vec![0; rank];
        for i in 0..rank {
            // Walk from the right; a missing dimension behaves like a 1.
            let da = if i < a.len() { a[a.len() - 1 - i] } else { 1 };
            let db = if i < b.len() { b[b.len() - 1 - i] } else { 1 };
            out[rank - 1 - i] = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => {
                    return Err(Error::Broadcast {
                        op,
                        lhs: self.clone(),
                        rhs: rhs.clone(),
                    })
                }
            };
        }
        Ok(Shape(out))
    }
}
// ANCHOR_END: broadcast_rule

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}
impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}
impl From<&Vec<usize>> for Shape {
    fn from(v: &Vec<usize>) -> Self {
        Shape(v.clone())
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}
impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(v: &[usize; N]) -> Self {
        Shape(v.to_vec())
    }
}
impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(vec![])
    }
}
impl From<usize> for Shape {
    fn from(d: usize) -> Self {
        Shape(vec![d])
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}
impl From<(usize, usize)> for Shape {
    fn from((a, b): (usize, usize)) -> Self {
        Shape(vec![a, b])
    }
}
impl From<(usize, usize, usize)> for Shape {
    fn from((a, b, c): (usize, usize, usize)) -> Self {
        Shape(vec![a, b, c])
    }
}
impl From<(usize, usize, usize, usize)> for Shape {
    fn from((a, b, c, d): (usize, usize, usize, usize)) -> Self {
        Shape(vec![a, b, c, d])
    }
}

// ANCHOR: dim
/// A dimension index. Like PyTorch, a negative index counts from the end:
/// `-1` is the last dimension.
pub trait Dim: Copy {
    /// Resolves the index against a shape, or says which op got a bad one.
    fn to_index(self, shape: &Shape, op: &'static str) -> Result<usize>;
    /// Same, but for a position where a new dimension is inserted (`unsqueeze`,
    /// `stack`): valid range is `-(rank+1)..=rank`.
    fn to_index_plus_one(self, shape: &Shape, op: &'static str) -> Result<usize>;
}

fn resolve(dim: isize, rank: usize, shape: &Shape, op: &'static str) -> Result<usize> {
    let r = rank as isize;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(Error::DimOutOfRange {
            op,
            dim,
            shape: shape.clone(),
        });
    }
    Ok(d as usize)
}
// ANCHOR_END: dim

macro_rules! impl_dim {
    ($t:ty) => {
        impl Dim for $t {
            fn to_index(self, shape: &Shape, op: &'static str) -> Result<usize> {
                resolve(self as isize, shape.rank(), shape, op)
            }
            fn to_index_plus_one(self, shape: &Shape, op: &'static str) -> Result<usize> {
                resolve(self as isize, shape.rank() + 1, shape, op)
            }
        }
    };
}
impl_dim!(usize);
impl_dim!(isize);
impl_dim!(i32);
impl_dim!(i64);

/// A list of dimension indices, for reductions over several axes.
pub trait Dims {
    /// Resolves, sorts and de-duplicates the indices.
    fn to_indexes(&self, shape: &Shape, op: &'static str) -> Result<Vec<usize>>;
}

impl<D: Dim> Dims for [D] {
    fn to_indexes(&self, shape: &Shape, op: &'static str) -> Result<Vec<usize>> {
        let mut v = self
            .iter()
            .map(|d| d.to_index(shape, op))
            .collect::<Result<Vec<_>>>()?;
        v.sort_unstable();
        let n = v.len();
        v.dedup();
        if v.len() != n {
            return Err(Error::invalid(op, "a dimension is repeated in the list"));
        }
        Ok(v)
    }
}
impl<D: Dim, const N: usize> Dims for [D; N] {
    fn to_indexes(&self, shape: &Shape, op: &'static str) -> Result<Vec<usize>> {
        self[..].to_indexes(shape, op)
    }
}
impl<D: Dim> Dims for Vec<D> {
    fn to_indexes(&self, shape: &Shape, op: &'static str) -> Result<Vec<usize>> {
        self[..].to_indexes(shape, op)
    }
}
/// A borrowed list works too: `x.sum(&dims[..], false)`.
impl<T: Dims + ?Sized> Dims for &T {
    fn to_indexes(&self, shape: &Shape, op: &'static str) -> Result<Vec<usize>> {
        (**self).to_indexes(shape, op)
    }
}
