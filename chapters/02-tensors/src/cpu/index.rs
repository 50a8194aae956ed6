//! Indexing kernels: index_select, gather, and their adjoints scatter_add and
//! index_add. Indices are `i64` and checked against the indexed dimension.

use super::CpuStorage;
use crate::{Error, Layout, Result, Shape};

/// Indices as `usize`, checked to lie in `0..size`.
fn checked_ids(ids: &CpuStorage, l: &Layout, size: usize, op: &'static str) -> Result<Vec<usize>> {
    let CpuStorage::I64(v) = ids else {
        return Err(Error::UnsupportedDType {
            op,
            dtype: ids.dtype(),
        });
    };
    l.offsets()
        .map(|o| {
            let i = v[o];
            if i < 0 || i as usize >= size {
                Err(Error::invalid(
                    op,
                    format!("index {i} is out of range for a dimension of size {size}"),
                ))
            } else {
                Ok(i as usize)
            }
        })
        .collect()
}

/// Row-major element list of a view (a copy when it is not contiguous).
fn contiguous<T: Copy>(x: &[T], l: &Layout) -> Vec<T> {
    super::strided::map1(x, l, |v| v)
}

/// `(pre, size, post)`: the dims before, at and after `dim`.
fn split_at_dim(dims: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        dims[..dim].iter().product(),
        dims[dim],
        dims[dim + 1..].iter().product(),
    )
}

macro_rules! for_each_dtype {
    ($s:expr, $x:ident => $body:expr) => {
        match $s {
            CpuStorage::F32($x) => CpuStorage::F32($body),
            CpuStorage::F64($x) => CpuStorage::F64($body),
            CpuStorage::I64($x) => CpuStorage::I64($body),
            CpuStorage::U8($x) => CpuStorage::U8($body),
        }
    };
}

// ANCHOR: index_select
pub(crate) fn index_select(
    s: &CpuStorage,
    l: &Layout,
    ids: &CpuStorage,
    lids: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let (pre, size, post) = split_at_dim(l.dims(), dim);
    let ids = checked_ids(ids, lids, size, "index_select")?;
    Ok(for_each_dtype!(s, x => {
        let x = contiguous(x, l);
        let mut out = Vec::with_capacity(pre * ids.len() * post);
        for p in 0..pre {
            for &i in &ids {
                let start = (p * size + i) * post;
                out.extend_from_slice(&x[start..start + post]);
            }
        }
        out
    }))
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

fn check_gather_shapes(op: &'static str, src: &[usize], ids: &[usize], dim: usize) -> Result<()> {
    let ok = src.len() == ids.len()
        && src
            .iter()
            .zip(ids)
            .enumerate()
            .all(|(d, (&s, &i))| d == dim || i <= s);
    if ok {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            lhs: src.to_vec().into(),
            rhs: ids.to_vec().into(),
            detail: format!(
                " (index must have the same rank and be no larger outside dimension {dim})"
            ),
        })
    }
}

// ANCHOR: gather
pub(crate) fn gather(
    s: &CpuStorage,
    l: &Layout,
    ids: &CpuStorage,
    lids: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    check_gather_shapes("gather", l.dims(), lids.dims(), dim)?;
    let ids = checked_ids(ids, lids, l.dims()[dim], "gather")?;
    let pos = gather_positions(l.dims(), lids.dims(), &ids, dim);
    Ok(for_each_dtype!(s, x => {
        let x = contiguous(x, l);
        pos.iter().map(|&p| x[p]).collect()
    }))
}
// ANCHOR_END: gather

fn add_into<T: Copy + std::ops::Add<Output = T>>(out: &mut [T], pos: &[usize], src: &[T]) {
    for (&p, &v) in pos.iter().zip(src) {
        out[p] = out[p] + v;
    }
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
    check_gather_shapes("scatter_add", lbase.dims(), lids.dims(), dim)?;
    if lsrc.dims() != lids.dims() {
        return Err(Error::ShapeMismatch {
            op: "scatter_add",
            lhs: lsrc.shape().clone(),
            rhs: lids.shape().clone(),
            detail: " (src and index must have the same shape)".into(),
        });
    }
    let ids = checked_ids(ids, lids, lbase.dims()[dim], "scatter_add")?;
    let pos = gather_positions(lbase.dims(), lids.dims(), &ids, dim);
    Ok(match (base, src) {
        (CpuStorage::F32(b), CpuStorage::F32(s)) => {
            let mut out = contiguous(b, lbase);
            add_into(&mut out, &pos, &contiguous(s, lsrc));
            CpuStorage::F32(out)
        }
        (CpuStorage::F64(b), CpuStorage::F64(s)) => {
            let mut out = contiguous(b, lbase);
            add_into(&mut out, &pos, &contiguous(s, lsrc));
            CpuStorage::F64(out)
        }
        (CpuStorage::I64(b), CpuStorage::I64(s)) => {
            let mut out = contiguous(b, lbase);
            add_into(&mut out, &pos, &contiguous(s, lsrc));
            CpuStorage::I64(out)
        }
        (b, s) if b.dtype() != s.dtype() => {
            return Err(Error::DTypeMismatch {
                op: "scatter_add",
                lhs: b.dtype(),
                rhs: s.dtype(),
            })
        }
        (b, _) => {
            return Err(Error::UnsupportedDType {
                op: "scatter_add",
                dtype: b.dtype(),
            })
        }
    })
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
    let ids = checked_ids(ids, lids, size, "index_add")?;
    let mut expected = lbase.dims().to_vec();
    expected[dim] = ids.len();
    if lsrc.dims() != expected.as_slice() {
        return Err(Error::ShapeMismatch {
            op: "index_add",
            lhs: lsrc.shape().clone(),
            rhs: expected.into(),
            detail:
                " (src must match base with the indexed dimension replaced by the index length)"
                    .into(),
        });
    }
    fn run<T: Copy + std::ops::Add<Output = T>>(
        b: &[T],
        lb: &Layout,
        s: &[T],
        ls: &Layout,
        ids: &[usize],
        (pre, size, post): (usize, usize, usize),
    ) -> Vec<T> {
        let mut out = contiguous(b, lb);
        let src = contiguous(s, ls);
        for p in 0..pre {
            for (j, &i) in ids.iter().enumerate() {
                let dst = (p * size + i) * post;
                let from = (p * ids.len() + j) * post;
                for q in 0..post {
                    out[dst + q] = out[dst + q] + src[from + q];
                }
            }
        }
        out
    }
    let geom = (pre, size, post);
    Ok(match (base, src) {
        (CpuStorage::F32(b), CpuStorage::F32(s)) => {
            CpuStorage::F32(run(b, lbase, s, lsrc, &ids, geom))
        }
        (CpuStorage::F64(b), CpuStorage::F64(s)) => {
            CpuStorage::F64(run(b, lbase, s, lsrc, &ids, geom))
        }
        (CpuStorage::I64(b), CpuStorage::I64(s)) => {
            CpuStorage::I64(run(b, lbase, s, lsrc, &ids, geom))
        }
        (b, s) if b.dtype() != s.dtype() => {
            return Err(Error::DTypeMismatch {
                op: "index_add",
                lhs: b.dtype(),
                rhs: s.dtype(),
            })
        }
        (b, _) => {
            return Err(Error::UnsupportedDType {
                op: "index_add",
                dtype: b.dtype(),
            })
        }
    })
}
// ANCHOR_END: index_add
