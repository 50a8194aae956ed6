//! The CPU backend: storage is a plain `Vec` of elements, and each primitive
//! is a loop over strided views (see [`strided`]), with matrix products
//! handed to the `gemm` crate.

mod elementwise;
mod fused;
mod half;
mod index;
mod matmul;
pub(crate) mod pool;
mod reduce;
mod sort;
pub(crate) mod strided;

use crate::backend::{
    Backend, BackendStorage, BinaryOp, CmpOp, Distribution, Program, RandomStream, ReduceOp,
    Storage, UnaryOp,
};
use crate::{bf16, f16, DType, DeviceId, DeviceKind, Error, Layout, Result, Shape, WithDType};
use std::any::Any;
use std::sync::Arc;

// ANCHOR: cpu_storage
/// Elements on the host, one `Vec` per dtype. It is also the currency for
/// moving data between devices: every backend can read and write it.
#[derive(Debug, Clone, PartialEq)]
pub enum CpuStorage {
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    U8(Vec<u8>),
}
// ANCHOR_END: cpu_storage

// ANCHOR: on_storage
/// Evaluates `$body` with `$x` bound to the storage's `Vec<$T>`, whatever
/// its element type `$T`: `on_storage!(s, x: T => x.len())`. With
/// [`with_dtype!`](crate::with_dtype), the only match over dtypes in the
/// CPU backend; every kernel is a generic function called from here.
macro_rules! on_storage {
    ($s:expr, $x:ident : $T:ident => $body:expr) => {
        match $s {
            CpuStorage::F16($x) => {
                #[allow(dead_code)]
                type $T = $crate::f16;
                $body
            }
            CpuStorage::BF16($x) => {
                #[allow(dead_code)]
                type $T = $crate::bf16;
                $body
            }
            CpuStorage::F32($x) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            CpuStorage::F64($x) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            CpuStorage::I64($x) => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
            CpuStorage::U8($x) => {
                #[allow(dead_code)]
                type $T = u8;
                $body
            }
        }
    };
}
pub(crate) use on_storage;
// ANCHOR_END: on_storage

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        on_storage!(self, _x: T => T::DTYPE)
    }
    pub fn len(&self) -> usize {
        on_storage!(self, x: T => x.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `i` as an `f64` (for printing and tests).
    pub fn get_f64(&self, i: usize) -> f64 {
        on_storage!(self, x: T => x[i].to_f64())
    }
    /// The elements as a slice of `T`, if `T` is the storage's type.
    pub fn as_slice<T: WithDType>(&self) -> Result<&[T]> {
        T::from_storage(self).ok_or(Error::DTypeMismatch {
            op: "as_slice",
            lhs: self.dtype(),
            rhs: T::DTYPE,
        })
    }

    /// The elements as a mutable slice of `T`; an error for another dtype.
    pub fn as_mut_slice<T: WithDType>(&mut self) -> Result<&mut [T]> {
        let dtype = self.dtype();
        T::from_storage_mut(self).ok_or(Error::DTypeMismatch {
            op: "as_mut_slice",
            lhs: dtype,
            rhs: T::DTYPE,
        })
    }
}

/// A dropped storage gives its buffer back to the buffer pool (`cpu::pool`) for reuse.
impl Drop for CpuStorage {
    fn drop(&mut self) {
        on_storage!(self, x: T => pool::give(std::mem::take(x)))
    }
}

impl<T: WithDType> From<Vec<T>> for CpuStorage {
    fn from(v: Vec<T>) -> Self {
        T::to_storage(v)
    }
}

impl BackendStorage for CpuStorage {
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }
    fn len(&self) -> usize {
        CpuStorage::len(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The CPU device.
#[derive(Debug, Default)]
pub struct CpuBackend;

/// How many threads the CPU kernels share: rayon's pool, one thread per
/// core unless `RAYON_NUM_THREADS` says otherwise.
pub(crate) fn threads() -> usize {
    rayon::current_num_threads()
}

// ANCHOR: kernel_threads
/// Makes the calling thread one of the CPU kernels' threads; call it once,
/// first thing in `main`, before any tensor work.
///
/// Rayon's pool normally owns all its threads. A parallel kernel started
/// from any other thread (say `main`) hands its work to the pool and goes
/// to sleep until the pool is done: two thread hand-offs per kernel, and a
/// core idle in between. A training step runs a few hundred kernels, so
/// on a small machine those hand-offs cost as much as the arithmetic
/// (measured with the MNIST MLP on 2 cores: about 45 voluntary context
/// switches per step before, 18 after). With the caller as worker 0, its
/// kernels split their work with the other workers directly.
///
/// Returns an error if the pool was already built, for example because a
/// kernel ran before this call; the kernels then keep working as before.
pub fn join_kernel_threads() -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .map_err(|e| Error::device("join_kernel_threads", "cpu", e.to_string()))
}
// ANCHOR_END: kernel_threads

// ANCHOR: downcast
/// Downcasts a storage handed to the CPU backend; a storage from another
/// device here is a bug in the caller, reported as an error.
pub(crate) fn cpu(s: &dyn BackendStorage) -> Result<&CpuStorage> {
    s.as_any()
        .downcast_ref::<CpuStorage>()
        .ok_or_else(|| Error::device("cpu backend", "cpu", "storage belongs to another device"))
}

/// Runs a kernel and wraps its result as shared storage.
fn run(kernel: impl FnOnce() -> Result<CpuStorage>) -> Result<Storage> {
    Ok(Arc::new(kernel()?))
}
// ANCHOR_END: downcast

impl Backend for CpuBackend {
    fn id(&self) -> DeviceId {
        DeviceId {
            kind: DeviceKind::CPU,
            ordinal: 0,
        }
    }

    fn host_storage<'a>(&self, storage: &'a dyn BackendStorage) -> Option<&'a CpuStorage> {
        storage.as_any().downcast_ref::<CpuStorage>()
    }

    fn host_storage_mut<'a>(
        &self,
        storage: &'a mut dyn BackendStorage,
    ) -> Option<&'a mut CpuStorage> {
        storage.as_any_mut().downcast_mut::<CpuStorage>()
    }

    fn upload(&self, data: CpuStorage) -> Result<Storage> {
        Ok(Arc::new(data))
    }

    fn to_cpu(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage> {
        let s = cpu(src)?;
        if layout.is_contiguous() && layout.offset() == 0 && layout.elem_count() == s.len() {
            return Ok(s.clone());
        }
        Ok(elementwise::copy(s, layout))
    }

    fn full(&self, shape: &Shape, value: f64, dtype: DType) -> Result<Storage> {
        let n = shape.elem_count();
        run(|| {
            Ok(crate::with_dtype!(dtype, T => {
                let x = T::from_f64(value);
                let mut v = pool::overwritten(n, x);
                v.fill(x);
                v.into()
            }))
        })
    }

    fn arange(&self, start: f64, step: f64, len: usize, dtype: DType) -> Result<Storage> {
        run(|| {
            Ok(crate::with_dtype!(dtype, T => {
                let mut v = pool::with_capacity(len);
                v.extend((0..len).map(|i| T::from_f64(start + i as f64 * step)));
                v.into()
            }))
        })
    }

    fn random(
        &self,
        dist: Distribution,
        shape: &Shape,
        dtype: DType,
        stream: RandomStream,
    ) -> Result<Storage> {
        let n = shape.elem_count();
        run(|| {
            Ok(crate::with_dtype!(dtype, T => {
                let mut out = pool::overwritten(n, T::default());
                crate::philox::generate(dist, stream, dtype, n, |i, v| out[i] = T::from_f64(v));
                out.into()
            }))
        })
    }

    fn copy(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage> {
        let s = cpu(src)?;
        run(|| Ok(elementwise::copy(s, layout)))
    }

    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        let s = cpu(src)?;
        let d = dst
            .as_any_mut()
            .downcast_mut::<CpuStorage>()
            .ok_or_else(|| {
                Error::device("copy_into", "cpu", "storage belongs to another device")
            })?;
        elementwise::copy_into(d, dst_layout, s, src_layout)
    }

    fn cast(&self, src: &dyn BackendStorage, layout: &Layout, dtype: DType) -> Result<Storage> {
        let s = cpu(src)?;
        run(|| Ok(elementwise::cast(s, layout, dtype)))
    }

    fn unary(&self, op: UnaryOp, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage> {
        let s = cpu(src)?;
        run(|| half::in_f32(&[(s, layout)], |x| elementwise::unary(op, x[0].0, x[0].1)))
    }

    fn binary(
        &self,
        op: BinaryOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        let inputs = [(cpu(lhs)?, lhs_layout), (cpu(rhs)?, rhs_layout)];
        run(|| {
            half::in_f32(&inputs, |x| {
                elementwise::binary(op, x[0].0, x[0].1, x[1].0, x[1].1)
            })
        })
    }

    fn cmp(
        &self,
        op: CmpOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        let (a, b) = (cpu(lhs)?, cpu(rhs)?);
        run(|| elementwise::cmp(op, a, lhs_layout, b, rhs_layout))
    }

    fn where_cond(
        &self,
        cond: &dyn BackendStorage,
        cond_layout: &Layout,
        on_true: &dyn BackendStorage,
        true_layout: &Layout,
        on_false: &dyn BackendStorage,
        false_layout: &Layout,
    ) -> Result<Storage> {
        let (c, t, f) = (cpu(cond)?, cpu(on_true)?, cpu(on_false)?);
        run(|| elementwise::where_cond(c, cond_layout, t, true_layout, f, false_layout))
    }

    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        axes: &[usize],
    ) -> Result<Storage> {
        let s = cpu(src)?;
        run(|| half::in_f32(&[(s, layout)], |x| reduce::reduce(op, x[0].0, x[0].1, axes)))
    }

    fn matmul(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        let inputs = [(cpu(lhs)?, lhs_layout), (cpu(rhs)?, rhs_layout)];
        run(|| half::in_f32(&inputs, |x| matmul::matmul(x[0].0, x[0].1, x[1].0, x[1].1)))
    }

    fn index_select(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let (s, i) = (cpu(src)?, cpu(ids)?);
        run(|| index::index_select(s, layout, i, ids_layout, dim))
    }

    fn gather(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let (s, i) = (cpu(src)?, cpu(ids)?);
        run(|| index::gather(s, layout, i, ids_layout, dim))
    }

    fn scatter_add(
        &self,
        base: &dyn BackendStorage,
        base_layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let i = cpu(ids)?;
        let inputs = [(cpu(base)?, base_layout), (cpu(src)?, src_layout)];
        run(|| {
            half::in_f32(&inputs, |x| {
                index::scatter_add(x[0].0, x[0].1, i, ids_layout, x[1].0, x[1].1, dim)
            })
        })
    }

    fn index_add(
        &self,
        base: &dyn BackendStorage,
        base_layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let i = cpu(ids)?;
        let inputs = [(cpu(base)?, base_layout), (cpu(src)?, src_layout)];
        run(|| {
            half::in_f32(&inputs, |x| {
                index::index_add(x[0].0, x[0].1, i, ids_layout, x[1].0, x[1].1, dim)
            })
        })
    }

    fn argsort(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        descending: bool,
    ) -> Result<Storage> {
        let s = cpu(src)?;
        run(|| Ok(sort::argsort(s, layout, descending)))
    }

    fn fused(
        &self,
        program: &Program,
        inputs: &[(&dyn BackendStorage, &Layout)],
        scalars: &[f64],
    ) -> Result<Vec<Storage>> {
        program.validate(inputs.len(), scalars.len())?;
        let inputs: Vec<(&CpuStorage, &Layout)> = inputs
            .iter()
            .map(|(s, l)| Ok((cpu(*s)?, *l)))
            .collect::<Result<_>>()?;
        let outputs = half::in_f32_many(&inputs, |x| fused::run(program, x, scalars))?;
        Ok(outputs
            .into_iter()
            .map(|s| Arc::new(s) as Storage)
            .collect())
    }

    fn fused_in_place(
        &self,
        program: &Program,
        state: &mut [&mut dyn BackendStorage],
        layout: &Layout,
        inputs: &[(&dyn BackendStorage, &Layout)],
        scalars: &[f64],
    ) -> Result<()> {
        program.validate(state.len() + inputs.len(), scalars.len())?;
        let others: Vec<(&CpuStorage, &Layout)> = inputs
            .iter()
            .map(|(s, l)| Ok((cpu(*s)?, *l)))
            .collect::<Result<_>>()?;
        let mut dsts: Vec<&mut CpuStorage> = state
            .iter_mut()
            .map(|s| {
                s.as_any_mut().downcast_mut::<CpuStorage>().ok_or_else(|| {
                    Error::device("cpu backend", "cpu", "storage belongs to another device")
                })
            })
            .collect::<Result<_>>()?;
        if dsts.iter().all(|d| d.len() == layout.elem_count())
            && fused::run_in_place_storage(program, &mut dsts, &others, scalars)
        {
            return Ok(());
        }
        // Half precision: the out-of-place program (which widens to f32
        // and rounds once), then a copy over each state buffer.
        let outs = {
            let mut all: Vec<(&CpuStorage, &Layout)> =
                dsts.iter().map(|d| (&**d, layout)).collect();
            all.extend_from_slice(&others);
            half::in_f32_many(&all, |x| fused::run(program, x, scalars))?
        };
        for (dst, out) in dsts.iter_mut().zip(outs) {
            **dst = out;
        }
        Ok(())
    }
}
