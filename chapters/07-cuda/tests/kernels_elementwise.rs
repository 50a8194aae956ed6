//! The elementwise kernels of `kernels/elementwise.cu` against the CPU
//! backend: every op, every dtype it supports, on strided views (a
//! transpose, a broadcast) as well as contiguous ones.

mod kernels_support;

use chapter_02::{BinaryOp, CmpOp, DType, Tensor, UnaryOp};
use chapter_07::emulator::{RuntimeExt, Strided};
use chapter_07::{Emulator, Runtime};
use kernels_support::*;

const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];
const ALL: [DType; 6] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::U8,
];

/// A `[rows, cols]` base tensor and its transpose, a strided view.
fn base_and_view(rows: usize, cols: usize, seed: u64, dtype: DType) -> (Tensor, Tensor) {
    let base = tensor(&data(rows * cols, seed, 3.0), &[rows, cols], dtype);
    let view = base.t().unwrap();
    (base, view)
}

/// Runs a kernel of signature `(n, Strided, const T*, T*, ...)` on `view`
/// (a view of `base`), with `extra` arguments appended.
fn run_map(
    e: &Emulator,
    kernel: &str,
    base: &Tensor,
    view: &Tensor,
    out_dtype: DType,
    extra: impl Fn(chapter_07::emulator::KernelArgs) -> chapter_07::emulator::KernelArgs,
) -> Tensor {
    let n = view.elem_count();
    let dx = upload_tensor(e, base);
    let dy = alloc(e, n, out_dtype);
    let a = args().arg(n as i64).arg(view_of(view)).arg(dx).arg(dy);
    e.launch_args(kernel, cfg1d(n), extra(a)).unwrap();
    let out = download_tensor(e, dy, view.dims(), out_dtype);
    e.free(dx).unwrap();
    e.free(dy).unwrap();
    out
}

fn view_of(t: &Tensor) -> Strided {
    view(t)
}

fn unary_name(op: UnaryOp) -> (&'static str, f64, f64) {
    match op {
        UnaryOp::Neg => ("neg", 0.0, 0.0),
        UnaryOp::Recip => ("recip", 0.0, 0.0),
        UnaryOp::Sqr => ("sqr", 0.0, 0.0),
        UnaryOp::Sqrt => ("sqrt", 0.0, 0.0),
        UnaryOp::Exp => ("exp", 0.0, 0.0),
        UnaryOp::Log => ("log", 0.0, 0.0),
        UnaryOp::Abs => ("abs", 0.0, 0.0),
        UnaryOp::Sign => ("sign", 0.0, 0.0),
        UnaryOp::Sin => ("sin", 0.0, 0.0),
        UnaryOp::Cos => ("cos", 0.0, 0.0),
        UnaryOp::Tanh => ("tanh", 0.0, 0.0),
        UnaryOp::Sigmoid => ("sigmoid", 0.0, 0.0),
        UnaryOp::Relu => ("relu", 0.0, 0.0),
        UnaryOp::Erf => ("erf", 0.0, 0.0),
        UnaryOp::Affine { mul, add } => ("affine", mul, add),
        UnaryOp::Powf(e) => ("powf", e, 0.0),
        UnaryOp::Clamp { min, max } => ("clamp", min, max),
        UnaryOp::LeakyRelu(s) => ("leaky_relu", s, 0.0),
    }
}

const UNARY_OPS: [UnaryOp; 18] = [
    UnaryOp::Neg,
    UnaryOp::Recip,
    UnaryOp::Sqr,
    UnaryOp::Sqrt,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Abs,
    UnaryOp::Sign,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Relu,
    UnaryOp::Erf,
    UnaryOp::Affine {
        mul: 1.5,
        add: -0.25,
    },
    UnaryOp::Powf(2.5),
    UnaryOp::Clamp {
        min: -1.0,
        max: 1.25,
    },
    UnaryOp::LeakyRelu(0.1),
];

