//! Lesson: an optimiser's kernel is an optimisation, never a different
//! answer. Adam's CPU kernel (one loop, in place) must give exactly the
//! bits of its fused program (the composite every device can run), for
//! every switch of the rule, in `f32` and `f64`, on parameters small enough
//! for one core and large enough to be split over two.
//!
//! `cargo test -p chapter-06 --test optim_kernels`

use chapter_02::dispatch::{call_in_place, in_place_kernel_for};
use chapter_02::{DType, DeviceKind, InPlaceOperator, Tensor};
use chapter_06::optim::{AdamConfig, AdamRule, UpdateRule, UpdateStep};

fn random(n: usize, seed: u64, scale: f64, dtype: DType) -> Tensor {
    chapter_02::manual_seed(seed);
    let t = Tensor::randn(0.0, scale, n, DType::F64, &chapter_02::Device::cpu()).unwrap();
    t.to_dtype(dtype).unwrap()
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec_f64()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

#[test]
fn adam_cpu_kernel_matches_the_fused_program_bit_for_bit() {
    assert!(
        in_place_kernel_for::<UpdateStep<AdamRule>>(DeviceKind::CPU)
            .unwrap()
            .is_some(),
        "Adam registers a CPU kernel"
    );
    let base = AdamConfig::adam(3e-3);
    let configs = [
        ("adam", base),
        ("adamw", AdamConfig::adamw(3e-3)),
        (
            "l2",
            AdamConfig {
                weight_decay: 0.1,
                ..base
            },
        ),
        (
            "amsgrad",
            AdamConfig {
                amsgrad: true,
                ..base
            },
        ),
        (
            "maximize",
            AdamConfig {
                maximize: true,
                ..base
            },
        ),
    ];
    for (name, config) in configs {
        for dtype in [DType::F32, DType::F64] {
            for n in [1, 1000, 70_001] {
                let buffers = AdamRule::buffers(&config).len();
                // Three steps, so the moments are not zero and the bias
                // corrections change.
                let mut kernel_state: Vec<Tensor> = (0..1 + buffers)
                    .map(|i| random(n, 10 + i as u64, 1.0, dtype).abs().unwrap())
                    .collect();
                let mut composite_state = kernel_state.clone();
                for step in 1..=3 {
                    let g = random(n, 100 + step, 0.5, dtype);
                    let op = UpdateStep::<AdamRule>::new(config, step).unwrap();
                    let mut k: Vec<&mut Tensor> = kernel_state.iter_mut().collect();
                    call_in_place(&op, &mut k, &[&g]).unwrap();
                    let mut c: Vec<&mut Tensor> = composite_state.iter_mut().collect();
                    op.composite(&mut c, &[&g]).unwrap();
                }
                for (i, (k, c)) in kernel_state.iter().zip(&composite_state).enumerate() {
                    assert_eq!(bits(k), bits(c), "{name} {dtype:?} n={n}: state {i}");
                }
            }
        }
    }
}

#[test]
fn adam_cpu_kernel_leaves_a_shared_parameter_alone() {
    // Value semantics: a clone taken before the update keeps the old values
    // (the kernel writes into a copy of its own).
    let config = AdamConfig::adam(1e-2);
    let mut state: Vec<Tensor> = (0..3).map(|i| random(64, i, 1.0, DType::F32)).collect();
    let before = state[0].clone();
    let old = bits(&before);
    let g = random(64, 9, 1.0, DType::F32);
    let op = UpdateStep::<AdamRule>::new(config, 1).unwrap();
    let mut s: Vec<&mut Tensor> = state.iter_mut().collect();
    call_in_place(&op, &mut s, &[&g]).unwrap();
    assert_eq!(bits(&before), old, "the clone is unchanged");
    assert_ne!(bits(&state[0]), old, "the parameter moved");
}

#[test]
fn update_step_refuses_a_gradient_of_another_shape() {
    let config = AdamConfig::adam(1e-2);
    let mut state: Vec<Tensor> = (0..3).map(|i| random(8, i, 1.0, DType::F32)).collect();
    let g = random(9, 9, 1.0, DType::F32);
    let op = UpdateStep::<AdamRule>::new(config, 1).unwrap();
    let mut s: Vec<&mut Tensor> = state.iter_mut().collect();
    let e = call_in_place(&op, &mut s, &[&g]).unwrap_err().to_string();
    assert!(
        e.contains("Adam") && e.contains("[8]") && e.contains("[9]"),
        "{e}"
    );
}
