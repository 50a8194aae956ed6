//! Lessons: bad input is reported before anything runs, by an error that
//! names the operation, what it expected and the shapes it got.
//! `cargo test -p chapter-09 --test errors`.

mod common;

use chapter_02::DType;
use chapter_03::Tensor;
use chapter_09::{
    adaptive_avg_pool2d, avg_pool2d, conv2d, conv_transpose2d, max_pool2d, AvgPool2dOptions,
    Conv2dOptions, ConvTranspose2dOptions, Padding, Pool2dOptions,
};
use common::*;

/// Asserts that `msg` starts with `op:` and mentions every piece of `parts`.
fn says(msg: &str, op: &str, parts: &[&str]) {
    assert!(
        msg.starts_with(&format!("{op}:")),
        "{msg:?} does not name {op}"
    );
    for p in parts {
        assert!(msg.contains(p), "{msg:?} does not mention {p:?}");
    }
}

#[test]
fn conv2d_kernel_larger_than_the_padded_input() {
    let (x, w) = (input(&[1, 2, 4, 4], 1), input(&[3, 2, 5, 5], 2));
    let msg = err(conv2d(&x, &w, None, &Conv2dOptions::default()));
    says(
        &msg,
        "conv2d",
        &["larger than the padded input", "[1, 2, 4, 4]", "5×5"],
    );
    // With padding 1 the padded input is 6×6 and the kernel fits.
    assert!(conv2d(&x, &w, None, &Conv2dOptions::default().padding(1)).is_ok());
    // Dilation widens the kernel: 3 taps spaced 3 apart span 7.
    let w3 = input(&[3, 2, 3, 3], 3);
    let msg = err(conv2d(&x, &w3, None, &Conv2dOptions::default().dilation(3)));
    says(&msg, "conv2d", &["spans 7×7", "[1, 2, 4, 4]"]);
}

#[test]
fn conv2d_channels_not_divisible_by_groups() {
    let (x, w) = (input(&[1, 3, 5, 5], 4), input(&[4, 1, 3, 3], 5));
    let msg = err(conv2d(&x, &w, None, &Conv2dOptions::default().groups(2)));
    says(
        &msg,
        "conv2d",
        &["groups = 2", "input channels (3", "[1, 3, 5, 5]"],
    );
    let (x, w) = (input(&[1, 4, 5, 5], 6), input(&[3, 2, 3, 3], 7));
    let msg = err(conv2d(&x, &w, None, &Conv2dOptions::default().groups(2)));
    says(&msg, "conv2d", &["output channels (3", "[3, 2, 3, 3]"]);
}

#[test]
fn conv2d_wrong_rank_or_channel_count() {
    let w = input(&[4, 3, 3, 3], 8);
    let msg = err(conv2d(
        &input(&[3, 5, 5], 9),
        &w,
        None,
        &Conv2dOptions::default(),
    ));
    says(&msg, "conv2d", &["4-D input", "[3, 5, 5]"]);
    let msg = err(conv2d(
        &input(&[1, 2, 5, 5], 10),
        &w,
        None,
        &Conv2dOptions::default(),
    ));
    says(
        &msg,
        "conv2d",
        &["3 channels", "[1, 2, 5, 5]", "[4, 3, 3, 3]"],
    );
    let msg = err(conv2d(
        &input(&[1, 3, 5, 5], 11),
        &input(&[4, 3, 3], 12),
        None,
        &Conv2dOptions::default(),
    ));
    says(&msg, "conv2d", &["4-D weight", "[4, 3, 3]"]);
}

#[test]
fn conv2d_bias_dtype_and_option_errors() {
    let (x, w) = (input(&[1, 3, 5, 5], 13), input(&[4, 3, 3, 3], 14));
    let msg = err(conv2d(
        &x,
        &w,
        Some(&input(&[3], 15)),
        &Conv2dOptions::default(),
    ));
    says(&msg, "conv2d", &["[3]", "[4]", "bias"]);
    let w32 = Tensor::from_raw(w.data().to_dtype(DType::F32).unwrap());
    let msg = err(conv2d(&x, &w32, None, &Conv2dOptions::default()));
    says(&msg, "conv2d", &["f64", "f32"]);
    let same = Conv2dOptions {
        padding: Padding::Same,
        ..Default::default()
    }
    .stride(2);
    says(
        &err(conv2d(&x, &w, None, &same)),
        "conv2d",
        &["'same'", "stride 1"],
    );
    says(
        &err(conv2d(&x, &w, None, &Conv2dOptions::default().stride(0))),
        "conv2d",
        &["stride must be positive"],
    );
}

