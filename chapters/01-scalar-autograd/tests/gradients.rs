//! Lesson: every operation's backward agrees with the definition of the
//! derivative. `cargo test -p chapter-01 gradient` runs these.

use approx::assert_relative_eq;
use chapter_01::{central_difference, check_gradient, Value};
use proptest::prelude::*;

/// Points on both sides of zero, avoiding the places where an operation is
/// not differentiable (relu at 0) or not defined (ln of x ≤ 0).
const POINTS: [f64; 6] = [-2.3, -0.7, -0.1, 0.2, 0.9, 1.7];

fn check_unary(name: &str, f: impl Fn(&Value) -> Value, domain: impl Fn(f64) -> bool) {
    for x in POINTS.into_iter().filter(|&x| domain(x)) {
        check_gradient(|v| f(&v[0]), &[x]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn check_binary(name: &str, f: impl Fn(&Value, &Value) -> Value) {
    for a in POINTS {
        for b in POINTS {
            check_gradient(|v| f(&v[0], &v[1]), &[a, b]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn gradient_of_add_matches_central_difference() {
    check_binary("a + b", |a, b| a + b);
    check_unary("a + 3", |a| a + 3.0, |_| true);
    check_unary("3 + a", |a| 3.0 + a, |_| true);
}

#[test]
fn gradient_of_sub_matches_central_difference() {
    check_binary("a - b", |a, b| a - b);
    check_unary("a - 3", |a| a - 3.0, |_| true);
    check_unary("3 - a", |a| 3.0 - a, |_| true);
    check_unary("-a", |a| -a, |_| true);
}

#[test]
fn gradient_of_mul_matches_central_difference() {
    check_binary("a * b", |a, b| a * b);
    check_unary("a * 3", |a| a * 3.0, |_| true);
    check_unary("3 * a", |a| 3.0 * a, |_| true);
}

#[test]
fn gradient_of_div_matches_central_difference() {
    check_binary("a / b", |a, b| a / b);
    check_unary("a / 3", |a| a / 3.0, |_| true);
    check_unary("3 / a", |a| 3.0 / a, |_| true);
}

#[test]
fn gradient_of_powf_matches_central_difference() {
    for k in [-2.0, -1.0, 0.5, 1.0, 2.0, 3.0, 2.5] {
        // non-integer powers are real only for positive bases
        let domain = move |x: f64| x > 0.0 || k == f64::round(k);
        check_unary(&format!("a^{k}"), |a| a.powf(k), domain);
    }
}

#[test]
fn gradient_of_exp_matches_central_difference() {
    check_unary("exp", Value::exp, |_| true);
}

#[test]
fn gradient_of_ln_matches_central_difference() {
    check_unary("ln", Value::ln, |x| x > 0.0);
}

#[test]
fn gradient_of_tanh_matches_central_difference() {
    check_unary("tanh", Value::tanh, |_| true);
}

#[test]
fn gradient_of_relu_matches_central_difference() {
    check_unary("relu", Value::relu, |_| true);
}

#[test]
fn gradient_of_sigmoid_matches_central_difference() {
    check_unary("sigmoid", Value::sigmoid, |_| true);
}

#[test]
fn gradient_of_sum_matches_central_difference() {
    check_gradient(|v| v.iter().sum::<Value>(), &[0.3, -1.2, 2.0, 0.7]).unwrap();
    check_gradient(
        |v| v.iter().map(|x| x * x).sum::<Value>(),
        &[0.3, -1.2, 2.0],
    )
    .unwrap();
}

#[test]
fn gradient_at_relu_kink_is_zero() {
    // max(0, x) has no derivative at 0; we use the subgradient 0, as PyTorch.
    let x = Value::new(0.0);
    x.relu().backward();
    assert_eq!(x.grad(), 0.0);
}

#[test]
fn gradient_check_detects_a_wrong_derivative() {
    // An operation with a deliberately wrong backward: d(x²)/dx claimed to be x.
    let wrong_square =
        |x: &Value| Value::from_op(x.data() * x.data(), "bad square", [(x, x.data())]);
    let err = check_gradient(|v| wrong_square(&v[0]), &[1.5]).unwrap_err();
    assert_eq!(err.index, 0);
    assert_relative_eq!(err.autograd, 1.5);
    assert_relative_eq!(err.numeric, 3.0, max_relative = 1e-6);
}

#[test]
fn central_difference_is_second_order_accurate() {
    // f(x) = x³ has f'(2) = 12; the central quotient's error is exactly h².
    let cube = |x: &[f64]| x[0] * x[0] * x[0];
    let estimate = central_difference(cube, &[2.0], 1e-3)[0];
    assert_relative_eq!(estimate, 12.0 + 1e-6, epsilon = 1e-8);
}

// ANCHOR: hand_derived
#[test]
fn hand_derived_gradient_of_a_neuron() {
    // out = tanh(w1·x1 + w2·x2 + b). With s the sum, ∂out/∂s = 1 − tanh²(s),
    // and ∂s/∂w1 = x1, ∂s/∂x1 = w1, ∂s/∂b = 1.
    let (x1, x2) = (Value::new(2.0), Value::new(-1.5));
    let (w1, w2, b) = (Value::new(-0.5), Value::new(0.25), Value::new(0.75));
    let out = (&w1 * &x1 + &w2 * &x2 + &b).tanh();
    out.backward();

    let s: f64 = -0.5 * 2.0 + 0.25 * -1.5 + 0.75; // = −0.625
    let ds = 1.0 - s.tanh().powi(2);
    assert_relative_eq!(out.data(), s.tanh());
    assert_relative_eq!(w1.grad(), ds * 2.0);
    assert_relative_eq!(w2.grad(), ds * -1.5);
    assert_relative_eq!(x1.grad(), ds * -0.5);
    assert_relative_eq!(x2.grad(), ds * 0.25);
    assert_relative_eq!(b.grad(), ds);
}
// ANCHOR_END: hand_derived

#[test]
fn hand_derived_gradient_of_quotient_rule() {
    // f = a / b: ∂f/∂a = 1/b, ∂f/∂b = −a/b².
    let (a, b) = (Value::new(3.0), Value::new(-4.0));
    (&a / &b).backward();
    assert_relative_eq!(a.grad(), -0.25);
    assert_relative_eq!(b.grad(), -3.0 / 16.0);
}

#[test]
fn hand_derived_gradient_of_logistic_loss() {
    // L = ln(1 + e^(−y·s)); ∂L/∂s = −y·σ(−y·s).
    let (s, y) = (Value::new(0.8), -1.0);
    let loss = (1.0 + (-(&s * y)).exp()).ln();
    loss.backward();
    let sigma = |z: f64| 1.0 / (1.0 + (-z).exp());
    assert_relative_eq!(s.grad(), -y * sigma(-y * 0.8), epsilon = 1e-12);
}

#[test]
fn hand_derived_gradient_of_sigmoid_equals_tanh_identity() {
    // σ(x) = (1 + tanh(x/2)) / 2, so both routes must give the same gradient.
    let x = Value::new(0.6);
    x.sigmoid().backward();
    let via_sigmoid = x.grad();
    let y = Value::new(0.6);
    ((1.0 + (&y / 2.0).tanh()) / 2.0).backward();
    assert_relative_eq!(via_sigmoid, y.grad(), epsilon = 1e-12);
}

// ---- randomized expressions ----

/// A random expression over three variables, built from every operation.
#[derive(Debug, Clone)]
enum Expr {
    Var(usize),
    Const(f64),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Powf(Box<Expr>, f64),
    Exp(Box<Expr>),
    Ln(Box<Expr>),
    Tanh(Box<Expr>),
    Relu(Box<Expr>),
    Sigmoid(Box<Expr>),
}

fn expr_strategy() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        (0..3usize).prop_map(Expr::Var),
        (-2.0..2.0f64).prop_map(Expr::Const)
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        let pair = || (inner.clone(), inner.clone());
        prop_oneof![
            pair().prop_map(|(a, b)| Expr::Add(a.into(), b.into())),
            pair().prop_map(|(a, b)| Expr::Sub(a.into(), b.into())),
            pair().prop_map(|(a, b)| Expr::Mul(a.into(), b.into())),
            pair().prop_map(|(a, b)| Expr::Div(a.into(), b.into())),
            inner.clone().prop_map(|a| Expr::Neg(a.into())),
            (
                inner.clone(),
                prop_oneof![Just(-1.0), Just(0.5), Just(2.0), Just(3.0)]
            )
                .prop_map(|(a, k)| Expr::Powf(a.into(), k)),
            inner.clone().prop_map(|a| Expr::Exp(a.into())),
            inner.clone().prop_map(|a| Expr::Ln(a.into())),
            inner.clone().prop_map(|a| Expr::Tanh(a.into())),
            inner.clone().prop_map(|a| Expr::Relu(a.into())),
            inner.prop_map(|a| Expr::Sigmoid(a.into())),
        ]
    })
}

/// Builds the expression on `vars`. `margin` records how close the point came
/// to trouble (a kink of relu, a pole of 1/x, the edge of ln's domain, a huge
/// exponent); where it is small, finite differences are meaningless there.
fn build(e: &Expr, vars: &[Value], margin: &mut f64) -> Value {
    let unary = |a: &Expr, margin: &mut f64| build(a, vars, margin);
    match e {
        Expr::Var(i) => vars[*i].clone(),
        Expr::Const(c) => Value::new(*c),
        Expr::Add(a, b) => unary(a, margin) + unary(b, margin),
        Expr::Sub(a, b) => unary(a, margin) - unary(b, margin),
        Expr::Mul(a, b) => unary(a, margin) * unary(b, margin),
        Expr::Div(a, b) => {
            let (a, b) = (unary(a, margin), unary(b, margin));
            *margin = margin.min(b.data().abs());
            a / b
        }
        Expr::Neg(a) => -unary(a, margin),
        Expr::Powf(a, k) => {
            let a = unary(a, margin);
            // 1/x has a pole at 0; √x needs x > 0
            *margin = margin.min(if *k == 0.5 || *k < 0.0 { a.data() } else { 1.0 });
            a.powf(*k)
        }
        Expr::Exp(a) => {
            let a = unary(a, margin);
            *margin = margin.min(10.0 - a.data());
            a.exp()
        }
        Expr::Ln(a) => {
            let a = unary(a, margin);
            *margin = margin.min(a.data());
            a.ln()
        }
        Expr::Tanh(a) => unary(a, margin).tanh(),
        Expr::Relu(a) => {
            let a = unary(a, margin);
            *margin = margin.min(a.data().abs());
            a.relu()
        }
        Expr::Sigmoid(a) => unary(a, margin).sigmoid(),
    }
}

/// The expression on `vars`, when the margin is not needed.
fn eval(e: &Expr, vars: &[Value]) -> Value {
    let mut unused = f64::INFINITY;
    build(e, vars, &mut unused)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, max_global_rejects: 4096, ..ProptestConfig::default() })]

    #[test]
    fn gradient_of_random_expression_matches_central_difference(
        expr in expr_strategy(),
        x in prop::array::uniform3(-2.0..2.0f64),
    ) {
        let mut margin = f64::INFINITY;
        let vars: Vec<Value> = x.iter().map(|&v| Value::new(v)).collect();
        let out = build(&expr, &vars, &mut margin);
        prop_assume!(margin > 0.05 && out.data().is_finite());
        let result = check_gradient(|v| eval(&expr, v), &x);
        prop_assert!(result.is_ok(), "{:?}: {}", expr, result.unwrap_err());
    }
}
