//! The CUDA backend against the CPU backend: every primitive in every
//! dtype, on ragged sizes and on strided, broadcast and transposed views;
//! index errors; the caching allocator in a training loop; and a small
//! MLP's training steps.
//!
//! They run on the emulator, or on the device `CANDLE_DEVICE` names when
//! it is a CUDA one (`CANDLE_DEVICE=cuda cargo test -p chapter-07 --test
//! backend -- --test-threads 1` on a GPU machine; one thread, so the
//! allocator test sees only its own tensors). Sizes are small on purpose:
//! the emulator runs every GPU thread as a fiber on one CPU core.

use chapter_02::backend::{BinaryOp, CmpOp, Program, ReduceOp, UnaryOp};
use chapter_02::dispatch::{call, dispatch_path};
use chapter_02::{DType, Device, DispatchPath, Error, Generator, Tensor};
use chapter_07::driver::Driver;
use chapter_07::Emulator;

const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];
const ALL: [DType; 6] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::U8,
];

/// The device under test: `CANDLE_DEVICE` if it names a CUDA device,
/// else the emulator.
fn emu() -> Device {
    chapter_07::register();
    match std::env::var("CANDLE_DEVICE") {
        Ok(name) if name.trim().starts_with("cuda") => Device::parse(&name).unwrap(),
        _ => Device::parse("cuda-emu").unwrap(),
    }
}

/// The allocator's (allocated bytes, device allocations) on `dev`.
fn memory(dev: &Device) -> (usize, usize) {
    let stats = if dev.kind() == chapter_07::CUDA {
        chapter_07::backend_of::<Driver>(dev)
            .unwrap()
            .allocator()
            .stats()
    } else {
        chapter_07::backend_of::<Emulator>(dev)
            .unwrap()
            .allocator()
            .stats()
    };
    (stats.allocated_bytes, stats.device_allocs)
}

fn cpu() -> Device {
    Device::cpu()
}

/// `n` numbers with negatives, zeros, repeats and fractions (exact in
/// every float dtype), integers for the integer dtypes.
fn data(n: usize, dtype: DType) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let v = ((i * 37 + 11) % 23) as f64 - 9.0;
            match dtype {
                DType::U8 => v.abs(),
                DType::I64 => v,
                _ => v / 4.0,
            }
        })
        .collect()
}

/// The same tensor on the CPU and on the emulator.
fn pair(shape: &[usize], dtype: DType) -> (Tensor, Tensor) {
    let n = shape.iter().product();
    let c = Tensor::from_f64_vec(data(n, dtype), shape, dtype, &cpu()).unwrap();
    let e = c.to_device(&emu()).unwrap();
    (c, e)
}

/// Equal values (NaN equal to NaN), within `tol` relative to the larger
/// magnitude (0 for bit-exact operations).
fn assert_close(cpu: &Tensor, emu: &Tensor, tol: f64, what: &str) {
    assert_eq!(cpu.shape(), emu.shape(), "{what}: shape");
    assert_eq!(cpu.dtype(), emu.dtype(), "{what}: dtype");
    let (a, b) = (cpu.to_vec_f64().unwrap(), emu.to_vec_f64().unwrap());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let ok = (x.is_nan() && y.is_nan())
            || x == y
            || (x - y).abs() <= tol * x.abs().max(y.abs()).max(1e-30);
        assert!(
            ok,
            "{what}: element {i}: cpu {x} vs cuda-emu {y}\ncpu {a:?}\nemu {b:?}"
        );
    }
}

fn tol(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        DType::F32 => 1e-5,
        DType::F64 => 1e-12,
        _ => 0.0,
    }
}

#[test]
fn device_kinds_are_registered_and_the_emulator_opens() {
    chapter_07::register();
    let d = Device::parse("cuda-emu").unwrap();
    assert_eq!(d.name(), "cuda-emu:0");
    assert_eq!(Device::parse("cuda-emu:0").unwrap(), d);
    assert!(chapter_02::known_device_kinds().contains(&"cuda"));
    // Without a GPU, `cuda` is an error that says why, never a panic.
    if let Err(e) = Device::parse("cuda:0") {
        assert!(matches!(e, Error::Device { .. }), "{e}");
    }
}

