//! Speculative sampling keeps the target model's distribution exactly:
//! checked by a chi-square test over the first three tokens against the
//! distribution computed by enumeration, with a broken variant that must
//! fail the same test.

use chapter_08::sampling::chi_square::chi_square;
use chapter_08::sampling::{residual_distribution, DraftAcceptance, SpeculativeStats};
use chapter_08::{
    generate, speculative_generate, BigramModel, ContextPolicy, LanguageModel, Sampler,
    SamplingConfig, SpeculativeConfig, StopConditions,
};

const VOCAB: usize = 4;

/// The target: each row prefers a different token.
fn target() -> BigramModel {
    let rows = vec![
        vec![0.1, 0.6, 0.2, 0.1],
        vec![0.5, 0.05, 0.15, 0.3],
        vec![0.25, 0.25, 0.05, 0.45],
        vec![0.7, 0.1, 0.1, 0.1],
    ];
    BigramModel::from_probabilities(&rows, 256).unwrap()
}

/// The draft: quite different from the target (it rarely agrees).
fn draft() -> BigramModel {
    let rows = vec![
        vec![0.4, 0.1, 0.4, 0.1],
        vec![0.1, 0.6, 0.1, 0.2],
        vec![0.6, 0.1, 0.2, 0.1],
        vec![0.1, 0.3, 0.3, 0.3],
    ];
    BigramModel::from_probabilities(&rows, 256).unwrap()
}

/// `P(t1, t2, t3 | prompt)` under the target with `config`'s transforms,
/// by enumerating all `VOCAB³` sequences; index `t1 + 4·t2 + 16·t3`.
fn exact_target_distribution(config: &SamplingConfig, prompt: &[u32]) -> Vec<f64> {
    let model = target();
    let mut probs = vec![0.0; VOCAB.pow(3)];
    for (code, slot) in probs.iter_mut().enumerate() {
        let seq = [code % 4, code / 4 % 4, code / 16].map(|t| t as u32);
        let mut history = prompt.to_vec();
        let mut p = 1.0;
        for t in seq {
            let row = model.row(*history.last().unwrap());
            p *= config.probabilities(row, &history).unwrap()[t as usize];
            history.push(t);
        }
        *slot = p;
    }
    probs
}

/// Counts of the first three tokens over `draws` speculative generations.
fn speculative_counts(
    config: &SamplingConfig,
    spec: SpeculativeConfig,
    prompt: &[u32],
    draws: usize,
) -> (Vec<u64>, SpeculativeStats) {
    let (mut t, mut d) = (target(), draft());
    let mut sampler = Sampler::new(config.clone(), 7).unwrap();
    let stop = StopConditions::max_new_tokens(3);
    let mut counts = vec![0u64; VOCAB.pow(3)];
    let mut total = SpeculativeStats::default();
    for _ in 0..draws {
        t.reset().unwrap();
        d.reset().unwrap();
        let out = speculative_generate(
            &mut t,
            &mut d,
            prompt,
            &mut sampler,
            &spec,
            &stop,
            None,
            |_| {},
        )
        .unwrap();
        let g = &out.generation.tokens;
        counts[(g[0] + 4 * g[1] + 16 * g[2]) as usize] += 1;
        total.target_calls += out.stats.target_calls;
        total.proposed += out.stats.proposed;
        total.accepted += out.stats.accepted;
        total.generated += out.stats.generated;
    }
    (counts, total)
}

