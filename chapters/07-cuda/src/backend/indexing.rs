//! Indexing on the device: `index_select`, `gather`, their adjoints, and
//! `argsort`.
//!
//! The indices live on the device, so nobody has looked at them before the
//! kernel does. A kernel that meets an index outside its dimension does not
//! follow it: it writes the index into an *error flag*, one `i64` in device
//! memory that the backend sets to −1 before the launch and reads after it.
//! Reading the flag is a transfer of 8 bytes (and it waits for the kernel),
//! the price of reporting a bad index as an [`Error::Device`] naming the
//! operation and the shapes, with the device still usable, instead of a
//! wild read that would lose the whole CUDA context.
//!
//! The flag starts at 0, an index that is never out of range (a dimension
//! we index into has at least one element; indexing an empty dimension
//! with any id is refused before the launch). The kernels' own comments
//! suggest −1, but −1 is also a bad index a user can pass, which would
//! then go unreported.

use super::{elementwise_launch, suffix, unsupported, CudaBackend, CudaStorage};
use crate::emulator::{KernelArgs, Strided};
use crate::runtime::{LaunchConfig, Runtime};
use chapter_02::{DType, Error, Layout, Result};

/// Which adjoint: `scatter_add` (of `gather`) or `index_add` (of
/// `index_select`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddAt {
    Scatter,
    Index,
}

impl<R: Runtime> CudaBackend<R> {
    /// A view with its dimensions as they are (an indexing kernel needs
    /// dimension `dim` where it is).
    fn exact(&self, op: &'static str, l: &Layout) -> Result<Strided> {
        Strided::exact(l.dims(), l.strides(), l.offset()).map_err(|e| self.relabel(op, e))
    }

    /// A fresh error flag holding 0 (see the module's docs), or an error
    /// when the indexed dimension is empty, so that every id is out of
    /// range.
    fn error_flag(&self, op: &'static str, size: usize, shapes: &str) -> Result<CudaStorage<R>> {
        if size == 0 {
            return Err(self.err(
                op,
                format!("every index is out of range for a dimension of size 0 ({shapes})"),
            ));
        }
        let flag = self.alloc(op, DType::I64, 1)?;
        self.runtime
            .memset_zero(flag.ptr(), 8)
            .map_err(|e| self.relabel(op, e))?;
        Ok(flag)
    }

    // ANCHOR: check_flag
    /// Reads the flag back: 0 means every index was in range.
    fn check_flag(
        &self,
        op: &'static str,
        flag: &CudaStorage<R>,
        dim: usize,
        size: usize,
        shapes: &str,
    ) -> Result<()> {
        let mut bad = [0i64];
        // SAFETY: one i64, written by the kernel or the upload.
        let bytes = unsafe { std::slice::from_raw_parts_mut(bad.as_mut_ptr() as *mut u8, 8) };
        self.runtime
            .copy_dtoh(bytes, flag.ptr())
            .map_err(|e| self.relabel(op, e))?;
        if bad[0] == 0 {
            return Ok(());
        }
        Err(self.err(
            op,
            format!(
                "index {} is out of range for dimension {dim} of size {size} ({shapes})",
                bad[0]
            ),
        ))
    }
    // ANCHOR_END: check_flag

