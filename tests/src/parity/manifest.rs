//! `manifest.json`: the list of fixture cases and what each one holds.
//!
//! The manifest is the contract between the PyTorch generator and this
//! suite (its format is described in `tests/fixtures/README.md`). Every
//! field that only some groups use is optional here, and fields this file
//! does not name are kept in [`Case::extra`], so the groups that later
//! chapters cover (optimizers, GPT-2, ...) can read their own layouts.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The whole manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub format_version: Option<u64>,
    pub cases: Vec<Case>,
}

/// One fixture case: an op, its arguments, and the tensors PyTorch stored.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub id: String,
    pub group: String,
    #[serde(default)]
    pub op: String,
    /// The exact PyTorch expression, for messages.
    #[serde(default)]
    pub call: Option<String>,
    /// Op arguments (`dim`, `keepdim`, `exponent`, ...), as PyTorch used them.
    #[serde(default)]
    pub args: Map<String, Value>,
    /// The float32 safetensors file, relative to the fixture folder.
    #[serde(default)]
    pub file: Option<String>,
    /// The float64 safetensors file.
    #[serde(default)]
    pub file_f64: Option<String>,
    #[serde(default)]
    pub tensors: Vec<TensorSpec>,
    /// The tolerance for a float32 implementation against `file`.
    #[serde(default)]
    pub tol: Option<ToleranceSpec>,
    /// The tolerance for a float64 implementation against `file_f64`.
    #[serde(default)]
    pub tol_f64: Option<ToleranceSpec>,
    /// A sentence, or a list of them.
    #[serde(default)]
    pub notes: Option<Value>,
    /// Every other field, for groups with their own layouts.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What part a stored tensor plays in a generic case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An argument of the op.
    Input,
    /// A result that takes part in the loss.
    Output,
    /// A result outside the loss (e.g. the indices of `max`).
    Aux,
    /// The loss weight of one output.
    W,
    /// The gradient of the loss with respect to one input.
    Grad,
}

/// One tensor of a case, as the manifest describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    /// The key inside the safetensors file (`<case_id>/<name>`).
    pub key: String,
    /// `None` in groups with their own layouts (optimizers, clipping).
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub shape: Vec<usize>,
    /// The dtype in the float32 file (`f32`, `i64`, `u8`).
    #[serde(default)]
    pub dtype: String,
    /// For inputs: whether PyTorch differentiated with respect to it.
    #[serde(default)]
    pub differentiable: bool,
    /// For `w` tensors: the output they weigh.
    #[serde(default)]
    pub for_output: Option<String>,
    /// For `grad` tensors: the input they are the gradient of.
    #[serde(default)]
    pub of: Option<String>,
}

/// `|actual - expected| <= atol + rtol * |expected|`, elementwise.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

/// A case's tolerance: bounds for float comparisons, bounds per kind of
/// tensor (`gpt2_tiny`: `logits`, `loss`, `grads`), or a word for cases
/// compared another way (`"exact"` for token ids).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ToleranceSpec {
    Bounds(Tolerance),
    PerKind(BTreeMap<String, Tolerance>),
    Named(String),
}

impl ToleranceSpec {
    /// The bounds, when this is a float tolerance.
    pub fn bounds(&self) -> Option<Tolerance> {
        match self {
            ToleranceSpec::Bounds(t) => Some(*t),
            ToleranceSpec::PerKind(_) | ToleranceSpec::Named(_) => None,
        }
    }
}

impl Manifest {
    /// Reads and parses `path`; the error names the file and what is wrong.
    pub fn load(path: &Path) -> Result<Manifest, String> {
        let text = fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Manifest::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the JSON text of a manifest.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        serde_json::from_str(text).map_err(|e| format!("not a valid fixture manifest: {e}"))
    }
}

impl Case {
    /// The tensors of one role, in manifest order.
    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &TensorSpec> {
        self.tensors.iter().filter(move |t| t.role == Some(role))
    }

