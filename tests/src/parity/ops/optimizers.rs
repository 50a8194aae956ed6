//! Group `optimizers` (chapter 06): SGD, Adam, AdamW, RMSprop and Adagrad
//! replayed on PyTorch's recorded trajectories.
//!
//! A case stores an initial parameter `param0`, the gradient PyTorch fed
//! before each step (`grads[s]`) and the parameter after each step
//! (`params[s]`). We build the same optimiser from the manifest's
//! hyper-parameters, feed the same gradients one step at a time, and compare
//! the parameter after every step, so an error in the first step's
//! bookkeeping (a buffer initialised the wrong way, a bias correction off by
//! one step) shows up as well as one that only grows over time.
//!
//! The hyper-parameters are `all_defaults` (every argument PyTorch used,
//! defaults included) overlaid with `args`. Every argument is mapped onto our
//! config; an argument we do not know fails the case instead of being
//! silently ignored, except PyTorch's implementation switches (`foreach`,
//! `fused`, `capturable`, `differentiable`), which do not change the numbers.

use crate::parity::compare::compare;
use crate::parity::fixture_file::FixtureFile;
use crate::parity::manifest::Case;
use crate::parity::runner::worst;
use crate::parity::{CaseEnv, Failure};
use chapter_03::{RawTensor, Tensor};
use chapter_06::{
    Adagrad, AdagradConfig, Adam, AdamConfig, Optimizer, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// Arguments that select how PyTorch runs the update, not what it computes.
const IMPLEMENTATION_SWITCHES: &[&str] = &["foreach", "fused", "capturable", "differentiable"];

/// Runs one optimiser case: `param0`, then `steps` updates, each compared
/// with `params[s]`.
pub fn check(env: &CaseEnv<'_>) -> Result<(), Failure> {
    let case = env.case;
    let tol = env
        .precision
        .tol(case)
        .ok_or_else(|| Failure::new("the manifest gives no tolerance for this case"))?;
    let file = env.file()?;
    let param0 = stored(&file, case, "param0")?;
    let grads = stored(&file, case, "grads")?;
    let expected = stored(&file, case, "params")?;
    let steps = grads.dims().first().copied().unwrap_or(0);
    if expected.dims().first() != Some(&steps) || expected.dims()[1..] != *param0.dims() {
        return Err(Failure::new(format!(
            "`params` has shape {:?}, expected [{steps}, {:?}...] like `grads` and `param0`",
            expected.dims(),
            param0.dims()
        )));
    }
    if let Some(n) = case.extra.get("steps").and_then(Value::as_u64) {
        if n as usize != steps {
            return Err(Failure::new(format!(
                "the manifest says {n} steps, the file holds {steps}"
            )));
        }
    }

    let p = Tensor::param(param0)?;
    let mut optimizer = optimizer_for(case, vec![p.clone()])?;
    let mut mismatches = Vec::new();
    for s in 0..steps {
        let g = grads.narrow(0, s, 1)?.squeeze(0)?;
        p.set_grad(Some(Tensor::from_raw(g)));
        optimizer
            .step()
            .map_err(|e| Failure::new(format!("step {s}: {e}")))?;
        let want = expected.narrow(0, s, 1)?.squeeze(0)?;
        mismatches.extend(compare(&format!("params[{s}]"), &p.data(), &want, tol));
    }
    worst(mismatches)
}

/// The stored tensor `name` of `case` (its key from the manifest, or
/// `<id>/<name>` when the manifest does not list it).
pub(crate) fn stored(file: &FixtureFile, case: &Case, name: &str) -> Result<RawTensor, Failure> {
    let key = case
        .tensor(name)
        .map(|t| t.key.clone())
        .unwrap_or_else(|| format!("{}/{name}", case.id));
    Ok(file.get(&key)?.clone())
}

/// The optimiser named by the case's `op` (`torch.optim.Adam`, ...) with its
/// hyper-parameters.
pub fn optimizer_for(case: &Case, params: Vec<Tensor>) -> Result<Box<dyn Optimizer>, Failure> {
    let h = Hyper::of(case);
    let name = case.op.rsplit('.').next().unwrap_or_default();
    let optimizer: Box<dyn Optimizer> = match name {
        "SGD" => {
            let mut c = SgdConfig::new(h.f64("lr", 1e-3)?);
            c.momentum = h.f64("momentum", c.momentum)?;
            c.dampening = h.f64("dampening", c.dampening)?;
            c.weight_decay = h.f64("weight_decay", c.weight_decay)?;
            c.nesterov = h.bool("nesterov", c.nesterov)?;
            c.maximize = h.bool("maximize", c.maximize)?;
            h.all_known()?;
            Box::new(Sgd::new(params, c)?)
        }
        "Adam" | "AdamW" => {
            let lr = h.f64("lr", 1e-3)?;
            let mut c = if name == "AdamW" {
                AdamConfig::adamw(lr)
            } else {
                AdamConfig::adam(lr)
            };
            c.betas = h.pair("betas", c.betas)?;
            c.eps = h.f64("eps", c.eps)?;
            c.weight_decay = h.f64("weight_decay", c.weight_decay)?;
            c.amsgrad = h.bool("amsgrad", c.amsgrad)?;
            c.maximize = h.bool("maximize", c.maximize)?;
            c.decoupled_weight_decay =
                h.bool("decoupled_weight_decay", c.decoupled_weight_decay)?;
            h.all_known()?;
            Box::new(Adam::new(params, c)?)
        }
        "RMSprop" => {
            let mut c = RmsPropConfig::new(h.f64("lr", 1e-2)?);
            c.alpha = h.f64("alpha", c.alpha)?;
            c.eps = h.f64("eps", c.eps)?;
            c.weight_decay = h.f64("weight_decay", c.weight_decay)?;
            c.momentum = h.f64("momentum", c.momentum)?;
            c.centered = h.bool("centered", c.centered)?;
            c.maximize = h.bool("maximize", c.maximize)?;
            h.all_known()?;
            Box::new(RmsProp::new(params, c)?)
        }
        "Adagrad" => {
            let mut c = AdagradConfig::new(h.f64("lr", 1e-2)?);
            c.lr_decay = h.f64("lr_decay", c.lr_decay)?;
            c.weight_decay = h.f64("weight_decay", c.weight_decay)?;
            c.initial_accumulator_value =
                h.f64("initial_accumulator_value", c.initial_accumulator_value)?;
            c.eps = h.f64("eps", c.eps)?;
            c.maximize = h.bool("maximize", c.maximize)?;
            h.all_known()?;
            Box::new(Adagrad::new(params, c)?)
        }
        _ => {
            return Err(Failure::new(format!(
                "no optimiser of chapter 06 implements `{}`",
                case.op
            )))
        }
    };
    Ok(optimizer)
}

/// The hyper-parameters of a case, remembering which ones were read so that
/// an argument nobody maps is reported.
struct Hyper {
    values: Map<String, Value>,
    read: RefCell<BTreeSet<String>>,
}

impl Hyper {
    /// `all_defaults`, overlaid with `args`.
    fn of(case: &Case) -> Hyper {
        let mut values = case
            .extra
            .get("all_defaults")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        values.extend(case.args.clone());
        Hyper {
            values,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    fn value(&self, name: &str) -> Option<&Value> {
        self.read.borrow_mut().insert(name.to_string());
        self.values.get(name).filter(|v| !v.is_null())
    }

    fn wrong(name: &str, want: &str, v: &Value) -> Failure {
        Failure::new(format!("argument `{name}` should be {want}, got {v}"))
    }

    fn f64(&self, name: &str, default: f64) -> Result<f64, Failure> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| Self::wrong(name, "a number", v)),
        }
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, Failure> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| Self::wrong(name, "true or false", v)),
        }
    }

    fn pair(&self, name: &str, default: (f64, f64)) -> Result<(f64, f64), Failure> {
        let Some(v) = self.value(name) else {
            return Ok(default);
        };
        match v.as_array().map(|a| a.iter().map(Value::as_f64).collect()) {
            Some(Some::<Vec<f64>>(xs)) if xs.len() == 2 => Ok((xs[0], xs[1])),
            _ => Err(Self::wrong(name, "a pair of numbers", v)),
        }
    }

    /// Fails on an argument that was not read (and is not an implementation
    /// switch): the case would test something our config cannot express.
    fn all_known(&self) -> Result<(), Failure> {
        let read = self.read.borrow();
        let unknown: Vec<&str> = self
            .values
            .keys()
            .map(String::as_str)
            .filter(|k| !read.contains(*k) && !IMPLEMENTATION_SWITCHES.contains(k))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(Failure::new(format!(
                "hyper-parameter(s) {} have no counterpart in our config",
                unknown.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::manifest::Manifest;
    use crate::parity::{default_fixtures_dir, Precision};
    use serde_json::json;

    fn case(id: &str) -> Case {
        let m = Manifest::load(&default_fixtures_dir().join("manifest.json")).unwrap();
        m.cases.into_iter().find(|c| c.id == id).unwrap()
    }

    fn run(case: &Case, precision: Precision) -> Result<(), Failure> {
        let dir = default_fixtures_dir();
        check(&CaseEnv {
            case,
            dir: &dir,
            precision,
        })
    }

    #[test]
    fn a_wrong_hyper_parameter_makes_the_trajectory_fail() {
        let mut c = case("sgd_momentum");
        run(&c, Precision::F64).unwrap();
        c.args.insert("momentum".into(), json!(0.8));
        let err = run(&c, Precision::F64).unwrap_err();
        // The first step (buffer = gradient) does not see the momentum.
        assert!(
            err.0.starts_with("params[") && !err.0.starts_with("params[0]"),
            "{err}"
        );
        let mut c = case("adamw");
        c.args.insert("amsgrad".into(), json!(true));
        c.args.insert("maximize".into(), json!(true));
        assert!(run(&c, Precision::F32).is_err());
    }

    #[test]
    fn an_argument_without_counterpart_fails_instead_of_being_ignored() {
        let mut c = case("rmsprop");
        c.args.insert("lookahead".into(), json!(5));
        c.args.insert("foreach".into(), json!(true));
        let err = run(&c, Precision::F32).unwrap_err();
        assert!(
            err.0.contains("lookahead") && !err.0.contains("foreach"),
            "{err}"
        );
        let mut c = case("adagrad");
        c.op = "torch.optim.NAdam".into();
        let err = run(&c, Precision::F32).unwrap_err();
        assert!(err.0.contains("torch.optim.NAdam"), "{err}");
    }
}
