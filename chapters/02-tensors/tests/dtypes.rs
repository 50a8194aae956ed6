//! Lesson: a tensor's bytes mean something only with its dtype. Four
//! dtypes, explicit casts between them (with Rust's `as` rules), and
//! conversions to the host and to `ndarray`. `cargo test -p chapter-02
//! dtype` runs these.

mod common;

use chapter_02::{CpuStorage, DType, Tensor, WithDType};
use common::*;
use ndarray::{ArrayD, IxDyn};

#[test]
fn dtype_sizes_names_and_float_flags() {
    let all = [DType::F32, DType::F64, DType::I64, DType::U8];
    let sizes: Vec<usize> = all.iter().map(|d| d.size_in_bytes()).collect();
    assert_eq!(sizes, [4, 8, 8, 1]);
    let names: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(names, ["f32", "f64", "i64", "u8"]);
    let floats: Vec<bool> = all.iter().map(|d| d.is_float()).collect();
    assert_eq!(floats, [true, true, false, false]);
    assert_eq!(
        (f32::DTYPE, f64::DTYPE, i64::DTYPE, u8::DTYPE),
        (DType::F32, DType::F64, DType::I64, DType::U8)
    );
}

// ANCHOR: cast_lesson
#[test]
fn dtype_casts_follow_rust_as() {
    let x = tensor(&[-1.7f32, -0.5, 0.5, 2.9, 300.0, 1e20, f32::NAN], 7);
    // To integers: truncate toward zero, saturate at the type's range, NaN -> 0.
    let i = x.to_dtype(DType::I64).unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), [-1, 0, 0, 2, 300, i64::MAX, 0]);
    let u = x.to_dtype(DType::U8).unwrap();
    assert_eq!(u.to_vec::<u8>().unwrap(), [0, 0, 0, 2, 255, 255, 0]);
    // Integers and masks to floats are exact (for small values).
    let m = tensor(&[0u8, 1, 255], 3).to_dtype(DType::F32).unwrap();
    assert_eq!(m.to_vec::<f32>().unwrap(), [0.0, 1.0, 255.0]);
    // f64 -> f32 rounds to nearest.
    let d = tensor(&[0.1f64], 1).to_dtype(DType::F32).unwrap();
    assert_eq!(d.to_vec::<f32>().unwrap(), [0.1f32]);
}
// ANCHOR_END: cast_lesson

#[test]
fn dtype_cast_to_the_same_dtype_is_free_and_of_a_view_is_row_major() {
    let x = iota(&[2, 3], DType::F32);
    assert!(x.to_dtype(DType::F32).unwrap().same_storage(&x));
    let t = x.t().unwrap().to_dtype(DType::I64).unwrap();
    assert!(t.is_contiguous());
    assert_eq!(t.to_vec2::<i64>().unwrap(), [[0, 3], [1, 4], [2, 5]]);
}

#[test]
fn dtype_explicit_no_silent_promotion() {
    // PyTorch would promote f32 + f64 to f64; we ask for a cast instead.
    let a = tensor(&[1.0f32], 1);
    let b = tensor(&[1.0f64], 1);
    assert_eq!(
        a.add(&b).unwrap_err().to_string(),
        "add: dtype mismatch f32 vs f64"
    );
    let sum = a.to_dtype(DType::F64).unwrap().add(&b).unwrap();
    assert_eq!((sum.dtype(), values(&sum)), (DType::F64, vec![2.0]));
}

#[test]
fn dtype_host_conversions() {
    let x = iota(&[2, 2], DType::I64);
    assert_eq!(x.to_vec::<i64>().unwrap(), [0, 1, 2, 3]);
    assert_eq!(x.to_vec2::<i64>().unwrap(), [[0, 1], [2, 3]]);
    assert_eq!(x.to_vec_f64().unwrap(), [0.0, 1.0, 2.0, 3.0]);
    assert_eq!(
        x.to_cpu_storage().unwrap(),
        CpuStorage::I64(vec![0, 1, 2, 3])
    );
    assert_eq!(
        x.narrow(0, 1, 1).unwrap().to_cpu_storage().unwrap(),
        CpuStorage::I64(vec![2, 3])
    );
    assert_eq!(
        x.to_vec::<f32>().unwrap_err().to_string(),
        "to_vec: dtype mismatch i64 vs f32"
    );
    let e = Tensor::zeros((2, 0), DType::F32, &cpu()).unwrap();
    assert_eq!(e.to_vec2::<f32>().unwrap(), vec![Vec::<f32>::new(); 2]);
}

#[test]
fn dtype_to_device_on_the_same_device_is_free() {
    let x = iota(&[3], DType::F32);
    let y = x.to_device(&cpu()).unwrap();
    assert!(y.same_storage(&x));
    assert_eq!(y.device(), &cpu());
    assert!(y.device().is_cpu());
}

// ANCHOR: ndarray_lesson
#[test]
fn dtype_ndarray_round_trip() {
    let x = iota(&[2, 3], DType::F64).t().unwrap(); // a non-contiguous view
    let a = ArrayD::<f64>::try_from(&x).unwrap();
    assert_eq!(a.shape(), &[3, 2]);
    assert_eq!(a[IxDyn(&[2, 1])], 5.0);
    let back = Tensor::try_from(a).unwrap();
    assert_eq!((back.dims(), values(&back)), (x.dims(), values(&x)));
    // From an ndarray whose own memory order is transposed.
    let nd = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0i64, 1, 2, 3, 4, 5])
        .unwrap()
        .reversed_axes();
    let t = Tensor::try_from(nd).unwrap();
    assert_eq!(t.to_vec2::<i64>().unwrap(), [[0, 3], [1, 4], [2, 5]]);
    // Any dtype converts to an f32 array.
    let f = ArrayD::<f32>::try_from(&iota(&[2], DType::U8)).unwrap();
    assert_eq!(f.iter().copied().collect::<Vec<_>>(), [0.0, 1.0]);
}
// ANCHOR_END: ndarray_lesson
