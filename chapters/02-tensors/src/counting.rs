//! A device that counts: every primitive call, every transfer between host
//! and device, every distinct fused program.
//!
//! `CountingDevice` wraps another device and forwards each primitive to it,
//! counting as it goes. It has an identity of its own (`counting:N`), so a
//! tensor accidentally made on the CPU (a hard-coded `Device::cpu()`
//! somewhere) does not mix with its tensors: the operation fails with a
//! device mismatch instead of silently going through the host. And it does
//! not claim host memory, so the op layer treats it like a GPU: no index
//! is validated by reading it, and the registry's CPU kernels do not run on
//! it (the composite versions do, built from the primitives it counts).
//!
//! That makes it the instrument for one of the library's promises: *a
//! training step makes no host transfers.* A test builds a model on a
//! counting device, runs a step, and reads [`CountingDevice::host_transfers`].

use crate::backend::{
    Backend, BackendStorage, BinaryOp, CmpOp, Distribution, Program, RandomStream, ReduceOp,
    Storage, UnaryOp,
};
use crate::{CpuStorage, DType, Device, DeviceId, DeviceKind, Layout, Result, Shape};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a [`CountingDevice`] has seen since it was made (or last reset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls per primitive name (`binary`, `matmul`, `upload`, ...).
    pub primitives: BTreeMap<&'static str, usize>,
    /// Host→device copies (`upload`).
    pub uploads: usize,
    /// Device→host copies (`to_cpu`).
    pub downloads: usize,
    /// The distinct fused programs run (by [`Program::cache_key`]): what a
    /// device that compiles programs would have compiled.
    pub programs: BTreeSet<String>,
    /// Calls of `fused`.
    pub fused_calls: usize,
}

impl Counts {
    /// Uploads plus downloads.
    pub fn host_transfers(&self) -> usize {
        self.uploads + self.downloads
    }
    /// Calls of one primitive.
    pub fn calls(&self, primitive: &str) -> usize {
        self.primitives.get(primitive).copied().unwrap_or(0)
    }
}

// ANCHOR: counting_backend
/// The backend of a [`CountingDevice`]: forwards to `inner`, counting.
#[derive(Debug)]
pub struct CountingBackend {
    inner: Device,
    ordinal: usize,
    counts: Mutex<Counts>,
}

impl CountingBackend {
    fn count(&self, primitive: &'static str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.primitives.entry(primitive).or_default() += 1;
            match primitive {
                "upload" => c.uploads += 1,
                "to_cpu" => c.downloads += 1,
                _ => {}
            }
        }
    }
    fn inner(&self) -> &dyn Backend {
        self.inner.backend()
    }
}
// ANCHOR_END: counting_backend

/// The kind of every counting device.
pub const COUNTING: DeviceKind = DeviceKind::new("counting");

// ANCHOR: counting_device
/// A device that forwards to another and counts what it is asked to do.
#[derive(Debug, Clone)]
pub struct CountingDevice {
    backend: Arc<CountingBackend>,
    device: Device,
}

impl CountingDevice {
    /// Wraps `inner` (usually the CPU) in a new counting device with an
    /// ordinal of its own.
    pub fn new(inner: Device) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let backend = Arc::new(CountingBackend {
            inner,
            ordinal: NEXT.fetch_add(1, Ordering::Relaxed),
            counts: Mutex::new(Counts::default()),
        });
        let device = Device::new(backend.clone());
        CountingDevice { backend, device }
    }

    /// The device to make tensors on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Everything counted so far.
    pub fn counts(&self) -> Counts {
        self.backend
            .counts
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Host→device plus device→host transfers so far.
    pub fn host_transfers(&self) -> usize {
        self.counts().host_transfers()
    }

    /// Starts counting from zero.
    pub fn reset(&self) {
        if let Ok(mut c) = self.backend.counts.lock() {
            *c = Counts::default();
        }
    }
}
// ANCHOR_END: counting_device

/// Implements each listed primitive as "count it, then forward it to the
/// inner device".
macro_rules! counted {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(
            fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.count(stringify!($name));
                self.inner().$name($($arg),*)
            }
        )*
    };
}

