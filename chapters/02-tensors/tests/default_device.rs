//! `set_default_device`: a program's `--device` option, ahead of
//! `CANDLE_DEVICE`. Its own test binary, because the default device is
//! process-wide and the other suites read it.

use chapter_02::{default_device, set_default_device, CountingDevice, DType, Device, Tensor};

#[test]
fn set_default_device_overrides_the_variable_until_cleared() {
    let before = default_device().unwrap();
    let counting = CountingDevice::new(Device::cpu());
    set_default_device(Some(counting.device().clone()));
    assert_eq!(default_device().unwrap(), *counting.device());
    // Tensors made "on the default device" land there.
    let t = Tensor::zeros(3, DType::F32, &default_device().unwrap()).unwrap();
    assert_eq!(t.device(), counting.device());
    assert_eq!(
        counting.counts().calls("full"),
        1,
        "the counting device made the tensor"
    );
    set_default_device(None);
    assert_eq!(default_device().unwrap(), before);
}
