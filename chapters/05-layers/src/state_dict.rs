//! State dicts: a model's parameters and buffers by name, saved as
//! safetensors.
//!
//! safetensors is a deliberately simple format: an 8-byte little-endian
//! header length, a JSON header mapping each name to its dtype, shape and
//! byte range, then the raw little-endian data. Unlike a pickle, loading it
//! runs no code, and every length in it can be checked before use, so a
//! corrupt file gives an error instead of a crash. Files we write also carry
//! a SHA-256 checksum in their metadata, so damage that leaves the file well
//! formed (a flipped bit in a weight) is caught too.

use crate::module::{Slot, Visit};
use chapter_02::{
    default_device, with_dtype, DType, Device, Shape, Tensor as RawTensor, WithDType,
};
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// Tensors by dotted name, sorted.
pub type StateDict = BTreeMap<String, RawTensor>;

// ANCHOR: state_dict_error
/// Why a state dict could not be saved, read or loaded into a model.
#[derive(Debug)]
pub enum StateDictError {
    /// Reading or writing the file failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid safetensors, or holds an unsupported dtype.
    Corrupt { path: PathBuf, msg: String },
    /// The names or shapes do not match the model. Every problem is
    /// listed, not just the first, so one run shows everything to fix.
    Mismatch {
        missing: Vec<String>,
        unexpected: Vec<String>,
        shapes: Vec<(String, Shape, Shape)>,
    },
    /// A tensor operation failed.
    Tensor(chapter_02::Error),
}
// ANCHOR_END: state_dict_error

impl fmt::Display for StateDictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateDictError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StateDictError::Corrupt { path, msg } => write!(f, "{}: {msg}", path.display()),
            StateDictError::Mismatch {
                missing,
                unexpected,
                shapes,
            } => {
                write!(f, "load_state_dict:")?;
                if !missing.is_empty() {
                    write!(f, " missing keys: {};", missing.join(", "))?;
                }
                if !unexpected.is_empty() {
                    write!(f, " unexpected keys: {};", unexpected.join(", "))?;
                }
                for (name, expected, got) in shapes {
                    write!(
                        f,
                        " size mismatch for {name}: expected {expected}, got {got};"
                    )?;
                }
                Ok(())
            }
            StateDictError::Tensor(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StateDictError {}

impl From<chapter_02::Error> for StateDictError {
    fn from(e: chapter_02::Error) -> Self {
        StateDictError::Tensor(e)
    }
}

// ANCHOR: to_bytes
/// The safetensors name of each of our dtypes.
fn st_dtype(dtype: DType) -> StDtype {
    match dtype {
        DType::F16 => StDtype::F16,
        DType::BF16 => StDtype::BF16,
        DType::F32 => StDtype::F32,
        DType::F64 => StDtype::F64,
        DType::I64 => StDtype::I64,
        DType::U8 => StDtype::U8,
    }
}

/// Our dtype for a safetensors dtype (booleans are `u8` masks).
fn our_dtype(st: StDtype) -> Option<DType> {
    DType::ALL
        .into_iter()
        .find(|&d| st_dtype(d) == st)
        .or((st == StDtype::BOOL).then_some(DType::U8))
}

/// Little-endian bytes of a tensor, with its safetensors dtype.
fn to_bytes(t: &RawTensor) -> Result<(StDtype, Vec<u8>), chapter_02::Error> {
    let mut bytes = Vec::with_capacity(t.elem_count() * t.dtype().size_in_bytes());
    with_dtype!(t.dtype(), T => {
        for v in t.to_vec::<T>()? {
            v.extend_le_bytes(&mut bytes);
        }
    });
    Ok((st_dtype(t.dtype()), bytes))
}

/// A tensor from a safetensors view (the data is copied out of the file
/// buffer onto `device`).
fn from_view(view: &TensorView<'_>, device: &Device) -> Result<RawTensor, String> {
    let dtype =
        our_dtype(view.dtype()).ok_or_else(|| format!("unsupported dtype {:?}", view.dtype()))?;
    let shape = view.shape().to_vec();
    let bytes = view.data();
    let t = with_dtype!(dtype, T => {
        let values: Option<Vec<T>> = bytes
            .chunks_exact(dtype.size_in_bytes())
            .map(T::from_le_slice)
            .collect();
        let values = values.ok_or("truncated element")?;
        RawTensor::from_vec(values, shape, device)
    });
    t.map_err(|e| e.to_string())
}
// ANCHOR_END: to_bytes

// ANCHOR: save_load
/// Serialises tensors to safetensors bytes (with optional metadata), sealed
/// with a checksum of the whole file (see `seal` below).
pub fn to_safetensors_bytes(
    tensors: &StateDict,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, StateDictError> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (dtype, bytes) = to_bytes(t)?;
        owned.push((name.clone(), dtype, t.dims().to_vec(), bytes));
    }
    let views = owned
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            let view = TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| {
                StateDictError::Corrupt {
                    path: PathBuf::from(name),
                    msg: e.to_string(),
                }
            })?;
            Ok((name.clone(), view))
        })
        .collect::<Result<Vec<_>, StateDictError>>()?;
    let mut metadata = metadata.unwrap_or_default();
    metadata.insert(CHECKSUM_KEY.to_string(), unsealed());
    let mut bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| StateDictError::Corrupt {
            path: PathBuf::from("<memory>"),
            msg: e.to_string(),
        })?;
    seal(&mut bytes).map_err(|msg| StateDictError::Corrupt {
        path: PathBuf::from("<memory>"),
        msg,
    })?;
    Ok(bytes)
}

