//! Indexing kernels: index_select, gather, and their adjoints scatter_add and
//! index_add.
//!
//! The op layer has already checked shapes and dtypes, and (the indices
//! being in host memory) that every index is in range. A kernel still may
//! not trust an index it reads: a backend is also called directly, and on a
//! GPU nobody could have looked at the indices beforehand. So each index is
//! checked once more as it is read, and a bad one is a device-side error,
//! [`Error::Device`], exactly what a GPU kernel reports.

use super::{on_storage, CpuStorage};
use crate::{Error, Layout, Result, Shape, WithDType};
use std::borrow::Cow;

/// Indices as `usize`, each checked to lie in `0..size` (device side).
fn read_ids(ids: &CpuStorage, l: &Layout, size: usize, op: &'static str) -> Result<Vec<usize>> {
    let v = ids.as_slice::<i64>()?;
    l.offsets()
        .map(|o| {
            let i = v[o];
            if i < 0 || i as usize >= size {
                Err(Error::device(
                    op,
                    "cpu",
                    format!("index {i} is out of range for a dimension of size {size}"),
                ))
            } else {
                Ok(i as usize)
            }
        })
        .collect()
}

/// Row-major element list of a view: the storage itself when the view is
/// contiguous, a copy otherwise. Borrowing matters for lookups into large
/// tables: reading one row of GPT-2's `[50257, 768]` token embedding must
/// not copy all 154 MB of it first.
fn contiguous<'a, T: Copy + Send + Sync + 'static>(x: &'a [T], l: &Layout) -> Cow<'a, [T]> {
    if l.is_contiguous() {
        Cow::Borrowed(&x[l.offset()..l.offset() + l.elem_count()])
    } else {
        Cow::Owned(super::strided::map1(x, l, |v| v))
    }
}

/// `(pre, size, post)`: the dims before, at and after `dim`.
fn split_at_dim(dims: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        dims[..dim].iter().product(),
        dims[dim],
        dims[dim + 1..].iter().product(),
    )
}

// ANCHOR: index_select
fn index_select_typed<T: Copy + Send + Sync + 'static>(
    x: &[T],
    l: &Layout,
    ids: &[usize],
    (pre, size, post): (usize, usize, usize),
) -> Vec<T> {
    let x = contiguous(x, l);
    let mut out = super::pool::with_capacity(pre * ids.len() * post);
    for p in 0..pre {
        for &i in ids {
            let start = (p * size + i) * post;
            out.extend_from_slice(&x[start..start + post]);
        }
    }
    out
}

pub(crate) fn index_select(
    s: &CpuStorage,
    l: &Layout,
    ids: &CpuStorage,
    lids: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let geom = split_at_dim(l.dims(), dim);
    let ids = read_ids(ids, lids, geom.1, "index_select")?;
    Ok(on_storage!(s, x: T => CpuStorage::from(index_select_typed(x, l, &ids, geom))))
}
// ANCHOR_END: index_select

