//! Lesson: the IDX format of MNIST, and readers that never trust a file.
//! A header is four big-endian u32 (images) or two (labels); every size in it
//! is checked against the bytes present, and every failure is an `Err` that
//! names the file. `cargo test -p chapter-06 idx` runs these.

mod data_idx {
    use chapter_06::data::idx::{
        encode_idx_images, encode_idx_labels, parse_idx_images, parse_idx_labels, read_idx_images,
        read_idx_labels, write_idx_images, write_idx_labels, IdxImages,
    };
    use chapter_06::data::{
        decode_maybe_gzip, default_data_dir, Dataset, Mnist, MNIST_MEAN, MNIST_STD,
    };
    use proptest::prelude::*;
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;
    use std::time::Instant;

    fn sample_images() -> IdxImages {
        IdxImages {
            count: 3,
            rows: 2,
            cols: 4,
            pixels: (0..24).map(|i| (i * 11) as u8).collect(),
        }
    }

    /// The error message of `r`, which must be an error.
    fn message<T: std::fmt::Debug>(r: chapter_06::data::Result<T>) -> String {
        r.expect_err("expected an error").to_string()
    }

    // ANCHOR: round_trip
    #[test]
    fn idx_round_trip_gzipped_and_plain() {
        let dir = tempfile::tempdir().unwrap();
        let images = sample_images();
        let labels = vec![7u8, 0, 3];
        for gzip in [false, true] {
            let img_path = dir.path().join(format!("images-{gzip}"));
            let lbl_path = dir.path().join(format!("labels-{gzip}"));
            write_idx_images(&img_path, &images, gzip).unwrap();
            write_idx_labels(&lbl_path, &labels, gzip).unwrap();
            // The reader looks at the bytes, not the name, to detect gzip.
            let raw = std::fs::read(&img_path).unwrap();
            assert_eq!(raw.starts_with(&[0x1f, 0x8b]), gzip);
            assert_eq!(read_idx_images(&img_path).unwrap(), images);
            assert_eq!(read_idx_labels(&lbl_path).unwrap(), labels);
        }
    }
    // ANCHOR_END: round_trip

    #[test]
    fn idx_header_is_big_endian_magic_count_rows_cols() {
        let bytes = encode_idx_images(&sample_images()).unwrap();
        assert_eq!(
            &bytes[..16],
            &[0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 4]
        );
        assert_eq!(bytes.len(), 16 + 24);
        let labels = encode_idx_labels(&[1, 2]).unwrap();
        assert_eq!(labels, [0, 0, 8, 1, 0, 0, 0, 2, 1, 2]);
    }

