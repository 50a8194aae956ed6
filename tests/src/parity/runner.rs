//! Running the covered cases of a fixture folder and reporting the result.

use super::compare::{compare, Mismatch};
use super::fixture_file::FixtureFile;
use super::manifest::{Case, Manifest, Role, TensorSpec, Tolerance, ToleranceSpec};
use super::ops::{Dispatch, OpCall, OpOutputs};
use super::{coverage_for, Coverage, Failure, Runner, COVERED};
use chapter_03::Tensor;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::rc::Rc;

/// Which file and tolerance a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `<group>.safetensors` with the case's `tol`.
    F32,
    /// `<group>.f64.safetensors` with the case's `tol_f64`.
    F64,
}

impl Precision {
    /// The prefix of the summary line.
    pub fn label(self) -> &'static str {
        match self {
            Precision::F32 => "parity",
            Precision::F64 => "parity (f64)",
        }
    }

    /// The case's safetensors file for this precision.
    pub fn file(self, case: &Case) -> Option<&str> {
        match self {
            Precision::F32 => case.file.as_deref(),
            Precision::F64 => case.file_f64.as_deref(),
        }
    }

    /// The case's tolerance for this precision, when it is a pair of bounds.
    pub fn tol(self, case: &Case) -> Option<Tolerance> {
        match self {
            Precision::F32 => case.tol.as_ref(),
            Precision::F64 => case.tol_f64.as_ref(),
        }
        .and_then(ToleranceSpec::bounds)
    }
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseOutcome {
    pub id: String,
    /// `None` when the case passed.
    pub failure: Option<String>,
}

/// The results of one run over a fixture folder.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    pub precision: Precision,
    /// One outcome per covered case of the manifest, in manifest order.
    pub outcomes: Vec<CaseOutcome>,
}

impl SuiteReport {
    pub fn total(&self) -> usize {
        self.outcomes.len()
    }

    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.failure.is_none()).count()
    }

    pub fn all_passed(&self) -> bool {
        self.passed() == self.total()
    }

    /// The outcome of case `id`, if it is covered.
    pub fn outcome(&self, id: &str) -> Option<&CaseOutcome> {
        self.outcomes.iter().find(|o| o.id == id)
    }

    /// `FAIL pow_0: grad_a[3] = 1.234 vs 1.24 (...)`, one per failing case.
    pub fn failure_lines(&self) -> Vec<String> {
        let tag = match self.precision {
            Precision::F32 => "FAIL",
            Precision::F64 => "FAIL (f64)",
        };
        self.outcomes
            .iter()
            .filter_map(|o| o.failure.as_ref().map(|f| format!("{tag} {}: {f}", o.id)))
            .collect()
    }

    /// `parity: P/N cases passed`.
    pub fn summary_line(&self) -> String {
        format!(
            "{}: {}/{} cases passed",
            self.precision.label(),
            self.passed(),
            self.total()
        )
    }

    /// The failure lines, then the summary line.
    pub fn render(&self) -> String {
        let mut lines = self.failure_lines();
        lines.push(self.summary_line());
        lines.join("\n")
    }
}

/// What a case with its own layout ([`Runner::Case`]) gets to work with.
pub struct CaseEnv<'a> {
    pub case: &'a Case,
    /// The fixture folder (files named in the manifest are relative to it).
    pub dir: &'a Path,
    pub precision: Precision,
}

impl CaseEnv<'_> {
    /// Loads a safetensors file of the fixture folder.
    pub fn load(&self, name: &str) -> Result<FixtureFile, Failure> {
        Ok(FixtureFile::load(&self.dir.join(name))?)
    }

    /// The case's own safetensors file for this precision.
    pub fn file(&self) -> Result<FixtureFile, Failure> {
        let name = self.precision.file(self.case).ok_or_else(|| {
            Failure::new(format!(
                "the manifest names no {:?} file for this case",
                self.precision
            ))
        })?;
        self.load(name)
    }
}

