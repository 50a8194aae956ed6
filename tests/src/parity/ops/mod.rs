//! Dispatchers: from a case's `op` and `args` to a call of our API.
//!
//! Each fixture group has one module here with a `run` function: a `match`
//! on the op name that reads the arguments PyTorch used and calls the same
//! operation through `chapter_04::prelude`. A later chapter that covers a
//! new group (nn, loss, conv, ...) adds a module like these and one line to
//! [`COVERED`](super::COVERED).

pub mod attention;
pub mod clip_grad_norm;
pub mod conv;
pub mod elementwise;
pub mod gpt2;
pub mod loss;
pub mod lr_schedulers;
pub mod matmul;
pub mod nn;
pub mod optimizers;
pub mod reductions;
pub mod resnet;
pub mod shape;
pub mod tokenizer;

use super::args::Args;
use super::manifest::Case;
use super::Failure;
use chapter_03::Tensor;

/// One case's op, ready to run: its manifest entry and its input tensors
/// (float inputs that PyTorch differentiated already require grad).
pub struct OpCall<'a> {
    pub case: &'a Case,
    pub inputs: &'a [(String, Tensor)],
}

impl<'a> OpCall<'a> {
    pub fn op(&self) -> &'a str {
        &self.case.op
    }

    pub fn args(&self) -> Args<'a> {
        Args(&self.case.args)
    }

    /// The input stored as `name`.
    pub fn input(&self, name: &str) -> Result<&'a Tensor, Failure> {
        self.inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| Failure::new(format!("the case has no input `{name}`")))
    }

    /// Inputs named by a list argument (`cat`/`stack`: `"inputs": ["x0", "x1"]`).
    pub fn inputs_named_by(&self, arg: &str) -> Result<Vec<&'a Tensor>, Failure> {
        let v = self.args().get(arg)?;
        let names = v.as_array().ok_or_else(|| {
            Failure::new(format!("argument `{arg}` should list input names, got {v}"))
        })?;
        names
            .iter()
            .map(|n| match n.as_str() {
                Some(n) => self.input(n),
                None => Err(Failure::new(format!(
                    "argument `{arg}` should list input names, got {v}"
                ))),
            })
            .collect()
    }

    /// The error for an op this dispatcher does not know.
    pub fn unknown_op(&self) -> Failure {
        Failure::new(format!(
            "op `{}` of group `{}` has no dispatcher entry",
            self.case.op, self.case.group
        ))
    }
}

/// What an op produced.
pub struct OpOutputs {
    /// The results that take part in the loss, in the manifest's order of
    /// its `output` tensors (`out`, or `out_0`, `out_1`, ...).
    pub outputs: Vec<Tensor>,
    /// Results compared but left out of the loss, by stored name (`indices`).
    pub aux: Vec<(String, Tensor)>,
}

impl OpOutputs {
    pub fn one(out: Tensor) -> OpOutputs {
        OpOutputs {
            outputs: vec![out],
            aux: vec![],
        }
    }

    pub fn many(outputs: Vec<Tensor>) -> OpOutputs {
        OpOutputs {
            outputs,
            aux: vec![],
        }
    }

    pub fn with_aux(mut self, name: &str, t: Tensor) -> OpOutputs {
        self.aux.push((name.to_string(), t));
        self
    }
}

/// A group's dispatcher.
pub type Dispatch = fn(&OpCall<'_>) -> Result<OpOutputs, Failure>;
