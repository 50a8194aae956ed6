//! The backward pass: reverse-mode differentiation over the recorded graph.

use crate::grad_mode::{is_anomaly_enabled, set_grad_enabled};
use crate::op::{check_finite, BackwardCtx};
use crate::sync::lock;
use crate::Tensor;
use chapter_02::{Error, Result};
use std::collections::{HashMap, HashSet};

/// How a backward pass treats the graph.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackwardOptions {
    /// Keep the graph so that `backward` can run through it again.
    /// Without it, each node lets go of its inputs as soon as it is used,
    /// freeing the intermediate results.
    pub retain_graph: bool,
    /// Record the backward computation itself, so gradients can be
    /// differentiated again (Hessian-vector products, gradient penalties).
    /// Implies `retain_graph`.
    pub create_graph: bool,
}

/// The error for a graph whose inputs an earlier backward released.
fn freed_graph(op: &str) -> Error {
    Error::invalid(
        "backward",
        format!(
            "the graph behind `{op}` was freed by an earlier backward; \
             pass retain_graph: true to the first backward to run it twice"
        ),
    )
}

// ANCHOR: topo_sort
/// Every tensor that `root` depends on through ops that require grad, in
/// topological order (inputs before the tensors computed from them). An
/// explicit stack instead of recursion, so a graph 100 000 ops deep is fine.
fn topological_order(root: &Tensor) -> Result<Vec<Tensor>> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    // (tensor, whether its inputs have already been pushed)
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        let inputs = match &t.0.node {
            None => vec![],
            Some(node) => node.inputs().ok_or_else(|| freed_graph(node.op.name()))?,
        };
        stack.push((t, true));
        for input in inputs {
            if input.requires_grad() && !visited.contains(&input.id()) {
                stack.push((input, false));
            }
        }
    }
    Ok(order)
}
// ANCHOR_END: topo_sort

// ANCHOR: engine
/// Propagates `seed` (d root / d root) back through the graph. Each node is
/// visited once, after every tensor computed from it, so its gradient is
/// complete (all contributions summed) when its op's backward runs.
///
/// With `capture`, the gradients of those tensors are returned instead of
/// being accumulated into `.grad` (the functional [`grad`] API).
fn run_backward(
    root: &Tensor,
    seed: Tensor,
    opts: BackwardOptions,
    capture: Option<&HashSet<u64>>,
) -> Result<HashMap<u64, Tensor>> {
    let order = topological_order(root)?;
    let retain = opts.retain_graph || opts.create_graph;
    // Backward ops are recorded only when we want to differentiate them.
    let _mode = set_grad_enabled(opts.create_graph);
    let mut grads: HashMap<u64, Tensor> = HashMap::new();
    let mut captured = HashMap::new();
    grads.insert(root.id(), seed);
    // Consuming `order` drops each tensor's handle once it is processed, so
    // (without retain_graph) an intermediate is freed as soon as its op's
    // backward has run, not at the end of the pass.
    for t in order.into_iter().rev() {
        let Some(g) = grads.remove(&t.id()) else {
            continue;
        };
        match capture {
            Some(wanted) if wanted.contains(&t.id()) => {
                captured.insert(t.id(), g.clone());
            }
            None if t.keeps_grad() => accumulate_into_grad(&t, &g)?,
            _ => {}
        }
        let Some(node) = &t.0.node else { continue };
        let Some(inputs) = node.inputs() else {
            return Err(freed_graph(node.op.name()));
        };
        let ctx = BackwardCtx {
            inputs: &inputs,
            output: &t,
            needs_grad: inputs.iter().map(|i| i.requires_grad()).collect(),
        };
        let input_grads = node
            .op
            .backward(&ctx, &g)
            .map_err(|e| in_backward_of(node.op.name(), e))?;
        if input_grads.len() != inputs.len() {
            return Err(Error::invalid(
                "backward",
                format!(
                    "`{}` returned {} gradients for {} inputs",
                    node.op.name(),
                    input_grads.len(),
                    inputs.len()
                ),
            ));
        }
        for (input, ig) in inputs.iter().zip(input_grads) {
            let Some(ig) = ig else { continue };
            if !input.requires_grad() {
                continue;
            }
            if ig.dims() != input.dims() {
                return Err(Error::ShapeMismatch {
                    op: node.op.name(),
                    lhs: ig.shape(),
                    rhs: input.shape(),
                    detail: " (backward returned a gradient whose shape differs from its input)"
                        .into(),
                });
            }
            if ig.dtype() != input.dtype() {
                return Err(Error::DTypeMismatch {
                    op: node.op.name(),
                    lhs: ig.dtype(),
                    rhs: input.dtype(),
                });
            }
            if is_anomaly_enabled() {
                let raw: Vec<_> = inputs.iter().map(|i| i.data()).collect();
                check_finite(
                    &ig.data(),
                    node.op.name(),
                    "backward",
                    &raw.iter().collect::<Vec<_>>(),
                )?;
            }
            let total = match grads.remove(&input.id()) {
                Some(prev) => prev.add(&ig)?,
                None => ig,
            };
            grads.insert(input.id(), total);
        }
        if !retain {
            node.take_inputs();
        }
    }
    Ok(captured)
}
// ANCHOR_END: engine

