//! Typed access to a case's `args`, with errors that say which argument
//! is missing or has the wrong type.

use super::Failure;
use serde_json::{Map, Value};

/// The `args` object of one case.
#[derive(Clone, Copy)]
pub struct Args<'a>(pub &'a Map<String, Value>);

impl<'a> Args<'a> {
    pub fn has(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| !v.is_null())
    }

    pub fn get(&self, name: &str) -> Result<&'a Value, Failure> {
        self.0
            .get(name)
            .ok_or_else(|| Failure::new(format!("argument `{name}` missing from the manifest")))
    }

    fn wrong(name: &str, want: &str, v: &Value) -> Failure {
        Failure::new(format!("argument `{name}` should be {want}, got {v}"))
    }

    pub fn i64(&self, name: &str) -> Result<i64, Failure> {
        let v = self.get(name)?;
        as_i64(v).ok_or_else(|| Self::wrong(name, "an integer", v))
    }

    pub fn usize(&self, name: &str) -> Result<usize, Failure> {
        let v = self.get(name)?;
        as_usize(v).ok_or_else(|| Self::wrong(name, "a non-negative integer", v))
    }

    /// A number; the strings `"inf"`, `"-inf"` and `"nan"` are accepted too
    /// (JSON has no infinities, so the generator writes them as strings).
    pub fn f64(&self, name: &str) -> Result<f64, Failure> {
        let v = self.get(name)?;
        if let Some(x) = v.as_f64() {
            return Ok(x);
        }
        match v.as_str().map(str::trim) {
            Some("inf" | "+inf" | "Infinity") => Ok(f64::INFINITY),
            Some("-inf" | "-Infinity") => Ok(f64::NEG_INFINITY),
            Some("nan" | "NaN") => Ok(f64::NAN),
            _ => Err(Self::wrong(name, "a number", v)),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool, Failure> {
        let v = self.get(name)?;
        v.as_bool()
            .ok_or_else(|| Self::wrong(name, "true or false", v))
    }

    pub fn str(&self, name: &str) -> Result<&'a str, Failure> {
        let v = self.get(name)?;
        v.as_str().ok_or_else(|| Self::wrong(name, "a string", v))
    }

    pub fn i64_list(&self, name: &str) -> Result<Vec<i64>, Failure> {
        let v = self.get(name)?;
        let items = v
            .as_array()
            .ok_or_else(|| Self::wrong(name, "a list of integers", v))?;
        items
            .iter()
            .map(|x| as_i64(x).ok_or_else(|| Self::wrong(name, "a list of integers", v)))
            .collect()
    }

    pub fn usize_list(&self, name: &str) -> Result<Vec<usize>, Failure> {
        let v = self.get(name)?;
        let items = v
            .as_array()
            .ok_or_else(|| Self::wrong(name, "a list of non-negative integers", v))?;
        items
            .iter()
            .map(|x| {
                as_usize(x).ok_or_else(|| Self::wrong(name, "a list of non-negative integers", v))
            })
            .collect()
    }

    /// A PyTorch `dim` argument: `null` (all dimensions) gives `None`, an
    /// integer or a list of integers gives the list.
    pub fn dims(&self, name: &str) -> Result<Option<Vec<i64>>, Failure> {
        let v = self.0.get(name).unwrap_or(&Value::Null);
        match v {
            Value::Null => Ok(None),
            Value::Number(_) => Ok(Some(vec![self.i64(name)?])),
            Value::Array(_) => Ok(Some(self.i64_list(name)?)),
            _ => Err(Self::wrong(
                name,
                "null, an integer or a list of integers",
                v,
            )),
        }
    }

    /// A size argument PyTorch takes as an integer or a list of them
    /// (`normalized_shape=8` is `(8,)`).
    pub fn usize_or_list(&self, name: &str) -> Result<Vec<usize>, Failure> {
        match self.get(name)? {
            Value::Array(_) => self.usize_list(name),
            _ => Ok(vec![self.usize(name)?]),
        }
    }

    /// A list of dimensions (`permute`'s `dims`), each possibly negative
    /// (counted from the end, as in PyTorch), resolved for a tensor of rank
    /// `rank`.
    pub fn dim_list(&self, name: &str, rank: usize) -> Result<Vec<usize>, Failure> {
        let dims = self.i64_list(name)?;
        dims.iter()
            .map(|&d| resolve_dim(d, rank))
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::new(format!("argument `{name}`: {e}")))
    }

    /// The target shape of `reshape`/`view`: one entry may be `-1`, inferred
    /// from the element count `numel`.
    pub fn reshape_target(&self, name: &str, numel: usize) -> Result<Vec<usize>, Failure> {
        resolve_reshape(&self.i64_list(name)?, numel)
            .map_err(|e| Failure::new(format!("argument `{name}`: {e}")))
    }

    /// The target shape of `expand`: `-1` keeps the size of the input's
    /// dimension it lines up with (from the right).
    pub fn expand_target(&self, name: &str, input: &[usize]) -> Result<Vec<usize>, Failure> {
        resolve_expand(&self.i64_list(name)?, input)
            .map_err(|e| Failure::new(format!("argument `{name}`: {e}")))
    }

    /// A list of `[start, stop, step]` triples (slicing).
    pub fn triples(&self, name: &str) -> Result<Vec<[usize; 3]>, Failure> {
        let v = self.get(name)?;
        let want = "a list of [start, stop, step] triples of non-negative integers";
        let items = v.as_array().ok_or_else(|| Self::wrong(name, want, v))?;
        items
            .iter()
            .map(|t| {
                let t = t.as_array().filter(|t| t.len() == 3);
                let t = t.ok_or_else(|| Self::wrong(name, want, v))?;
                let mut out = [0; 3];
                for (o, x) in out.iter_mut().zip(t) {
                    *o = as_usize(x).ok_or_else(|| Self::wrong(name, want, v))?;
                }
                Ok(out)
            })
            .collect()
    }
}

