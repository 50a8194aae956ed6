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
        v.as_i64().ok_or_else(|| Self::wrong(name, "an integer", v))
    }

    pub fn usize(&self, name: &str) -> Result<usize, Failure> {
        let v = self.get(name)?;
        v.as_u64()
            .map(|u| u as usize)
            .ok_or_else(|| Self::wrong(name, "a non-negative integer", v))
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
            .map(|x| {
                x.as_i64()
                    .ok_or_else(|| Self::wrong(name, "a list of integers", v))
            })
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
                x.as_u64()
                    .map(|u| u as usize)
                    .ok_or_else(|| Self::wrong(name, "a list of non-negative integers", v))
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
                    *o = x.as_u64().ok_or_else(|| Self::wrong(name, want, v))? as usize;
                }
                Ok(out)
            })
            .collect()
    }
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
}
