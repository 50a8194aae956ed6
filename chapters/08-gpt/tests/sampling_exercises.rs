//! Exercises for the sampling section. Each exercise is a stub in this file
//! with a test marked `#[ignore]`: fill in the stub, then run
//! `cargo test -p chapter-08 --test sampling_exercises -- --ignored`.

mod sampling_exercises {
    use chapter_08::sampling::processors::softmax;

    // ANCHOR: exercise_typical
    /// Exercise 1 (locally typical sampling, Meister et al. 2023): compute
    /// the entropy `H = −Σ p_i ln p_i` of `softmax(logits)`, sort the tokens
    /// by how far their surprisal `−ln p_i` is from `H` (closest first), and
    /// keep tokens in that order until their probabilities add up to at
    /// least `mass`; set the other logits to `-∞`.
    fn apply_typical(_logits: &mut [f64], _mass: f64) {
        todo!("exercise: implement typical sampling")
    }
    // ANCHOR_END: exercise_typical

    // ANCHOR: exercise_frequency
    /// Exercise 2 (OpenAI's frequency penalty): subtract `alpha` times the
    /// number of times each token occurs in `history` from its logit. Unlike
    /// the repetition penalty, a token said three times is pushed down three
    /// times as hard, and the penalty does not depend on the logit's sign.
    fn apply_frequency_penalty(_logits: &mut [f64], _history: &[u32], _alpha: f64) {
        todo!("exercise: implement the frequency penalty")
    }
    // ANCHOR_END: exercise_frequency

    // ANCHOR: typical_test
    #[test]
    #[ignore = "exercise: implement apply_typical in this file"]
    fn exercise_typical_sampling_can_drop_the_most_likely_token() {
        // p = [1/2, 1/4, 1/8, 1/8]: H = 1.75 bits, surprisals 1, 2, 3, 3
        // bits. Token 1 is the most typical, then token 0.
        let logits: Vec<f64> = [0.5f64, 0.25, 0.125, 0.125]
            .iter()
            .map(|p| p.ln())
            .collect();
        let mut l = logits.clone();
        apply_typical(&mut l, 0.2);
        let p = softmax(&l);
        assert!((p[1] - 1.0).abs() < 1e-12, "{p:?}");
        let mut l = logits;
        apply_typical(&mut l, 0.3);
        let p = softmax(&l);
        let expected = [2.0 / 3.0, 1.0 / 3.0, 0.0, 0.0];
        for (a, e) in p.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{p:?}");
        }
    }
    // ANCHOR_END: typical_test

    // ANCHOR: frequency_test
    #[test]
    #[ignore = "exercise: implement apply_frequency_penalty in this file"]
    fn exercise_frequency_penalty_grows_with_the_count() {
        let mut l = vec![1.0, 1.0, 1.0, -1.0];
        apply_frequency_penalty(&mut l, &[0, 0, 2, 3, 0], 0.5);
        assert_eq!(l, vec![-0.5, 1.0, 0.5, -1.5]);
    }
    // ANCHOR_END: frequency_test
}
