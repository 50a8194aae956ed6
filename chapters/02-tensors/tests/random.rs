//! Lesson: random numbers come from a counter-based generator, Philox
//! 4x32-10, so that any device can make them where the tensor lives and
//! every device makes the same ones. `cargo test -p chapter-02 random`.

mod common;

use chapter_02::philox::{block, philox4x32, philox4x32_rounds, unit_f32, words_for};
use chapter_02::{DType, Distribution, Generator, GeneratorState, Tensor};
use common::*;

// ANCHOR: known_answers
/// The known-answer vectors published with Random123 (the authors'
/// reference implementation, `kat_vectors`): counter, key, and the block
/// Philox 4x32 must produce. cuRAND, PyTorch and JAX implement the same
/// function, so matching these means matching them.
#[test]
fn random_philox_matches_the_published_known_answers() {
    let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        (
            [0, 0, 0, 0],
            [0, 0],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [0xffffffff; 4],
            [0xffffffff; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    for (counter, key, expected) in cases {
        assert_eq!(philox4x32(counter, key), expected);
    }
    // The same file's 7-round vector: the rounds are what they say.
    assert_eq!(
        philox4x32_rounds(
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            7
        ),
        [0x4dfccaba, 0x190a87f0, 0xc47362ba, 0xb6b5242a]
    );
}
// ANCHOR_END: known_answers

#[test]
fn random_stream_is_blocks_of_four_words() {
    // Block b of seed s is philox([b, 0, 0, 0], [s_lo, s_hi]).
    let seed = 0x0123_4567_89ab_cdef_u64;
    assert_eq!(
        block(seed, 5),
        philox4x32([5, 0, 0, 0], [0x89ab_cdef, 0x0123_4567])
    );
    // An f32 uniform is the top 24 bits of one word.
    let t = Tensor::rand_with(0.0, 1.0, 8, DType::F32, &dev(), &mut Generator::new(seed)).unwrap();
    let expected: Vec<f32> = (0..2)
        .flat_map(|b| block(seed, b))
        .map(|w| unit_f32(w) as f32)
        .collect();
    assert_eq!(t.to_vec::<f32>().unwrap(), expected);
}

#[test]
fn random_draws_advance_the_generator_by_the_words_they_use() {
    let mut g = Generator::new(3);
    Tensor::rand_with(0.0, 1.0, 5, DType::F32, &dev(), &mut g).unwrap();
    assert_eq!(g.offset(), 5);
    Tensor::rand_with(0.0, 1.0, 5, DType::F64, &dev(), &mut g).unwrap();
    assert_eq!(g.offset(), 15);
    // Normals come in pairs: 5 of them use 6 uniforms.
    Tensor::randn_with(0.0, 1.0, 5, DType::F32, &dev(), &mut g).unwrap();
    assert_eq!(g.offset(), 21);
    assert_eq!(
        words_for(
            Distribution::Normal {
                mean: 0.0,
                std: 1.0
            },
            5,
            DType::F64
        ),
        12
    );
    // Two draws in a row equal one draw of both, split.
    let mut a = Generator::new(9);
    let first = Tensor::rand_with(0.0, 1.0, 3, DType::F32, &dev(), &mut a).unwrap();
    let second = Tensor::rand_with(0.0, 1.0, 4, DType::F32, &dev(), &mut a).unwrap();
    let both = Tensor::rand_with(0.0, 1.0, 7, DType::F32, &dev(), &mut Generator::new(9)).unwrap();
    let mut joined = values(&first);
    joined.extend(values(&second));
    assert_eq!(joined, values(&both));
}

#[test]
fn random_bernoulli_is_uniform_below_p() {
    for dtype in [DType::F32, DType::F64, DType::U8, DType::BF16] {
        let mask =
            Tensor::bernoulli_with(0.3, 1000, dtype, &dev(), &mut Generator::new(1)).unwrap();
        let u =
            Tensor::rand_with(0.0, 1.0, 1000, DType::F32, &dev(), &mut Generator::new(1)).unwrap();
        let expected: Vec<f64> = values(&u).iter().map(|&x| (x < 0.3) as u8 as f64).collect();
        assert_eq!(values(&mask), expected, "{dtype}");
    }
    let ones = values(
        &Tensor::bernoulli_with(0.3, 20_000, DType::F32, &dev(), &mut Generator::new(2)).unwrap(),
    );
    let rate = ones.iter().sum::<f64>() / ones.len() as f64;
    assert!((rate - 0.3).abs() < 0.01, "rate {rate}");
}

#[test]
fn random_half_tensors_round_the_f32_draw() {
    let f = Tensor::randn_with(0.0, 1.0, 64, DType::F32, &dev(), &mut Generator::new(4)).unwrap();
    let h = Tensor::randn_with(0.0, 1.0, 64, DType::BF16, &dev(), &mut Generator::new(4)).unwrap();
    assert_eq!(values(&f.to_dtype(DType::BF16).unwrap()), values(&h));
}

#[test]
fn random_bad_parameters_are_errors() {
    let mut g = Generator::new(0);
    let e = Tensor::rand_with(1.0, 0.0, 3, DType::F32, &dev(), &mut g).unwrap_err();
    assert_eq!(
        e.to_string(),
        "random: uniform bounds must be finite with lo <= hi, got [1, 0)"
    );
    let e = Tensor::randn_with(0.0, f64::NAN, 3, DType::F32, &dev(), &mut g).unwrap_err();
    assert!(e.to_string().contains("std >= 0"), "{e}");
    let e = Tensor::bernoulli_with(1.5, 3, DType::F32, &dev(), &mut g).unwrap_err();
    assert!(e.to_string().contains("[0, 1]"), "{e}");
    let e = Tensor::rand_with(0.0, 1.0, 3, DType::I64, &dev(), &mut g).unwrap_err();
    assert_eq!(e.to_string(), "random: not supported for dtype i64");
    assert_eq!(g.offset(), 0, "a refused draw consumes nothing");
}

#[test]
fn random_generator_state_round_trips() {
    let mut g = Generator::new(11);
    g.uniform(0.0, 1.0);
    let state = g.state();
    let bytes = state.to_bytes();
    assert_eq!(bytes.len(), 16);
    let restored = Generator::from_state(&GeneratorState::from_bytes(&bytes).unwrap());
    let mut g2 = restored.clone();
    assert_eq!(g.uniform(0.0, 1.0), g2.uniform(0.0, 1.0));
    assert!(GeneratorState::from_bytes(&bytes[..15]).is_none());
}