/// Transcendental functions may differ from the CPU's by an ulp; a half
/// result may then round the other way.
fn tolerance(op: UnaryOp, dtype: DType) -> f64 {
    let transcendental = matches!(
        op,
        UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sin
            | UnaryOp::Cos
            | UnaryOp::Tanh
            | UnaryOp::Sigmoid
            | UnaryOp::Erf
            | UnaryOp::Powf(_)
    );
    if !transcendental {
        return 0.0;
    }
    match dtype {
        DType::F32 => 1e-6,
        DType::F64 => 1e-14,
        DType::F16 => 1e-3,
        _ => 8e-3,
    }
}

#[test]
fn unary_kernels_match_cpu_for_every_float_dtype_on_strided_views() {
    let e = emu();
    for dtype in FLOATS {
        let (base, view) = base_and_view(37, 29, 1, dtype);
        for op in UNARY_OPS {
            let (name, p0, p1) = unary_name(op);
            let kernel = format!("unary_{name}_{}", suffix(dtype));
            let got = run_map(&e, &kernel, &base, &view, dtype, |a| a.arg(p0).arg(p1));
            let want = view.unary(op, "unary").unwrap();
            assert_close(&got, &want, tolerance(op, dtype), &kernel);
        }
    }
}

#[test]
fn unary_integer_kernels_wrap_like_rust() {
    let e = emu();
    let mut v = data(300, 2, 1000.0);
    v[0] = i64::MIN as f64;
    v[1] = i64::MAX as f64;
    let base = tensor(&v, &[300], DType::I64);
    for op in [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sqr,
        UnaryOp::Sign,
        UnaryOp::Relu,
        UnaryOp::Clamp {
            min: -10.5,
            max: 200.0,
        },
    ] {
        let (name, p0, p1) = unary_name(op);
        let kernel = format!("unary_{name}_i64");
        let got = run_map(&e, &kernel, &base, &base, DType::I64, |a| a.arg(p0).arg(p1));
        assert_same(&got, &base.unary(op, "unary").unwrap(), &kernel);
    }
}

fn binary_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Pow => "pow",
        BinaryOp::Maximum => "maximum",
        BinaryOp::Minimum => "minimum",
    }
}

/// `lhs` a transposed `[rows, cols]` view, `rhs` a row broadcast down the
/// columns (stride 0): the two ways views reach a binary kernel.
fn run_binary(
    e: &Emulator,
    kernel: &str,
    lhs: (&Tensor, &Tensor),
    rhs: (&Tensor, &Tensor),
    out: DType,
) -> Tensor {
    let n = lhs.1.elem_count();
    let (da, db) = (upload_tensor(e, lhs.0), upload_tensor(e, rhs.0));
    let dy = alloc(e, n, out);
    e.launch_args(
        kernel,
        cfg1d(n),
        args()
            .arg(n as i64)
            .arg(view(lhs.1))
            .arg(da)
            .arg(view(rhs.1))
            .arg(db)
            .arg(dy),
    )
    .unwrap();
    let r = download_tensor(e, dy, lhs.1.dims(), out);
    for p in [da, db, dy] {
        e.free(p).unwrap();
    }
    r
}

#[test]
fn binary_kernels_match_cpu_with_broadcasting() {
    let e = emu();
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];
    for dtype in FLOATS.into_iter().chain([DType::I64]) {
        let (a_base, a) = base_and_view(23, 41, 3, dtype);
        let mut rv = data(41, 4, 2.0);
        rv[3] = f64::NAN; // NaN propagates through maximum/minimum
        let b_base = tensor(
            &rv,
            &[41, 1],
            if dtype == DType::I64 {
                DType::F64
            } else {
                dtype
            },
        );
        let b_base = if dtype == DType::I64 {
            tensor(&data(41, 4, 50.0), &[41, 1], DType::I64)
        } else {
            b_base
        };
        let b = b_base.broadcast_to((41, 23)).unwrap();
        for op in ops {
            if dtype == DType::I64 && matches!(op, BinaryOp::Div | BinaryOp::Pow) {
                continue;
            }
            let kernel = format!("binary_{}_{}", binary_name(op), suffix(dtype));
            let got = run_binary(&e, &kernel, (&a_base, &a), (&b_base, &b), dtype);
            let want = a.binary(&b, op, "binary").unwrap();
            let tol = if op == BinaryOp::Pow {
                tolerance(UnaryOp::Powf(1.0), dtype)
            } else {
                0.0
            };
            assert_close(&got, &want, tol, &kernel);
        }
    }
}