/// Checks one case with a layout of its own; `Err` says what differs.
pub type CaseCheck = fn(&CaseEnv<'_>) -> Result<(), Failure>;

/// Runs every case of the fixture folder `dir` that [`COVERED`] lists.
/// Fails only when the manifest itself cannot be read; a case that cannot
/// run is a failed case.
pub fn run_suite(dir: &Path, precision: Precision) -> Result<SuiteReport, String> {
    run_suite_with(dir, precision, COVERED)
}

/// [`run_suite`] with another coverage list.
pub fn run_suite_with(
    dir: &Path,
    precision: Precision,
    coverage: &[Coverage],
) -> Result<SuiteReport, String> {
    let manifest = Manifest::load(&dir.join("manifest.json"))?;
    let mut files: HashMap<String, Result<Rc<FixtureFile>, String>> = HashMap::new();
    let mut outcomes = Vec::new();
    for case in &manifest.cases {
        let Some(covered) = coverage_for(case, coverage) else {
            continue;
        };
        let result = match covered.runner {
            Runner::Case(check) => guarded(|| {
                check(&CaseEnv {
                    case,
                    dir,
                    precision,
                })
            }),
            Runner::Op(dispatch) => match precision.file(case) {
                None => Err(Failure::new(format!(
                    "the manifest names no {precision:?} file for this case"
                ))),
                Some(name) => {
                    let file = files
                        .entry(name.to_string())
                        .or_insert_with(|| FixtureFile::load(&dir.join(name)).map(Rc::new));
                    match file {
                        Ok(file) => run_case(case, file, precision, dispatch),
                        Err(e) => Err(Failure::new(e.clone())),
                    }
                }
            },
        };
        outcomes.push(CaseOutcome {
            id: case.id.clone(),
            failure: result.err().map(|f| f.0),
        });
    }
    Ok(SuiteReport {
        precision,
        outcomes,
    })
}

/// Runs `f`, turning a panic inside our library into the case's failure.
fn guarded(f: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into());
        Err(Failure::new(format!("panicked: {msg}")))
    })
}

/// Runs one generic case: inputs -> op -> loss -> backward -> comparisons.
/// A panic inside our library is caught and reported as the case's failure.
pub fn run_case(
    case: &Case,
    file: &FixtureFile,
    precision: Precision,
    dispatch: Dispatch,
) -> Result<(), Failure> {
    let tol = precision
        .tol(case)
        .ok_or_else(|| Failure::new("the manifest gives no tolerance for this case"))?;
    guarded(|| run_and_compare(case, file, tol, dispatch))
}

