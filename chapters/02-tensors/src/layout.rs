//! Layout: how a shape maps onto flat storage.
//!
//! Element `[i, j, k]` of a tensor lives at
//! `offset + i * strides[0] + j * strides[1] + k * strides[2]` in its storage.
//! Changing only the shape, strides and offset gives a *view*: transposing,
//! slicing, broadcasting and (often) reshaping cost nothing, because no
//! element is copied.

use crate::{Error, Result, Shape};

// ANCHOR: layout
/// Shape, strides and offset: where each element of a view sits in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    shape: Shape,
    /// Elements (not bytes) to skip to move one step along each dimension.
    /// A stride of 0 repeats the same element: that is how broadcasting works.
    strides: Vec<usize>,
    /// Position of element `[0, 0, ...]` in storage.
    offset: usize,
}
// ANCHOR_END: layout

impl Layout {
    /// A fresh row-major layout starting at element 0.
    pub fn contiguous(shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        let strides = shape.contiguous_strides();
        Layout {
            shape,
            strides,
            offset: 0,
        }
    }

    /// A layout with explicit strides and offset (`as_strided`). The caller
    /// promises that every reachable element lies inside the storage.
    pub fn new(shape: Shape, strides: Vec<usize>, offset: usize) -> Self {
        assert_eq!(shape.rank(), strides.len(), "one stride per dimension");
        Layout {
            shape,
            strides,
            offset,
        }
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn rank(&self) -> usize {
        self.shape.rank()
    }
    pub fn elem_count(&self) -> usize {
        self.shape.elem_count()
    }

    // ANCHOR: is_contiguous
    /// Row-major with no gaps: the elements are `storage[offset..offset + n]`
    /// in order. Dimensions of size 1 may have any stride.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.dims().iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }
    // ANCHOR_END: is_contiguous

    /// The index one past the furthest element this layout can reach
    /// (0 when it holds no element).
    pub fn max_storage_index(&self) -> usize {
        if self.elem_count() == 0 {
            return 0;
        }
        let last: usize = self
            .dims()
            .iter()
            .zip(&self.strides)
            .map(|(&d, &s)| (d - 1) * s)
            .sum();
        self.offset + last + 1
    }

    // ANCHOR: views
    /// Swaps two dimensions: only their sizes and strides trade places.
    pub fn transpose(&self, d0: usize, d1: usize) -> Layout {
        let mut dims = self.dims().to_vec();
        let mut strides = self.strides.clone();
        dims.swap(d0, d1);
        strides.swap(d0, d1);
        Layout::new(dims.into(), strides, self.offset)
    }

    /// Reorders the dimensions: output dimension `i` is input dimension `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Layout {
        let dims = perm.iter().map(|&p| self.dims()[p]).collect::<Vec<_>>();
        let strides = perm.iter().map(|&p| self.strides[p]).collect();
        Layout::new(dims.into(), strides, self.offset)
    }

    /// Elements `start, start + step, ...` (below `stop`) along `dim`:
    /// the offset moves to `start`, the stride is multiplied by `step`.
    pub fn slice(&self, dim: usize, start: usize, stop: usize, step: usize) -> Layout {
        let len = if stop > start {
            (stop - start).div_ceil(step)
        } else {
            0
        };
        let mut dims = self.dims().to_vec();
        let mut strides = self.strides.clone();
        dims[dim] = len;
        // An empty slice keeps the offset: `start` may be one past the end.
        let offset = if len == 0 {
            self.offset
        } else {
            self.offset + start * strides[dim]
        };
        strides[dim] *= step;
        Layout::new(dims.into(), strides, offset)
    }

    /// Stretches dimensions of size 1 (and adds leading ones) to `shape` by
    /// giving them stride 0, so every index reads the same element.
    pub fn broadcast_as(&self, shape: &Shape, op: &'static str) -> Result<Layout> {
        let err = || Error::Broadcast {
            op,
            lhs: self.shape.clone(),
            rhs: shape.clone(),
        };
        if shape.rank() < self.rank() {
            return Err(err());
        }
        let added = shape.rank() - self.rank();
        let mut strides = vec![0; shape.rank()];
        for (i, &target) in shape.dims().iter().enumerate() {
            if i < added {
                continue;
            }
            let (d, s) = (self.dims()[i - added], self.strides[i - added]);
            strides[i] = if d == target {
                s
            } else if d == 1 {
                0
            } else {
                return Err(err());
            };
        }
        Ok(Layout::new(shape.clone(), strides, self.offset))
    }
    // ANCHOR_END: views

