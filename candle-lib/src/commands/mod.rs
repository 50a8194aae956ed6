//! The sub-commands of the `candle` program. Each module holds one command's
//! options and its `run` function; `main.rs` only parses and dispatches.

pub mod chat;
pub mod dashboard;
pub mod data;
pub mod download;
pub mod experiment;
pub mod generate;
pub mod gpt_run;
pub mod loaded_model;
pub mod sampling_args;
pub mod scalar_demo;
pub mod tokenize;
pub mod train;
pub mod train_gpt;
pub mod values;
