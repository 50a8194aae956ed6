//! Group `lr_schedulers` (chapter 06): learning-rate schedules against
//! PyTorch's `torch.optim.lr_scheduler`.
//!
//! The one manifest case points at `lr_schedulers.json`, which lists
//! schedulers by PyTorch class name with their arguments, the optimiser they
//! drove, and `lrs[i]`: the learning rate of the i-th `optimizer.step()`,
//! i.e. after `i` calls of `scheduler.step()` (`momentums[i]` as well for
//! schedules that cycle the momentum, like `OneCycleLR`). We build the same
//! schedule from our types, attach it to the same kind of optimiser with a
//! [`Scheduler`], and read the optimiser's learning rate (and momentum, or
//! Adam's β₁) after each step, so the scheduler's bookkeeping is checked too,
//! not only the formula.
//!
//! Schedules are computed in `f64` whatever the parameters' precision, so
//! the float64 run checks the same numbers, with `tol_f64` where the
//! manifest gives one and `tol` otherwise.

use crate::parity::args::Args;
use crate::parity::compare::{compare, Mismatch};
use crate::parity::manifest::Tolerance;
use crate::parity::runner::worst;
use crate::parity::{CaseEnv, Failure, Precision};
use chapter_03::{DType, RawTensor, Tensor};
use chapter_06::{
    Adam, AdamConfig, Anneal, ConstantLr, CosineAnnealingLr, ExponentialLr, LinearLr, LrSchedule,
    MultiStepLr, OneCycleLr, Optimizer, Scheduler, SequentialLr, Sgd, SgdConfig, StepLr,
};
use serde_json::{Map, Value};

/// Checks every scheduler listed in the case's JSON file.
pub fn check(env: &CaseEnv<'_>) -> Result<(), Failure> {
    let case = env.case;
    let tol = env
        .precision
        .tol(case)
        .or_else(|| Precision::F32.tol(case))
        .ok_or_else(|| Failure::new("the manifest gives no tolerance for this case"))?;
    let name = case.file.as_deref().unwrap_or("lr_schedulers.json");
    let path = env.dir.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::new(format!("{}: cannot read: {e}", path.display())))?;
    let json: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::new(format!("{}: not valid JSON: {e}", path.display())))?;
    let entries = json["schedulers"]
        .as_array()
        .ok_or_else(|| Failure::new(format!("{}: no `schedulers` list", path.display())))?;
    if let Some(n) = case.extra.get("count").and_then(Value::as_u64) {
        if n as usize != entries.len() {
            return Err(Failure::new(format!(
                "the manifest counts {n} schedulers, {} lists {}",
                path.display(),
                entries.len()
            )));
        }
    }
    let mut mismatches = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let id = entry["id"]
            .as_str()
            .map_or_else(|| format!("#{i}"), str::to_string);
        match check_one(entry, &id, tol) {
            Ok(m) => mismatches.extend(m),
            Err(f) => mismatches.push(Mismatch {
                name: id.clone(),
                severity: f64::INFINITY,
                message: format!("{id}: {f}"),
            }),
        }
    }
    worst(mismatches)
}

/// Runs one scheduler entry; the mismatches of its `lrs` and `momentums`.
fn check_one(entry: &Value, id: &str, tol: Tolerance) -> Result<Vec<Mismatch>, Failure> {
    let class = entry["scheduler"]
        .as_str()
        .ok_or_else(|| Failure::new("no `scheduler` class name"))?;
    let args = object(&entry["args"]);
    let resolved = object(&entry["resolved_args"]);
    let schedule = schedule_for(class, &args, &resolved)?;
    let expected_lrs = numbers(&entry["lrs"], "lrs")?;
    let expected_momentums = match &entry["momentums"] {
        Value::Null => None,
        v => Some(numbers(v, "momentums")?),
    };

    let mut optimizer = DrivenOptimizer::new(&entry["optimizer"], entry["base_lr"].as_f64())?;
    let mut scheduler = Scheduler::new(Boxed(schedule), optimizer.as_dyn());
    let (mut lrs, mut momentums) = (Vec::new(), Vec::new());
    for _ in 0..expected_lrs.len() {
        lrs.push(optimizer.as_dyn().learning_rates()[0]);
        momentums.push(optimizer.momentum());
        scheduler.step(optimizer.as_dyn());
    }

    let mut out = Vec::new();
    out.extend(compare(
        &format!("{id}: lrs"),
        &vector(lrs)?,
        &vector(expected_lrs)?,
        tol,
    ));
    if let Some(expected) = expected_momentums {
        momentums.truncate(expected.len());
        out.extend(compare(
            &format!("{id}: momentums"),
            &vector(momentums)?,
            &vector(expected)?,
            tol,
        ));
    }
    Ok(out)
}