#[test]
fn transfers_round_trip_every_dtype_and_view() {
    for dtype in ALL {
        let (c, e) = pair(&[3, 5, 2], dtype);
        assert_close(&c, &e, 0.0, "upload");
        let (ct, et) = (c.transpose(0, 2).unwrap(), e.transpose(0, 2).unwrap());
        assert_close(&ct, &et, 0.0, "to_cpu of a transposed view");
        let (cs, es) = (c.slice(1, 1, 5, 2).unwrap(), e.slice(1, 1, 5, 2).unwrap());
        assert_close(&cs, &es, 0.0, "to_cpu of a strided slice");
        let (cn, en) = (c.narrow(0, 1, 1).unwrap(), e.narrow(0, 1, 1).unwrap());
        assert_close(&cn, &en, 0.0, "to_cpu of a contiguous view with an offset");
        let empty = Tensor::zeros((0, 3), dtype, &emu()).unwrap();
        assert_eq!(empty.to_vec_f64().unwrap().len(), 0);
    }
}

#[test]
fn full_and_arange_every_dtype() {
    for dtype in ALL {
        let c = Tensor::full(2.5, (3, 7), dtype, &cpu()).unwrap();
        let e = Tensor::full(2.5, (3, 7), dtype, &emu()).unwrap();
        assert_close(&c, &e, 0.0, "full");
        let c = Tensor::arange(1.0, 40.0, 3.0, dtype, &cpu()).unwrap();
        let e = Tensor::arange(1.0, 40.0, 3.0, dtype, &emu()).unwrap();
        assert_close(&c, &e, 0.0, "arange");
    }
}

#[test]
fn random_draws_are_the_cpus_bit_for_bit() {
    for dtype in FLOATS {
        for (k, shape) in [vec![7usize], vec![3, 5]].into_iter().enumerate() {
            let (mut g1, mut g2) = (Generator::new(42 + k as u64), Generator::new(42 + k as u64));
            let c = Tensor::randn_with(0.5, 2.0, shape.clone(), dtype, &cpu(), &mut g1).unwrap();
            let e = Tensor::randn_with(0.5, 2.0, shape.clone(), dtype, &emu(), &mut g2).unwrap();
            assert_close(&c, &e, 0.0, "randn");
            let c = Tensor::rand_with(-1.0, 3.0, shape.clone(), dtype, &cpu(), &mut g1).unwrap();
            let e = Tensor::rand_with(-1.0, 3.0, shape, dtype, &emu(), &mut g2).unwrap();
            assert_close(&c, &e, 0.0, "rand");
        }
    }
    for dtype in ALL {
        let (mut g1, mut g2) = (Generator::new(7), Generator::new(7));
        let c = Tensor::bernoulli_with(0.3, 11, dtype, &cpu(), &mut g1).unwrap();
        let e = Tensor::bernoulli_with(0.3, 11, dtype, &emu(), &mut g2).unwrap();
        assert_close(&c, &e, 0.0, "bernoulli");
    }
}

#[test]
fn copies_casts_and_copy_into_every_dtype() {
    for dtype in ALL {
        let (c, e) = pair(&[4, 3], dtype);
        // A broadcast view made contiguous.
        let (cb, eb) = (
            c.unsqueeze(1).unwrap().broadcast_to((4, 2, 3)).unwrap(),
            e.unsqueeze(1).unwrap().broadcast_to((4, 2, 3)).unwrap(),
        );
        assert_close(
            &cb.contiguous().unwrap(),
            &eb.contiguous().unwrap(),
            0.0,
            "copy",
        );
        // cat is copy_into of each part.
        let (ct, et) = (c.t().unwrap(), e.t().unwrap());
        let cc = Tensor::cat(&[&ct, &ct.slice(1, 0, 4, 3).unwrap()], 1).unwrap();
        let ec = Tensor::cat(&[&et, &et.slice(1, 0, 4, 3).unwrap()], 1).unwrap();
        assert_close(&cc, &ec, 0.0, "cat");
        for to in ALL {
            let (a, b) = (ct.to_dtype(to).unwrap(), et.to_dtype(to).unwrap());
            assert_close(&a, &b, 0.0, &format!("cast {dtype:?} -> {to:?}"));
        }
    }
}

