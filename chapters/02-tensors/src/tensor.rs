//! The `Tensor` type: storage + layout + dtype + device.

use crate::backend::{Distribution, Storage};
use crate::random::{with_default_generator, Generator};
use crate::{
    default_device, philox, CpuStorage, DType, Device, Dim, Error, Layout, Result, Shape, WithDType,
};
use std::sync::Arc;

// ANCHOR: tensor
/// An n-dimensional array of numbers on some device.
///
/// This is the *raw* tensor: numbers, with no memory of how they were
/// computed. Chapter 03 wraps it in an autograd `Tensor` that records
/// operations for `backward`, and from chapter 03 on this type is
/// re-exported under the name `RawTensor`.
///
/// A tensor is a *view*: a [`Layout`] (shape, strides, offset) over shared
/// storage. Views such as `transpose` or `slice` make a new `Tensor` that
/// points at the same storage; `Clone` copies only a reference count.
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<TensorInner>);

pub(crate) struct TensorInner {
    pub(crate) storage: Storage,
    pub(crate) layout: Layout,
    pub(crate) device: Device,
}
// ANCHOR_END: tensor

impl Tensor {
    /// Wraps storage produced by a backend. `layout` must fit inside it.
    pub fn from_storage(storage: Storage, layout: Layout, device: Device) -> Tensor {
        debug_assert!(layout.max_storage_index() <= storage.len());
        Tensor(Arc::new(TensorInner {
            storage,
            layout,
            device,
        }))
    }

    /// A new view of the same storage.
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor::from_storage(self.0.storage.clone(), layout, self.0.device.clone())
    }

    /// A contiguous result of `shape` from a backend.
    pub(crate) fn from_result(storage: Storage, shape: Shape, device: &Device) -> Tensor {
        Tensor::from_storage(storage, Layout::contiguous(shape), device.clone())
    }

    pub fn storage(&self) -> &Storage {
        &self.0.storage
    }
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    pub fn shape(&self) -> &Shape {
        self.0.layout.shape()
    }
    pub fn dims(&self) -> &[usize] {
        self.0.layout.dims()
    }
    /// Size of one dimension (negative counts from the end).
    pub fn dim(&self, d: impl Dim) -> Result<usize> {
        Ok(self.dims()[d.to_index(self.shape(), "dim")?])
    }
    pub fn rank(&self) -> usize {
        self.0.layout.rank()
    }
    pub fn elem_count(&self) -> usize {
        self.0.layout.elem_count()
    }
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }
    pub fn device(&self) -> &Device {
        &self.0.device
    }
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    /// Whether two tensors share storage (one is a view of the other).
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }
    /// Whether this handle is the only one to its storage, so that an
    /// in-place write ([`slice_assign_`](Self::slice_assign_)) needs no copy.
    pub fn is_storage_unique(&self) -> bool {
        Arc::strong_count(&self.0) == 1 && Arc::strong_count(&self.0.storage) == 1
    }
}

// ANCHOR: host_kernels
/// What a kernel for a host-memory device (the CPU) needs: the elements of
/// its inputs as slices, and a way to wrap its result. Neither is a
/// transfer: the data already is in host memory.
impl Tensor {
    /// The elements of a contiguous tensor whose device keeps its data in
    /// host memory, as a slice of `T`. An error for other devices, for a
    /// strided view (call [`contiguous`](Self::contiguous) first) and for
    /// another element type.
    pub fn host_slice<T: WithDType>(&self) -> Result<&[T]> {
        let host = self
            .device()
            .backend()
            .host_storage(self.storage().as_ref())
            .ok_or_else(|| {
                Error::invalid(
                    "host_slice",
                    format!("{} does not keep tensors in host memory", self.device()),
                )
            })?;
        if !self.is_contiguous() {
            return Err(Error::invalid(
                "host_slice",
                format!("the view of shape {} is not contiguous", self.shape()),
            ));
        }
        let o = self.layout().offset();
        Ok(&host.as_slice::<T>()?[o..o + self.elem_count()])
    }

