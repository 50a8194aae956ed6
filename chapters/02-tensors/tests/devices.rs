//! Lesson: a device is anything that implements `Backend`, and it has an
//! identity. The library's `CountingDevice` keeps its data in host memory
//! like the CPU but forwards every primitive through a counter: every tensor
//! operation works on it without a change to the crate, and the counts show
//! what each operation costs in primitives (a transpose: none) and in host
//! transfers. Chapter 07 adds CUDA the same way. `cargo test -p chapter-02
//! device` runs these.

mod common;

use chapter_02::{
    default_device, known_device_kinds, register_device_kind, Backend, CountingDevice, DType,
    Device, DeviceId, DeviceKind, Error, Generator, Tensor,
};
use common::*;

/// A counting device around the CPU, and a way to read and reset its counts.
fn counting() -> (Device, CountingDevice) {
    let counter = CountingDevice::new(Device::cpu());
    (counter.device().clone(), counter)
}

/// The primitive calls counted since the last call, sorted by name.
fn take(counter: &CountingDevice) -> Vec<(&'static str, usize)> {
    let counts = counter.counts().primitives.into_iter().collect();
    counter.reset();
    counts
}

#[test]
fn device_cpu_is_one_shared_handle() {
    let a = Device::cpu();
    assert_eq!(a, Device::cpu());
    assert_eq!(a.name(), "cpu");
    assert_eq!(a.to_string(), "cpu");
    assert_eq!(format!("{a:?}"), "Device(cpu)");
    assert!(a.is_cpu());
    assert_eq!(
        a.id(),
        DeviceId {
            kind: DeviceKind::CPU,
            ordinal: 0
        }
    );
    let x = Tensor::zeros(2, DType::F32, &a).unwrap();
    assert_eq!(x.device(), &a);
}

// ANCHOR: device_identity
#[test]
fn device_identity_is_kind_and_ordinal() {
    let (a, _) = counting();
    let (b, _) = counting();
    // Two counting devices are two devices: equal to themselves only.
    assert_eq!(a.kind(), chapter_02::COUNTING);
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
    assert_ne!(a.id().ordinal, b.id().ordinal);
    assert_eq!(a.name(), format!("counting:{}", a.id().ordinal));
    assert_ne!(a, Device::cpu());
}

#[test]
fn device_parse_opens_registered_kinds() {
    assert_eq!(Device::parse("cpu").unwrap(), Device::cpu());
    assert_eq!(Device::parse("cpu:0").unwrap(), Device::cpu());
    assert_eq!(Device::parse(" cpu ").unwrap(), Device::cpu());
    let e = Device::parse("cpu:1").unwrap_err().to_string();
    assert!(e.contains("there is one CPU device"), "{e}");
    let e = Device::parse("nonsense").unwrap_err().to_string();
    assert!(
        e.contains("unknown device `nonsense`; known devices: ") && e.contains("cpu"),
        "{e}"
    );
    let e = Device::parse("cpu:x").unwrap_err().to_string();
    assert!(e.contains("must be a number"), "{e}");
}

#[test]
fn device_kinds_are_an_open_set() {
    // A crate registers a kind with the function that opens its devices.
    fn open_tpu(ordinal: usize) -> chapter_02::Result<Device> {
        Err(Error::device(
            "open",
            format!("tpu:{ordinal}"),
            "no TPU is attached to this machine",
        ))
    }
    register_device_kind(DeviceKind::new("tpu"), open_tpu);
    assert!(known_device_kinds().contains(&"tpu"));
    // An unavailable device is an error, never a silent fallback to the CPU.
    assert_eq!(
        Device::parse("tpu:1").unwrap_err().to_string(),
        "open on tpu:1: no TPU is attached to this machine"
    );
}
// ANCHOR_END: device_identity

/// Runs this test binary again, only `test`, with `CANDLE_DEVICE` set, and
/// returns whether it passed and what it printed. (Changing the variable in
/// this process would race with the tests running next to this one.)
fn run_with_device(test: &str, device: &str) -> (bool, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("CANDLE_DEVICE", device)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Not a lesson by itself: the child process of the test below.
#[test]
fn device_child_uses_the_default_device() {
    let t = Tensor::ones(2, DType::F32, &dev()).unwrap();
    println!("made a tensor on {}", t.device());
}

// ANCHOR: default_device
#[test]
fn device_default_comes_from_candle_device() {
    if std::env::var("CANDLE_DEVICE").is_ok() {
        return; // we are a child process, or the whole suite runs elsewhere
    }
    assert_eq!(default_device().unwrap(), Device::cpu());
    let (ok, out) = run_with_device("device_child_uses_the_default_device", "cpu");
    assert!(ok && out.contains("made a tensor on cpu"), "{out}");
    // An unknown device fails the suite, with the known devices listed.
    let (ok, out) = run_with_device("device_child_uses_the_default_device", "nonsense");
    assert!(!ok, "{out}");
    assert!(
        out.contains("CANDLE_DEVICE=nonsense: unknown device `nonsense`; known devices: cpu"),
        "{out}"
    );
}
// ANCHOR_END: default_device

#[test]
fn device_synchronize_is_free_on_the_cpu() {
    Device::cpu().synchronize().unwrap();
    let (dev, counter) = counting();
    dev.synchronize().unwrap();
    assert_eq!(take(&counter), [("synchronize", 1)]);
}

// ANCHOR: second_device
#[test]
fn device_a_new_backend_runs_every_op_unchanged() {
    let (dev, counter) = counting();
    let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), &dev).unwrap();
    let w = Tensor::ones((2, 4), DType::F32, &dev).unwrap();
    assert!(x.device().name().starts_with("counting:"));
    assert_eq!(take(&counter), [("full", 1), ("upload", 1)]);

    // Transposing is free; matmul reads the transposed view in place.
    let y = x.t().unwrap().matmul(&w).unwrap(); // [3, 2] @ [2, 4]
    assert_eq!(take(&counter), [("matmul", 1)]);
    // Broadcasting is free too: one binary primitive, no copies.
    let bias = Tensor::ones(4, DType::F32, &dev).unwrap();
    take(&counter);
    let z = y.add(&bias).unwrap().relu().unwrap();
    assert_eq!(take(&counter), [("binary", 1), ("unary", 1)]);
    assert_eq!(z.device(), &dev);
    assert_eq!(z.to_vec2::<f32>().unwrap(), [[6.0; 4], [8.0; 4], [10.0; 4]]);
}
// ANCHOR_END: second_device