#[test]
fn unary_ops_every_float_dtype_and_i64() {
    let ops = [
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
        UnaryOp::Powf(1.5),
        UnaryOp::Clamp {
            min: -1.0,
            max: 0.5,
        },
        UnaryOp::LeakyRelu(0.1),
    ];
    for dtype in FLOATS {
        // A transposed view of a ragged shape: the kernels read in place.
        let (c, e) = pair(&[5, 7], dtype);
        let (c, e) = (c.t().unwrap(), e.t().unwrap());
        for op in ops {
            let a = c.unary(op, "unary").unwrap();
            let b = e.unary(op, "unary").unwrap();
            assert_close(&a, &b, tol(dtype), &format!("{op:?} {dtype:?}"));
        }
    }
    let (c, e) = pair(&[9], DType::I64);
    for op in [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sqr,
        UnaryOp::Sign,
        UnaryOp::Relu,
    ] {
        let a = c.unary(op, "unary").unwrap();
        let b = e.unary(op, "unary").unwrap();
        assert_close(&a, &b, 0.0, &format!("{op:?} i64"));
    }
    assert!(e.unary(UnaryOp::Exp, "exp").is_err());
}

#[test]
fn binary_ops_and_comparisons_broadcast_every_dtype() {
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];
    for dtype in ALL {
        let (a, ae) = pair(&[3, 1, 5], dtype);
        let (b, be) = pair(&[4, 1], dtype);
        let b = b.affine(0.5, 1.0).unwrap_or(b);
        let be = be.affine(0.5, 1.0).unwrap_or(be);
        for op in ops {
            let x = a.binary(&b, op, "binary");
            let y = ae.binary(&be, op, "binary");
            match (x, y) {
                (Ok(x), Ok(y)) => assert_close(&x, &y, tol(dtype), &format!("{op:?} {dtype:?}")),
                (Err(_), Err(_)) => {}
                (x, y) => panic!("{op:?} {dtype:?}: cpu {x:?} vs cuda-emu {y:?}"),
            }
        }
        for op in [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ] {
            let x = a.cmp(&b, op, "cmp").unwrap();
            let y = ae.cmp(&be, op, "cmp").unwrap();
            assert_close(&x, &y, 0.0, &format!("{op:?} {dtype:?}"));
            let x = x.where_cond(
                &a.broadcast_to((3, 4, 5)).unwrap(),
                &b.broadcast_to((3, 4, 5)).unwrap(),
            );
            let y = y.where_cond(
                &ae.broadcast_to((3, 4, 5)).unwrap(),
                &be.broadcast_to((3, 4, 5)).unwrap(),
            );
            assert_close(&x.unwrap(), &y.unwrap(), 0.0, &format!("where {dtype:?}"));
        }
    }
}