fn run_and_compare(
    case: &Case,
    file: &FixtureFile,
    tol: Tolerance,
    dispatch: Dispatch,
) -> Result<(), Failure> {
    // The inputs: leaves, requiring grad where PyTorch differentiated (the
    // `differentiable` flag, or a stored gradient of the input).
    let mut inputs = Vec::new();
    for spec in case.with_role(Role::Input) {
        let t = Tensor::from_raw(file.get(&spec.key)?.clone());
        if (spec.differentiable || has_grad(case, &spec.name)) && t.dtype().is_float() {
            t.set_requires_grad(true)?;
        }
        inputs.push((spec.name.clone(), t));
    }
    let call = OpCall {
        case,
        inputs: &inputs,
    };
    let OpOutputs { outputs, aux } =
        dispatch(&call).map_err(|f| Failure::new(format!("cannot run: {f}")))?;

    // loss = Σ_j (out_j ⊙ w_j).sum(), then backward.
    let out_specs: Vec<&TensorSpec> = case.with_role(Role::Output).collect();
    if outputs.len() != out_specs.len() {
        return Err(Failure::new(format!(
            "the op gave {} outputs, the fixture has {}",
            outputs.len(),
            out_specs.len()
        )));
    }
    let mut mismatches = Vec::new();
    let mut loss: Option<Tensor> = None;
    for (spec, out) in out_specs.iter().zip(&outputs) {
        let expected = file.get(&spec.key)?;
        if let Some(m) = compare(&spec.name, &out.data(), expected, tol) {
            mismatches.push(m);
        }
        let w_spec = weight_for(case, &spec.name)?;
        let w = Tensor::from_raw(file.get(&w_spec.key)?.clone());
        let term = out.mul(&w)?.sum_all()?;
        loss = Some(match loss {
            None => term,
            Some(l) => l.add(&term)?,
        });
    }
    let grads_expected = case.with_role(Role::Grad).count() > 0;
    if let Some(loss) = loss.filter(|_| grads_expected) {
        if !loss.requires_grad() {
            return Err(Failure::new(
                "the output is not connected to the inputs' graph (it does not require grad)",
            ));
        }
        loss.backward()
            .map_err(|e| Failure::new(format!("backward: {e}")))?;
    }

    // Aux results (not in the loss).
    for spec in case.with_role(Role::Aux) {
        let expected = file.get(&spec.key)?;
        match aux.iter().find(|(n, _)| *n == spec.name) {
            Some((_, t)) => mismatches.extend(compare(&spec.name, &t.data(), expected, tol)),
            None => mismatches.push(structural(&spec.name, "the dispatcher did not produce it")),
        }
    }

    // Gradients of every differentiable input.
    for spec in case.with_role(Role::Grad) {
        let expected = file.get(&spec.key)?;
        let of = grad_of(spec);
        let input = call.input(of)?;
        match input.grad() {
            Ok(g) => mismatches.extend(compare(&spec.name, &g.data(), expected, tol)),
            Err(e) => mismatches.push(structural(
                &spec.name,
                &format!("no gradient reached `{of}` ({e})"),
            )),
        }
    }
    worst(mismatches)
}

/// The name of the input a `grad` tensor belongs to: its `of`, or its name
/// without the `grad_` prefix.
fn grad_of(spec: &TensorSpec) -> &str {
    spec.of
        .as_deref()
        .unwrap_or_else(|| spec.name.trim_start_matches("grad_"))
}

/// Whether the case stores a gradient of input `name`.
fn has_grad(case: &Case, name: &str) -> bool {
    case.with_role(Role::Grad).any(|g| grad_of(g) == name)
}

/// The `w` tensor that weighs output `out`: the one whose `for_output`
/// names it, else the one named after it (`out_1` -> `w_1`), else the only one.
pub(crate) fn weight_for<'c>(case: &'c Case, out: &str) -> Result<&'c TensorSpec, Failure> {
    let ws: Vec<&TensorSpec> = case.with_role(Role::W).collect();
    let by_name = format!("w{}", out.strip_prefix("out").unwrap_or(out));
    ws.iter()
        .find(|w| w.for_output.as_deref() == Some(out))
        .or_else(|| {
            ws.iter()
                .find(|w| w.for_output.is_none() && w.name == by_name)
        })
        .or(if ws.len() == 1 { ws.first() } else { None })
        .copied()
        .ok_or_else(|| Failure::new(format!("the fixture has no loss weight for output `{out}`")))
}

fn structural(name: &str, why: &str) -> Mismatch {
    Mismatch {
        name: name.to_string(),
        severity: f64::INFINITY,
        message: format!("{name}: {why}"),
    }
}

/// The case's failure: its worst mismatch, naming the other tensors off
/// (also what checks of their own layouts report).
pub fn worst(mismatches: Vec<Mismatch>) -> Result<(), Failure> {
    let Some(first) = mismatches
        .iter()
        .reduce(|a, b| if b.severity > a.severity { b } else { a })
    else {
        return Ok(());
    };
    let others: Vec<&str> = mismatches
        .iter()
        .filter(|m| m.name != first.name)
        .map(|m| m.name.as_str())
        .collect();
    let mut msg = first.message.clone();
    if !others.is_empty() {
        msg.push_str(&format!("; also off: {}", others.join(", ")));
    }
    Err(Failure::new(msg))
}
