//! Lesson: derivatives of derivatives. Every backward formula is written
//! with autograd tensor ops, so when `create_graph` turns recording on during
//! the backward pass, the gradients come out as ordinary graph nodes that can
//! be differentiated again: Hessian-vector products, gradient penalties,
//! third derivatives, with no extra code per op.
//! `cargo test -p chapter-03 higher_order` runs these.

mod common;

use chapter_03::{grad, set_grad_enabled, BackwardOptions, DType, RawTensor, Result, Tensor};
use common::*;

const CREATE_GRAPH: BackwardOptions = BackwardOptions {
    retain_graph: false,
    create_graph: true,
};

/// The gradient of `output` with respect to `input`, itself differentiable.
fn d(output: &Tensor, input: &Tensor) -> Tensor {
    grad(output, &[input], None, CREATE_GRAPH)
        .unwrap()
        .remove(0)
        .unwrap()
}

#[test]
fn higher_order_second_and_third_derivative_of_a_polynomial() {
    // f = x⁴: f' = 4x³, f'' = 12x², f''' = 24x.
    let x = leaf(&[1.5, -2.0], 2);
    let f = x.powf(4.0).unwrap().sum_all().unwrap();
    let f1 = d(&f, &x);
    let f2 = d(&f1.sum_all().unwrap(), &x);
    let f3 = d(&f2.sum_all().unwrap(), &x);
    assert_close(&values(&f1), &[4.0 * 1.5f64.powi(3), -32.0], 1e-12);
    assert_close(&values(&f2), &[12.0 * 2.25, 48.0], 1e-12);
    assert_close(&values(&f3), &[36.0, -48.0], 1e-12);
}

#[test]
fn higher_order_without_create_graph_the_gradients_are_constants() {
    let x = leaf(&[0.5, 1.0], 2);
    let y = x.tanh().unwrap().powf(2.0).unwrap().sum_all().unwrap();
    let g = grad(&y, &[&x], None, BackwardOptions::default())
        .unwrap()
        .remove(0)
        .unwrap();
    // No graph was built: the gradient has no grad_fn and cannot be
    // differentiated again.
    assert!(g.is_leaf());
    assert_eq!(g.op_name(), None);
    assert!(!g.requires_grad());
    assert!(g.sum_all().unwrap().backward().is_err());
    // And the functional API does not touch .grad.
    assert!(x.grad_opt().is_none());
}

#[test]
fn higher_order_with_create_graph_the_gradients_have_a_grad_fn() {
    let x = leaf(&[0.5, 1.0], 2);
    let y = x.tanh().unwrap().powf(2.0).unwrap().sum_all().unwrap();
    let g = d(&y, &x);
    assert!(!g.is_leaf());
    assert!(g.requires_grad());
    assert!(g.op_name().is_some());
}

#[test]
fn higher_order_backward_with_create_graph_makes_dot_grad_differentiable() {
    // The PyTorch idiom: y.backward(create_graph=True), then differentiate x.grad.
    let x = leaf(&[2.0, 3.0], 2);
    let y = x.powf(3.0).unwrap().sum_all().unwrap();
    y.backward_with(None, CREATE_GRAPH).unwrap();
    let g = x.grad().unwrap(); // 3x², with a graph
    assert_close(&values(&g), &[12.0, 27.0], 1e-12);
    assert!(g.requires_grad());
    x.zero_grad();
    g.sum_all().unwrap().backward().unwrap();
    assert_close(&grad_values(&x), &[12.0, 18.0], 1e-12); // 6x
}

/// Inputs and parameters of a small MLP, `tanh(x W1 + b1) W2`.
struct Mlp {
    x: RawTensor,  // [4, 3]
    w1: RawTensor, // [3, 5]
    b1: RawTensor, // [5]
    w2: RawTensor, // [5, 1]
}

fn mlp() -> Mlp {
    Mlp {
        x: randn((4, 3), 10),
        w1: randn((3, 5), 11).affine(0.7, 0.0).unwrap(),
        b1: randn(5, 12).affine(0.3, 0.0).unwrap(),
        w2: randn((5, 1), 13),
    }
}

// ANCHOR: mlp_loss
/// `f = tanh(x W1 + b1) W2`, one output per row of `x`: `[4, 1]`.
fn forward(x: &Tensor, w1: &Tensor, b1: &Tensor, w2: &Tensor) -> Result<Tensor> {
    x.matmul(w1)?.add(b1)?.tanh()?.matmul(w2)
}

