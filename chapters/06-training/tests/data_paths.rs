//! Lesson: an error about a file names the file, and says what is wrong
//! with the path itself when that is the problem: a folder where a file
//! should be is "a directory", not "no such file".
//!
//! `cargo test -p chapter-06 data_paths` runs these.

mod data_paths {
    use chapter_06::data::idx::{read_idx_images, read_idx_labels};
    use chapter_06::data::{load_digits, load_iris, Mnist};

    #[test]
    fn data_paths_a_folder_where_the_mnist_file_should_be_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("train-images-idx3-ubyte.gz");
        std::fs::create_dir(&bad).unwrap();
        let err = Mnist::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory, expected the file"), "{err}");
        assert!(err.contains(&bad.display().to_string()), "{err}");
    }

    #[test]
    fn data_paths_every_reader_given_a_folder_says_it_is_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let name = dir.path().display().to_string();
        let errors = [
            read_idx_images(dir.path()).unwrap_err().to_string(),
            read_idx_labels(dir.path()).unwrap_err().to_string(),
            load_digits(dir.path()).unwrap_err().to_string(),
            load_iris(dir.path()).unwrap_err().to_string(),
        ];
        for err in errors {
            assert!(
                err.contains(&name) && err.contains("is a directory"),
                "{err}"
            );
        }
    }

    #[test]
    fn data_paths_a_file_given_as_the_mnist_folder_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mnist");
        std::fs::write(&file, "not a folder").unwrap();
        let err = Mnist::load(&file).unwrap_err().to_string();
        assert!(err.contains("is a file, expected the folder"), "{err}");
        assert!(err.contains(&file.display().to_string()), "{err}");
    }
}
