//! Registers chapter 07's devices (`cuda`, `cuda-emu`) and kernels before
//! any test runs: the included suites open their device with
//! `default_device()`, which must already know the kind `CANDLE_DEVICE`
//! names. A constructor runs before `main`, so no test file is edited.

#[ctor::ctor]
fn register_chapter_07() {
    chapter_07::register();
}