/// For each element of `ids` (row-major), the flat position in a contiguous
/// tensor of `target` dims that it addresses: the element's own
/// multi-index with coordinate `dim` replaced by the index value.
fn gather_positions(target: &[usize], ids_dims: &[usize], ids: &[usize], dim: usize) -> Vec<usize> {
    let strides = Shape::from(target.to_vec()).contiguous_strides();
    let mut index = vec![0usize; ids_dims.len()];
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let pos: usize = index
            .iter()
            .enumerate()
            .map(|(d, &i)| if d == dim { id } else { i } * strides[d])
            .sum();
        out.push(pos);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < ids_dims[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

// ANCHOR: gather
pub(crate) fn gather(
    s: &CpuStorage,
    l: &Layout,
    ids: &CpuStorage,
    lids: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let ids = read_ids(ids, lids, l.dims()[dim], "gather")?;
    let pos = gather_positions(l.dims(), lids.dims(), &ids, dim);
    Ok(on_storage!(s, x: T => {
        let x = contiguous(x, l);
        CpuStorage::from(pos.iter().map(|&p| x[p]).collect::<Vec<T>>())
    }))
}
// ANCHOR_END: gather

/// The element types the scatter kernels add in: `f32`, `f64`, `i64`
/// (half storage arrives widened to `f32`).
trait AddElem: WithDType {
    fn plus(self, o: Self) -> Self;
}
impl AddElem for f32 {
    fn plus(self, o: Self) -> Self {
        self + o
    }
}
impl AddElem for f64 {
    fn plus(self, o: Self) -> Self {
        self + o
    }
}
impl AddElem for i64 {
    fn plus(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
}

/// Where each element of `src` is added into the output: the adjoint of a
/// read, written once per element type through [`AddElem`].
trait AddPlan {
    fn add<T: AddElem>(&self, out: &mut [T], src: &[T]);
}

/// `gather`'s adjoint: element `i` of `src` goes to flat position `pos[i]`.
struct AtPositions(Vec<usize>);
impl AddPlan for AtPositions {
    fn add<T: AddElem>(&self, out: &mut [T], src: &[T]) {
        for (&p, &v) in self.0.iter().zip(src) {
            out[p] = out[p].plus(v);
        }
    }
}

/// `index_select`'s adjoint: slice `j` of `src` along the indexed dimension
/// goes to slice `ids[j]`, for every position before and after it.
struct AtSlices {
    ids: Vec<usize>,
    pre: usize,
    size: usize,
    post: usize,
}
impl AddPlan for AtSlices {
    fn add<T: AddElem>(&self, out: &mut [T], src: &[T]) {
        let (k, post) = (self.ids.len(), self.post);
        for p in 0..self.pre {
            for (j, &i) in self.ids.iter().enumerate() {
                let dst = (p * self.size + i) * post;
                let from = (p * k + j) * post;
                for (o, &v) in out[dst..dst + post].iter_mut().zip(&src[from..from + post]) {
                    *o = o.plus(v);
                }
            }
        }
    }
}

fn add_typed<T: AddElem>(
    b: &[T],
    lb: &Layout,
    s: &[T],
    ls: &Layout,
    plan: &impl AddPlan,
) -> Vec<T> {
    let mut out = contiguous(b, lb).into_owned();
    plan.add(&mut out, &contiguous(s, ls));
    out
}

/// A contiguous copy of `base` with `src` added where `plan` says.
fn add_at(
    base: &CpuStorage,
    lb: &Layout,
    src: &CpuStorage,
    ls: &Layout,
    op: &'static str,
    plan: impl AddPlan,
) -> Result<CpuStorage> {
    Ok(match (base, src) {
        (CpuStorage::F32(b), CpuStorage::F32(s)) => add_typed(b, lb, s, ls, &plan).into(),
        (CpuStorage::F64(b), CpuStorage::F64(s)) => add_typed(b, lb, s, ls, &plan).into(),
        (CpuStorage::I64(b), CpuStorage::I64(s)) => add_typed(b, lb, s, ls, &plan).into(),
        (b, s) if b.dtype() != s.dtype() => {
            return Err(Error::DTypeMismatch {
                op,
                lhs: b.dtype(),
                rhs: s.dtype(),
            })
        }
        (b, _) => {
            return Err(Error::UnsupportedDType {
                op,
                dtype: b.dtype(),
            })
        }
    })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter_add(
    base: &CpuStorage,
    lbase: &Layout,
    ids: &CpuStorage,
    lids: &Layout,
    src: &CpuStorage,
    lsrc: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let ids = read_ids(ids, lids, lbase.dims()[dim], "scatter_add")?;
    let pos = gather_positions(lbase.dims(), lids.dims(), &ids, dim);
    add_at(base, lbase, src, lsrc, "scatter_add", AtPositions(pos))
}

// ANCHOR: index_add
#[allow(clippy::too_many_arguments)]
pub(crate) fn index_add(
    base: &CpuStorage,
    lbase: &Layout,
    ids: &CpuStorage,
    lids: &Layout,
    src: &CpuStorage,
    lsrc: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let (pre, size, post) = split_at_dim(lbase.dims(), dim);
    let ids = read_ids(ids, lids, size, "index_add")?;
    let plan = AtSlices {
        ids,
        pre,
        size,
        post,
    };
    add_at(base, lbase, src, lsrc, "index_add", plan)
}
// ANCHOR_END: index_add