/// The loss `L = Σ f²`.
fn loss(x: &Tensor, params: &[Tensor]) -> Result<Tensor> {
    forward(x, &params[0], &params[1], &params[2])?
        .powf(2.0)?
        .sum_all()
}
// ANCHOR_END: mlp_loss

/// `∇L(θ)` at the given parameter values, flattened per parameter.
fn gradient_at(x: &RawTensor, theta: &[RawTensor]) -> Vec<Vec<f64>> {
    let params: Vec<Tensor> = theta
        .iter()
        .map(|p| Tensor::param(p.clone()).unwrap())
        .collect();
    loss(&Tensor::from_raw(x.clone()), &params)
        .unwrap()
        .backward()
        .unwrap();
    params.iter().map(grad_values).collect()
}

// ANCHOR: hvp
/// `H v`, where `H` is the Hessian of `loss` with respect to `params`:
/// reverse over reverse. `g = ∇L` is computed with a graph, so `g · v` is
/// an ordinary scalar of the graph, and its gradient is `∇(g · v) = H v`.
fn hessian_vector_product(loss: &Tensor, params: &[&Tensor], v: &[Tensor]) -> Result<Vec<Tensor>> {
    let g = grad(loss, params, None, CREATE_GRAPH)?;
    let mut g_dot_v = Tensor::zeros((), DType::F64, &loss.device())?;
    for (gi, vi) in g.iter().zip(v) {
        let gi = gi.as_ref().expect("the loss depends on every parameter");
        g_dot_v = g_dot_v.add(&gi.mul(vi)?.sum_all()?)?;
    }
    let hv = grad(&g_dot_v, params, None, BackwardOptions::default())?;
    Ok(hv
        .into_iter()
        .map(|h| h.expect("H v depends on every parameter"))
        .collect())
}

#[test]
fn higher_order_hessian_vector_product_of_an_mlp_matches_finite_differences() -> Result<()> {
    let m = mlp();
    let theta = [m.w1.clone(), m.b1.clone(), m.w2.clone()];
    let v: Vec<RawTensor> = (0..3)
        .map(|k| randn(theta[k].shape().clone(), 100 + k as u64))
        .collect();

    let params = theta
        .iter()
        .map(|p| Tensor::param(p.clone()))
        .collect::<Result<Vec<_>>>()?;
    let l = loss(&Tensor::from_raw(m.x.clone()), &params)?;
    let v_tensors: Vec<Tensor> = v.iter().map(|vi| Tensor::from_raw(vi.clone())).collect();
    let hv = hessian_vector_product(&l, &params.iter().collect::<Vec<_>>(), &v_tensors)?;

    // Finite differences of the gradient along v: (∇L(θ + εv) − ∇L(θ − εv)) / 2ε.
    let eps = 1e-5;
    let shifted = |sign: f64| -> Result<Vec<RawTensor>> {
        theta
            .iter()
            .zip(&v)
            .map(|(p, vi)| p.add(&vi.affine(sign * eps, 0.0)?))
            .collect()
    };
    let (plus, minus) = (
        gradient_at(&m.x, &shifted(1.0)?),
        gradient_at(&m.x, &shifted(-1.0)?),
    );
    for k in 0..3 {
        let numeric: Vec<f64> = plus[k]
            .iter()
            .zip(&minus[k])
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect();
        assert_close(&values(&hv[k]), &numeric, 1e-6);
    }
    Ok(())
}
// ANCHOR_END: hvp

// ANCHOR: gradient_penalty
/// `P(θ) = L(θ) + λ ‖∂(Σf)/∂x‖²`: the input-gradient penalty of WGAN-GP
/// and double backpropagation. The penalty's own gradient with respect to
/// θ goes through the backward pass of the MLP.
fn penalised_loss(x: &RawTensor, params: &[Tensor], lambda: f64) -> Result<Tensor> {
    // Finite differences evaluate this under `no_grad`; the penalty needs a
    // graph to differentiate, so turn recording on for its duration.
    let _recording = set_grad_enabled(true);
    let x = Tensor::param(x.clone())?;
    let f = forward(&x, &params[0], &params[1], &params[2])?;
    let dfdx = grad(&f.sum_all()?, &[&x], None, CREATE_GRAPH)?
        .remove(0)
        .expect("f depends on x");
    let penalty = dfdx.powf(2.0)?.sum_all()?;
    f.powf(2.0)?.sum_all()?.add(&penalty.mul_scalar(lambda)?)
}

