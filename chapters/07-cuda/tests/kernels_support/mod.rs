//! What the kernel tests share: an emulator, typed buffers, launches under
//! every schedule, and comparisons with the CPU backend.
#![allow(dead_code)]

use chapter_02::{Device, Error, Result, Tensor, WithDType};
use chapter_07::emulator::{KernelArgs, RuntimeExt, Strided};
use chapter_07::{DevicePtr, Emulator, LaunchConfig, Runtime, Schedule};

/// A fresh emulator for one test.
pub fn emu() -> Emulator {
    Emulator::new()
}

pub fn cpu() -> Device {
    Device::cpu()
}

/// Deterministic test data: `n` values in about `[-scale, scale]`, with a
/// few exact repeats so ties happen.
pub fn data(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            ((u * 2.0 - 1.0) * scale * 64.0).round() / 64.0
        })
        .collect()
}

/// A CPU tensor of `dtype` holding `values` (converted as the CPU casts).
pub fn tensor(values: &[f64], shape: &[usize], dtype: chapter_02::DType) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape.to_vec(), &cpu())
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// The raw little-endian bytes of a CPU tensor's elements (contiguous).
pub fn bytes_of(t: &Tensor) -> Vec<u8> {
    use chapter_02::CpuStorage as S;
    fn raw<T: Copy>(v: &[T]) -> Vec<u8> {
        let n = std::mem::size_of_val(v);
        // SAFETY: plain numeric values.
        unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, n) }.to_vec()
    }
    match &t.contiguous().unwrap().to_cpu_storage().unwrap() {
        S::F16(v) => raw(v),
        S::BF16(v) => raw(v),
        S::F32(v) => raw(v),
        S::F64(v) => raw(v),
        S::I64(v) => raw(v),
        S::U8(v) => raw(v),
    }
}

/// Uploads a CPU tensor's elements, contiguous. Views are tested by
/// uploading a contiguous base and launching with a view's layout of it.
pub fn upload_tensor(e: &Emulator, t: &Tensor) -> DevicePtr {
    e.upload(&bytes_of(t)).unwrap()
}

/// `n` elements of `dtype` read back into a CPU tensor of `shape`.
pub fn download_tensor(
    e: &Emulator,
    ptr: DevicePtr,
    shape: &[usize],
    dtype: chapter_02::DType,
) -> Tensor {
    use chapter_02::{bf16, f16, DType};
    let n: usize = shape.iter().product();
    let dev = cpu();
    match dtype {
        DType::F16 => Tensor::from_vec(e.download::<f16>(ptr, n).unwrap(), shape.to_vec(), &dev),
        DType::BF16 => Tensor::from_vec(e.download::<bf16>(ptr, n).unwrap(), shape.to_vec(), &dev),
        DType::F32 => Tensor::from_vec(e.download::<f32>(ptr, n).unwrap(), shape.to_vec(), &dev),
        DType::F64 => Tensor::from_vec(e.download::<f64>(ptr, n).unwrap(), shape.to_vec(), &dev),
        DType::I64 => Tensor::from_vec(e.download::<i64>(ptr, n).unwrap(), shape.to_vec(), &dev),
        DType::U8 => Tensor::from_vec(e.download::<u8>(ptr, n).unwrap(), shape.to_vec(), &dev),
    }
    .unwrap()
}

/// A fresh allocation for `n` elements of `dtype`.
pub fn alloc(e: &Emulator, n: usize, dtype: chapter_02::DType) -> DevicePtr {
    e.alloc(n * dtype.size_in_bytes()).unwrap()
}

/// The kernel's suffix for a dtype.
pub fn suffix(dtype: chapter_02::DType) -> &'static str {
    use chapter_02::DType;
    match dtype {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::I64 => "i64",
        DType::U8 => "u8",
    }
}

/// The layout of a CPU tensor as a kernel view.
pub fn view(t: &Tensor) -> Strided {
    Strided::from_layout(t.layout()).unwrap()
}

/// A 1-D launch of `n` threads' worth, 128 threads a block, at most 64
/// blocks (the grid-stride loops cover the rest).
pub fn cfg1d(n: usize) -> LaunchConfig {
    let mut c = LaunchConfig::for_elements(n, 128);
    c.grid[0] = c.grid[0].min(64);
    c
}

/// Runs `run` under every schedule and checks all results are equal,
/// returning the first. (Compare bits, not floats, where NaN may appear.)
pub fn under_all_schedules<T: PartialEq>(e: &Emulator, mut run: impl FnMut(&Emulator) -> T) -> T {
    let mut first = None;
    for s in Schedule::ALL {
        e.set_schedule(s);
        let r = run(e);
        match &first {
            None => first = Some(r),
            Some(f) => assert!(f == &r, "the result changes with the schedule {s:?}"),
        }
    }
    e.set_schedule(Schedule::Forward);
    first.unwrap()
}

/// Element values as f64 (NaN kept), for comparisons.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(chapter_02::DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

/// Bitwise-equal values (NaN equal to NaN).
pub fn assert_same(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtypes");
    assert_eq!(
        bytes_of(got),
        bytes_of(want),
        "{what}: got {:?}, want {:?}",
        values(got),
        values(want)
    );
}

/// Values within `rel·max(1, |want|)`, NaN where NaN.
pub fn assert_close(got: &Tensor, want: &Tensor, rel: f64, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    let (g, w) = (values(got), values(want));
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= rel * b.abs().max(1.0);
        assert!(ok, "{what}: element {i}: got {a}, want {b}");
    }
}

/// The error of a failed launch, as text.
pub fn device_error(r: Result<()>) -> String {
    match r {
        Err(e @ Error::Device { .. }) => e.to_string(),
        other => panic!("expected a device error, got {other:?}"),
    }
}

pub fn args() -> KernelArgs {
    KernelArgs::new()
}

pub fn to_vec<T: WithDType>(t: &Tensor) -> Vec<T> {
    t.to_vec::<T>().unwrap()
}
