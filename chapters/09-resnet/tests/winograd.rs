//! Lessons: Winograd's method for 3 × 3 convolutions. On a CPU with
//! AVX-512 or AVX2 the direct kernels (`conv/direct/`) take most of the `f32`
//! convolutions Winograd's method would, so every test here turns them off
//! first: this file is a test binary of its own, so the switch, which holds
//! for the whole process, changes no other test's method.
//! `cargo test -p chapter-09 --test winograd`.

mod common;

use chapter_09::conv::set_direct_enabled;
use chapter_09::Conv2dOptions;
use common::*;

/// 3 × 3 convolutions with stride 1 and at least 8 channels each way take
/// Winograd's method, `F(2×2, 3×3)`, for their forward pass and their
/// input gradient (where the direct kernels do not take them): odd and even sizes (the last tiles half outside),
/// paddings 0, 1 and 2 (whose input gradients are padded 2, 1 and 0),
/// batches that do not divide into chunks. The numbers are the whole-batch
/// lowering's, to `f32` rounding, and to 1e-12 in `f64`.
#[test]
fn winograd_matches_the_composites() {
    set_direct_enabled(false);
    let cases = [
        (vec![5, 8, 7, 9], vec![12, 8, 3, 3], 1),
        (vec![3, 16, 6, 6], vec![8, 16, 3, 3], 0),
        (vec![2, 9, 5, 4], vec![10, 9, 3, 3], 2),
        (vec![37, 8, 5, 5], vec![8, 8, 3, 3], 1),
        (vec![4, 64, 7, 7], vec![64, 64, 3, 3], 1),
        // Even sizes with padding 1, as in the ResNet's layers.
        (vec![3, 8, 6, 8], vec![8, 8, 3, 3], 1),
        (vec![2, 8, 4, 4], vec![9, 8, 3, 3], 1),
        (vec![2, 9, 8, 4], vec![8, 9, 3, 3], 1),
        (vec![5, 8, 12, 10], vec![8, 8, 3, 3], 1),
    ];
    for (xs, ws, pad) in cases {
        kernels_agree_with_composites(&xs, &ws, &Conv2dOptions::default().padding(pad), 51);
    }
}

/// Winograd's weight gradient, which the CPU kernel takes for images of at
/// least 100 tiles (outputs of about 20 × 20 and more), or 40 in `f32`
/// where the transforms run in AVX-512 registers (14 × 14 and more): odd
/// and even output sizes, paddings 0, 1 and 2, a batch that leaves ragged
/// chunks, and one whose partial sums span several chunks each.
#[test]
fn winograd_weight_gradient_matches_the_composites() {
    set_direct_enabled(false);
    let cases = [
        // 49 and 56 tiles: Winograd's in f32 with AVX-512, else the lowering.
        (vec![4, 8, 14, 14], vec![8, 8, 3, 3], 1),
        (vec![3, 9, 13, 15], vec![10, 9, 3, 3], 1),
        (vec![3, 8, 21, 19], vec![10, 8, 3, 3], 1),
        (vec![2, 9, 23, 21], vec![8, 9, 3, 3], 0),
        (vec![2, 8, 19, 17], vec![12, 8, 3, 3], 2),
        (vec![9, 8, 20, 20], vec![10, 8, 3, 3], 1),
        (vec![17, 16, 20, 20], vec![16, 16, 3, 3], 1),
    ];
    for (xs, ws, pad) in cases {
        kernels_agree_with_composites(&xs, &ws, &Conv2dOptions::default().padding(pad), 53);
    }
}