/// An integer, also when written as an integral float (`2.0`): a generator
/// that passes Python floats through gives those.
fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
            .map(|x| x as i64)
    })
}

fn as_usize(v: &Value) -> Option<usize> {
    as_i64(v).and_then(|i| usize::try_from(i).ok())
}

/// A PyTorch dimension index (negative counts from the end) for rank `rank`.
pub fn resolve_dim(d: i64, rank: usize) -> Result<usize, String> {
    // A 0-d tensor takes dim 0 or -1, as if it had one dimension.
    let r = rank.max(1) as i64;
    let resolved = if d < 0 { d + r } else { d };
    if (0..r).contains(&resolved) {
        Ok(resolved as usize)
    } else {
        Err(format!("dimension {d} is out of range for rank {rank}"))
    }
}

/// `reshape`'s shape with its one `-1` filled in from `numel`.
pub fn resolve_reshape(spec: &[i64], numel: usize) -> Result<Vec<usize>, String> {
    let inferred: Vec<usize> = (0..spec.len()).filter(|&i| spec[i] == -1).collect();
    if inferred.len() > 1 || spec.iter().any(|&s| s < -1) {
        return Err(format!(
            "{spec:?} is not a shape (one -1 at most, no other negative size)"
        ));
    }
    let known: usize = spec
        .iter()
        .filter(|&&s| s >= 0)
        .map(|&s| s as usize)
        .product();
    let mut out: Vec<usize> = spec.iter().map(|&s| s.max(0) as usize).collect();
    if let Some(&i) = inferred.first() {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(format!("{spec:?} cannot hold {numel} elements"));
        }
        out[i] = numel / known;
    }
    Ok(out)
}