#[test]
fn speculative_sampling_draws_from_the_target_distribution() {
    let configs = [
        (SamplingConfig::default(), 2),
        (
            SamplingConfig {
                temperature: 0.8,
                top_k: Some(3),
                repetition_penalty: 1.5,
                ..SamplingConfig::default()
            },
            3,
        ),
        (
            SamplingConfig {
                top_p: Some(0.8),
                min_p: Some(0.2),
                ..SamplingConfig::default()
            },
            1,
        ),
    ];
    for (config, k) in configs {
        let prompt = [2, 0];
        let (counts, stats) =
            speculative_counts(&config, SpeculativeConfig::new(k), &prompt, 20_000);
        let fit = chi_square(&counts, &exact_target_distribution(&config, &prompt)).unwrap();
        eprintln!(
            "k = {k}, {config:?}: X² = {:.1} (df {}), p = {:.3}; acceptance {:.3}, {:.3} tokens per target call",
            fit.statistic,
            fit.degrees_of_freedom,
            fit.p_value,
            stats.acceptance_rate(),
            stats.tokens_per_target_call()
        );
        assert!(fit.p_value > 1e-3, "{config:?}, k = {k}: {fit:?}");
    }
}

#[test]
fn accepting_every_draft_fails_the_same_test() {
    let config = SamplingConfig::default();
    let spec = SpeculativeConfig {
        draft_tokens: 2,
        acceptance: DraftAcceptance::AlwaysAccept,
    };
    let prompt = [2, 0];
    let (counts, _) = speculative_counts(&config, spec, &prompt, 20_000);
    let fit = chi_square(&counts, &exact_target_distribution(&config, &prompt)).unwrap();
    assert!(fit.p_value < 1e-6, "{fit:?}");
}

#[test]
fn residual_is_the_normalised_positive_part_of_p_minus_q() {
    let r = residual_distribution(&[0.5, 0.3, 0.2], &[0.2, 0.5, 0.3]);
    assert_eq!(r, vec![1.0, 0.0, 0.0]);
    let r = residual_distribution(&[0.4, 0.4, 0.2], &[0.2, 0.2, 0.6]);
    assert!((r[0] - 0.5).abs() < 1e-15 && (r[1] - 0.5).abs() < 1e-15 && r[2] == 0.0);
}

#[test]
fn acceptance_rate_and_speedup_match_the_overlap_of_the_two_distributions() {
    // Rows that ignore the previous token: p everywhere for the target, q
    // for the draft. Each draft is accepted with probability
    // α = Σ min(p, q) = 0.75, and a round of k drafts yields on average
    // (1 − α^(k+1)) / (1 − α) tokens (Leviathan et al., eq. 1).
    let p = vec![0.5, 0.2, 0.2, 0.1];
    let q = vec![0.25; 4];
    let alpha: f64 = p.iter().zip(&q).map(|(a, b): (&f64, &f64)| a.min(*b)).sum();
    let mut t = BigramModel::from_probabilities(&vec![p; 4], 40_000).unwrap();
    let mut d = BigramModel::from_probabilities(&vec![q; 4], 40_000).unwrap();
    let k = 3;
    let mut sampler = Sampler::new(SamplingConfig::default(), 11).unwrap();
    let out = speculative_generate(
        &mut t,
        &mut d,
        &[0],
        &mut sampler,
        &SpeculativeConfig::new(k),
        &StopConditions::max_new_tokens(30_000),
        None,
        |_| {},
    )
    .unwrap();
    let s = out.stats;
    let expected_tokens = (1.0 - alpha.powi(k as i32 + 1)) / (1.0 - alpha);
    eprintln!(
        "α = {alpha}: acceptance {:.4}, {:.4} tokens per target call (theory {expected_tokens:.4}), \
         {} target calls, {} draft calls for {} tokens",
        s.acceptance_rate(),
        s.tokens_per_target_call(),
        s.target_calls,
        s.draft_calls,
        s.generated
    );
    assert_eq!(s.generated, 30_000);
    assert_eq!(t.extend_calls(), s.target_calls);
    assert_eq!(d.extend_calls(), s.draft_calls);
    // Binomial standard error of the rate is about 0.003 here.
    assert!((s.acceptance_rate() - alpha).abs() < 0.015, "{s:?}");
    assert!(
        (s.tokens_per_target_call() - expected_tokens).abs() < 0.05,
        "{s:?}"
    );
}