    // ANCHOR: corrupt_messages
    #[test]
    fn idx_bad_magic_names_the_file_and_both_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-images-idx3-ubyte.gz");
        // A label file where an image file should be.
        write_idx_labels(&path, &[5, 0, 4], true).unwrap();
        assert_eq!(
            message(read_idx_images(&path)),
            format!(
                "{}: bad magic number 0x00000801, expected 2051 (0x00000803) for an IDX image file",
                path.display()
            )
        );
    }

    #[test]
    fn idx_truncated_header_and_data_are_reported_with_sizes() {
        let p = Path::new("data/mnist/t10k-images-idx3-ubyte");
        let full = encode_idx_images(&sample_images()).unwrap();
        assert_eq!(
            message(parse_idx_images(p, &full[..10])),
            "data/mnist/t10k-images-idx3-ubyte: truncated header: the file has 10 bytes, \
             but an IDX image file starts with a header of 16 bytes (magic, count, rows, cols)"
        );
        assert_eq!(
            message(parse_idx_images(p, &full[..full.len() - 1])),
            "data/mnist/t10k-images-idx3-ubyte: truncated data: the header promises \
             3 images of 2x4 (24 bytes) but only 23 bytes follow it"
        );
        let mut long = full.clone();
        long.extend_from_slice(&[0, 0]);
        assert_eq!(
            message(parse_idx_images(p, &long)),
            "data/mnist/t10k-images-idx3-ubyte: 2 unexpected bytes after the 3 images of 2x4 \
             (24 bytes) that the header promises"
        );
        let labels = encode_idx_labels(&[1, 2, 3]).unwrap();
        assert_eq!(
            message(parse_idx_labels(Path::new("l"), &labels[..6])),
            "l: truncated header: the file has 6 bytes, but an IDX label file starts with \
             a header of 8 bytes (magic, count)"
        );
        assert_eq!(
            message(parse_idx_labels(Path::new("l"), &labels[..10])),
            "l: truncated data: the header promises 3 labels (3 bytes) but only 2 bytes follow it"
        );
    }

    #[test]
    fn idx_absurd_dimensions_are_an_error_not_an_allocation() {
        let mut header = Vec::new();
        for v in [2051u32, u32::MAX, u32::MAX, u32::MAX] {
            header.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            message(parse_idx_images(Path::new("x.idx"), &header)),
            "x.idx: absurd header: 4294967295 images of 4294967295x4294967295 pixels overflow the address space"
        );
        // Large but representable: caught by comparing with the bytes present.
        let mut header = Vec::new();
        for v in [2051u32, 1_000_000, 28, 28] {
            header.extend_from_slice(&v.to_be_bytes());
        }
        assert!(message(parse_idx_images(Path::new("x.idx"), &header)).contains("truncated data"));
        // Images of zero pixels are nonsense.
        let mut header = Vec::new();
        for v in [2051u32, 5, 0, 28] {
            header.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(
            message(parse_idx_images(Path::new("x.idx"), &header)),
            "x.idx: 5 images of 0x28 pixels: an image cannot be empty"
        );
    }
    // ANCHOR_END: corrupt_messages

    #[test]
    fn idx_corrupt_gzip_and_missing_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.gz");
        write_idx_labels(&path, &[1; 1000], true).unwrap();
        let gz = std::fs::read(&path).unwrap();
        std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
        let m = message(read_idx_labels(&path));
        assert!(
            m.starts_with(&format!("{}: corrupt gzip stream: ", path.display())),
            "{m}"
        );

        let missing = dir.path().join("nope.gz");
        let m = message(read_idx_images(&missing));
        assert!(
            m.starts_with(&format!("{}: cannot read: ", missing.display())),
            "{m}"
        );
    }

    /// Writes a small MNIST-shaped folder: `n_train` and 2 test images of 28x28.
    fn write_fake_mnist(dir: &Path, n_train: usize, n_train_labels: usize) {
        let images = |n: usize| IdxImages {
            count: n,
            rows: 28,
            cols: 28,
            pixels: (0..n * 784).map(|i| (i % 256) as u8).collect(),
        };
        write_idx_images(
            dir.join("train-images-idx3-ubyte.gz"),
            &images(n_train),
            true,
        )
        .unwrap();
        write_idx_labels(
            dir.join("train-labels-idx1-ubyte.gz"),
            &vec![3; n_train_labels],
            true,
        )
        .unwrap();
        // The test files uncompressed: the loader accepts both names.
        write_idx_images(dir.join("t10k-images-idx3-ubyte"), &images(2), false).unwrap();
        write_idx_labels(dir.join("t10k-labels-idx1-ubyte"), &[1, 2], false).unwrap();
    }

    #[test]
    fn idx_mnist_loader_checks_that_images_and_labels_agree() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_mnist(dir.path(), 3, 3);
        let m = Mnist::load(dir.path()).unwrap();
        assert_eq!((m.train.len(), m.test.len()), (3, 2));
        assert_eq!(m.train.row(0).unwrap()[255], 1.0);

        write_fake_mnist(dir.path(), 3, 4);
        let labels = dir.path().join("train-labels-idx1-ubyte.gz");
        let images = dir.path().join("train-images-idx3-ubyte.gz");
        assert_eq!(
            message(Mnist::load(dir.path())),
            format!(
                "{}: 4 labels, but {} holds 3 images",
                labels.display(),
                images.display()
            )
        );

        write_fake_mnist(dir.path(), 3, 3);
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
        let m = message(Mnist::load(dir.path()));
        let gz = dir.path().join("t10k-labels-idx1-ubyte.gz");
        assert!(
            m.starts_with(&format!("{}: cannot read: no such file", gz.display())),
            "{m}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 500,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        // ANCHOR: fuzz
        /// Random bytes, with or without a valid magic or a gzip header, give
        /// `Ok` or an `Err` naming the file, never a panic.
        #[test]
        fn idx_random_bytes_never_panic(
            prefix in prop::sample::select(vec![vec![], vec![0u8, 0, 8, 3], vec![0, 0, 8, 1], vec![0x1f, 0x8b, 8, 0]]),
            tail in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let path = Path::new("fuzz.idx");
            let mut bytes = prefix;
            bytes.extend(tail);
            for result in [
                parse_idx_images(path, &bytes).map(|_| ()),
                parse_idx_labels(path, &bytes).map(|_| ()),
                decode_maybe_gzip(path, bytes.clone()).map(|_| ()),
            ] {
                if let Err(e) = result {
                    prop_assert!(e.to_string().starts_with("fuzz.idx: "), "{}", e);
                }
            }
        }
        // ANCHOR_END: fuzz

        /// Every strict prefix of a valid file is an error (and never a panic).
        #[test]
        fn idx_every_truncation_is_an_error(cut in 0usize..40) {
            let full = encode_idx_images(&sample_images()).unwrap();
            prop_assert!(parse_idx_images(Path::new("f"), &full[..cut]).is_err());
            let labels = encode_idx_labels(&[1, 2, 3]).unwrap();
            prop_assert!(parse_idx_labels(Path::new("f"), &labels[..cut.min(10)]).is_err());
        }

        /// A random small image file survives the round trip, gzipped or not.
        #[test]
        fn idx_round_trip_random(
            count in 0usize..4, rows in 1usize..5, cols in 1usize..5, seed in any::<u8>(), gzip in any::<bool>()
        ) {
            let pixels: Vec<u8> = (0..count * rows * cols).map(|i| (i as u8).wrapping_mul(seed)).collect();
            let images = IdxImages { count, rows, cols, pixels };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("i");
            write_idx_images(&path, &images, gzip).unwrap();
            prop_assert_eq!(read_idx_images(&path).unwrap(), images);
        }
    }

    fn mnist_dir() -> PathBuf {
        default_data_dir().join("mnist")
    }

    fn mnist() -> &'static Mnist {
        static MNIST: OnceLock<Mnist> = OnceLock::new();
        MNIST.get_or_init(|| {
            let start = Instant::now();
            let m = Mnist::load(mnist_dir()).unwrap();
            println!("Mnist::load: {:.0} ms", start.elapsed().as_secs_f64() * 1e3);
            m
        })
    }

    // ANCHOR: real_mnist
    #[test]
    fn idx_real_mnist_files_load_with_known_first_labels() {
        let m = mnist();
        assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
        assert_eq!(m.train.feature_shape(), &[784]);
        assert_eq!(&m.train.labels()[..5], &[5, 0, 4, 1, 9]);
        assert_eq!(&m.test.labels()[..5], &[7, 2, 1, 0, 4]);
        // Pixels scaled to [0, 1]; every class present.
        let px = m.train.features();
        assert!(px.iter().all(|&p| (0.0..=1.0).contains(&p)));
        assert_eq!(m.train.num_classes(), 10);
        assert_eq!(m.train.class_counts()[&1], 6742);
    }
    // ANCHOR_END: real_mnist

    #[test]
    fn idx_real_mnist_normalized_is_centred() {
        let start = Instant::now();
        let m = Mnist::load_normalized(mnist_dir()).unwrap();
        println!(
            "Mnist::load_normalized: {:.0} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
        let raw = mnist();
        for (n, r) in m.test.features().iter().zip(raw.test.features()).take(2000) {
            assert!((n - (r - MNIST_MEAN) / MNIST_STD).abs() < 1e-5);
        }
        let mean = m.train.features().iter().map(|&x| x as f64).sum::<f64>()
            / m.train.features().len() as f64;
        assert!(mean.abs() < 1e-3, "mean after normalising: {mean}");
    }
}
