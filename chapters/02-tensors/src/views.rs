//! Views: operations that change only the layout, never the elements.

use crate::{Dim, Error, Layout, Result, Shape, Tensor};

// ANCHOR: views
impl Tensor {
    /// Swaps two dimensions (no copy).
    pub fn transpose(&self, d0: impl Dim, d1: impl Dim) -> Result<Tensor> {
        let a = d0.to_index(self.shape(), "transpose")?;
        let b = d1.to_index(self.shape(), "transpose")?;
        Ok(self.with_layout(self.layout().transpose(a, b)))
    }

    /// Transposes the last two dimensions (the matrix transpose).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::invalid(
                "t",
                format!("needs at least 2 dimensions, got shape {}", self.shape()),
            ));
        }
        self.transpose(-2, -1)
    }

    /// Reorders dimensions: output dimension `i` is input dimension `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.rank()];
        if perm.len() != self.rank()
            || perm
                .iter()
                .any(|&p| p >= self.rank() || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::invalid(
                "permute",
                format!(
                    "{perm:?} is not a permutation of the {} dimensions of shape {}",
                    self.rank(),
                    self.shape()
                ),
            ));
        }
        Ok(self.with_layout(self.layout().permute(perm)))
    }

    /// Every `step`-th element of `start..stop` along `dim` (no copy).
    /// `stop` is clamped to the dimension, like Python slicing.
    pub fn slice(&self, dim: impl Dim, start: usize, stop: usize, step: usize) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "slice")?;
        if step == 0 {
            return Err(Error::invalid("slice", "step must be positive"));
        }
        let size = self.dims()[d];
        let stop = stop.min(size);
        let start = start.min(stop);
        Ok(self.with_layout(self.layout().slice(d, start, stop, step)))
    }

    /// `len` elements from `start` along `dim` (no copy).
    pub fn narrow(&self, dim: impl Dim, start: usize, len: usize) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "narrow")?;
        let size = self.dims()[d];
        if start + len > size {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "range {start}..{} is out of bounds for dimension {d} of shape {}",
                    start + len,
                    self.shape()
                ),
            ));
        }
        Ok(self.with_layout(self.layout().slice(d, start, start + len, 1)))
    }

    /// Stretches size-1 dimensions to `shape` (no copy: stride 0).
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        Ok(self.with_layout(self.layout().broadcast_as(&shape, "broadcast_to")?))
    }

    /// Same as [`broadcast_to`](Self::broadcast_to) (PyTorch's name).
    pub fn expand(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        Ok(self.with_layout(self.layout().broadcast_as(&shape, "expand")?))
    }

    /// The same elements with a new shape. A view when the layout allows it,
    /// a copy otherwise (PyTorch's `reshape`).
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.elem_count() != self.elem_count() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.shape().clone(),
                rhs: shape,
                detail: " (element counts differ)".into(),
            });
        }
        match self.layout().reshape_view(&shape) {
            Some(layout) => Ok(self.with_layout(layout)),
            None => {
                let c = self.contiguous()?;
                Ok(c.with_layout(Layout::contiguous(shape)))
            }
        }
    }

    /// Like [`reshape`](Self::reshape) but one entry may be `-1`, meaning
    /// "whatever makes the element count match".
    pub fn reshape_infer(&self, dims: &[isize]) -> Result<Tensor> {
        let holes = dims.iter().filter(|&&d| d == -1).count();
        let known: usize = dims
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .product();
        if holes > 1
            || dims.iter().any(|&d| d < -1)
            || (holes == 1 && (known == 0 || !self.elem_count().is_multiple_of(known)))
        {
            return Err(Error::invalid(
                "reshape",
                format!("cannot reshape {} into {dims:?}", self.shape()),
            ));
        }
        let shape: Vec<usize> = dims
            .iter()
            .map(|&d| {
                if d == -1 {
                    self.elem_count() / known
                } else {
                    d as usize
                }
            })
            .collect();
        self.reshape(shape)
    }

    /// A view that must not copy (PyTorch's `view`): an error when the
    /// strides make a copy necessary.
    pub fn view(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.elem_count() != self.elem_count() {
            return Err(Error::ShapeMismatch {
                op: "view",
                lhs: self.shape().clone(),
                rhs: shape,
                detail: " (element counts differ)".into(),
            });
        }
        match self.layout().reshape_view(&shape) {
            Some(layout) => Ok(self.with_layout(layout)),
            None => Err(Error::invalid(
                "view",
                format!(
                    "shape {} with strides {:?} cannot be viewed as {shape}; use reshape",
                    self.shape(),
                    self.layout().strides()
                ),
            )),
        }
    }

    /// Flattens dimensions `start..=end` into one.
    pub fn flatten(&self, start: impl Dim, end: impl Dim) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape(1);
        }
        let s = start.to_index(self.shape(), "flatten")?;
        let e = end.to_index(self.shape(), "flatten")?;
        if s > e {
            return Err(Error::invalid(
                "flatten",
                format!("start dimension {s} is after end dimension {e}"),
            ));
        }
        let d = self.dims();
        let mut shape = d[..s].to_vec();
        shape.push(d[s..=e].iter().product());
        shape.extend_from_slice(&d[e + 1..]);
        self.reshape(shape)
    }

    /// Removes a dimension of size 1.
    pub fn squeeze(&self, dim: impl Dim) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "squeeze")?;
        if self.dims()[d] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!("dimension {d} of shape {} is not 1", self.shape()),
            ));
        }
        let mut dims = self.dims().to_vec();
        let mut strides = self.layout().strides().to_vec();
        dims.remove(d);
        strides.remove(d);
        Ok(self.with_layout(Layout::new(dims.into(), strides, self.layout().offset())))
    }

    /// Inserts a dimension of size 1 at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: impl Dim) -> Result<Tensor> {
        let d = dim.to_index_plus_one(self.shape(), "unsqueeze")?;
        let mut dims = self.dims().to_vec();
        let mut strides = self.layout().strides().to_vec();
        let stride = if d < dims.len() {
            strides[d] * dims[d]
        } else {
            1
        };
        dims.insert(d, 1);
        strides.insert(d, stride);
        Ok(self.with_layout(Layout::new(dims.into(), strides, self.layout().offset())))
    }

    /// A view with explicit strides and offset into the same storage
    /// (`torch.as_strided`). Checked to stay inside the storage.
    pub fn as_strided(
        &self,
        shape: impl Into<Shape>,
        strides: &[usize],
        offset: usize,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if strides.len() != shape.rank() {
            return Err(Error::invalid(
                "as_strided",
                format!("{} strides for shape {shape}", strides.len()),
            ));
        }
        let layout = Layout::new(shape, strides.to_vec(), offset);
        if layout.max_storage_index() > self.storage().len() {
            return Err(Error::invalid(
                "as_strided",
                "the view reaches past the end of the storage",
            ));
        }
        Ok(self.with_layout(layout))
    }
}
// ANCHOR_END: views