#[test]
fn reductions_over_any_axes_with_nan_every_dtype() {
    for dtype in ALL {
        let (mut c, _) = pair(&[3, 4, 5], dtype);
        if dtype.is_float() {
            // A NaN in one row: max, min and sum propagate it, argmax points at it.
            let mut v = c.to_vec_f64().unwrap();
            v[7] = f64::NAN;
            c = Tensor::from_f64_vec(v, (3, 4, 5), dtype, &cpu()).unwrap();
        }
        let e = c.to_device(&emu()).unwrap();
        for axes in [vec![2usize], vec![0], vec![1], vec![0, 2], vec![0, 1, 2]] {
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min] {
                if dtype == DType::U8 && op == ReduceOp::Sum {
                    continue; // refused by the op layer on every device
                }
                let x = c.reduce(op, &axes, true, "reduce").unwrap();
                let y = e.reduce(op, &axes, true, "reduce").unwrap();
                let t = if dtype.is_half() {
                    1e-2
                } else {
                    tol(dtype) * 10.0
                };
                assert_close(&x, &y, t, &format!("{op:?} {axes:?} {dtype:?}"));
            }
        }
        for d in 0..3 {
            let x = c.argmax(d, false).unwrap();
            let y = e.argmax(d, false).unwrap();
            assert_close(&x, &y, 0.0, &format!("argmax {d} {dtype:?}"));
            let x = c.argmin(d, true).unwrap();
            let y = e.argmin(d, true).unwrap();
            assert_close(&x, &y, 0.0, &format!("argmin {d} {dtype:?}"));
        }
    }
}

#[test]
fn matmul_batched_transposed_broadcast_ragged() {
    for dtype in FLOATS {
        let (a, ae) = pair(&[2, 5, 17], dtype);
        let (b, be) = pair(&[2, 17, 3], dtype);
        let t = if dtype.is_half() {
            2e-2
        } else {
            tol(dtype) * 10.0
        };
        assert_close(
            &a.matmul(&b).unwrap(),
            &ae.matmul(&be).unwrap(),
            t,
            "batched",
        );
        // Transposed operands, read in place.
        let (at, aet) = (a.transpose(1, 2).unwrap(), ae.transpose(1, 2).unwrap());
        let (bt, bet) = (b.transpose(1, 2).unwrap(), be.transpose(1, 2).unwrap());
        assert_close(
            &bt.matmul(&at).unwrap(),
            &bet.matmul(&aet).unwrap(),
            t,
            "transposed",
        );
        // A right operand broadcast over a batch of 3 × 2.
        let (c, ce) = pair(&[3, 2, 5, 17], dtype);
        let (w, we) = pair(&[17, 4], dtype);
        assert_close(
            &c.matmul(&w).unwrap(),
            &ce.matmul(&we).unwrap(),
            t,
            "broadcast",
        );
        // k = 0 is a matrix of zeros.
        let z = Tensor::zeros((3, 0), dtype, &emu()).unwrap();
        let z2 = Tensor::zeros((0, 2), dtype, &emu()).unwrap();
        assert_eq!(z.matmul(&z2).unwrap().to_vec_f64().unwrap(), vec![0.0; 6]);
    }
}

#[test]
fn indexing_every_dtype() {
    for dtype in ALL {
        let (s, se) = pair(&[4, 5], dtype);
        let ids = Tensor::new(&[3i64, 0, 3, 1]).unwrap();
        let idse = ids.to_device(&emu()).unwrap();
        for dim in 0..2 {
            let x = s.index_select(&ids, dim).unwrap();
            let y = se.index_select(&idse, dim).unwrap();
            assert_close(&x, &y, 0.0, &format!("index_select {dim} {dtype:?}"));
        }
        let g = Tensor::from_vec(vec![0i64, 4, 2, 2, 1, 0], (2, 3), &cpu()).unwrap();
        let ge = g.to_device(&emu()).unwrap();
        let x = s.gather(&g, 1).unwrap();
        let y = se.gather(&ge, 1).unwrap();
        assert_close(&x, &y, 0.0, &format!("gather {dtype:?}"));
        if dtype == DType::U8 {
            continue;
        }
        let (src, srce) = pair(&[2, 3], dtype);
        let x = s.scatter_add(&g, &src, 1).unwrap();
        let y = se.scatter_add(&ge, &srce, 1).unwrap();
        assert_close(&x, &y, tol(dtype), &format!("scatter_add {dtype:?}"));
        let (src, srce) = pair(&[4, 4], dtype);
        let x = s.index_add(&ids, &src, 1).unwrap();
        let y = se.index_add(&idse, &srce, 1).unwrap();
        assert_close(&x, &y, tol(dtype), &format!("index_add {dtype:?}"));
    }
}