    /// The elements of a tensor whose device keeps its data in host memory,
    /// as a mutable slice of `T`: what an in-place host kernel writes. With
    /// value semantics, a tensor whose storage is shared (or a strided view)
    /// first gets a contiguous copy of its own (copy-on-write), so other
    /// tensors never see the writes. An error for other devices and for
    /// another element type.
    pub fn host_slice_mut<T: WithDType>(&mut self) -> Result<&mut [T]> {
        if self.dtype() != T::DTYPE {
            return Err(Error::DTypeMismatch {
                op: "host_slice_mut",
                lhs: self.dtype(),
                rhs: T::DTYPE,
            });
        }
        let whole = self.is_contiguous()
            && self.layout().offset() == 0
            && self.storage().len() == self.elem_count();
        if !whole || !self.is_storage_unique() {
            *self = self.copy()?;
        }
        let device = self.device().clone();
        let shared =
            || Error::invalid("host_slice_mut", "the tensor is shared after copy-on-write");
        let inner = Arc::get_mut(&mut self.0).ok_or_else(shared)?;
        let storage = Arc::get_mut(&mut inner.storage).ok_or_else(shared)?;
        let host = device.backend().host_storage_mut(storage).ok_or_else(|| {
            Error::invalid(
                "host_slice_mut",
                format!("{device} does not keep tensors in host memory"),
            )
        })?;
        host.as_mut_slice::<T>()
    }

    /// A contiguous tensor on `device` holding `data`, which a host kernel
    /// computed. `device` must keep its data in host memory (the CPU).
    pub fn from_host_vec<T: WithDType>(
        data: Vec<T>,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.elem_count() || !device.is_cpu() {
            return Err(Error::invalid(
                "from_host_vec",
                format!(
                    "{} elements for shape {shape} on {device} (needs a host-memory device \
                     and one element per position)",
                    data.len()
                ),
            ));
        }
        let storage: Storage = Arc::new(CpuStorage::from(data));
        Ok(Tensor::from_result(storage, shape, device))
    }

    /// A contiguous tensor on a host-memory `device` for a host kernel that
    /// will write every element (through
    /// [`host_slice_mut`](Self::host_slice_mut)): its buffer comes from the
    /// CPU's buffer pool, and its values are unspecified until written
    /// (zeros, or the old values of a freed tensor). Use it instead of
    /// [`zeros`](Self::zeros) when the kernel overwrites everything anyway:
    /// it saves a pass over memory.
    pub fn for_overwrite(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        if !device.is_cpu() {
            return Err(Error::invalid(
                "for_overwrite",
                format!("{device} does not keep tensors in host memory"),
            ));
        }
        let n = shape.elem_count();
        let storage: CpuStorage = crate::with_dtype!(dtype, T => {
            crate::cpu::pool::overwritten(n, T::default()).into()
        });
        Ok(Tensor::from_result(Arc::new(storage), shape, device))
    }
}
// ANCHOR_END: host_kernels

// ANCHOR: creation
impl Tensor {
    /// A tensor from a flat `Vec` in row-major order.
    pub fn from_vec<T: WithDType>(
        data: Vec<T>,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.elem_count() {
            return Err(Error::invalid(
                "from_vec",
                format!(
                    "{} elements cannot have shape {shape} ({} elements)",
                    data.len(),
                    shape.elem_count()
                ),
            ));
        }
        let storage = device.backend().upload(T::to_storage(data))?;
        Ok(Tensor::from_result(storage, shape, device))
    }