/// `expand`'s shape with every `-1` replaced by the size of the input
/// dimension it lines up with (shapes are aligned on the right; new leading
/// dimensions cannot be `-1`).
pub fn resolve_expand(spec: &[i64], input: &[usize]) -> Result<Vec<usize>, String> {
    if spec.len() < input.len() {
        return Err(format!(
            "{spec:?} has fewer dimensions than the input {input:?}"
        ));
    }
    let lead = spec.len() - input.len();
    spec.iter()
        .enumerate()
        .map(|(i, &s)| match s {
            -1 if i >= lead => Ok(input[i - lead]),
            s if s >= 0 => Ok(s as usize),
            _ => Err(format!(
                "{spec:?}: size {s} at dimension {i} is not allowed for input {input:?}"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn dims_accept_null_an_integer_or_a_list() {
        let m = args(r#"{"a": null, "b": -1, "c": [0, 2], "d": "x"}"#);
        let a = Args(&m);
        assert_eq!(a.dims("a").unwrap(), None);
        assert_eq!(a.dims("missing").unwrap(), None);
        assert_eq!(a.dims("b").unwrap(), Some(vec![-1]));
        assert_eq!(a.dims("c").unwrap(), Some(vec![0, 2]));
        assert!(a.dims("d").is_err());
    }

    #[test]
    fn infinities_are_read_from_strings_and_errors_name_the_argument() {
        let m = args(r#"{"value": "-inf", "slope": 0.01, "s": [[0, 3, 1], [1, 5, 2]]}"#);
        let a = Args(&m);
        assert_eq!(a.f64("value").unwrap(), f64::NEG_INFINITY);
        assert_eq!(a.f64("slope").unwrap(), 0.01);
        assert_eq!(a.triples("s").unwrap(), vec![[0, 3, 1], [1, 5, 2]]);
        let err = a.i64("slope").unwrap_err();
        assert!(err.0.contains("`slope`"), "{}", err.0);
        assert!(a.bool("nothing").unwrap_err().0.contains("missing"));
    }

    #[test]
    fn negative_dims_and_inferred_sizes_are_resolved_as_pytorch_does() {
        assert_eq!(resolve_dim(-1, 3), Ok(2));
        assert_eq!(resolve_dim(-3, 3), Ok(0));
        assert!(resolve_dim(3, 3).is_err() && resolve_dim(-4, 3).is_err());
        assert_eq!(resolve_dim(-1, 0), Ok(0));
        assert_eq!(resolve_reshape(&[2, -1, 1], 12), Ok(vec![2, 6, 1]));
        assert_eq!(resolve_reshape(&[-1], 7), Ok(vec![7]));
        assert_eq!(resolve_reshape(&[], 1), Ok(vec![]));
        assert!(resolve_reshape(&[-1, -1], 4).is_err());
        assert!(resolve_reshape(&[5, -1], 12).is_err());
        assert_eq!(resolve_expand(&[2, -1, 4], &[3, 1]), Ok(vec![2, 3, 4]));
        assert_eq!(resolve_expand(&[-1, 2], &[1, 2]), Ok(vec![1, 2]));
        assert!(resolve_expand(&[-1, 3, 2], &[3, 2]).is_err());

        let m = args(r#"{"dims": [-1, 0, 1], "shape": [3, -1], "n": 8, "ns": [2, 4]}"#);
        let a = Args(&m);
        assert_eq!(a.dim_list("dims", 3).unwrap(), vec![2, 0, 1]);
        assert!(a.dim_list("dims", 1).unwrap_err().0.contains("`dims`"));
        assert_eq!(a.reshape_target("shape", 12).unwrap(), vec![3, 4]);
        assert_eq!(a.expand_target("shape", &[3, 1]).unwrap(), vec![3, 1]);
        assert_eq!(a.usize_or_list("n").unwrap(), vec![8]);
        assert_eq!(a.usize_or_list("ns").unwrap(), vec![2, 4]);

        let m = args(r#"{"correction": 1.0, "dims": [0.0, -1.0], "half": 0.5, "neg": -2}"#);
        let a = Args(&m);
        assert_eq!(a.usize("correction").unwrap(), 1);
        assert_eq!(a.i64_list("dims").unwrap(), vec![0, -1]);
        assert!(a.usize("half").is_err() && a.usize("neg").is_err());
    }
}