#[test]
fn an_index_out_of_range_is_a_device_error_and_the_device_goes_on() {
    let e = emu();
    let s = Tensor::from_vec((0..12).map(|v| v as f32).collect(), (3, 4), &e).unwrap();
    let bad = Tensor::from_vec(vec![0i64, 7], 2, &e).unwrap();
    let err = s.index_select(&bad, 0).unwrap_err();
    match &err {
        Error::Device { op, device, msg } => {
            assert_eq!(*op, "index_select");
            assert_eq!(device, &e.name());
            assert!(msg.contains("index 7") && msg.contains("[3, 4]"), "{msg}");
        }
        other => panic!("expected a device error, got {other:?}"),
    }
    let bad2 = Tensor::from_vec(vec![0i64, -1, 1, 2], (2, 2), &e).unwrap();
    assert!(matches!(
        s.gather(&bad2, 1),
        Err(Error::Device { op: "gather", .. })
    ));
    // The device still works.
    let ok = Tensor::from_vec(vec![2i64, 0], 2, &e).unwrap();
    let v = s.index_select(&ok, 0).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(v, vec![8., 9., 10., 11., 0., 1., 2., 3.]);
}

#[test]
fn argsort_is_stable_and_puts_nan_last_every_dtype() {
    for dtype in ALL {
        let mut v: Vec<f64> = vec![3.0, 1.0, 3.0, -2.0, 1.0, 0.0, 5.0, 1.0, 2.0];
        if dtype == DType::U8 {
            v.iter_mut().for_each(|x| *x = x.abs());
        }
        if dtype.is_float() {
            v[4] = f64::NAN;
        }
        let c = Tensor::from_f64_vec(v, (3, 3), dtype, &cpu()).unwrap();
        let e = c.to_device(&emu()).unwrap();
        for desc in [false, true] {
            for d in 0..2 {
                let x = c.argsort(d, desc).unwrap();
                let y = e.argsort(d, desc).unwrap();
                assert_close(
                    &x,
                    &y,
                    0.0,
                    &format!("argsort {dtype:?} dim {d} desc {desc}"),
                );
            }
        }
    }
    // A ragged row longer than one block of threads.
    let (c, e) = pair(&[2, 300], DType::F32);
    assert_close(
        &c.argsort(1, false).unwrap(),
        &e.argsort(1, false).unwrap(),
        0.0,
        "long rows",
    );
}

#[test]
fn fused_programs_match_the_cpu() {
    // y = relu(a * s0 + b), z = exp(-a): two outputs, one strided input.
    let mut p = Program::new();
    let (a, b, s0) = (p.input(0), p.input(1), p.scalar(0));
    let m = p.binary(BinaryOp::Mul, a, s0);
    let y = p.binary(BinaryOp::Add, m, b);
    let y = p.unary(UnaryOp::Relu, y);
    let na = p.unary(UnaryOp::Neg, a);
    let z = p.unary(UnaryOp::Exp, na);
    p.output(y);
    p.output(z);
    for dtype in FLOATS {
        let (x, xe) = pair(&[3, 5], dtype);
        let (w, we) = pair(&[5, 3], dtype);
        let (w, we) = (w.t().unwrap(), we.t().unwrap());
        let c = Tensor::fused(&p, &[&x, &w], &[0.75]).unwrap();
        let g = Tensor::fused(&p, &[&xe, &we], &[0.75]).unwrap();
        for (i, (c, g)) in c.iter().zip(&g).enumerate() {
            assert_close(c, g, tol(dtype), &format!("fused output {i} {dtype:?}"));
        }
    }
}

