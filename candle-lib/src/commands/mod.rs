//! The sub-commands of the `candle` program. Each module holds one command's
//! options and its `run` function; `main.rs` only parses and dispatches.

pub mod dashboard;
pub mod data;
pub mod download;
pub mod scalar_demo;
pub mod tokenize;
pub mod train;
pub mod train_gpt;
pub mod values;
