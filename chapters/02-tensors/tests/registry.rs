//! Lesson: operations beyond the primitives come in through the kernel
//! registry: declared once with a composite fallback, given a kernel per
//! device by anyone, without editing this crate. `cargo test -p chapter-02
//! registry` runs these.

mod common;

use chapter_02::dispatch::{self, call, dispatch_path, register_kernel, unregister_kernel};
use chapter_02::{
    CountingDevice, DType, Device, DeviceKind, DispatchPath, Error, Kernel, Operator, Result,
    Tensor, COUNTING,
};
use common::*;

// ANCHOR: axpy
/// `alpha·x + y`, BLAS's "axpy", as a user's crate would add it.
struct Axpy {
    alpha: f64,
}

impl Operator for Axpy {
    fn name(&self) -> &'static str {
        "axpy"
    }
    fn check(&self, inputs: &[&Tensor]) -> Result<()> {
        let (x, y) = (inputs[0], inputs[1]);
        if inputs.len() != 2 || x.shape() != y.shape() || x.dtype() != y.dtype() {
            return Err(Error::invalid(
                "axpy",
                format!(
                    "needs two tensors of one shape and dtype, got {} and {}",
                    x.shape(),
                    y.shape()
                ),
            ));
        }
        Ok(())
    }
    /// Two primitives: a scaling and an addition.
    fn composite(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].affine(self.alpha, 0.0)?.add(inputs[1])?])
    }
    /// One pass over memory on the CPU.
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, axpy_cpu)]
    }
}

fn axpy_cpu(op: &Axpy, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let (x, y) = (inputs[0].contiguous()?, inputs[1].contiguous()?);
    let a = op.alpha as f32;
    let out: Vec<f32> = x
        .host_slice::<f32>()?
        .iter()
        .zip(y.host_slice::<f32>()?)
        .map(|(&x, &y)| a * x + y)
        .collect();
    Ok(vec![Tensor::from_host_vec(
        out,
        x.shape().clone(),
        x.device(),
    )?])
}
// ANCHOR_END: axpy

// ANCHOR: registry_lesson
#[test]
fn registry_runs_the_kernel_where_there_is_one_and_the_composite_elsewhere() {
    let x = tensor(&[1.0f32, 2.0, 3.0], 3);
    let y = tensor(&[10.0f32, 20.0, 30.0], 3);
    // On the CPU the built-in kernel runs...
    assert_eq!(
        dispatch_path::<Axpy>(DeviceKind::CPU).unwrap(),
        DispatchPath::Kernel
    );
    let on_cpu = call(&Axpy { alpha: 2.0 }, &[&x, &y]).unwrap();
    assert_eq!(values(&on_cpu[0]), [12.0, 24.0, 36.0]);

    // ...and on a device with no kernel, the composite, made of primitives.
    let counter = CountingDevice::new(Device::cpu());
    let (xd, yd) = (
        x.to_device(counter.device()).unwrap(),
        y.to_device(counter.device()).unwrap(),
    );
    counter.reset();
    assert_eq!(
        dispatch_path::<Axpy>(COUNTING).unwrap(),
        DispatchPath::Composite
    );
    let elsewhere = call(&Axpy { alpha: 2.0 }, &[&xd, &yd]).unwrap();
    assert_eq!(values(&elsewhere[0]), [12.0, 24.0, 36.0]);
    let counts = counter.counts();
    assert_eq!((counts.calls("unary"), counts.calls("binary")), (1, 1));
}

#[test]
fn registry_checks_once_before_any_kernel() {
    let x = tensor(&[1.0f32, 2.0], 2);
    let y = tensor(&[1.0f32, 2.0, 3.0], 3);
    let e = call(&Axpy { alpha: 1.0 }, &[&x, &y]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "axpy: needs two tensors of one shape and dtype, got [2] and [3]"
    );
    // Inputs on two devices are refused by `call` itself.
    let other = CountingDevice::new(Device::cpu());
    let z = x.to_device(other.device()).unwrap();
    let e = call(&Axpy { alpha: 1.0 }, &[&x, &z]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("axpy: device mismatch cpu vs counting:"),
        "{e}"
    );
}
// ANCHOR_END: registry_lesson

/// A second operator, used only by the next test (tests run in parallel
/// and the registry is global, so each test registers for its own op).
struct Double;
impl Operator for Double {
    fn name(&self) -> &'static str {
        "double"
    }
    fn check(&self, _: &[&Tensor]) -> Result<()> {
        Ok(())
    }
    fn composite(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].mul_scalar(2.0)?])
    }
}

// ANCHOR: register_for_a_device
#[test]
fn registry_a_new_kernel_for_one_device_without_editing_anything() {
    // A kernel for the counting devices only: say, one that a device's
    // crate provides. Here it computes on the host storage the counting
    // device forwards to, so no primitive is counted.
    fn double_by_hand(_: &Double, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let v: Vec<f32> = inputs[0].to_vec::<f32>()?.iter().map(|x| 2.0 * x).collect();
        Ok(vec![Tensor::from_vec(
            v,
            inputs[0].shape().clone(),
            inputs[0].device(),
        )?])
    }
    let counter = CountingDevice::new(Device::cpu());
    let x = Tensor::ones(4, DType::F32, counter.device()).unwrap();
    counter.reset();
    call(&Double, &[&x]).unwrap();
    assert_eq!(
        counter.counts().calls("unary"),
        1,
        "the composite: one unary"
    );

    register_kernel::<Double>(COUNTING, double_by_hand).unwrap();
    counter.reset();
    let y = call(&Double, &[&x]).unwrap();
    let counts = counter.counts();
    assert_eq!(counts.calls("unary"), 0, "the kernel ran instead");
    assert_eq!((counts.downloads, counts.uploads), (1, 1));
    assert_eq!(values(&y[0]), [2.0; 4]);
    // The CPU is unaffected, and the kernel can be withdrawn again.
    assert_eq!(
        dispatch_path::<Double>(DeviceKind::CPU).unwrap(),
        DispatchPath::Composite
    );
    unregister_kernel::<Double>(COUNTING).unwrap();
    assert_eq!(
        dispatch_path::<Double>(COUNTING).unwrap(),
        DispatchPath::Composite
    );
}
// ANCHOR_END: register_for_a_device

/// A third operator whose built-in CPU kernel is replaced by a user's.
struct Negate;
impl Operator for Negate {
    fn name(&self) -> &'static str {
        "negate"
    }
    fn check(&self, _: &[&Tensor]) -> Result<()> {
        Ok(())
    }
    fn composite(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].neg()?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        fn builtin(_: &Negate, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
            Ok(vec![inputs[0].neg()?])
        }
        vec![(DeviceKind::CPU, builtin)]
    }
}

#[test]
fn registry_a_users_kernel_replaces_the_builtin_one() {
    fn marked(_: &Negate, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].neg()?.add_scalar(1000.0)?])
    }
    let x = tensor(&[1.0f32], 1);
    assert_eq!(values(&call(&Negate, &[&x]).unwrap()[0]), [-1.0]);
    register_kernel::<Negate>(DeviceKind::CPU, marked).unwrap();
    assert_eq!(values(&call(&Negate, &[&x]).unwrap()[0]), [999.0]);
    assert!(dispatch::kernel_for::<Negate>(DeviceKind::CPU)
        .unwrap()
        .is_some());
}