#[test]
fn softmax_and_layer_norm_run_as_registered_kernels() {
    use chapter_04::softmax::{
        LogSoftmaxBackward, LogSoftmaxLastDim, SoftmaxBackward, SoftmaxLastDim,
    };
    use chapter_05::norm::{LayerNormBackward, LayerNormForward};
    let kind = emu().kind();
    assert_eq!(
        dispatch_path::<SoftmaxLastDim>(kind).unwrap(),
        DispatchPath::Kernel
    );
    assert_eq!(
        dispatch_path::<LayerNormForward>(kind).unwrap(),
        DispatchPath::Kernel
    );
    // A causal mask's −∞ logits get probability 0 (and a row of only −∞
    // NaN), as on the CPU.
    let inf = f64::NEG_INFINITY;
    let masked = Tensor::from_f64_vec(
        vec![0.5, inf, inf, inf, inf, inf],
        (2, 3),
        DType::F32,
        &cpu(),
    )
    .unwrap();
    for op in [0, 1] {
        let run = |t: &Tensor| match op {
            0 => call(&SoftmaxLastDim, &[t]).unwrap().remove(0),
            _ => call(&LogSoftmaxLastDim, &[t]).unwrap().remove(0),
        };
        assert_close(
            &run(&masked),
            &run(&masked.to_device(&emu()).unwrap()),
            0.0,
            "masked rows",
        );
    }
    for dtype in FLOATS {
        let t = if dtype.is_half() {
            2e-2
        } else {
            tol(dtype) * 10.0
        };
        let (x, xe) = pair(&[3, 37], dtype);
        let (g, ge) = pair(&[3, 37], dtype);
        let cases: [(&str, Vec<Tensor>, Vec<Tensor>); 4] = [
            (
                "softmax",
                call(&SoftmaxLastDim, &[&x]).unwrap(),
                call(&SoftmaxLastDim, &[&xe]).unwrap(),
            ),
            (
                "log_softmax",
                call(&LogSoftmaxLastDim, &[&x]).unwrap(),
                call(&LogSoftmaxLastDim, &[&xe]).unwrap(),
            ),
            (
                "softmax_backward",
                call(&SoftmaxBackward, &[&x, &g]).unwrap(),
                call(&SoftmaxBackward, &[&xe, &ge]).unwrap(),
            ),
            (
                "log_softmax_backward",
                call(&LogSoftmaxBackward, &[&x, &g]).unwrap(),
                call(&LogSoftmaxBackward, &[&xe, &ge]).unwrap(),
            ),
        ];
        for (name, c, e) in &cases {
            assert_close(&c[0], &e[0], t, &format!("{name} {dtype:?}"));
        }
        let (w, we) = pair(&[37], dtype);
        let (b, be) = pair(&[37], dtype);
        let op = LayerNormForward {
            eps: 1e-5,
            weight: true,
            bias: true,
        };
        let c = call(&op, &[&x, &w, &b]).unwrap();
        let e = call(&op, &[&xe, &we, &be]).unwrap();
        for (i, (c, e)) in c.iter().zip(&e).enumerate() {
            assert_close(c, e, t, &format!("layer_norm output {i} {dtype:?}"));
        }
        let bop = LayerNormBackward {
            weight: true,
            bias: true,
        };
        let cb = call(&bop, &[&g, &x, &c[1], &c[2], &w]).unwrap();
        let eb = call(&bop, &[&ge, &xe, &e[1], &e[2], &we]).unwrap();
        for (i, (c, e)) in cb.iter().zip(&eb).enumerate() {
            let t = if dtype.is_half() { 6e-2 } else { t };
            assert_close(
                c,
                e,
                t,
                &format!("layer_norm_backward output {i} {dtype:?}"),
            );
        }
    }
}

