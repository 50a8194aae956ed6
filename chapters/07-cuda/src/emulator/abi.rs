//! What crosses the line between Rust and a kernel: the layout struct the
//! kernels take by value, and the parameter list of a launch.

use crate::runtime::{DevicePtr, LaunchConfig, Runtime};
use chapter_02::{Error, Layout, Result};
use std::ffi::c_void;

// ANCHOR: strided
/// The most dimensions a kernel's view may have (`CANDLE_MAX_RANK` in
/// `kernels/candle.cuh`).
pub const MAX_RANK: usize = 8;

/// A strided view as the kernels take it (`struct Strided` in
/// `candle.cuh`, field for field): element `(i₀, …)` lives at
/// `offset + Σ iₖ·strides[k]`, counted in elements.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strided {
    pub rank: i32,
    pub offset: i64,
    pub shape: [i64; MAX_RANK],
    pub strides: [i64; MAX_RANK],
}

impl Strided {
    /// The view of `layout` with as few dimensions as possible: size-1
    /// dimensions are dropped and a dimension is merged into the one before
    /// it when the two step through memory as one (`stride[d] =
    /// stride[d+1]·shape[d+1]`). A contiguous view of any shape becomes
    /// rank 1 with stride 1, the kernels' fast path. A view that still has
    /// more than [`MAX_RANK`] dimensions is an error.
    pub fn from_layout(layout: &Layout) -> Result<Strided> {
        let mut dims: Vec<(i64, i64)> = Vec::new();
        if layout.dims().contains(&0) {
            dims.push((0, 1));
        }
        for (&n, &s) in layout.dims().iter().zip(layout.strides()) {
            if n == 1 || !dims.is_empty() && dims[0].0 == 0 {
                continue;
            }
            let (n, s) = (n as i64, s as i64);
            match dims.last_mut() {
                Some(last) if last.1 == s * n => *last = (last.0 * n, s),
                _ => dims.push((n, s)),
            }
        }
        if dims.is_empty() {
            dims.push((1, 1));
        }
        if dims.len() > MAX_RANK {
            return Err(Error::invalid(
                "cuda kernel layout",
                format!(
                    "a view of shape {} has {} dimensions that cannot be merged; kernels take at most {MAX_RANK}",
                    layout.shape(),
                    dims.len()
                ),
            ));
        }
        let mut v = Strided {
            rank: dims.len() as i32,
            offset: layout.offset() as i64,
            shape: [0; MAX_RANK],
            strides: [0; MAX_RANK],
        };
        for (d, (n, s)) in dims.into_iter().enumerate() {
            v.shape[d] = n;
            v.strides[d] = s;
        }
        Ok(v)
    }

    /// The contiguous view of `n` elements.
    pub fn contiguous(n: usize) -> Strided {
        Strided::from_layout(&Layout::contiguous(n)).expect("rank 1")
    }

    /// A view with exactly the given shape and strides (no merging), for
    /// kernels that need the dimensions themselves (gather, scatter).
    pub fn exact(shape: &[usize], strides: &[usize], offset: usize) -> Result<Strided> {
        if shape.len() > MAX_RANK {
            return Err(Error::invalid(
                "cuda kernel layout",
                format!(
                    "{} dimensions; kernels take at most {MAX_RANK}",
                    shape.len()
                ),
            ));
        }
        let mut v = Strided {
            rank: shape.len() as i32,
            offset: offset as i64,
            shape: [1; MAX_RANK],
            strides: [0; MAX_RANK],
        };
        for d in 0..shape.len() {
            v.shape[d] = shape[d] as i64;
            v.strides[d] = strides[d] as i64;
        }
        Ok(v)
    }
}
// ANCHOR_END: strided

// ANCHOR: kernel_args
/// The parameters of one launch, in order. Each value is copied into a
/// buffer of its own, and [`KernelArgs::params`] hands out one pointer per
/// parameter, the form `cuLaunchKernel` (and [`Runtime::launch`]) takes.
///
/// The types must match the kernel's signature exactly (`long long` is
/// `i64`, a device pointer is a [`DevicePtr`], `Strided` is [`Strided`]):
/// the emulator checks the count, nothing can check the types.
#[derive(Debug, Default)]
pub struct KernelArgs {
    values: Vec<Box<[u64]>>,
}

impl KernelArgs {
    pub fn new() -> Self {
        KernelArgs::default()
    }
    /// Appends a parameter.
    pub fn arg<T: Copy + 'static>(mut self, value: T) -> Self {
        let words = std::mem::size_of::<T>().div_ceil(8).max(1);
        assert!(
            std::mem::align_of::<T>() <= 8,
            "kernel parameters align to at most 8 bytes"
        );
        let mut buf = vec![0u64; words].into_boxed_slice();
        // SAFETY: `buf` has room for a `T` and is 8-byte aligned.
        unsafe { (buf.as_mut_ptr() as *mut T).write(value) };
        self.values.push(buf);
        self
    }
    /// One pointer per parameter, valid while `self` lives.
    pub fn params(&mut self) -> Vec<*mut c_void> {
        self.values
            .iter_mut()
            .map(|b| b.as_mut_ptr() as *mut c_void)
            .collect()
    }
}
// ANCHOR_END: kernel_args

/// Typed copies and launches on any [`Runtime`].
pub trait RuntimeExt: Runtime {
    /// A fresh device buffer holding `data`.
    fn upload<T: Copy>(&self, data: &[T]) -> Result<DevicePtr> {
        let bytes = std::mem::size_of_val(data);
        let ptr = self.alloc(bytes)?;
        // SAFETY: `data` is `bytes` bytes of plain values.
        let raw = unsafe { std::slice::from_raw_parts(data.as_ptr() as *const u8, bytes) };
        self.copy_htod(ptr, raw)?;
        Ok(ptr)
    }
    /// `n` elements read back from `ptr`.
    fn download<T: Copy + Default>(&self, ptr: DevicePtr, n: usize) -> Result<Vec<T>> {
        let mut out = vec![T::default(); n];
        let bytes = std::mem::size_of_val(out.as_slice());
        // SAFETY: `out` is `bytes` bytes of plain values, any bits valid for
        // the numeric types used here.
        let raw = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, bytes) };
        self.copy_dtoh(raw, ptr)?;
        Ok(out)
    }
    /// Launches `name` with `args`.
    fn launch_args(&self, name: &str, cfg: LaunchConfig, mut args: KernelArgs) -> Result<()> {
        self.launch(name, cfg, &mut args.params())
    }
}

impl<R: Runtime + ?Sized> RuntimeExt for R {}
