//! Lessons: the convolutional layers as modules: PyTorch's parameter names
//! and shapes, its initialisation bounds, and errors that name the layer.
//! `cargo test -p chapter-09 --test layers`.

mod common;

use chapter_02::DType;
use chapter_05::{Module, ModuleExt};
use chapter_09::{
    conv2d, AdaptiveAvgPool2d, Conv2d, Conv2dOptions, MaxPool2d, Padding, Pool2dOptions,
};
use common::*;

fn layer(c: usize, o: usize, k: usize, opts: Conv2dOptions, bias: bool) -> Conv2d {
    Conv2d::with_options(c, o, (k, k), opts, bias, DType::F64, &dev()).unwrap()
}

#[test]
fn conv2d_layer_has_pytorchs_parameters_and_bounds() {
    let conv = layer(4, 6, 3, Conv2dOptions::default().groups(2), true);
    let named: Vec<(String, Vec<usize>)> = conv
        .named_parameters()
        .into_iter()
        .map(|(n, t)| (n, t.dims()))
        .collect();
    assert_eq!(
        named,
        [
            ("weight".into(), vec![6, 2, 3, 3]),
            ("bias".into(), vec![6])
        ]
    );
    // U(−1/√fan_in, 1/√fan_in) with fan_in = 2·3·3 = 18, for both.
    let bound = 1.0 / 18f64.sqrt();
    for (name, t) in conv.named_parameters() {
        let v = t.to_vec_f64().unwrap();
        assert!(
            v.iter().all(|x| x.abs() <= bound),
            "{name} outside ±{bound}"
        );
        assert!(
            v.iter().any(|x| x.abs() > bound / 2.0),
            "{name} all near zero"
        );
    }
    assert!(layer(2, 2, 1, Conv2dOptions::default(), false)
        .bias
        .is_none());
}

#[test]
fn conv2d_layer_forward_is_conv2d() {
    let opts = Conv2dOptions {
        padding: Padding::Same,
        ..Default::default()
    };
    let conv = layer(3, 5, 3, opts, true);
    let x = input(&[2, 3, 6, 6], 1);
    let y = conv.forward(&x).unwrap();
    let want = conv2d(&x, &conv.weight, conv.bias.as_ref(), &opts).unwrap();
    assert_eq!(y.dims(), vec![2, 5, 6, 6]);
    assert_eq!(y.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
}

#[test]
fn conv2d_layer_errors_name_the_layer() {
    let conv = layer(3, 4, 3, Conv2dOptions::default(), true);
    let msg = err(conv.forward(&input(&[2, 4, 6, 6], 2)));
    assert!(
        msg.starts_with("Conv2d:") && msg.contains("[N, 3, H, W]") && msg.contains("[2, 4, 6, 6]"),
        "{msg}"
    );
    let msg = err(conv.forward(&input(&[3, 6, 6], 3)));
    assert!(
        msg.starts_with("Conv2d:") && msg.contains("[3, 6, 6]"),
        "{msg}"
    );
    let bad = Conv2d::with_options(
        3,
        4,
        (3, 3),
        Conv2dOptions::default().groups(2),
        true,
        DType::F64,
        &dev(),
    );
    let msg = bad.err().expect("an error").to_string();
    assert!(
        msg.starts_with("Conv2d:") && msg.contains("groups = 2"),
        "{msg}"
    );
}

#[test]
fn pooling_layers_have_no_parameters() {
    let pool = MaxPool2d {
        options: Pool2dOptions::new(3).stride(2).padding(1),
    };
    let gap = AdaptiveAvgPool2d {
        output_size: (1, 1),
    };
    assert!(pool.parameters().is_empty() && gap.parameters().is_empty());
    let y = gap
        .forward(&pool.forward(&input(&[2, 3, 8, 8], 4)).unwrap())
        .unwrap();
    assert_eq!(y.dims(), vec![2, 3, 1, 1]);
}