/// Writes a safetensors file atomically (see [`write_atomically`]).
pub fn save_safetensors(
    path: impl AsRef<Path>,
    tensors: &StateDict,
    metadata: Option<HashMap<String, String>>,
) -> Result<(), StateDictError> {
    let path = path.as_ref();
    let bytes = to_safetensors_bytes(tensors, metadata)?;
    write_atomically(path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk,
/// and renames it into place. A rename within one directory is atomic on
/// POSIX file systems (and replaces on Windows), so a reader, or a run that
/// crashes mid-save, sees either the old file or the new one, never half
/// of one. The temporary name carries the process id, so two processes
/// saving to the same path do not write into each other's file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateDictError> {
    use std::io::Write;
    let io = |source| StateDictError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// Parses safetensors bytes; `path` is only used in error messages. Any
/// malformed, truncated or (for files we wrote) altered input is an
/// error, never a panic.
pub fn from_safetensors_bytes(
    bytes: &[u8],
    path: &Path,
    device: &Device,
) -> Result<StateDict, StateDictError> {
    let corrupt = |msg: String| StateDictError::Corrupt {
        path: path.to_path_buf(),
        msg,
    };
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| corrupt(format!("not a valid safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(e.to_string()))?;
    if let Some(metadata) = header.metadata() {
        verify_checksum(bytes, metadata).map_err(corrupt)?;
    }
    let mut out = StateDict::new();
    for (name, view) in st.tensors() {
        let t = from_view(&view, device).map_err(|m| corrupt(format!("tensor {name}: {m}")))?;
        out.insert(name, t);
    }
    Ok(out)
}

/// Reads a safetensors file into a state dict, on the
/// [default device](chapter_02::default_device).
pub fn load_safetensors(path: impl AsRef<Path>) -> Result<StateDict, StateDictError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| StateDictError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    from_safetensors_bytes(&bytes, path, &default_device()?)
}
// ANCHOR_END: save_load

// ANCHOR: checksum
/// The metadata entry holding the file's checksum.
pub const CHECKSUM_KEY: &str = "candle.checksum";
const CHECKSUM_PREFIX: &str = "sha256:";

/// The checksum's value before it is known: the prefix and 64 zeros.
fn unsealed() -> String {
    format!("{CHECKSUM_PREFIX}{}", "0".repeat(64))
}

/// Where the checksum `value` sits in the file: the byte range of its
/// digits inside the JSON header.
fn digits_span(bytes: &[u8], value: &str) -> Option<std::ops::Range<usize>> {
    let header_len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header = bytes.get(8..8usize.checked_add(header_len)?)?;
    let quoted = format!("\"{value}\"");
    let at = header
        .windows(quoted.len())
        .position(|w| w == quoted.as_bytes())?;
    let start = 8 + at + 1 + CHECKSUM_PREFIX.len();
    Some(start..8 + at + quoted.len() - 1)
}

/// SHA-256 of the whole file with the checksum digits read as zeros.
fn file_digest(bytes: &[u8], digits: std::ops::Range<usize>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(&bytes[..digits.start]);
    hasher.update("0".repeat(digits.len()).as_bytes());
    hasher.update(&bytes[digits.end..]);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes the SHA-256 of the file (header and data, with the checksum's own
/// digits counted as zeros) into the placeholder [`to_safetensors_bytes`]
/// put in the metadata. The checksum's length is fixed, so no offset moves.
///
/// safetensors checks that a file is *well formed*; the checksum also
/// catches a file that is well formed but wrong: a flipped bit in a weight,
/// a renamed tensor, a copy cut short at a tensor boundary.
fn seal(bytes: &mut [u8]) -> Result<(), String> {
    let digits = digits_span(bytes, &unsealed())
        .ok_or("the checksum placeholder is missing from the serialised header")?;
    let digest = file_digest(bytes, digits.clone());
    bytes[digits].copy_from_slice(digest.as_bytes());
    Ok(())
}

/// Checks a file's checksum, if it has one: files written by other tools
/// (PyTorch's, the fixtures) have none and load as they are. A checksum is
/// recognised by its key or, should the key itself be damaged, by its
/// `sha256:` prefix, so no single damaged byte can switch the check off.
fn verify_checksum(bytes: &[u8], metadata: &HashMap<String, String>) -> Result<(), String> {
    let claimed = metadata
        .get(CHECKSUM_KEY)
        .or_else(|| metadata.values().find(|v| v.starts_with(CHECKSUM_PREFIX)));
    let Some(claimed) = claimed else {
        return Ok(());
    };
    let well_formed = claimed.len() == unsealed().len()
        && claimed.starts_with(CHECKSUM_PREFIX)
        && claimed[CHECKSUM_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit());
    let digits = digits_span(bytes, claimed).filter(|_| well_formed);
    let Some(digits) = digits else {
        return Err(format!("malformed checksum {claimed:?}"));
    };
    if file_digest(bytes, digits) != claimed[CHECKSUM_PREFIX.len()..] {
        return Err(
            "checksum mismatch: the file was altered or damaged after it was written".into(),
        );
    }
    Ok(())
}
// ANCHOR_END: checksum

// ANCHOR: state_dict_ext
/// State-dict methods for every module.
pub trait StateDictExt: Visit {
    /// Parameters and buffers by name (the values, detached).
    fn state_dict(&self) -> StateDict {
        let mut out = StateDict::new();
        self.visit("", &mut |name, slot| match slot {
            Slot::Param(t) => {
                out.insert(name.to_string(), t.data());
            }
            Slot::Buffer(b) => {
                out.insert(name.to_string(), b.get());
            }
            Slot::Training(_) => {}
        });
        out
    }

    /// Copies values from `dict` into the module's parameters and buffers.
    /// Nothing is changed unless every key matches and every shape agrees;
    /// otherwise the error lists all missing keys, unexpected keys and
    /// shape mismatches.
    fn load_state_dict(&self, dict: &StateDict) -> Result<(), StateDictError> {
        let mut missing = Vec::new();
        let mut shapes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        self.visit("", &mut |name, slot| {
            let expected = match &slot {
                Slot::Param(t) => t.shape(),
                Slot::Buffer(b) => b.get().shape().clone(),
                Slot::Training(_) => return,
            };
            seen.insert(name.to_string());
            match dict.get(name) {
                None => missing.push(name.to_string()),
                Some(v) if v.shape() != &expected => {
                    shapes.push((name.to_string(), expected, v.shape().clone()))
                }
                Some(_) => {}
            }
        });
        let unexpected: Vec<String> = dict
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() || !shapes.is_empty() {
            return Err(StateDictError::Mismatch {
                missing,
                unexpected,
                shapes,
            });
        }
        let mut result = Ok(());
        self.visit("", &mut |name, slot| {
            if result.is_err() || matches!(slot, Slot::Training(_)) {
                return;
            }
            let value = &dict[name];
            result = match slot {
                Slot::Param(t) => value
                    .to_dtype(t.dtype())
                    .and_then(|v| v.to_device(&t.device()))
                    .and_then(|v| t.set_data(v)),
                Slot::Buffer(b) => value
                    .to_dtype(b.get().dtype())
                    .and_then(|v| v.to_device(b.get().device()))
                    .and_then(|v| b.set(v)),
                Slot::Training(_) => Ok(()),
            };
        });
        result.map_err(StateDictError::Tensor)
    }

    /// Saves the state dict to a safetensors file (atomically).
    fn save(&self, path: impl AsRef<Path>) -> Result<(), StateDictError> {
        save_safetensors(path, &self.state_dict(), None)
    }

    /// Loads a safetensors file written by [`save`](Self::save).
    fn load(&self, path: impl AsRef<Path>) -> Result<(), StateDictError> {
        self.load_state_dict(&load_safetensors(path)?)
    }
}

impl<T: Visit + ?Sized> StateDictExt for T {}
// ANCHOR_END: state_dict_ext