    /// The stored tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorSpec> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generic_case_parses_with_roles_and_tolerances() {
        let m = Manifest::parse(
            r#"{"cases": [{"id": "exp_0", "group": "elementwise", "op": "exp",
                "args": {"domain": "randn"}, "file": "e.safetensors",
                "tensors": [
                  {"name": "x", "key": "exp_0/x", "role": "input", "shape": [3], "dtype": "f32", "differentiable": true},
                  {"name": "out", "key": "exp_0/out", "role": "output", "shape": [3], "dtype": "f32"},
                  {"name": "w", "key": "exp_0/w", "role": "w", "shape": [3], "dtype": "f32", "for_output": "out"},
                  {"name": "grad_x", "key": "exp_0/grad_x", "role": "grad", "shape": [3], "dtype": "f32", "of": "x"}],
                "tol": {"rtol": 1e-5, "atol": 1e-6}, "seed": 1}]}"#,
        )
        .unwrap();
        let case = &m.cases[0];
        assert_eq!(case.with_role(Role::Input).count(), 1);
        assert_eq!(case.tensor("grad_x").unwrap().of.as_deref(), Some("x"));
        let tol = case.tol.as_ref().and_then(ToleranceSpec::bounds);
        assert_eq!(
            tol,
            Some(Tolerance {
                rtol: 1e-5,
                atol: 1e-6
            })
        );
        assert!(case.extra.contains_key("seed"));
    }

    #[test]
    fn special_layouts_parse_too() {
        let m = Manifest::parse(
            r#"{"cases": [{"id": "tok", "group": "tokenizer", "op": "encode", "tol": "exact",
                "notes": ["a", "b"], "count": 40}]}"#,
        )
        .unwrap();
        assert_eq!(m.cases[0].tol, Some(ToleranceSpec::Named("exact".into())));
        assert!(m.cases[0].tensors.is_empty());
    }

    /// Argument forms `tests/fixtures/generate.py` writes that the shipped
    /// set does not use (the generator's `edge_cases` set has them all).
    #[test]
    fn the_generators_argument_variants_parse() {
        use crate::parity::args::Args;
        let m = Manifest::parse(
            r#"{"format_version": 1, "set": "seed2-args", "base_seed": 2, "files": {},
                "cases": [
                {"id": "permute_0", "group": "shape", "op": "permute", "call": "x.permute(-1, 0, 1)",
                 "args": {"dims": [-1, 0, 1]}, "seed": 7, "file": "shape.safetensors", "file_f64": "shape.f64.safetensors",
                 "tensors": [], "tol": {"rtol": 1e-6, "atol": 1e-6}, "tol_f64": {"rtol": 1e-9, "atol": 1e-12},
                 "f32_vs_f64_max_abs_err": 0.0},
                {"id": "rms_norm_0", "group": "nn", "op": "rms_norm", "args": {"normalized_shape": [4], "eps": null}},
                {"id": "sum_0", "group": "reductions", "op": "sum", "args": {"dim": null, "keepdim": true}},
                {"id": "expand_0", "group": "shape", "op": "expand", "args": {"shape": [2, -1, 4]}},
                {"id": "cross_entropy_1", "group": "loss", "op": "cross_entropy",
                 "args": {"reduction": "none", "ignore_index": -100, "label_smoothing": 0.1, "weight": true,
                          "target": "probabilities"}},
                {"id": "adam_edge_0", "group": "optimizers", "op": "torch.optim.Adam", "steps": 1,
                 "args": {"lr": 0.01, "amsgrad": true, "maximize": true},
                 "all_defaults": {"lr": 0.01, "betas": [0.9, 0.999], "amsgrad": true, "decoupled_weight_decay": false}},
                {"id": "clip_grad_norm_edge_2", "group": "clip_grad_norm", "op": "torch.nn.utils.clip_grad_norm_",
                 "args": {"max_norm": 0.2, "norm_type": "inf", "num_params": 1}}]}"#,
        )
        .unwrap();
        let case = |id: &str| m.cases.iter().find(|c| c.id == id).unwrap();
        let args = |id: &str| Args(&case(id).args);
        assert_eq!(
            args("permute_0").dim_list("dims", 3).unwrap(),
            vec![2, 0, 1]
        );
        assert!(case("permute_0")
            .extra
            .contains_key("f32_vs_f64_max_abs_err"));
        assert!(!args("rms_norm_0").has("eps"));
        assert_eq!(args("sum_0").dims("dim").unwrap(), None);
        assert!(args("sum_0").bool("keepdim").unwrap());
        assert_eq!(
            args("expand_0").expand_target("shape", &[3, 1]).unwrap(),
            vec![2, 3, 4]
        );
        assert_eq!(args("cross_entropy_1").str("reduction").unwrap(), "none");
        assert!(case("adam_edge_0").extra["all_defaults"].is_object());
        assert_eq!(
            args("clip_grad_norm_edge_2").f64("norm_type").unwrap(),
            f64::INFINITY
        );
    }

    #[test]
    fn a_malformed_manifest_is_an_error_not_a_panic() {
        let err = Manifest::parse(r#"{"cases": [{"id": 3}]}"#).unwrap_err();
        assert!(err.contains("not a valid fixture manifest"), "{err}");
    }
}
