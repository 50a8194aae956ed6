//! Programs shared by the codegen tests (which run them on the host and
//! write their PTX) and the GPU tests (which run that PTX on a device).

use chapter_02::backend::{BinaryOp, Program, UnaryOp};

/// `(r, r / 2 + 1)` with `r = sigmoid(a) * b + tanh(a)`: transcendental
/// functions, an affine map and two outputs; the tests read `b` as a row
/// broadcast down the rows (stride 0).
pub fn sigmoid_tanh() -> Program {
    let mut p = Program::new();
    let (a, b) = (p.input(0), p.input(1));
    let s = p.unary(UnaryOp::Sigmoid, a);
    let sb = p.binary(BinaryOp::Mul, s, b);
    let t = p.unary(UnaryOp::Tanh, a);
    let r = p.binary(BinaryOp::Add, sb, t);
    let q = p.unary(UnaryOp::Affine { mul: 0.5, add: 1.0 }, r);
    p.output(r);
    p.output(q);
    p
}
