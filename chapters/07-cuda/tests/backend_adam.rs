//! Lesson: Adam's update on the device gives the CPU's numbers bit for bit.
//! Chapter 06 declares the update as an in-place operator; this chapter
//! registers `kernels/adam.cu` for it, and a training step's optimiser
//! then makes one launch per parameter, writing in place.

use chapter_02::dispatch::{call_in_place, in_place_kernel_for};
use chapter_02::{DType, Device, Tensor};
use chapter_06::optim::{AdamConfig, AdamRule, UpdateRule, UpdateStep};

fn emu() -> Device {
    chapter_07::register();
    match std::env::var("CANDLE_DEVICE") {
        Ok(name) if name.trim().starts_with("cuda") => Device::parse(&name).unwrap(),
        _ => Device::parse("cuda-emu").unwrap(),
    }
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec_f64()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

#[test]
fn adam_kernel_matches_the_cpu_bit_for_bit() {
    let dev = emu();
    assert!(in_place_kernel_for::<UpdateStep<AdamRule>>(dev.kind())
        .unwrap()
        .is_some());
    let base = AdamConfig::adam(3e-3);
    for config in [
        base,
        AdamConfig::adamw(3e-3),
        AdamConfig {
            weight_decay: 0.1,
            ..base
        },
        AdamConfig {
            amsgrad: true,
            ..base
        },
        AdamConfig {
            maximize: true,
            ..base
        },
    ] {
        for dtype in [DType::F32, DType::F64] {
            let n = 1000;
            let buffers = AdamRule::buffers(&config).len();
            chapter_02::manual_seed(5);
            let mut cpu: Vec<Tensor> = (0..1 + buffers)
                .map(|_| Tensor::rand(0.0, 1.0, n, dtype, &Device::cpu()).unwrap())
                .collect();
            let mut gpu: Vec<Tensor> = cpu.iter().map(|t| t.to_device(&dev).unwrap()).collect();
            for step in 1..=3 {
                let g = Tensor::randn(0.0, 1.0, n, dtype, &Device::cpu()).unwrap();
                let op = UpdateStep::<AdamRule>::new(config, step).unwrap();
                let mut c: Vec<&mut Tensor> = cpu.iter_mut().collect();
                call_in_place(&op, &mut c, &[&g]).unwrap();
                let g = g.to_device(&dev).unwrap();
                let mut d: Vec<&mut Tensor> = gpu.iter_mut().collect();
                call_in_place(&op, &mut d, &[&g]).unwrap();
            }
            for (i, (c, d)) in cpu.iter().zip(&gpu).enumerate() {
                assert_eq!(bits(c), bits(d), "{config:?} {dtype:?}: state {i}");
            }
        }
    }
}