#[test]
fn comparisons_give_u8_masks_for_every_dtype() {
    let e = emu();
    let ops = [
        (CmpOp::Eq, "eq"),
        (CmpOp::Ne, "ne"),
        (CmpOp::Lt, "lt"),
        (CmpOp::Le, "le"),
        (CmpOp::Gt, "gt"),
        (CmpOp::Ge, "ge"),
    ];
    for dtype in ALL {
        let scale: f64 = if dtype == DType::U8 { 0.0 } else { 1.0 };
        let a_base = tensor(
            &data(15 * 9, 5, 3.0)
                .iter()
                .map(|v| (v * 2.0).round() * scale.max(0.5) + 3.0)
                .collect::<Vec<_>>(),
            &[15, 9],
            dtype,
        );
        let a = a_base.t().unwrap();
        let b_base = tensor(
            &data(15, 6, 3.0)
                .iter()
                .map(|v| (v * 2.0).round() * scale.max(0.5) + 3.0)
                .collect::<Vec<_>>(),
            &[1, 15],
            dtype,
        );
        let b = b_base.broadcast_to((9, 15)).unwrap();
        for (op, name) in ops {
            let kernel = format!("cmp_{name}_{}", suffix(dtype));
            let got = run_binary(&e, &kernel, (&a_base, &a), (&b_base, &b), DType::U8);
            assert_same(&got, &a.cmp(&b, op, "cmp").unwrap(), &kernel);
        }
    }
}

#[test]
fn where_cond_selects_for_every_dtype() {
    let e = emu();
    for dtype in ALL {
        let n = 300;
        let c = tensor(
            &data(n, 7, 1.0)
                .iter()
                .map(|v| (*v > 0.0) as u8 as f64)
                .collect::<Vec<_>>(),
            &[n],
            DType::U8,
        );
        let t = tensor(
            &data(n, 8, 100.0)
                .iter()
                .map(|v| v.abs())
                .collect::<Vec<_>>(),
            &[n],
            dtype,
        );
        let f_base = tensor(&[7.0], &[1], dtype);
        let f = f_base.broadcast_to(n).unwrap();
        let (dc, dt, df) = (
            upload_tensor(&e, &c),
            upload_tensor(&e, &t),
            upload_tensor(&e, &f_base),
        );
        let dy = alloc(&e, n, dtype);
        let kernel = format!("where_{}", suffix(dtype));
        e.launch_args(
            &kernel,
            cfg1d(n),
            args()
                .arg(n as i64)
                .arg(view(&c))
                .arg(dc)
                .arg(view(&t))
                .arg(dt)
                .arg(view(&f))
                .arg(df)
                .arg(dy),
        )
        .unwrap();
        let got = download_tensor(&e, dy, &[n], dtype);
        assert_same(&got, &c.where_cond(&t, &f).unwrap(), &kernel);
    }
}

#[test]
fn copy_makes_views_contiguous_for_every_dtype() {
    let e = emu();
    for dtype in ALL {
        let base = tensor(
            &data(4 * 6 * 5, 9, 50.0)
                .iter()
                .map(|v| v.abs())
                .collect::<Vec<_>>(),
            &[4, 6, 5],
            dtype,
        );
        let view = base.permute(&[2, 0, 1]).unwrap().narrow(2, 1, 4).unwrap();
        let kernel = format!("copy_{}", suffix(dtype));
        let got = run_map(&e, &kernel, &base, &view, dtype, |a| a);
        assert_same(&got, &view.contiguous().unwrap(), &kernel);
    }
}

#[test]
fn cast_converts_between_every_pair_of_dtypes_like_rust_as() {
    let e = emu();
    let mut v = data(200, 10, 300.0);
    v.extend([
        f64::NAN,
        f64::INFINITY,
        -f64::INFINITY,
        1e300,
        -1e300,
        65520.0,
        1e-8,
        2.5,
        -2.5,
        255.5,
        256.0,
        -0.0,
    ]);
    for src in ALL {
        let base = tensor(&v, &[v.len()], src);
        for dst in ALL {
            if src == dst {
                continue;
            }
            let kernel = format!("cast_{}_{}", suffix(src), suffix(dst));
            let got = run_map(&e, &kernel, &base, &base, dst, |a| a);
            let want = base.to_dtype(dst).unwrap();
            assert_close(&got, &want, 0.0, &kernel);
        }
    }
}

