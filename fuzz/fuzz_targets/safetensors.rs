//! libFuzzer target: the `safetensors` loader (see `candle_fuzz::run`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    candle_fuzz::run("safetensors", data);
});
