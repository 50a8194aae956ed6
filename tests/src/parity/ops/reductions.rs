//! Group `reductions`: sum, mean, max (with indices), var, logsumexp and the
//! softmax family. A `dim` of `null` means every dimension, as in PyTorch;
//! so does an empty list for `sum`, `mean` and `var` (`torch.sum(x, dim=[])`
//! is a full sum, a quirk PyTorch keeps), while our `sum(&[])` reduces
//! nothing.

use super::{OpCall, OpOutputs};
use crate::parity::Failure;
use chapter_04::prelude::*;

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let x = c.input("x")?;
    let keepdim = || -> Result<bool, Failure> {
        if args.has("keepdim") {
            args.bool("keepdim")
        } else {
            Ok(false)
        }
    };
    let dims = args.dims("dim")?;
    let all_dims = || (0..x.rank() as i64).collect::<Vec<i64>>();
    let op = c.op();
    let dims = match dims {
        Some(d) if d.is_empty() && matches!(op, "sum" | "mean" | "var") => None,
        d => d,
    };
    let out = match op {
        // `dim=None, keepdim=True` reduces every dimension to size 1.
        "sum" => match (dims, keepdim()?) {
            (None, false) => x.sum_all()?,
            (d, k) => x.sum(d.unwrap_or_else(all_dims), k)?,
        },
        "mean" => match (dims, keepdim()?) {
            (None, false) => x.mean_all()?,
            (d, k) => x.mean(d.unwrap_or_else(all_dims), k)?,
        },
        "max" => match dims.as_deref() {
            None => x.max_all()?,
            Some(&[d]) => {
                let (values, indices) = x.max_with_indices(d, keepdim()?)?;
                return Ok(OpOutputs::one(values).with_aux("indices", indices));
            }
            Some(d) => {
                return Err(Failure::new(format!(
                    "torch.max takes one dim, the case gives {d:?}"
                )))
            }
        },
        "var" => x.var(
            dims.unwrap_or_else(all_dims),
            args.usize("correction")?,
            keepdim()?,
        )?,
        "logsumexp" => x.logsumexp(dims.unwrap_or_else(all_dims), keepdim()?)?,
        "softmax" => x.softmax(args.i64("dim")?)?,
        "log_softmax" => x.log_softmax(args.i64("dim")?)?,
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parity::manifest::Manifest;
    use chapter_02::{Device, Tensor as RawTensor};
    use chapter_03::Tensor;

    fn reduce(op: &str, args: &str, x: &Tensor) -> Result<Tensor, Failure> {
        let json = format!(
            r#"{{"cases": [{{"id": "t", "group": "reductions", "op": "{op}", "args": {args}}}]}}"#
        );
        let case = Manifest::parse(&json).unwrap().cases.remove(0);
        let inputs = [("x".to_string(), x.clone())];
        let out = run(&OpCall {
            case: &case,
            inputs: &inputs,
        })?;
        Ok(out.outputs.into_iter().next().unwrap())
    }

    #[test]
    fn dim_none_or_an_empty_list_reduces_everything_as_pytorch_does() {
        let data: Vec<f64> = (1..=6).map(f64::from).collect();
        let x = Tensor::from_raw(RawTensor::from_vec(data, (2, 3), &Device::cpu()).unwrap());
        let value = |t: &Tensor| t.data().to_vec_f64().unwrap();
        // torch.sum(x, dim=[]) and torch.sum(x) are both 21.
        for args in [r#"{"dim": []}"#, r#"{"dim": null}"#, "{}"] {
            let s = reduce("sum", args, &x).unwrap();
            assert_eq!(
                (s.dims().to_vec(), value(&s)),
                (vec![], vec![21.0]),
                "{args}"
            );
        }
        let m = reduce("mean", r#"{"dim": [], "keepdim": true}"#, &x).unwrap();
        assert_eq!((m.dims().to_vec(), value(&m)), (vec![1, 1], vec![3.5]));
        let v = reduce("var", r#"{"dim": [], "correction": 1}"#, &x).unwrap();
        assert_eq!((v.dims().to_vec(), value(&v)), (vec![], vec![3.5]));
        // dim=None with keepdim keeps every dimension, at size 1.
        let s = reduce("sum", r#"{"dim": null, "keepdim": true}"#, &x).unwrap();
        assert_eq!(s.dims(), &[1, 1]);
        // Negative dims in a list.
        let s = reduce("sum", r#"{"dim": [-1, 0], "keepdim": false}"#, &x).unwrap();
        assert_eq!(value(&s), vec![21.0]);
    }
}