impl Backend for CountingBackend {
    fn id(&self) -> DeviceId {
        DeviceId {
            kind: COUNTING,
            ordinal: self.ordinal,
        }
    }

    /// Counts the call and the program it runs.
    fn fused(
        &self,
        program: &Program,
        inputs: &[(&dyn BackendStorage, &Layout)],
        scalars: &[f64],
    ) -> Result<Vec<Storage>> {
        self.count("fused");
        if let Ok(mut c) = self.counts.lock() {
            c.fused_calls += 1;
            c.programs.insert(program.cache_key());
        }
        self.inner().fused(program, inputs, scalars)
    }

    counted! {
        fn synchronize(&self) -> Result<()>;
        fn upload(&self, data: CpuStorage) -> Result<Storage>;
        fn to_cpu(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage>;
        fn full(&self, shape: &Shape, value: f64, dtype: DType) -> Result<Storage>;
        fn arange(&self, start: f64, step: f64, len: usize, dtype: DType) -> Result<Storage>;
        fn random(
            &self,
            dist: Distribution,
            shape: &Shape,
            dtype: DType,
            stream: RandomStream
        ) -> Result<Storage>;
        fn copy(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage>;
        fn copy_into(
            &self,
            dst: &mut dyn BackendStorage,
            dst_layout: &Layout,
            src: &dyn BackendStorage,
            src_layout: &Layout
        ) -> Result<()>;
        fn cast(&self, src: &dyn BackendStorage, layout: &Layout, dtype: DType) -> Result<Storage>;
        fn unary(&self, op: UnaryOp, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage>;
        fn binary(
            &self,
            op: BinaryOp,
            lhs: &dyn BackendStorage,
            lhs_layout: &Layout,
            rhs: &dyn BackendStorage,
            rhs_layout: &Layout
        ) -> Result<Storage>;
        fn cmp(
            &self,
            op: CmpOp,
            lhs: &dyn BackendStorage,
            lhs_layout: &Layout,
            rhs: &dyn BackendStorage,
            rhs_layout: &Layout
        ) -> Result<Storage>;
        fn where_cond(
            &self,
            cond: &dyn BackendStorage,
            cond_layout: &Layout,
            on_true: &dyn BackendStorage,
            true_layout: &Layout,
            on_false: &dyn BackendStorage,
            false_layout: &Layout
        ) -> Result<Storage>;
        fn reduce(
            &self,
            op: ReduceOp,
            src: &dyn BackendStorage,
            layout: &Layout,
            axes: &[usize]
        ) -> Result<Storage>;
        fn matmul(
            &self,
            lhs: &dyn BackendStorage,
            lhs_layout: &Layout,
            rhs: &dyn BackendStorage,
            rhs_layout: &Layout
        ) -> Result<Storage>;
        fn index_select(
            &self,
            src: &dyn BackendStorage,
            layout: &Layout,
            ids: &dyn BackendStorage,
            ids_layout: &Layout,
            dim: usize
        ) -> Result<Storage>;
        fn gather(
            &self,
            src: &dyn BackendStorage,
            layout: &Layout,
            ids: &dyn BackendStorage,
            ids_layout: &Layout,
            dim: usize
        ) -> Result<Storage>;
        fn scatter_add(
            &self,
            base: &dyn BackendStorage,
            base_layout: &Layout,
            ids: &dyn BackendStorage,
            ids_layout: &Layout,
            src: &dyn BackendStorage,
            src_layout: &Layout,
            dim: usize
        ) -> Result<Storage>;
        fn index_add(
            &self,
            base: &dyn BackendStorage,
            base_layout: &Layout,
            ids: &dyn BackendStorage,
            ids_layout: &Layout,
            src: &dyn BackendStorage,
            src_layout: &Layout,
            dim: usize
        ) -> Result<Storage>;
        fn argsort(&self, src: &dyn BackendStorage, layout: &Layout, descending: bool) -> Result<Storage>;
    }
}
