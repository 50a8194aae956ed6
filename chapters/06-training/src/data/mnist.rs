//! MNIST: 70000 handwritten digits, 28x28 grey pixels, as two datasets.

use super::idx::{parse_idx_images, parse_idx_labels};
use super::{read_maybe_gzip, DataError, InMemoryDataset, Result};
use std::path::{Path, PathBuf};

/// Mean pixel value of the MNIST training set, after scaling to `[0, 1]`.
pub const MNIST_MEAN: f32 = 0.1307;
/// Standard deviation of the MNIST training pixels, after scaling to `[0, 1]`.
pub const MNIST_STD: f32 = 0.3081;

/// How to turn pixel bytes into features.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MnistOptions {
    /// Subtract [`MNIST_MEAN`] and divide by [`MNIST_STD`] after scaling to
    /// `[0, 1]`, as the classic PyTorch example does.
    pub normalize: bool,
}

/// The MNIST training (60000) and test (10000) sets. Features are flattened
/// `[784]` rows (use [`InMemoryDataset::with_feature_shape`] for `[1, 28, 28]`),
/// labels are the digits 0..=9.
#[derive(Debug, Clone)]
pub struct Mnist {
    pub train: InMemoryDataset,
    pub test: InMemoryDataset,
}

impl Mnist {
    /// Loads MNIST from `dir` (e.g. `default_data_dir().join("mnist")`) with
    /// pixels scaled to `[0, 1]`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Mnist> {
        Mnist::load_with(dir, MnistOptions::default())
    }

    /// Loads MNIST from `dir`, scaled to `[0, 1]` and normalised with
    /// [`MNIST_MEAN`] and [`MNIST_STD`].
    pub fn load_normalized(dir: impl AsRef<Path>) -> Result<Mnist> {
        Mnist::load_with(dir, MnistOptions { normalize: true })
    }

    // ANCHOR: mnist_load
    /// Loads MNIST from `dir`, which holds the four IDX files, gzipped
    /// (`train-images-idx3-ubyte.gz`) or not (`train-images-idx3-ubyte`).
    /// The training and test sets are read on two threads.
    pub fn load_with(dir: impl AsRef<Path>, options: MnistOptions) -> Result<Mnist> {
        let dir = dir.as_ref();
        let (train, test) = std::thread::scope(|s| {
            let train = s.spawn(|| load_split(dir, "train", options));
            let test = load_split(dir, "t10k", options);
            let train = train.join().unwrap_or_else(|_| {
                Err(DataError::invalid(
                    "Mnist::load",
                    "the thread reading the training set panicked",
                ))
            });
            (train, test)
        });
        Ok(Mnist {
            train: train?,
            test: test?,
        })
    }
    // ANCHOR_END: mnist_load
}

/// `dir/name.gz` if it exists, else `dir/name` if that exists, else an error
/// naming the `.gz` path and how to get it.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    // A folder where the file should be is a mistake worth naming as such
    // (not "no such file", which would send the reader looking elsewhere).
    for path in [&gz, &plain] {
        if path.is_dir() {
            return Err(DataError::format(
                path,
                format!(
                    "is a directory, expected the file {} (or {})",
                    gz.display(),
                    plain.display()
                ),
            ));
        }
    }
    if !dir.is_dir() && dir.exists() {
        return Err(DataError::format(
            dir,
            "is a file, expected the folder holding the MNIST files",
        ));
    }
    if gz.is_file() {
        Ok(gz)
    } else if plain.is_file() {
        Ok(plain)
    } else {
        Err(DataError::io(
            &gz,
            "read",
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no such file (nor {}); the repository ships MNIST in data/mnist, or run \
                     `candle data download mnist`",
                    plain.display()
                ),
            ),
        ))
    }
}

// ANCHOR: load_split
/// Reads `{prefix}-images-idx3-ubyte[.gz]` and `{prefix}-labels-idx1-ubyte[.gz]`.
fn load_split(dir: &Path, prefix: &str, options: MnistOptions) -> Result<InMemoryDataset> {
    let images_path = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = parse_idx_images(&images_path, &read_maybe_gzip(&images_path)?)?;
    let labels = parse_idx_labels(&labels_path, &read_maybe_gzip(&labels_path)?)?;
    if labels.len() != images.count {
        return Err(DataError::format(
            &labels_path,
            format!(
                "{} labels, but {} holds {} images",
                labels.len(),
                images_path.display(),
                images.count
            ),
        ));
    }
    if (images.rows, images.cols) != (28, 28) {
        return Err(DataError::format(
            &images_path,
            format!(
                "images are {}x{}, but MNIST images are 28x28",
                images.rows, images.cols
            ),
        ));
    }
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err(DataError::format(
            &labels_path,
            format!("label {l} at index {i} is not a digit 0..=9"),
        ));
    }
    // A byte has 256 values: map them through a table instead of
    // dividing 47 million times.
    let (mean, std) = if options.normalize {
        (MNIST_MEAN, MNIST_STD)
    } else {
        (0.0, 1.0)
    };
    let table: Vec<f32> = (0..256).map(|p| (p as f32 / 255.0 - mean) / std).collect();
    let features = images.pixels.iter().map(|&p| table[p as usize]).collect();
    let labels = labels.iter().map(|&l| l as i64).collect();
    InMemoryDataset::new(features, &[images.rows * images.cols], labels)
}
// ANCHOR_END: load_split
