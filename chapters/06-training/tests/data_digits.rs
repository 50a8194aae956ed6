//! Lesson: small CSV data sets (scikit-learn's digits and iris) and seeded
//! train/test splits. `cargo test -p chapter-06 digits` runs these.

mod data_digits {
    use chapter_06::data::{
        default_data_dir, load_digits, load_iris, Dataset, InMemoryDataset, DIGITS_ROWS,
    };
    use flate2::write::GzEncoder;
    use std::io::Write;
    use std::path::Path;

    fn digits() -> InMemoryDataset {
        load_digits(default_data_dir().join("digits/digits.csv.gz")).unwrap()
    }

    // ANCHOR: digits_load
    #[test]
    fn digits_load_1797_images_of_8x8() {
        let d = digits();
        assert_eq!(d.len(), DIGITS_ROWS);
        assert_eq!(d.feature_shape(), &[64]);
        assert_eq!(&d.labels()[..5], &[0, 1, 2, 3, 4]);
        // Pixels 0..=16 scaled to [0, 1]; the first row is "0,0,5,13,9,1,0,0,...".
        assert_eq!(d.row(0).unwrap()[..4], [0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0]);
        assert_eq!(d.num_classes(), 10);
        assert_eq!(d.class_counts().values().sum::<usize>(), 1797);
    }
    // ANCHOR_END: digits_load

    fn write_gz(path: &Path, text: &str) {
        let mut gz = GzEncoder::new(std::fs::File::create(path).unwrap(), Default::default());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
    }

    #[test]
    fn digits_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digits.csv.gz");
        let good = vec!["0"; 64].join(",") + ",3";
        let cases = [
            (
                format!("{good}\n{}\n", vec!["0"; 64].join(",")),
                "2: expected 65 comma-separated values (64 pixels and a label), found 64",
            ),
            (
                format!("{good}\n\n{}", good.replacen('0', "x", 1)),
                "3: value \"x\" in column 1 is not a small non-negative integer",
            ),
            (
                good.replacen('0', "17", 1),
                "1: pixel 17 in column 1 is outside 0..=16",
            ),
            (
                good.replace(",3", ",12"),
                "1: label 12 is not a digit 0..=9",
            ),
        ];
        for (text, expected) in cases {
            write_gz(&path, &text);
            let e = load_digits(&path).unwrap_err().to_string();
            assert_eq!(e, format!("{}:{expected}", path.display()));
        }
        // Plain text works too (gzip is detected from the bytes).
        std::fs::write(&path, format!("{good}\n{good}\n")).unwrap();
        assert_eq!(load_digits(&path).unwrap().len(), 2);
    }

    #[test]
    fn digits_iris_loads_with_class_names() {
        let iris = load_iris(default_data_dir().join("digits/iris.csv")).unwrap();
        assert_eq!(iris.class_names, ["setosa", "versicolor", "virginica"]);
        assert_eq!(iris.data.len(), 150);
        assert_eq!(iris.data.row(0).unwrap(), [5.1f32, 3.5, 1.4, 0.2]);
        assert_eq!(
            iris.data.class_counts().values().collect::<Vec<_>>(),
            [&50, &50, &50]
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iris.csv");
        std::fs::write(&path, "3,2,a,b\n1,2,0\n3,4,1\n").unwrap();
        let e = load_iris(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: the header promises 3 rows but the file has 2",
                path.display()
            )
        );
        std::fs::write(&path, "1,2,a,b\n1,2,2\n").unwrap();
        let e = load_iris(&path).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("{}:2: class \"2\" is not an index below 2", path.display())
        );
    }

    // ANCHOR: split
    #[test]
    fn digits_stratified_split_keeps_class_proportions() {
        let d = digits();
        let (train, test) = d.stratified_split(0.2, 0).unwrap();
        assert_eq!(train.len() + test.len(), 1797);
        for (label, &n) in &d.class_counts() {
            let n_test = test.class_counts()[label];
            assert_eq!(n_test, (0.2 * n as f64).round() as usize, "class {label}");
        }
        // Seeded: the same seed gives the same split, another seed another.
        assert_eq!(d.stratified_split(0.2, 0).unwrap().1, test);
        assert_ne!(d.stratified_split(0.2, 1).unwrap().1, test);
    }
    // ANCHOR_END: split

    #[test]
    fn digits_shuffled_split_partitions_the_examples() {
        // Label = index, so we can see which examples went where.
        let n = 101;
        let d = InMemoryDataset::new(
            (0..n).map(|i| i as f32).collect(),
            &[1],
            (0..n as i64).collect(),
        )
        .unwrap();
        let (train, test) = d.shuffled_split(0.25, 9).unwrap();
        assert_eq!((train.len(), test.len()), (76, 25));
        let mut all: Vec<i64> = train
            .labels()
            .iter()
            .chain(test.labels())
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, (0..n as i64).collect::<Vec<_>>());
        // Features stay with their labels; each side keeps the original order.
        assert!(test.labels().windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            test.features(),
            test.labels().iter().map(|&l| l as f32).collect::<Vec<_>>()
        );
        assert!(d.shuffled_split(1.5, 0).is_err());
    }
}