/// In anomaly mode, the ops a backward formula runs are checked like any
/// other, so a NaN made there is first reported as (say) `div`'s forward;
/// this adds which op's backward pass it was computing.
fn in_backward_of(name: &'static str, e: Error) -> Error {
    match e {
        Error::Invalid { op: "anomaly", msg } => Error::invalid(
            "anomaly",
            format!("{msg}, while computing the backward pass of `{name}`"),
        ),
        e => e,
    }
}

/// `t.grad += g`. Gradients accumulate across backward calls until
/// `zero_grad`, as in PyTorch (that is what makes gradient accumulation over
/// micro-batches work).
fn accumulate_into_grad(t: &Tensor, g: &Tensor) -> Result<()> {
    let mut slot = lock(&t.0.grad);
    let new = match slot.take() {
        Some(prev) => prev.add(g)?,
        None => g.clone(),
    };
    *slot = Some(new);
    Ok(())
}

fn check_root(root: &Tensor, grad: Option<&Tensor>) -> Result<Tensor> {
    if !root.requires_grad() {
        return Err(Error::invalid(
            "backward",
            "this tensor does not require grad and has no grad_fn (did an input call requires_grad_()? is no_grad active?)",
        ));
    }
    match grad {
        None => {
            if root.elem_count() != 1 {
                return Err(Error::invalid(
                    "backward",
                    format!(
                        "a gradient can be created implicitly only for a scalar output; this one has shape {} (use backward_with and pass a gradient)",
                        root.shape()
                    ),
                ));
            }
            Ok(Tensor::from_raw(root.data().ones_like()?))
        }
        Some(g) => {
            if g.dims() != root.dims() {
                return Err(Error::ShapeMismatch {
                    op: "backward",
                    lhs: g.shape(),
                    rhs: root.shape(),
                    detail: " (the gradient must have the output's shape)".into(),
                });
            }
            if g.dtype() != root.dtype() {
                return Err(Error::DTypeMismatch {
                    op: "backward",
                    lhs: g.dtype(),
                    rhs: root.dtype(),
                });
            }
            Ok(g.clone())
        }
    }
}

// ANCHOR: backward_api
impl Tensor {
    /// d(self)/d(leaf) for every leaf that requires grad, added into the
    /// leaves' `.grad`. `self` must be a scalar (one element).
    pub fn backward(&self) -> Result<()> {
        self.backward_with(None, BackwardOptions::default())
    }

    /// The general form: an explicit upstream gradient (needed when `self`
    /// is not a scalar: the result is the vector-Jacobian product), and
    /// options to retain or differentiate the graph.
    pub fn backward_with(&self, grad: Option<&Tensor>, opts: BackwardOptions) -> Result<()> {
        let seed = check_root(self, grad)?;
        run_backward(self, seed, opts, None)?;
        Ok(())
    }
}

/// The gradients of `output` with respect to `inputs`, returned rather than
/// accumulated (`torch.autograd.grad`). `None` for an input that `output`
/// does not depend on. With `create_graph` the results are themselves
/// differentiable: a gradient penalty adds `‖∂f/∂x‖²` to a loss this way.
pub fn grad(
    output: &Tensor,
    inputs: &[&Tensor],
    grad_output: Option<&Tensor>,
    opts: BackwardOptions,
) -> Result<Vec<Option<Tensor>>> {
    let seed = check_root(output, grad_output)?;
    for t in inputs {
        if !t.requires_grad() {
            return Err(Error::invalid(
                "grad",
                "one of the inputs does not require grad",
            ));
        }
    }
    let wanted: HashSet<u64> = inputs.iter().map(|t| t.id()).collect();
    let captured = run_backward(output, seed, opts, Some(&wanted))?;
    Ok(inputs
        .iter()
        .map(|t| captured.get(&t.id()).cloned())
        .collect())
}
// ANCHOR_END: backward_api