    // ANCHOR: index_select
    /// `out[.., i, ..] = src[.., ids[i], ..]`: one thread per output
    /// element, which finds its coordinate along `dim`, reads that id, and
    /// copies one element.
    pub(crate) fn index_select_storage(
        &self,
        s: &CudaStorage<R>,
        layout: &Layout,
        ids: &CudaStorage<R>,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<CudaStorage<R>> {
        let op = "index_select";
        let mut out_dims = layout.dims().to_vec();
        out_dims[dim] = ids_layout.elem_count();
        let n: usize = out_dims.iter().product();
        let out = self.alloc(op, s.dtype, n)?;
        if n == 0 {
            return Ok(out);
        }
        let shapes = format!("source {}, ids {}", layout.shape(), ids_layout.shape());
        let flag = self.error_flag(op, layout.dims()[dim], &shapes)?;
        let out_shape = Layout::contiguous(out_dims);
        let args = KernelArgs::new()
            .arg(n as i64)
            .arg(self.exact(op, layout)?)
            .arg(s.ptr())
            .arg(self.exact(op, ids_layout)?)
            .arg(ids.ptr())
            .arg(dim as i32)
            .arg(self.exact(op, &out_shape)?)
            .arg(out.ptr())
            .arg(flag.ptr());
        self.launch(
            op,
            &format!("index_select_{}", suffix(s.dtype)),
            elementwise_launch(n),
            args,
        )?;
        self.check_flag(op, &flag, dim, layout.dims()[dim], &shapes)?;
        Ok(out)
    }
    // ANCHOR_END: index_select

    /// `out[c] = src[c with c[dim] = ids[c]]`, one thread per element of `ids`.
    pub(crate) fn gather_storage(
        &self,
        s: &CudaStorage<R>,
        layout: &Layout,
        ids: &CudaStorage<R>,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<CudaStorage<R>> {
        let op = "gather";
        let n = ids_layout.elem_count();
        let out = self.alloc(op, s.dtype, n)?;
        if n == 0 {
            return Ok(out);
        }
        let shapes = format!("source {}, ids {}", layout.shape(), ids_layout.shape());
        let flag = self.error_flag(op, layout.dims()[dim], &shapes)?;
        let args = KernelArgs::new()
            .arg(n as i64)
            .arg(self.exact(op, layout)?)
            .arg(s.ptr())
            .arg(self.exact(op, ids_layout)?)
            .arg(ids.ptr())
            .arg(dim as i32)
            .arg(out.ptr())
            .arg(flag.ptr());
        self.launch(
            op,
            &format!("gather_{}", suffix(s.dtype)),
            elementwise_launch(n),
            args,
        )?;
        self.check_flag(op, &flag, dim, layout.dims()[dim], &shapes)?;
        Ok(out)
    }

    // ANCHOR: add_at
    /// `scatter_add` and `index_add`: the output starts as a contiguous
    /// copy of `base`, then one thread per source element adds it into its
    /// destination with `atomicAdd`, since two sources may share one
    /// destination (a word seen twice in a batch).
    pub(crate) fn add_at_storage(
        &self,
        which: AddAt,
        (base, base_layout): (&CudaStorage<R>, &Layout),
        (ids, ids_layout): (&CudaStorage<R>, &Layout),
        (src, src_layout): (&CudaStorage<R>, &Layout),
        dim: usize,
    ) -> Result<CudaStorage<R>> {
        let op = match which {
            AddAt::Scatter => "scatter_add",
            AddAt::Index => "index_add",
        };
        if base.dtype == DType::U8 {
            return Err(unsupported(op, base.dtype));
        }
        if src.dtype != base.dtype {
            return Err(Error::DTypeMismatch {
                op,
                lhs: base.dtype,
                rhs: src.dtype,
            });
        }
        let out = self.contiguous(op, base, base_layout)?;
        let n = match which {
            AddAt::Scatter => ids_layout.elem_count(),
            AddAt::Index => src_layout.elem_count(),
        };
        if n == 0 {
            return Ok(out);
        }
        let shapes = format!(
            "base {}, ids {}, source {}",
            base_layout.shape(),
            ids_layout.shape(),
            src_layout.shape()
        );
        let flag = self.error_flag(op, base_layout.dims()[dim], &shapes)?;
        let out_view = self.exact(op, &Layout::contiguous(base_layout.shape().clone()))?;
        let (ids_v, src_v) = (self.exact(op, ids_layout)?, self.exact(op, src_layout)?);
        let args = match which {
            AddAt::Scatter => KernelArgs::new()
                .arg(n as i64)
                .arg(ids_v)
                .arg(ids.ptr())
                .arg(src_v)
                .arg(src.ptr()),
            AddAt::Index => KernelArgs::new()
                .arg(n as i64)
                .arg(src_v)
                .arg(src.ptr())
                .arg(ids_v)
                .arg(ids.ptr()),
        }
        .arg(dim as i32)
        .arg(out_view)
        .arg(out.ptr())
        .arg(flag.ptr());
        self.launch(
            op,
            &format!("{op}_{}", suffix(base.dtype)),
            elementwise_launch(n),
            args,
        )?;
        self.check_flag(op, &flag, dim, base_layout.dims()[dim], &shapes)?;
        Ok(out)
    }
    // ANCHOR_END: add_at

    // ANCHOR: argsort
    /// Sorts each row (the last dimension) with the bitonic network of
    /// `kernels/backend_sort.cu`: the view made contiguous, one block per
    /// row (up to 1024 blocks, each reusing its scratch row by row), and
    /// `p2`, the row length rounded up to a power of two, positions of
    /// scratch per block.
    pub(crate) fn argsort_storage(
        &self,
        s: &CudaStorage<R>,
        layout: &Layout,
        descending: bool,
    ) -> Result<CudaStorage<R>> {
        let op = "argsort";
        let n = layout.elem_count();
        let cols = layout.dims().last().copied().unwrap_or(1);
        let out = self.alloc(op, DType::I64, n)?;
        if n == 0 {
            return Ok(out);
        }
        let rows = n / cols;
        let p2 = cols.next_power_of_two();
        let blocks = rows.min(1024);
        let (x, _copy) = self.flat(op, s, layout)?;
        let scratch = self.alloc(op, DType::I64, blocks * p2)?;
        let args = KernelArgs::new()
            .arg(rows as i64)
            .arg(cols as i64)
            .arg(p2 as i64)
            .arg(x)
            .arg(descending as i32)
            .arg(scratch.ptr())
            .arg(out.ptr());
        let cfg = LaunchConfig {
            grid: [blocks as u32, 1, 1],
            block: [p2.min(256) as u32, 1, 1],
            shared_mem_bytes: 0,
        };
        self.launch(op, &format!("argsort_{}", suffix(s.dtype)), cfg, args)?;
        Ok(out)
    }
    // ANCHOR_END: argsort
}