    // ANCHOR: reshape_view
    /// A reshape that needs no copy, when one exists. Contiguous layouts can
    /// always be reshaped; otherwise we try to express each new dimension as
    /// a merge or split of old ones with compatible strides (as PyTorch's
    /// `view` does), and return `None` when the elements are not evenly spaced.
    /// A layout with no elements can take any shape of no elements.
    pub fn reshape_view(&self, shape: &Shape) -> Option<Layout> {
        if self.is_contiguous() || self.elem_count() == 0 {
            let strides = shape.contiguous_strides();
            return Some(Layout::new(shape.clone(), strides, self.offset));
        }
        // Group the old non-size-1 dimensions into chunks that are
        // contiguous among themselves, then split each chunk into new dims.
        let old: Vec<(usize, usize)> = self
            .dims()
            .iter()
            .zip(&self.strides)
            .filter(|(&d, _)| d != 1)
            .map(|(&d, &s)| (d, s))
            .collect();
        let new_dims = shape.dims();
        let mut new_strides = vec![0; new_dims.len()];
        let (mut oi, mut ni) = (0, 0);
        while ni < new_dims.len() || oi < old.len() {
            // Skip new size-1 dims (any stride works).
            if ni < new_dims.len() && new_dims[ni] == 1 {
                new_strides[ni] = 0;
                ni += 1;
                continue;
            }
            if oi >= old.len() || ni >= new_dims.len() {
                return None;
            }
            // Take old dims until their product matches the new dims' product.
            let (mut old_prod, mut new_prod) = (old[oi].0, new_dims[ni]);
            let n_start = ni;
            oi += 1;
            ni += 1;
            while old_prod != new_prod {
                if old_prod < new_prod {
                    if oi >= old.len() {
                        return None;
                    }
                    // Merging needs stride[k] == stride[k+1] * dim[k+1].
                    if old[oi - 1].1 != old[oi].1 * old[oi].0 {
                        return None;
                    }
                    old_prod *= old[oi].0;
                    oi += 1;
                } else {
                    if ni >= new_dims.len() {
                        return None;
                    }
                    new_prod *= new_dims[ni];
                    ni += 1;
                }
            }
            // The chunk old[o_start..oi] is evenly spaced with innermost stride:
            let mut stride = old[oi - 1].1;
            for k in (n_start..ni).rev() {
                new_strides[k] = stride;
                stride *= new_dims[k];
            }
        }
        Some(Layout::new(shape.clone(), new_strides, self.offset))
    }
    // ANCHOR_END: reshape_view

    /// Storage offset of every element, in row-major order of the view.
    /// Clear and general; the kernels use faster row-wise loops.
    pub fn offsets(&self) -> StridedOffsets<'_> {
        StridedOffsets::new(self)
    }
}

// ANCHOR: strided_offsets
/// Iterates the storage offsets of a layout's elements in row-major order,
/// like an odometer: bump the last index; when it overflows, reset it and
/// carry into the one before.
pub struct StridedOffsets<'a> {
    layout: &'a Layout,
    index: Vec<usize>,
    next: Option<usize>,
}

impl<'a> StridedOffsets<'a> {
    fn new(layout: &'a Layout) -> Self {
        let next = if layout.elem_count() == 0 {
            None
        } else {
            Some(layout.offset())
        };
        StridedOffsets {
            layout,
            index: vec![0; layout.rank()],
            next,
        }
    }
}

impl Iterator for StridedOffsets<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let current = self.next?;
        let mut offset = current;
        let mut d = self.layout.rank();
        loop {
            if d == 0 {
                self.next = None;
                break;
            }
            d -= 1;
            let stride = self.layout.strides()[d];
            self.index[d] += 1;
            offset += stride;
            if self.index[d] < self.layout.dims()[d] {
                self.next = Some(offset);
                break;
            }
            offset -= stride * self.index[d];
            self.index[d] = 0;
        }
        Some(current)
    }
}
// ANCHOR_END: strided_offsets