/// Our schedule for PyTorch's scheduler `class` with arguments `args`
/// (`resolved`: every argument PyTorch ended up using, where recorded).
pub fn schedule_for(
    class: &str,
    args: &Map<String, Value>,
    resolved: &Map<String, Value>,
) -> Result<Box<dyn LrSchedule>, Failure> {
    let mut all = resolved.clone();
    all.extend(args.clone());
    let a = Args(&all);
    let or = |name: &str, default: f64| -> Result<f64, Failure> {
        if a.has(name) {
            a.f64(name)
        } else {
            Ok(default)
        }
    };
    let flag = |name: &str, default: bool| -> Result<bool, Failure> {
        if a.has(name) {
            a.bool(name)
        } else {
            Ok(default)
        }
    };
    Ok(match class {
        "StepLR" => Box::new(StepLr {
            step_size: a.usize("step_size")?,
            gamma: or("gamma", 0.1)?,
        }),
        "MultiStepLR" => Box::new(MultiStepLr {
            milestones: a.usize_list("milestones")?,
            gamma: or("gamma", 0.1)?,
        }),
        "ExponentialLR" => Box::new(ExponentialLr {
            gamma: a.f64("gamma")?,
        }),
        "CosineAnnealingLR" => Box::new(CosineAnnealingLr {
            t_max: a.usize("T_max")?,
            eta_min: or("eta_min", 0.0)?,
        }),
        "LinearLR" => Box::new(LinearLr {
            start_factor: or("start_factor", 1.0 / 3.0)?,
            end_factor: or("end_factor", 1.0)?,
            total_iters: if a.has("total_iters") {
                a.usize("total_iters")?
            } else {
                5
            },
        }),
        // PyTorch's ConstantLR multiplies by `factor` for `total_iters`
        // steps, then gives the base rate: a constant ramp, then our
        // `ConstantLr`.
        "ConstantLR" => {
            let factor = or("factor", 1.0 / 3.0)?;
            let total_iters = if a.has("total_iters") {
                a.usize("total_iters")?
            } else {
                5
            };
            Box::new(SequentialLr {
                schedules: vec![
                    Box::new(LinearLr {
                        start_factor: factor,
                        end_factor: factor,
                        total_iters: 1,
                    }),
                    Box::new(ConstantLr),
                ],
                milestones: vec![total_iters],
            })
        }
        "OneCycleLR" => {
            let total_steps = if a.has("total_steps") {
                a.usize("total_steps")?
            } else {
                a.usize("epochs")? * a.usize("steps_per_epoch")?
            };
            let max_lr = match a.get("max_lr")? {
                Value::Array(v) => v.first().and_then(Value::as_f64),
                v => v.as_f64(),
            }
            .ok_or_else(|| Failure::new("argument `max_lr` should be a number"))?;
            let mut s = OneCycleLr::new(max_lr, total_steps);
            s.pct_start = or("pct_start", s.pct_start)?;
            s.anneal = match a.has("anneal_strategy") {
                false => s.anneal,
                true => match a.str("anneal_strategy")? {
                    "cos" => Anneal::Cos,
                    "linear" => Anneal::Linear,
                    other => {
                        return Err(Failure::new(format!(
                            "anneal_strategy `{other}` is neither `cos` nor `linear`"
                        )))
                    }
                },
            };
            s.div_factor = or("div_factor", s.div_factor)?;
            s.final_div_factor = or("final_div_factor", s.final_div_factor)?;
            s.three_phase = flag("three_phase", s.three_phase)?;
            s.cycle_momentum = flag("cycle_momentum", s.cycle_momentum)?;
            s.base_momentum = or("base_momentum", s.base_momentum)?;
            s.max_momentum = or("max_momentum", s.max_momentum)?;
            Box::new(s)
        }
        "SequentialLR" => {
            let list = a.get("schedulers")?.as_array().ok_or_else(|| {
                Failure::new("argument `schedulers` should list [class, args] pairs")
            })?;
            let mut schedules = Vec::new();
            for item in list {
                let (Some(class), Some(args)) = (item[0].as_str(), item[1].as_object()) else {
                    return Err(Failure::new(format!(
                        "argument `schedulers`: {item} is not a [class, args] pair"
                    )));
                };
                schedules.push(schedule_for(class, args, &Map::new())?);
            }
            let milestones = a.usize_list("milestones")?;
            if milestones.len() + 1 != schedules.len() {
                return Err(Failure::new(format!(
                    "{} schedulers need {} milestones, got {}",
                    schedules.len(),
                    schedules.len().saturating_sub(1),
                    milestones.len()
                )));
            }
            Box::new(SequentialLr {
                schedules,
                milestones,
            })
        }
        other => {
            return Err(Failure::new(format!(
                "no schedule of chapter 06 implements `{other}`"
            )))
        }
    })
}

/// The optimiser a scheduler entry drove, kept concrete so its momentum
/// (SGD's `momentum`, Adam's β₁) can be read back.
enum DrivenOptimizer {
    Sgd(Sgd),
    Adam(Adam),
}

