//! Writes the seed inputs of every target into `corpus/<target>/`, where
//! `cargo fuzz run` starts from them.

fn main() {
    for target in candle_fuzz::TARGETS {
        let dir = std::path::Path::new("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (i, seed) in candle_fuzz::seeds(target).iter().enumerate() {
            let path = dir.join(format!("seed-{i}"));
            std::fs::write(&path, seed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        println!("{}", dir.display());
    }
}