/// One SGD step of a 2-layer MLP, `relu(x·W1 + b1)·W2 + b2` with a
/// squared error, written with chapter 03's autograd; returns the loss and
/// the updated parameters.
fn mlp_step(params: &[chapter_03::Tensor], x: &Tensor, y: &Tensor) -> (f64, Vec<Tensor>) {
    use chapter_03::Tensor as T;
    use chapter_04::prelude::*;
    let (x, y) = (T::from_raw(x.clone()), T::from_raw(y.clone()));
    let h = x
        .matmul(&params[0])
        .unwrap()
        .add(&params[1])
        .unwrap()
        .relu()
        .unwrap();
    let out = h.matmul(&params[2]).unwrap().add(&params[3]).unwrap();
    let d = out.sub(&y).unwrap();
    let loss = d.mul(&d).unwrap().mean_all().unwrap();
    loss.backward().unwrap();
    let updated = params
        .iter()
        .map(|p| {
            let g = p.grad().unwrap().data();
            p.data().sub(&g.affine(0.1, 0.0).unwrap()).unwrap()
        })
        .collect();
    (loss.data().item().unwrap(), updated)
}

fn mlp_params(dev: &Device) -> Vec<Tensor> {
    let mut g = Generator::new(3);
    [vec![4usize, 8], vec![8], vec![8, 2], vec![2]]
        .into_iter()
        .map(|s| Tensor::randn_with(0.0, 0.5, s, DType::F32, dev, &mut g).unwrap())
        .collect()
}

#[test]
fn an_mlp_trains_the_same_on_the_device_and_the_allocator_stays_flat() {
    // On the emulator, one of its own: the other tests' tensors do not count.
    let de = match emu() {
        d if d.kind() == chapter_07::CUDA => d,
        _ => Device::parse("cuda-emu:1").unwrap(),
    };
    let dc = cpu();
    let mut g = Generator::new(9);
    let x = Tensor::randn_with(0.0, 1.0, (6, 4), DType::F32, &dc, &mut g).unwrap();
    let y = Tensor::randn_with(0.0, 1.0, (6, 2), DType::F32, &dc, &mut g).unwrap();
    let (xe, ye) = (x.to_device(&de).unwrap(), y.to_device(&de).unwrap());
    let (mut pc, mut pe) = (mlp_params(&dc), mlp_params(&de));
    let mut allocated = Vec::new();
    for step in 0..4 {
        let wrap = |ps: &[Tensor]| {
            ps.iter()
                .map(|p| chapter_03::Tensor::param(p.clone()).unwrap())
                .collect::<Vec<_>>()
        };
        let (lc, nc) = mlp_step(&wrap(&pc), &x, &y);
        let (le, ne) = mlp_step(&wrap(&pe), &xe, &ye);
        assert!(
            (lc - le).abs() <= 1e-5 * lc.abs().max(1.0),
            "step {step}: loss {lc} vs {le}"
        );
        for (c, e) in nc.iter().zip(&ne) {
            assert_close(c, e, 1e-4, &format!("parameters after step {step}"));
        }
        (pc, pe) = (nc, ne);
        allocated.push(memory(&de).0);
    }
    // After the first step the same tensors are made every step: the
    // bytes in use do not grow, and the device is asked for nothing new.
    assert_eq!(
        allocated[1], allocated[3],
        "allocated bytes per step: {allocated:?}"
    );
    let allocs = memory(&de).1;
    let wrap = |ps: &[Tensor]| {
        ps.iter()
            .map(|p| chapter_03::Tensor::param(p.clone()).unwrap())
            .collect::<Vec<_>>()
    };
    let _ = mlp_step(&wrap(&pe), &xe, &ye);
    assert_eq!(
        memory(&de).1,
        allocs,
        "a step after warm-up allocates from the cache only"
    );
}

/// What opening `cuda` does on a GPU without embedded PTX: every kernel
/// file, ours included, compiles with NVRTC to a cubin for sm_90. Skipped
/// (with a line saying so) where NVRTC is not installed.
#[test]
fn every_kernel_file_compiles_to_an_sm_90_cubin_with_nvrtc() {
    if !chapter_07::nvrtc::nvrtc_available() {
        eprintln!("NVRTC not found: the cubins the cuda device loads were not built");
        return;
    }
    let cubins = chapter_07::device::kernel_cubins(90).unwrap();
    assert!(cubins.iter().any(|(n, _)| *n == "backend_sort.cu"));
    assert!(cubins.iter().all(|(_, c)| !c.is_empty()));
}