#[test]
fn copy_into_writes_a_strided_destination() {
    let e = emu();
    for dtype in ALL {
        let dst = tensor(&vec![1.0; 8 * 10], &[8, 10], dtype);
        let src = tensor(
            &data(5 * 3, 11, 20.0)
                .iter()
                .map(|v| v.abs())
                .collect::<Vec<_>>(),
            &[5, 3],
            dtype,
        );
        // Write `src` transposed into rows 2..5, columns 4..9 of `dst`.
        let src_view = src.t().unwrap();
        let dst_view = dst.narrow(0, 2, 3).unwrap().narrow(1, 4, 5).unwrap();
        let (dd, ds) = (upload_tensor(&e, &dst), upload_tensor(&e, &src));
        let n = src_view.elem_count();
        let kernel = format!("copy_into_{}", suffix(dtype));
        e.launch_args(
            &kernel,
            cfg1d(n),
            args()
                .arg(n as i64)
                .arg(view(&dst_view))
                .arg(dd)
                .arg(view(&src_view))
                .arg(ds),
        )
        .unwrap();
        let got = download_tensor(&e, dd, &[8, 10], dtype);
        let want = dst.slice_assign(&[2..5, 4..9], &src_view).unwrap();
        assert_same(&got, &want, &kernel);
    }
}

#[test]
fn fill_and_arange_round_once_from_f64() {
    let e = emu();
    for dtype in ALL {
        let n = 333;
        let dy = alloc(&e, n, dtype);
        let kernel = format!("fill_{}", suffix(dtype));
        e.launch_args(&kernel, cfg1d(n), args().arg(n as i64).arg(dy).arg(2.7f64))
            .unwrap();
        let want = Tensor::full(2.7, n, dtype, &cpu()).unwrap();
        assert_same(&download_tensor(&e, dy, &[n], dtype), &want, &kernel);

        let kernel = format!("arange_{}", suffix(dtype));
        e.launch_args(
            &kernel,
            cfg1d(n),
            args().arg(n as i64).arg(dy).arg(-3.0f64).arg(0.1f64),
        )
        .unwrap();
        let want = Tensor::arange(-3.0, -3.0 + 0.1 * n as f64 - 0.05, 0.1, dtype, &cpu()).unwrap();
        assert_eq!(want.elem_count(), n);
        assert_same(&download_tensor(&e, dy, &[n], dtype), &want, &kernel);
        e.free(dy).unwrap();
    }
}

#[test]
fn strided_layouts_merge_contiguous_dimensions() {
    let base = tensor(&data(2 * 3 * 4, 1, 1.0), &[2, 3, 4], DType::F32);
    let s = view(&base);
    assert_eq!((s.rank, s.shape[0], s.strides[0]), (1, 24, 1));
    let t = view(&base.narrow(2, 1, 2).unwrap());
    assert_eq!(
        (t.rank, &t.shape[..2], &t.strides[..2], t.offset),
        (2, &[6i64, 2][..], &[4i64, 1][..], 1)
    );
    let b = view(
        &tensor(&[1.0], &[1, 1], DType::F32)
            .broadcast_to((5, 7))
            .unwrap(),
    );
    assert_eq!(
        (b.rank, &b.shape[..1], &b.strides[..1]),
        (1, &[35i64][..], &[0i64][..])
    );
    let _ = Emulator::new().describe();
}

#[test]
fn strided_layouts_beyond_eight_dimensions_are_an_error() {
    // Nine dimensions of size 2, every other one sliced: nothing merges.
    let base = tensor(&data(1 << 18, 1, 1.0), &[4; 9], DType::F32);
    let mut v = base.clone();
    for d in 0..9 {
        v = v.narrow(d, 0, 2).unwrap();
    }
    assert!(Strided::from_layout(v.layout()).is_err());
    assert!(Strided::from_layout(base.layout()).is_ok());
}
