//! Lesson: a device is anything that implements `Backend`. Here we add a
//! second device, `counting:0`, that keeps its data in host memory like the
//! CPU but counts every primitive it is asked to run. Every tensor operation
//! works on it without a change to the crate, and the counts show what each
//! operation costs in primitives (a transpose: none). Chapter 07 adds CUDA
//! the same way. `cargo test -p chapter-02 device` runs these.

mod common;

use chapter_02::{
    Backend, BackendStorage, BinaryOp, CmpOp, CpuBackend, CpuStorage, DType, Device, Layout,
    ReduceOp, Result, Shape, Storage, Tensor, UnaryOp,
};
use common::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

// ANCHOR: counting_backend
/// A backend that runs every primitive on the CPU and counts the calls.
#[derive(Debug, Default)]
struct CountingBackend {
    calls: Mutex<BTreeMap<&'static str, usize>>,
}

impl CountingBackend {
    fn count(&self, primitive: &'static str) {
        *self.calls.lock().unwrap().entry(primitive).or_default() += 1;
    }
    fn take_counts(&self) -> Vec<(&'static str, usize)> {
        std::mem::take(&mut *self.calls.lock().unwrap())
            .into_iter()
            .collect()
    }
}

impl Backend for CountingBackend {
    fn name(&self) -> String {
        "counting:0".into()
    }
    fn upload(&self, data: CpuStorage) -> Result<Storage> {
        self.count("upload");
        CpuBackend.upload(data)
    }
    fn to_cpu(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage> {
        self.count("to_cpu");
        CpuBackend.to_cpu(src, layout)
    }
    // ... and so on for every primitive: count, then delegate.
    // ANCHOR_END: counting_backend
    fn full(&self, shape: &Shape, value: f64, dtype: DType) -> Result<Storage> {
        self.count("full");
        CpuBackend.full(shape, value, dtype)
    }
    fn copy(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage> {
        self.count("copy");
        CpuBackend.copy(src, layout)
    }
    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        self.count("copy_into");
        CpuBackend.copy_into(dst, dst_layout, src, src_layout)
    }
    fn cast(&self, src: &dyn BackendStorage, layout: &Layout, dtype: DType) -> Result<Storage> {
        self.count("cast");
        CpuBackend.cast(src, layout, dtype)
    }
    fn unary(&self, op: UnaryOp, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage> {
        self.count("unary");
        CpuBackend.unary(op, src, layout)
    }
    fn binary(
        &self,
        op: BinaryOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        self.count("binary");
        CpuBackend.binary(op, lhs, lhs_layout, rhs, rhs_layout)
    }
    fn cmp(
        &self,
        op: CmpOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        self.count("cmp");
        CpuBackend.cmp(op, lhs, lhs_layout, rhs, rhs_layout)
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
        self.count("where_cond");
        CpuBackend.where_cond(
            cond,
            cond_layout,
            on_true,
            true_layout,
            on_false,
            false_layout,
        )
    }
    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        axes: &[usize],
    ) -> Result<Storage> {
        self.count("reduce");
        CpuBackend.reduce(op, src, layout, axes)
    }
    fn matmul(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        self.count("matmul");
        CpuBackend.matmul(lhs, lhs_layout, rhs, rhs_layout)
    }
    fn index_select(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        self.count("index_select");
        CpuBackend.index_select(src, layout, ids, ids_layout, dim)
    }
    fn gather(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        self.count("gather");
        CpuBackend.gather(src, layout, ids, ids_layout, dim)
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
        self.count("scatter_add");
        CpuBackend.scatter_add(base, base_layout, ids, ids_layout, src, src_layout, dim)
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
        self.count("index_add");
        CpuBackend.index_add(base, base_layout, ids, ids_layout, src, src_layout, dim)
    }
}

fn counting() -> (Device, Arc<CountingBackend>) {
    let backend = Arc::new(CountingBackend::default());
    (Device::new(backend.clone()), backend)
}

#[test]
fn device_cpu_is_one_shared_handle() {
    let a = Device::cpu();
    assert_eq!(a, Device::cpu());
    assert_eq!(a.name(), "cpu");
    assert_eq!(a.to_string(), "cpu");
    assert_eq!(format!("{a:?}"), "Device(cpu)");
    assert!(a.is_cpu());
    assert_eq!(Device::default(), a);
    assert_eq!(iota(&[2], DType::F32).device(), &a);
}

// ANCHOR: second_device
#[test]
fn device_a_new_backend_runs_every_op_unchanged() {
    let (dev, backend) = counting();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), &dev).unwrap();
    let w = Tensor::ones((2, 4), DType::F32, &dev).unwrap();
    assert_eq!(x.device().name(), "counting:0");
    backend.take_counts();

    // Transposing is free; matmul reads the transposed view in place.
    let y = x.t().unwrap().matmul(&w).unwrap(); // [3, 2] @ [2, 4]
    assert_eq!(backend.take_counts(), [("matmul", 1)]);
    // Broadcasting is free too: one binary primitive, no copies.
    let bias = Tensor::ones(4, DType::F32, &dev).unwrap();
    backend.take_counts();
    let z = y.add(&bias).unwrap().relu().unwrap();
    assert_eq!(backend.take_counts(), [("binary", 1), ("unary", 1)]);
    assert_eq!(z.device(), &dev);
    assert_eq!(z.to_vec2::<f32>().unwrap(), [[6.0; 4], [8.0; 4], [10.0; 4]]);
}
// ANCHOR_END: second_device