#[test]
fn conv_transpose2d_errors() {
    let (x, w) = (input(&[1, 4, 3, 3], 16), input(&[4, 2, 3, 3], 17));
    let opts = ConvTranspose2dOptions {
        output_padding: (2, 2),
        stride: (2, 2),
        ..Default::default()
    };
    says(
        &err(conv_transpose2d(&x, &w, None, &opts)),
        "conv_transpose2d",
        &["output padding (2, 2)", "stride (2, 2)"],
    );
    let msg = err(conv_transpose2d(
        &input(&[1, 3, 3, 3], 18),
        &w,
        None,
        &Default::default(),
    ));
    says(
        &msg,
        "conv_transpose2d",
        &["4 channels", "[1, 3, 3, 3]", "[4, 2, 3, 3]"],
    );
    let opts = ConvTranspose2dOptions {
        groups: 3,
        ..Default::default()
    };
    says(
        &err(conv_transpose2d(&x, &w, None, &opts)),
        "conv_transpose2d",
        &["groups = 3", "[1, 4, 3, 3]"],
    );
    let opts = ConvTranspose2dOptions {
        padding: (3, 3),
        ..Default::default()
    };
    says(
        &err(conv_transpose2d(&input(&[1, 4, 1, 1], 19), &w, None, &opts)),
        "conv_transpose2d",
        &["removes the whole output"],
    );
}

#[test]
fn pooling_errors() {
    let x = input(&[1, 2, 3, 3], 20);
    says(
        &err(max_pool2d(&x, &Pool2dOptions::new(4))),
        "max_pool2d",
        &["larger than the padded input", "[1, 2, 3, 3]"],
    );
    says(
        &err(max_pool2d(&x, &Pool2dOptions::new(2).padding(2))),
        "max_pool2d",
        &["at most half"],
    );
    says(
        &err(max_pool2d(&input(&[2, 3, 3], 21), &Pool2dOptions::new(2))),
        "max_pool2d",
        &["4-D input", "[2, 3, 3]"],
    );
    says(
        &err(avg_pool2d(&x, &AvgPool2dOptions::new(6).padding(1))),
        "avg_pool2d",
        &["larger than the padded input"],
    );
    says(
        &err(adaptive_avg_pool2d(&input(&[3, 3], 22), (1, 1))),
        "adaptive_avg_pool2d",
        &["4-D input", "[3, 3]"],
    );
}

/// The operators are public, and so is the geometry: one built by hand
/// that does not fit its numbers is refused before a kernel indexes out of
/// bounds.
#[test]
fn operators_refuse_an_inconsistent_geometry() {
    use chapter_02::dispatch::call;
    use chapter_09::conv::{Col2im, Im2col};
    use chapter_09::ConvGeometry;
    let good = ConvGeometry::conv2d(
        &[1, 2, 5, 5],
        &[2, 2, 3, 3],
        None,
        &Conv2dOptions::default(),
    )
    .unwrap();
    let too_many_windows = ConvGeometry { out_h: 4, ..good };
    let x = randn(&[1, 2, 5, 5], 23);
    says(
        &err(call(&Im2col(too_many_windows), &[&x])),
        "im2col",
        &["inconsistent geometry"],
    );
    let zero_stride = ConvGeometry {
        stride: (0, 1),
        ..good
    };
    let c = randn(good.cols_shape().dims(), 24);
    says(
        &err(call(&Col2im(zero_stride), &[&c])),
        "col2im",
        &["inconsistent geometry"],
    );
    let bad_groups = ConvGeometry { groups: 3, ..good };
    says(
        &err(call(&Im2col(bad_groups), &[&x])),
        "im2col",
        &["inconsistent geometry"],
    );
    assert!(call(&Im2col(good), &[&x]).is_ok());
}