#[test]
fn higher_order_gradient_penalty_matches_finite_differences() {
    let m = mlp();
    // gradcheck differentiates P with backward, then compares with central
    // differences of P in every parameter element.
    let report = check(
        |p| penalised_loss(&m.x, p, 0.5),
        [m.w1.clone(), m.b1.clone(), m.w2.clone()],
    );
    assert_eq!(report.checked, 15 + 5 + 5);
}
// ANCHOR_END: gradient_penalty

#[test]
fn higher_order_gradient_penalty_backward_reaches_the_parameters() {
    let m = mlp();
    let params: Vec<Tensor> = [&m.w1, &m.b1, &m.w2]
        .iter()
        .map(|p| Tensor::param((*p).clone()).unwrap())
        .collect();
    penalised_loss(&m.x, &params, 1.0)
        .unwrap()
        .backward()
        .unwrap();
    let without: Vec<Tensor> = [&m.w1, &m.b1, &m.w2]
        .iter()
        .map(|p| Tensor::param((*p).clone()).unwrap())
        .collect();
    penalised_loss(&m.x, &without, 0.0)
        .unwrap()
        .backward()
        .unwrap();
    // The penalty changes every parameter's gradient.
    for (p, q) in params.iter().zip(&without) {
        let (a, b) = (grad_values(p), grad_values(q));
        assert!(
            a.iter().zip(&b).any(|(a, b)| (a - b).abs() > 1e-6),
            "{a:?} vs {b:?}"
        );
    }
}

/// Checks second derivatives: the gradient of `Σ ∂(Σ f·w)/∂x · u` (a
/// Hessian-vector product of `f`) against finite differences.
fn gradgradcheck(f: impl Fn(&[Tensor]) -> Result<Tensor> + Copy, inputs: impl AsRef<[RawTensor]>) {
    check(
        |xs| {
            let _recording = set_grad_enabled(true);
            // gradcheck's own leaves require grad; the copies it perturbs
            // for finite differences do not, so make them leaves we can
            // differentiate with respect to.
            let xs: Vec<Tensor> = xs
                .iter()
                .map(|x| {
                    if x.requires_grad() {
                        x.clone()
                    } else {
                        Tensor::param(x.data()).unwrap()
                    }
                })
                .collect();
            let refs: Vec<&Tensor> = xs.iter().collect();
            let y = f(&xs)?;
            let w = Tensor::from_raw(randn(y.shape(), 7));
            let gs = grad(&y.mul(&w)?.sum_all()?, &refs, None, CREATE_GRAPH)?;
            let mut total = Tensor::zeros((), DType::F64, &dev())?;
            for (k, g) in gs.into_iter().enumerate() {
                let g = g.expect("f depends on each input");
                let u = Tensor::from_raw(randn(g.shape(), 20 + k as u64));
                total = total.add(&g.mul(&u)?.sum_all()?)?;
            }
            Ok(total)
        },
        inputs,
    );
}

#[test]
fn higher_order_every_core_op_is_twice_differentiable() {
    let a = randn((2, 3), 1);
    let b = randn((2, 3), 2);
    let pos = uniform(0.5, 2.0, (2, 3), 3);
    gradgradcheck(|x| x[0].mul(&x[1]), [a.clone(), b.clone()]);
    gradgradcheck(|x| x[0].div(&x[1]), [a.clone(), pos.clone()]);
    gradgradcheck(|x| x[0].exp(), [a.clone()]);
    gradgradcheck(|x| x[0].log(), [pos.clone()]);
    gradgradcheck(|x| x[0].tanh(), [a.clone()]);
    gradgradcheck(|x| x[0].powf(3.0), [a.clone()]);
    gradgradcheck(|x| x[0].powf(0.5), [pos.clone()]);
    gradgradcheck(|x| x[0].matmul(&x[1].t()?)?.tanh(), [a.clone(), b.clone()]);
    // Linear ops have zero second derivative, but products through them do not.
    gradgradcheck(|x| x[0].sum([1], true)?.mul(&x[0]), [a.clone()]);
    gradgradcheck(
        |x| x[0].t()?.reshape(6)?.mul(&x[1].reshape(6)?),
        [a.clone(), b.clone()],
    );
    gradgradcheck(
        |x| x[0].broadcast_to((4, 2, 3))?.mul(&x[1]),
        [a.clone(), randn((4, 2, 3), 4)],
    );
    gradgradcheck(|x| x[0].sum_to(&[3])?.mul(&x[1]), [a, randn(3, 5)]);
}