#[test]
fn a_perfect_draft_is_always_accepted_and_gives_k_plus_one_tokens_per_call() {
    let (mut t, mut d) = (target(), target());
    let mut sampler = Sampler::new(SamplingConfig::default(), 5).unwrap();
    let out = speculative_generate(
        &mut t,
        &mut d,
        &[1],
        &mut sampler,
        &SpeculativeConfig::new(3),
        &StopConditions::max_new_tokens(12),
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!(out.stats.acceptance_rate(), 1.0);
    assert_eq!(out.stats.target_calls, 3);
    assert_eq!(out.stats.tokens_per_target_call(), 4.0);
    // The target holds the committed tokens but the last; the draft never
    // fed its own last proposal, so it holds one token less.
    let mut expected = vec![1];
    expected.extend(&out.generation.tokens[..11]);
    assert_eq!(t.tokens(), expected.as_slice());
    assert_eq!(d.tokens(), &expected[..11]);
}

#[test]
fn greedy_speculative_decoding_equals_greedy_decoding_of_the_target() {
    let mut t = target();
    let plain = generate(
        &mut t,
        &[3],
        &mut Sampler::greedy(),
        &StopConditions::max_new_tokens(20),
        None,
        ContextPolicy::Error,
        |_| {},
    )
    .unwrap();
    let (mut t, mut d) = (target(), draft());
    let mut streamed = Vec::new();
    let out = speculative_generate(
        &mut t,
        &mut d,
        &[3],
        &mut Sampler::greedy(),
        &SpeculativeConfig::new(4),
        &StopConditions::max_new_tokens(20),
        None,
        |e| streamed.push(e.token),
    )
    .unwrap();
    assert_eq!(out.generation.tokens, plain.tokens);
    assert_eq!(streamed, plain.tokens);
}

#[test]
fn speculative_generation_stops_at_an_end_token_and_rolls_back() {
    let (mut t, mut d) = (target(), draft());
    let mut sampler = Sampler::new(SamplingConfig::default(), 3).unwrap();
    let stop = StopConditions::max_new_tokens(200).with_eos(3);
    let out = speculative_generate(
        &mut t,
        &mut d,
        &[0],
        &mut sampler,
        &SpeculativeConfig::new(4),
        &stop,
        None,
        |_| {},
    )
    .unwrap();
    let g = &out.generation.tokens;
    assert_eq!(*g.last().unwrap(), 3, "{g:?}");
    assert!(!g[..g.len() - 1].contains(&3), "{g:?}");
    assert_eq!(t.cached_len(), g.len());
    assert!(d.cached_len() <= g.len());
    assert_eq!(d.tokens(), &t.tokens()[..d.cached_len()]);
}

#[test]
fn speculative_requests_are_checked() {
    let (mut t, mut d) = (target(), draft());
    let mut s = Sampler::greedy();
    let stop = StopConditions::max_new_tokens(4);
    let zero = speculative_generate(
        &mut t,
        &mut d,
        &[0],
        &mut s,
        &SpeculativeConfig::new(0),
        &stop,
        None,
        |_| {},
    );
    assert!(zero.unwrap_err().to_string().contains("draft_tokens"));
    let mut small = BigramModel::from_probabilities(&[vec![0.5, 0.5], vec![0.5, 0.5]], 8).unwrap();
    let vocab = speculative_generate(
        &mut t,
        &mut small,
        &[0],
        &mut s,
        &SpeculativeConfig::new(2),
        &stop,
        None,
        |_| {},
    );
    assert!(vocab.unwrap_err().to_string().contains("vocabulary"));
    let long = StopConditions::max_new_tokens(1000);
    let ctx = speculative_generate(
        &mut t,
        &mut d,
        &[0],
        &mut s,
        &SpeculativeConfig::new(2),
        &long,
        None,
        |_| {},
    );
    assert!(ctx.unwrap_err().to_string().contains("context length"));
}