#[test]
fn device_to_device_copies_through_the_host() {
    let (dev, counter) = counting();
    let x = iota(&[2, 3], DType::I64).t().unwrap();
    let on_dev = x.to_device(&dev).unwrap();
    assert_eq!(take(&counter), [("upload", 1)]);
    assert_eq!(on_dev.device(), &dev);
    assert!(
        on_dev.is_contiguous(),
        "a copy to another device is contiguous"
    );
    let back = on_dev.to_device(&Device::cpu()).unwrap();
    assert_eq!(back.device(), &Device::cpu());
    assert_eq!(values(&back), values(&x));
    assert_eq!(take(&counter), [("to_cpu", 1)]);
}

#[test]
fn device_mismatch_is_an_error_naming_both_devices() {
    let (dev, _) = counting();
    let a = Tensor::zeros(3, DType::F32, &Device::cpu()).unwrap();
    let b = Tensor::zeros(3, DType::F32, &dev).unwrap();
    assert_eq!(
        a.add(&b).unwrap_err().to_string(),
        format!("add: device mismatch cpu vs {dev}")
    );
    assert_eq!(
        b.matmul(&a).unwrap_err().to_string(),
        format!("matmul: device mismatch {dev} vs cpu")
    );
    let e = Tensor::cat(&[&a, &b], 0).unwrap_err().to_string();
    assert_eq!(e, format!("cat: device mismatch cpu vs {dev}"));
}

#[test]
fn device_ops_count_their_primitives() {
    let (dev, counter) = counting();
    let x = Tensor::ones((4, 5), DType::F32, &dev).unwrap();
    take(&counter);
    // mean = one reduce + one unary (the scaling), whatever the axes.
    x.mean([0, 1], false).unwrap();
    assert_eq!(take(&counter), [("reduce", 1), ("unary", 1)]);
    // cat = one allocation + one copy_into per input.
    Tensor::cat(&[&x, &x, &x], 1).unwrap();
    assert_eq!(take(&counter), [("copy_into", 3), ("full", 1)]);
    // reshape of a transpose must copy; of a contiguous tensor it must not.
    x.reshape(20).unwrap();
    x.t().unwrap().reshape(20).unwrap();
    assert_eq!(take(&counter), [("copy", 1)]);
}

// ANCHOR: random_on_device
#[test]
fn device_random_numbers_are_made_where_the_tensor_lives() {
    let (dev, counter) = counting();
    let mut g = Generator::new(7);
    let x = Tensor::randn_with(0.0, 1.0, (3, 4), DType::F32, &dev, &mut g).unwrap();
    // One `random` primitive, nothing uploaded.
    assert_eq!(take(&counter), [("random", 1)]);
    // The same seed gives the same numbers on the CPU.
    let y = Tensor::randn_with(
        0.0,
        1.0,
        (3, 4),
        DType::F32,
        &Device::cpu(),
        &mut Generator::new(7),
    )
    .unwrap();
    assert_eq!(x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
    assert_eq!(take(&counter), [("to_cpu", 1)]);
}
// ANCHOR_END: random_on_device

#[test]
fn device_index_errors_come_from_the_device() {
    // On the CPU the op layer reads the indices (they are in host memory)
    // and reports a bad one before any kernel runs.
    let x = Tensor::zeros((3, 2), DType::F32, &Device::cpu()).unwrap();
    let ids = Tensor::from_vec(vec![0i64, 5], 2, &Device::cpu()).unwrap();
    assert_eq!(
        x.index_select(&ids, 0).unwrap_err().to_string(),
        "index_select: index 5 is out of range for a dimension of size 3"
    );
    // Elsewhere reading them would be a transfer: the kernel finds the bad
    // index and reports a device error, and the process goes on.
    let (dev, counter) = counting();
    let x = x.to_device(&dev).unwrap();
    let ids = ids.to_device(&dev).unwrap();
    counter.reset();
    let e = x.index_select(&ids, 0).unwrap_err();
    assert!(matches!(e, Error::Device { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "index_select on cpu: index 5 is out of range for a dimension of size 3"
    );
    assert_eq!(counter.host_transfers(), 0);
    let ok = Tensor::from_vec(vec![2i64, 0], 2, &dev).unwrap();
    assert_eq!(x.index_select(&ok, 0).unwrap().dims(), &[2, 2]);
}

#[test]
fn device_backend_reports_its_identity() {
    let b = chapter_02::CpuBackend;
    assert_eq!(b.id().to_string(), "cpu");
}