impl DrivenOptimizer {
    fn new(spec: &Value, base_lr: Option<f64>) -> Result<DrivenOptimizer, Failure> {
        let lr = spec["lr"]
            .as_f64()
            .or(base_lr)
            .ok_or_else(|| Failure::new("neither `optimizer.lr` nor `base_lr` is given"))?;
        let param = Tensor::param(RawTensor::zeros(
            1,
            DType::F64,
            &chapter_02::default_device()?,
        )?)?;
        Ok(match spec["type"].as_str().unwrap_or("SGD") {
            "Adam" | "AdamW" => {
                let mut c = AdamConfig::adam(lr);
                if let Some(b1) = spec["betas"].get(0).and_then(Value::as_f64) {
                    c.betas.0 = b1;
                }
                DrivenOptimizer::Adam(Adam::new(vec![param], c)?)
            }
            _ => {
                let mut c = SgdConfig::new(lr);
                c.momentum = spec["momentum"].as_f64().unwrap_or(0.0);
                DrivenOptimizer::Sgd(Sgd::new(vec![param], c)?)
            }
        })
    }

    fn as_dyn(&mut self) -> &mut dyn Optimizer {
        match self {
            DrivenOptimizer::Sgd(o) => o,
            DrivenOptimizer::Adam(o) => o,
        }
    }

    fn momentum(&self) -> f64 {
        match self {
            DrivenOptimizer::Sgd(o) => o.groups[0].config.momentum,
            DrivenOptimizer::Adam(o) => o.groups[0].config.betas.0,
        }
    }
}

/// Lets a boxed schedule (built from a class name) drive a [`Scheduler`].
struct Boxed(Box<dyn LrSchedule>);

impl LrSchedule for Boxed {
    fn lr_at(&self, t: usize, base_lr: f64) -> f64 {
        self.0.lr_at(t, base_lr)
    }
    fn momentum_at(&self, t: usize) -> Option<f64> {
        self.0.momentum_at(t)
    }
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn numbers(v: &Value, name: &str) -> Result<Vec<f64>, Failure> {
    v.as_array()
        .and_then(|a| a.iter().map(Value::as_f64).collect())
        .ok_or_else(|| Failure::new(format!("`{name}` should be a list of numbers")))
}

fn vector(v: Vec<f64>) -> Result<RawTensor, Failure> {
    let n = v.len();
    Ok(RawTensor::from_vec(v, n, &chapter_02::default_device()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::manifest::Manifest;
    use crate::parity::{default_fixtures_dir, run_suite_with, Coverage};
    use std::fs;

    /// The shipped fixtures with `lr_schedulers.json` edited by `edit`.
    fn run_edited(tag: &str, edit: impl FnOnce(&mut Value)) -> Option<String> {
        let src = default_fixtures_dir();
        let dir = std::env::temp_dir().join(format!("candle-lr-{tag}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::copy(src.join("manifest.json"), dir.join("manifest.json")).unwrap();
        let text = fs::read_to_string(src.join("lr_schedulers.json")).unwrap();
        let mut json: Value = serde_json::from_str(&text).unwrap();
        edit(&mut json);
        fs::write(dir.join("lr_schedulers.json"), json.to_string()).unwrap();
        let coverage = [Coverage::custom("lr_schedulers", check)];
        let report = run_suite_with(&dir, Precision::F32, &coverage).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(report.total(), 1);
        report.outcomes[0].failure.clone()
    }

    #[test]
    fn every_scheduler_is_checked_and_a_wrong_value_is_named() {
        assert_eq!(run_edited("same", |_| {}), None);
        let f = run_edited("lr", |j| {
            j["schedulers"][3]["lrs"][7] = Value::from(0.0207);
        })
        .unwrap();
        assert!(f.starts_with("cosine_annealing_lr: lrs[7] = "), "{f}");
        let f = run_edited("momentum", |j| {
            j["schedulers"][5]["momentums"][0] = Value::from(0.9);
        })
        .unwrap();
        assert!(
            f.starts_with("one_cycle_lr: momentums[0] = 0.95 vs 0.9"),
            "{f}"
        );
        let f = run_edited("class", |j| {
            j["schedulers"][0]["scheduler"] = Value::from("CyclicLR");
        })
        .unwrap();
        assert!(
            f.contains("step_lr: no schedule of chapter 06 implements `CyclicLR`"),
            "{f}"
        );
        let m = Manifest::load(&default_fixtures_dir().join("manifest.json")).unwrap();
        assert!(m.cases.iter().any(|c| c.group == "lr_schedulers"));
    }

    #[test]
    fn constant_lr_follows_pytorch_factor_then_base() {
        let args: Map<String, Value> =
            serde_json::from_str(r#"{"factor": 0.5, "total_iters": 3}"#).unwrap();
        let s = schedule_for("ConstantLR", &args, &Map::new()).unwrap();
        let lrs: Vec<f64> = (0..5).map(|t| s.lr_at(t, 0.2)).collect();
        assert_eq!(lrs, [0.1, 0.1, 0.1, 0.2, 0.2]);
    }
}