    /// A 1-D tensor on the [default device](crate::default_device):
    /// `Tensor::new(&[1.0f32, 2.0, 3.0])?`.
    pub fn new<T: WithDType>(data: &[T]) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), data.len(), &default_device()?)
    }

    /// A 0-d tensor holding one value.
    pub fn scalar<T: WithDType>(value: T, device: &Device) -> Result<Tensor> {
        Tensor::from_vec(vec![value], (), device)
    }

    pub fn full(
        value: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let storage = device.backend().full(&shape, value, dtype)?;
        Ok(Tensor::from_result(storage, shape, device))
    }
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::full(0.0, shape, dtype, device)
    }
    pub fn ones(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::full(1.0, shape, dtype, device)
    }
    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::zeros(self.shape(), self.dtype(), self.device())
    }
    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::ones(self.shape(), self.dtype(), self.device())
    }
    pub fn full_like(&self, value: f64) -> Result<Tensor> {
        Tensor::full(value, self.shape(), self.dtype(), self.device())
    }

    /// `start, start + step, ...` below `end` (like `torch.arange`), made
    /// on the device.
    pub fn arange(
        start: f64,
        end: f64,
        step: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() {
            return Err(Error::invalid(
                "arange",
                format!("step must be finite and non-zero, got {step}"),
            ));
        }
        if !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid(
                "arange",
                format!("start and end must be finite, got {start} and {end}"),
            ));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let storage = device.backend().arange(start, step, n, dtype)?;
        Ok(Tensor::from_result(storage, n.into(), device))
    }

    /// `n` evenly spaced points from `start` to `end` inclusive.
    pub fn linspace(
        start: f64,
        end: f64,
        n: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let step = if n > 1 {
            (end - start) / (n - 1) as f64
        } else {
            0.0
        };
        let storage = device.backend().arange(start, step, n, dtype)?;
        Ok(Tensor::from_result(storage, n.into(), device))
    }

    /// The `n x n` identity matrix: `i == j`, compared on the device.
    pub fn eye(n: usize, dtype: DType, device: &Device) -> Result<Tensor> {
        let i = Tensor::arange(0.0, n as f64, 1.0, DType::I64, device)?;
        i.reshape((n, 1))?.eq(&i.reshape((1, n))?)?.to_dtype(dtype)
    }

    /// Values given as `f64`, stored as `dtype` (a host→device transfer).
    pub fn from_f64_vec(
        values: Vec<f64>,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        crate::with_dtype!(dtype, T => {
            let v: Vec<T> = values.iter().map(|&x| T::from_f64(x)).collect();
            Tensor::from_vec(v, shape, device)
        })
    }

    // ANCHOR: random
    /// `shape` filled with draws from `dist` by the device itself, from the
    /// next blocks of `generator`'s Philox stream: the same numbers on every
    /// device, and nothing crosses the bus.
    pub fn random_with(
        dist: Distribution,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
        generator: &mut Generator,
    ) -> Result<Tensor> {
        let shape = shape.into();
        philox::check(dist, dtype)?;
        let stream = generator.take(philox::words_for(dist, shape.elem_count(), dtype));
        let storage = device.backend().random(dist, &shape, dtype, stream)?;
        Ok(Tensor::from_result(storage, shape, device))
    }
    // ANCHOR_END: random

    /// Uniform samples in `[lo, hi)` from `generator`.
    pub fn rand_with(
        lo: f64,
        hi: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
        generator: &mut Generator,
    ) -> Result<Tensor> {
        Tensor::random_with(
            Distribution::Uniform { lo, hi },
            shape,
            dtype,
            device,
            generator,
        )
    }
    /// Normal samples from `generator`.
    pub fn randn_with(
        mean: f64,
        std: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
        generator: &mut Generator,
    ) -> Result<Tensor> {
        Tensor::random_with(
            Distribution::Normal { mean, std },
            shape,
            dtype,
            device,
            generator,
        )
    }
    /// 1 with probability `p`, else 0, from `generator` (in any dtype).
    pub fn bernoulli_with(
        p: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
        generator: &mut Generator,
    ) -> Result<Tensor> {
        Tensor::random_with(
            Distribution::Bernoulli { p },
            shape,
            dtype,
            device,
            generator,
        )
    }
    /// Uniform samples in `[lo, hi)` from the thread's default generator
    /// (see [`manual_seed`](crate::manual_seed)).
    pub fn rand(
        lo: f64,
        hi: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        with_default_generator(|g| Tensor::rand_with(lo, hi, shape, dtype, device, g))
    }
    /// Normal samples from the thread's default generator.
    pub fn randn(
        mean: f64,
        std: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        with_default_generator(|g| Tensor::randn_with(mean, std, shape, dtype, device, g))
    }
    /// 1 with probability `p`, else 0, from the thread's default generator.
    pub fn bernoulli(
        p: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        with_default_generator(|g| Tensor::bernoulli_with(p, shape, dtype, device, g))
    }
}
// ANCHOR_END: creation

