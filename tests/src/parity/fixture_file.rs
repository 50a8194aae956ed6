//! Reading the tensors of a `.safetensors` fixture file into chapter-02 tensors.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header
//! (name -> dtype, shape, byte range) and the raw little-endian data. The
//! `safetensors` crate checks the header; here we turn each entry into a
//! [`RawTensor`] of the matching [`DType`]. Every error names the file.

use chapter_02::{default_device, with_dtype, DType, Tensor as RawTensor, WithDType};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Every tensor of one fixture file, by key.
pub struct FixtureFile {
    path: PathBuf,
    tensors: HashMap<String, RawTensor>,
}

impl FixtureFile {
    /// Reads and decodes the whole file (fixture files are small).
    pub fn load(path: &Path) -> Result<FixtureFile, String> {
        let bytes = fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        FixtureFile::from_bytes(path, &bytes)
    }

    /// Decodes safetensors `bytes`; `path` is only used in messages.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<FixtureFile, String> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| format!("{}: not a valid safetensors file: {e}", path.display()))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let t = decode(view.dtype(), view.shape(), view.data())
                .map_err(|e| format!("{}: tensor `{name}`: {e}", path.display()))?;
            tensors.insert(name, t);
        }
        Ok(FixtureFile {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// The tensor stored under `key`.
    pub fn get(&self, key: &str) -> Result<&RawTensor, String> {
        self.tensors
            .get(key)
            .ok_or_else(|| format!("{}: no tensor `{key}`", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// Little-endian bytes to a tensor of the same element type, on the
/// device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
fn decode(dtype: Dtype, shape: &[usize], data: &[u8]) -> Result<RawTensor, String> {
    let ours = match dtype {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::I64 => DType::I64,
        Dtype::U8 | Dtype::BOOL => DType::U8,
        other => {
            return Err(format!(
                "dtype {other:?} is not one the fixtures use (F32, F64, I64, U8)"
            ))
        }
    };
    let dev = default_device().map_err(|e| e.to_string())?;
    let shape = shape.to_vec();
    let n: usize = shape.iter().product();
    let size = ours.size_in_bytes();
    if data.len() != n * size {
        return Err(format!(
            "{} bytes of data for shape {shape:?} of {dtype:?} (expected {})",
            data.len(),
            n * size
        ));
    }
    let t = with_dtype!(ours, T => {
        let values: Vec<T> = data
            .chunks_exact(size)
            .filter_map(T::from_le_slice)
            .collect();
        RawTensor::from_vec(values, shape, &dev)
    });
    t.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn file_with(entries: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> = entries
            .iter()
            .map(|(name, dtype, shape, data)| {
                (
                    name.to_string(),
                    TensorView::new(*dtype, shape.clone(), data).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn the_four_fixture_dtypes_round_trip() {
        let f: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let d: Vec<u8> = [0.25f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        let i: Vec<u8> = [7i64, -3, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = file_with(&[
            ("c/f", Dtype::F32, vec![2], f),
            ("c/d", Dtype::F64, vec![], d),
            ("c/i", Dtype::I64, vec![3, 1], i),
            ("c/m", Dtype::U8, vec![2, 2], vec![1, 0, 0, 1]),
        ]);
        let file = FixtureFile::from_bytes(Path::new("mem.safetensors"), &bytes).unwrap();
        assert_eq!(file.len(), 4);
        assert_eq!(
            file.get("c/f").unwrap().to_vec::<f32>().unwrap(),
            vec![1.5, -2.0]
        );
        let d = file.get("c/d").unwrap();
        assert_eq!((d.rank(), d.to_vec::<f64>().unwrap()), (0, vec![0.25]));
        assert_eq!(file.get("c/i").unwrap().dims(), &[3, 1]);
        assert_eq!(
            file.get("c/i").unwrap().to_vec::<i64>().unwrap(),
            vec![7, -3, 0]
        );
        assert_eq!(file.get("c/m").unwrap().dtype(), DType::U8);
    }

    #[test]
    fn a_missing_key_names_the_file_and_the_key() {
        let bytes = file_with(&[("a", Dtype::U8, vec![1], vec![1])]);
        let file = FixtureFile::from_bytes(Path::new("x/some.safetensors"), &bytes).unwrap();
        let err = file.get("b").unwrap_err();
        assert!(
            err.contains("x/some.safetensors") && err.contains("`b`"),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_file_gives_an_error_naming_the_file() {
        let dir =
            std::env::temp_dir().join(format!("candle-parity-corrupt-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.safetensors");
        // A header length far beyond the file, then garbage.
        let mut bytes = 1_000_000u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{not json");
        fs::write(&path, &bytes).unwrap();
        let err = FixtureFile::load(&path)
            .err()
            .expect("corrupt file must not load");
        assert!(err.contains("broken.safetensors"), "{err}");
        // A valid header whose data is cut short is caught too.
        let good = file_with(&[("t", Dtype::F32, vec![4], vec![0; 16])]);
        fs::write(&path, &good[..good.len() - 3]).unwrap();
        let err = FixtureFile::load(&path)
            .err()
            .expect("truncated file must not load");
        assert!(err.contains("broken.safetensors"), "{err}");
        let err = FixtureFile::load(&dir.join("absent.safetensors"))
            .err()
            .unwrap();
        assert!(
            err.contains("absent.safetensors") && err.contains("cannot read"),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
