//! libFuzzer target: the `idx` loader (see `candle_fuzz::run`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    candle_fuzz::run("idx", data);
});