#[test]
fn device_to_device_copies_through_the_host() {
    let (dev, backend) = counting();
    let x = iota(&[2, 3], DType::I64).t().unwrap();
    let on_dev = x.to_device(&dev).unwrap();
    assert_eq!(backend.take_counts(), [("upload", 1)]);
    assert_eq!(on_dev.device(), &dev);
    assert!(
        on_dev.is_contiguous(),
        "a copy to another device is contiguous"
    );
    let back = on_dev.to_device(&cpu()).unwrap();
    assert_eq!(back.device(), &cpu());
    assert_eq!(values(&back), values(&x));
    assert_eq!(backend.take_counts(), [("to_cpu", 1)]);
}

#[test]
fn device_mismatch_is_an_error_naming_both_devices() {
    let (dev, _) = counting();
    let a = Tensor::zeros(3, DType::F32, &cpu()).unwrap();
    let b = Tensor::zeros(3, DType::F32, &dev).unwrap();
    assert_eq!(
        a.add(&b).unwrap_err().to_string(),
        "add: device mismatch cpu vs counting:0"
    );
    assert_eq!(
        b.matmul(&a).unwrap_err().to_string(),
        "matmul: device mismatch counting:0 vs cpu"
    );
    let e = Tensor::cat(&[&a, &b], 0).unwrap_err().to_string();
    assert_eq!(e, "cat: device mismatch cpu vs counting:0");
}

#[test]
fn device_ops_count_their_primitives() {
    let (dev, backend) = counting();
    let x = Tensor::ones((4, 5), DType::F32, &dev).unwrap();
    backend.take_counts();
    // mean = one reduce + one unary (the scaling), whatever the axes.
    x.mean([0, 1], false).unwrap();
    assert_eq!(backend.take_counts(), [("reduce", 1), ("unary", 1)]);
    // cat = one allocation + one copy_into per input.
    Tensor::cat(&[&x, &x, &x], 1).unwrap();
    assert_eq!(backend.take_counts(), [("copy_into", 3), ("full", 1)]);
    // reshape of a transpose must copy; of a contiguous tensor it must not.
    x.reshape(20).unwrap();
    x.t().unwrap().reshape(20).unwrap();
    assert_eq!(backend.take_counts(), [("copy", 1)]);
}
