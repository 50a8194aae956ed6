//! libFuzzer target: GPT-2's vocabulary loader (see `candle_fuzz::run`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    candle_fuzz::run("tokenizer_files", data);
});