// ANCHOR: to_host
impl Tensor {
    /// The elements on the host, row-major, as the host-side storage enum.
    pub fn to_cpu_storage(&self) -> Result<CpuStorage> {
        self.device()
            .backend()
            .to_cpu(self.storage().as_ref(), self.layout())
    }

    /// The elements as a flat `Vec<T>`; `T` must match the dtype.
    pub fn to_vec<T: WithDType>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "to_vec",
                lhs: self.dtype(),
                rhs: T::DTYPE,
            });
        }
        let host = self.to_cpu_storage()?;
        Ok(host.as_slice::<T>()?.to_vec())
    }

    /// The elements converted to `f64`, whatever the dtype.
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        let host = self.to_cpu_storage()?;
        Ok((0..host.len()).map(|i| host.get_f64(i)).collect())
    }

    /// Rows of a 2-D tensor.
    pub fn to_vec2<T: WithDType>(&self) -> Result<Vec<Vec<T>>> {
        if self.rank() != 2 {
            return Err(Error::invalid(
                "to_vec2",
                format!("expected a 2-D tensor, got shape {}", self.shape()),
            ));
        }
        let (rows, cols) = (self.dims()[0], self.dims()[1]);
        let v = self.to_vec::<T>()?;
        Ok((0..rows)
            .map(|r| v[r * cols..(r + 1) * cols].to_vec())
            .collect())
    }

    /// The single value of a one-element tensor.
    pub fn to_scalar<T: WithDType>(&self) -> Result<T> {
        if self.elem_count() != 1 {
            return Err(Error::invalid(
                "to_scalar",
                format!("expected one element, got shape {}", self.shape()),
            ));
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// The single value of a one-element tensor, as `f64` (like `.item()`).
    pub fn item(&self) -> Result<f64> {
        if self.elem_count() != 1 {
            return Err(Error::invalid(
                "item",
                format!("expected one element, got shape {}", self.shape()),
            ));
        }
        Ok(self.to_vec_f64()?[0])
    }

    /// Converts to another dtype (a copy, unless it already has it).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let s = self
            .device()
            .backend()
            .cast(self.storage().as_ref(), self.layout(), dtype)?;
        Ok(Tensor::from_result(s, self.shape().clone(), self.device()))
    }

    /// Moves to another device through the host.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let host = self.to_cpu_storage()?;
        let s = device.backend().upload(host)?;
        Ok(Tensor::from_result(s, self.shape().clone(), device))
    }

    /// A contiguous copy, or `self` when it already is contiguous.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let s = self
            .device()
            .backend()
            .copy(self.storage().as_ref(), self.layout())?;
        Ok(Tensor::from_result(s, self.shape().clone(), self.device()))
    }

    /// A deep copy that shares nothing with `self`.
    pub fn copy(&self) -> Result<Tensor> {
        let s = self
            .device()
            .backend()
            .copy(self.storage().as_ref(), self.layout())?;
        Ok(Tensor::from_result(s, self.shape().clone(), self.device()))
    }
}
// ANCHOR_END: to_host

/// Converts a tensor into an `ndarray` array (on the host), for interop with
/// the Rust numeric ecosystem.
impl TryFrom<&Tensor> for ndarray::ArrayD<f64> {
    type Error = Error;
    fn try_from(t: &Tensor) -> Result<Self> {
        ndarray::ArrayD::from_shape_vec(t.dims().to_vec(), t.to_vec_f64()?)
            .map_err(|e| Error::invalid("to_ndarray", e.to_string()))
    }
}

impl TryFrom<&Tensor> for ndarray::ArrayD<f32> {
    type Error = Error;
    fn try_from(t: &Tensor) -> Result<Self> {
        ndarray::ArrayD::from_shape_vec(t.dims().to_vec(), t.to_dtype(DType::F32)?.to_vec::<f32>()?)
            .map_err(|e| Error::invalid("to_ndarray", e.to_string()))
    }
}

impl<T: WithDType> TryFrom<ndarray::ArrayD<T>> for Tensor {
    type Error = Error;
    fn try_from(a: ndarray::ArrayD<T>) -> Result<Self> {
        let shape = a.shape().to_vec();
        let data: Vec<T> = a.iter().copied().collect();
        Tensor::from_vec(data, shape, &default_device()?)
    }
}
