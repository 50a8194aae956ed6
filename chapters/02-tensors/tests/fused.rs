//! Lesson: a fused elementwise program reads each input once and writes
//! each output once, and takes the numbers that change from call to call as
//! runtime scalars, so one program serves every call. `cargo test -p
//! chapter-02 fused` runs these.

mod common;

use chapter_02::{BinaryOp, CountingDevice, DType, Device, Generator, Program, Tensor, UnaryOp};
use common::*;

// ANCHOR: scalar_program
/// `(x, g) -> x − lr·g`, with `lr` a runtime scalar.
fn sgd_program() -> Program {
    let mut p = Program::new();
    let x = p.input(0);
    let g = p.input(1);
    let lr = p.scalar(0);
    let step = p.binary(BinaryOp::Mul, lr, g);
    let out = p.binary(BinaryOp::Sub, x, step);
    p.output(out);
    p
}

#[test]
fn fused_program_takes_runtime_scalars() {
    let x = tensor(&[1.0f32, 2.0, 3.0], 3);
    let g = tensor(&[10.0f32, 10.0, -10.0], 3);
    let program = sgd_program();
    for lr in [0.1, 0.01] {
        let out = Tensor::fused(&program, &[&x, &g], &[lr]).unwrap();
        let expected = x.sub(&g.mul_scalar(lr).unwrap()).unwrap();
        assert_eq!(values(&out[0]), values(&expected));
    }
}
// ANCHOR_END: scalar_program

#[test]
fn fused_one_program_for_every_call() {
    let counter = CountingDevice::new(Device::cpu());
    let dev = counter.device();
    let x = Tensor::ones(5, DType::F32, dev).unwrap();
    let g = Tensor::ones(5, DType::F32, dev).unwrap();
    let program = sgd_program();
    for step in 0..10 {
        Tensor::fused(&program, &[&x, &g], &[1.0 / (step + 1) as f64]).unwrap();
    }
    let counts = counter.counts();
    assert_eq!(counts.fused_calls, 10);
    assert_eq!(counts.programs.len(), 1, "a device compiles it once");
}

#[test]
fn fused_equals_unfused_on_every_float_dtype() {
    let mut p = Program::new();
    let a = p.input(0);
    let b = p.input(1);
    let s = p.scalar(0);
    let c = p.constant(0.5);
    let e = p.unary(UnaryOp::Exp, a);
    let m = p.binary(BinaryOp::Mul, e, s);
    let d = p.binary(BinaryOp::Div, m, b);
    let o = p.binary(BinaryOp::Add, d, c);
    p.output(o);
    p.output(e);
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let mut gen = Generator::new(1);
        // 1500 elements: several chunks of the CPU interpreter, and a ragged end.
        let x = Tensor::randn_with(0.0, 1.0, (30, 50), dtype, &dev(), &mut gen).unwrap();
        let y = Tensor::rand_with(1.0, 2.0, (50, 30), dtype, &dev(), &mut gen)
            .unwrap()
            .t()
            .unwrap(); // a strided input
        let fused = Tensor::fused(&p, &[&x, &y], &[3.0]).unwrap();
        let expected = x
            .exp()
            .unwrap()
            .mul_scalar(3.0)
            .unwrap()
            .div(&y)
            .unwrap()
            .add_scalar(0.5)
            .unwrap();
        let tol = if dtype == DType::F64 { 1e-12 } else { 1e-2 };
        for (f, e) in values(&fused[0]).iter().zip(values(&expected)) {
            assert!(
                (f - e).abs() <= tol * e.abs().max(1.0),
                "{dtype}: {f} vs {e}"
            );
        }
        assert_eq!(fused[1].dtype(), dtype);
    }
}

