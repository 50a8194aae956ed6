//! Lesson: a tensor's bytes mean something only with its dtype. Six
//! dtypes, explicit casts between them (with Rust's `as` rules), half
//! types stored small and computed in `f32`, and conversions to the host and
//! to `ndarray`. `cargo test -p chapter-02
//! dtype` runs these.

mod common;

use chapter_02::{bf16, f16, CpuStorage, DType, Generator, Tensor, WithDType};
use common::*;
use ndarray::{ArrayD, IxDyn};

#[test]
fn dtype_sizes_names_and_float_flags() {
    let all = DType::ALL;
    let sizes: Vec<usize> = all.iter().map(|d| d.size_in_bytes()).collect();
    assert_eq!(sizes, [2, 2, 4, 8, 8, 1]);
    let names: Vec<String> = all.iter().map(|d| d.to_string()).collect();
    assert_eq!(names, ["f16", "bf16", "f32", "f64", "i64", "u8"]);
    let floats: Vec<bool> = all.iter().map(|d| d.is_float()).collect();
    assert_eq!(floats, [true, true, true, true, false, false]);
    assert_eq!(
        (f32::DTYPE, f64::DTYPE, i64::DTYPE, u8::DTYPE),
        (DType::F32, DType::F64, DType::I64, DType::U8)
    );
    assert_eq!((f16::DTYPE, bf16::DTYPE), (DType::F16, DType::BF16));
    for d in all {
        assert_eq!(DType::parse(d.as_str()), Some(d));
    }
    assert_eq!(DType::F16.compute_dtype(), DType::F32);
    assert_eq!(DType::F64.compute_dtype(), DType::F64);
}

// ANCHOR: half_lesson
#[test]
fn dtype_half_types_store_16_bits_and_compute_in_f32() {
    // f16 has 10 mantissa bits: 1 + 2^-11 rounds to 1 (to even).
    let x = tensor(&[1.0f32 + 1.0 / 2048.0, 65504.0, 70000.0, 1e-8], 4);
    let h = x.to_dtype(DType::F16).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    assert_eq!(values(&h), [1.0, 65504.0, f64::INFINITY, 0.0]);
    // bf16 keeps f32's range but only 7 mantissa bits.
    let b = x.to_dtype(DType::BF16).unwrap();
    assert_eq!(values(&b), [1.0, 65536.0, 70144.0, 1.0011717677116394e-8]);

    // Arithmetic runs in f32 and rounds once. 2048 + 1 in f16 arithmetic
    // would give 2048 per step; here 1 + 1 + ... is summed in f32.
    let ones = Tensor::ones(4096, DType::F16, &dev()).unwrap();
    assert_eq!(values(&ones.sum_all().unwrap()), [4096.0]);
    // A product of bf16 matrices: each output rounded once from f32.
    let mut g = Generator::new(0);
    let a = Tensor::randn_with(0.0, 1.0, (8, 16), DType::BF16, &dev(), &mut g).unwrap();
    let c = Tensor::randn_with(0.0, 1.0, (16, 4), DType::BF16, &dev(), &mut g).unwrap();
    let exact = a
        .to_dtype(DType::F32)
        .unwrap()
        .matmul(&c.to_dtype(DType::F32).unwrap())
        .unwrap();
    let half = a.matmul(&c).unwrap();
    assert_eq!(half.dtype(), DType::BF16);
    assert_eq!(values(&half), values(&exact.to_dtype(DType::BF16).unwrap()));
}
// ANCHOR_END: half_lesson

#[test]
fn dtype_half_types_support_every_elementwise_op() {
    let x = tensor(&[-2.0f32, -0.5, 0.0, 0.75, 3.0], 5);
    for dtype in [DType::F16, DType::BF16] {
        let h = x.to_dtype(dtype).unwrap();
        // Each result equals the f32 result rounded once to the half type.
        let round = |t: Tensor| values(&t.to_dtype(dtype).unwrap());
        assert_eq!(
            values(&h.exp().unwrap()),
            round(h.to_dtype(DType::F32).unwrap().exp().unwrap())
        );
        assert_eq!(
            values(&h.mul(&h).unwrap()),
            round(h.to_dtype(DType::F32).unwrap().sqr().unwrap())
        );
        assert_eq!(values(&h.max_all().unwrap()), [3.0], "max of {dtype}");
        let mask = h.gt(&h.zeros_like().unwrap()).unwrap();
        assert_eq!(values(&mask), [0.0, 0.0, 0.0, 1.0, 1.0]);
        let picked = mask.where_cond(&h, &h.neg().unwrap()).unwrap();
        assert_eq!(values(&picked), [2.0, 0.5, 0.0, 0.75, 3.0]);
        assert_eq!(h.relu().unwrap().dtype(), dtype);
        let ids = Tensor::from_vec(vec![4i64, 0], 2, &dev()).unwrap();
        assert_eq!(values(&h.index_select(&ids, 0).unwrap()), [3.0, -2.0]);
        let acc = h
            .index_add(&ids, &h.index_select(&ids, 0).unwrap(), 0)
            .unwrap();
        assert_eq!(values(&acc), [-4.0, -0.5, 0.0, 0.75, 6.0]);
        assert!(h.to_string().contains(&format!("dtype={dtype}")));
    }
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
    let e = Tensor::zeros((2, 0), DType::F32, &dev()).unwrap();
    assert_eq!(e.to_vec2::<f32>().unwrap(), vec![Vec::<f32>::new(); 2]);
}

#[test]
fn dtype_to_device_on_the_same_device_is_free() {
    let x = iota(&[3], DType::F32);
    let y = x.to_device(&dev()).unwrap();
    assert!(y.same_storage(&x));
    assert_eq!(y.device(), &dev());
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