#[test]
fn fused_bad_programs_are_errors() {
    let x = tensor(&[1.0f32], 1);
    let mut p = Program::new();
    let s = p.scalar(2);
    p.output(s);
    let e = Tensor::fused(&p, &[&x], &[1.0]).unwrap_err().to_string();
    assert!(e.contains("missing scalar (1 given)"), "{e}");
    let e = Tensor::fused(&Program::new(), &[&x], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least one output"), "{e}");
    let i = tensor(&[1i64], 1);
    let mut p = Program::new();
    let a = p.input(0);
    p.output(a);
    assert_eq!(
        Tensor::fused(&p, &[&i], &[]).unwrap_err().to_string(),
        "fused: not supported for dtype i64"
    );
}

mod random_programs {
    use super::*;
    use chapter_02::{Backend, BackendStorage, CpuBackend, Layout, Storage};
    use proptest::prelude::*;

    /// A random straight-line program over 3 inputs and 2 scalars.
    fn program() -> impl Strategy<Value = Program> {
        let unary = prop_oneof![
            Just(UnaryOp::Neg),
            Just(UnaryOp::Sqr),
            Just(UnaryOp::Abs),
            Just(UnaryOp::Tanh),
            Just(UnaryOp::Affine {
                mul: 0.5,
                add: -1.0
            }),
        ];
        let binary = prop_oneof![
            Just(BinaryOp::Add),
            Just(BinaryOp::Sub),
            Just(BinaryOp::Mul),
            Just(BinaryOp::Maximum),
            Just(BinaryOp::Minimum),
        ];
        let step = (
            0u8..6,
            unary,
            binary,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
        );
        (
            prop::collection::vec(step, 1..14),
            prop::collection::vec(any::<prop::sample::Index>(), 1..4),
        )
            .prop_map(|(steps, outs)| {
                let mut p = Program::new();
                let mut regs = vec![p.input(0)];
                for (kind, u, b, i, j) in steps {
                    let r = match kind {
                        0 => p.input(i.index(3)),
                        1 => p.scalar(i.index(2)),
                        2 => p.constant(1.5),
                        3 => p.unary(u, regs[i.index(regs.len())]),
                        _ => p.binary(b, regs[i.index(regs.len())], regs[j.index(regs.len())]),
                    };
                    regs.push(r);
                }
                for o in outs {
                    p.output(regs[o.index(regs.len())]);
                }
                p
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The planned, chunked, two-core interpreter gives exactly the bits
        /// of the reference semantics (one primitive per instruction), on
        /// sizes around the chunk and at the size where two cores split it.
        #[test]
        fn fused_interpreter_matches_the_reference(
            p in program(),
            n in prop_oneof![Just(1usize), Just(511), Just(512), Just(513), Just(70_001)],
            seed in 0u64..1000,
        ) {
            let mut g = Generator::new(seed);
            let xs: Vec<Tensor> = (0..3)
                .map(|_| Tensor::randn_with(0.0, 1.0, n, DType::F32, &Device::cpu(), &mut g).unwrap())
                .collect();
            let scalars = [0.25, -3.0];
            let inputs: Vec<&Tensor> = xs.iter().collect();
            let fused = Tensor::fused(&p, &inputs, &scalars).unwrap();
            let raw: Vec<(&dyn BackendStorage, &Layout)> =
                xs.iter().map(|t| (t.storage().as_ref(), t.layout())).collect();
            let reference: Vec<Storage> = p.run_unfused(&CpuBackend, &raw, &scalars).unwrap();
            prop_assert_eq!(fused.len(), reference.len());
            for (f, r) in fused.iter().zip(&reference) {
                let r = CpuBackend.to_cpu(r.as_ref(), &Layout::contiguous(n)).unwrap();
                let f = f.to_vec::<f32>().unwrap();
                let r = r.as_slice::<f32>().unwrap();
                prop_assert!(
                    f.iter().zip(r).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())),
                    "program {:?}", p
                );
            }
        }
    }
}

/// `(a, b, x) -> (b, a·x + b, a)`: two outputs that are inputs, swapped
/// with the third, which an in-place run must not confuse.
fn swap_program() -> Program {
    let mut p = Program::new();
    let a = p.input(0);
    let b = p.input(1);
    let x = p.input(2);
    let ax = p.binary(BinaryOp::Mul, a, x);
    let mixed = p.binary(BinaryOp::Add, ax, b);
    p.output(b);
    p.output(mixed);
    p.output(a);
    p
}

// ANCHOR: fused_in_place_test
#[test]
fn fused_in_place_gives_the_out_of_place_results() {
    // Sizes below and above the two-core threshold, not multiples of the
    // block or chunk, in every float dtype.
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for n in [1, 517, 70_001] {
            let mut gen = Generator::new(n as u64);
            let dev = dev();
            let mut randn = || Tensor::randn_with(0.0, 1.0, n, dtype, &dev, &mut gen).unwrap();
            let (a, b, x) = (randn(), randn(), randn());
            let expected = Tensor::fused(&swap_program(), &[&a, &b, &x], &[]).unwrap();
            let (mut sa, mut sb, mut sx) =
                (a.copy().unwrap(), b.copy().unwrap(), x.copy().unwrap());
            Tensor::fused_in_place(&swap_program(), &mut [&mut sa, &mut sb, &mut sx], &[], &[])
                .unwrap();
            for (got, want) in [&sa, &sb, &sx].iter().zip(&expected) {
                assert_eq!(values(got), values(want), "{dtype:?} n={n}");
            }
        }
    }
}
// ANCHOR_END: fused_in_place_test

#[test]
fn fused_in_place_keeps_value_semantics() {
    // The state is shared with a clone, and one state tensor is a strided
    // view: both are copied first, and the clone keeps its values.
    let x = tensor(&[1.0f32, 2.0, 3.0, 4.0], (2, 2));
    let g = tensor(&[1.0f32, 1.0, 1.0, 1.0], (2, 2));
    let kept = x.clone();
    let mut state = x.t().unwrap();
    Tensor::fused_in_place(
        &sgd_program(),
        &mut [&mut state],
        &[&g.t().unwrap()],
        &[0.5],
    )
    .unwrap();
    assert_eq!(values(&kept), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(values(&state), vec![0.5, 2.5, 1.5, 3.5]);
}

#[test]
fn fused_in_place_errors_name_the_problem() {
    let x = tensor(&[1.0f32, 2.0], 2);
    let g3 = tensor(&[1.0f32, 2.0, 3.0], 3);
    let mut s = x.clone();
    let e = Tensor::fused_in_place(&sgd_program(), &mut [&mut s], &[&g3], &[0.1]).unwrap_err();
    assert!(e.to_string().contains("[2] vs [3]"), "{e}");
    let (mut s1, mut s2) = (x.clone(), x.clone());
    let e = Tensor::fused_in_place(&sgd_program(), &mut [&mut s1, &mut s2], &[], &[0.1])
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 outputs for 2 state tensors"), "{e}");
    let mut i = Tensor::from_vec(vec![1i64, 2], 2, &dev()).unwrap();
    assert!(Tensor::fused_in_place(&sgd_program(), &mut [&mut i], &[&x], &[0.1]).is_err());
}
