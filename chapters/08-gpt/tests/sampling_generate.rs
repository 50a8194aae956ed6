//! The generation loop: how it feeds the model, streams tokens and text,
//! and stops.

use chapter_02::Result;
use chapter_08::{
    generate, BigramModel, ContextPolicy, LanguageModel, Sampler, SamplingConfig, StopConditions,
    StopReason, TokenDecoder,
};

/// A model that, greedily, always writes the next token id: `t → t + 1`.
fn chain(vocab: usize, context: usize) -> BigramModel {
    let mut table = vec![0.0f32; vocab * vocab];
    for t in 0..vocab {
        table[t * vocab + (t + 1) % vocab] = 5.0;
    }
    BigramModel::new(vocab, table, context).unwrap()
}

/// A decoder from a table of pieces.
fn pieces(table: &'static [&'static str]) -> impl Fn(&[u32]) -> Result<String> {
    move |tokens: &[u32]| Ok(tokens.iter().map(|t| table[*t as usize]).collect())
}

#[test]
fn generate_feeds_the_prompt_once_then_one_token_per_step() {
    let mut model = chain(10, 64);
    let mut sampler = Sampler::greedy();
    let stop = StopConditions::max_new_tokens(5);
    let mut streamed = Vec::new();
    let out = generate(
        &mut model,
        &[7, 8, 2],
        &mut sampler,
        &stop,
        None,
        ContextPolicy::Error,
        |e| streamed.push((e.index, e.token)),
    )
    .unwrap();
    assert_eq!(out.tokens, vec![3, 4, 5, 6, 7]);
    assert_eq!(out.stop_reason, StopReason::MaxNewTokens);
    assert_eq!(streamed, vec![(0, 3), (1, 4), (2, 5), (3, 6), (4, 7)]);
    // One call for the prompt, then one per generated token but the last.
    assert_eq!(model.extend_calls(), 1 + 4);
    assert_eq!(model.tokens_fed(), 3 + 4);
    assert_eq!(model.tokens(), &[7, 8, 2, 3, 4, 5, 6]);
}

#[test]
fn generate_appends_to_what_the_model_already_holds() {
    let mut model = chain(10, 64);
    model.extend(&[1, 2]).unwrap();
    let stop = StopConditions::max_new_tokens(2);
    let out = generate(
        &mut model,
        &[5],
        &mut Sampler::greedy(),
        &stop,
        None,
        ContextPolicy::Error,
        |_| {},
    )
    .unwrap();
    assert_eq!(out.tokens, vec![6, 7]);
    assert_eq!(model.tokens(), &[1, 2, 5, 6]);
}

#[test]
fn end_of_text_token_stops_and_adds_no_text() {
    const P: &[&str] = &["a", "b", "c", "<|end|>"];
    let decode = pieces(P);
    let mut model = chain(4, 64);
    let stop = StopConditions::max_new_tokens(10).with_eos(3);
    let mut text = String::new();
    let out = generate(
        &mut model,
        &[0],
        &mut Sampler::greedy(),
        &stop,
        Some(&decode),
        ContextPolicy::Error,
        |e| text.push_str(e.text),
    )
    .unwrap();
    assert_eq!(out.tokens, vec![1, 2, 3]);
    assert_eq!(out.stop_reason, StopReason::EndOfText(3));
    assert_eq!(out.text, "bc");
    assert_eq!(text, "bc");
}

#[test]
fn stop_string_split_across_tokens_is_caught_and_excluded() {
    const P: &[&str] = &["Hi", " there", "!\n", "\nUser", ":", " ok", "x"];
    let decode = pieces(P);
    let mut model = chain(P.len(), 64);
    let stop = StopConditions::max_new_tokens(20).with_stop_string("\nUser:");
    let mut events = Vec::new();
    let out = generate(
        &mut model,
        &[0],
        &mut Sampler::greedy(),
        &stop,
        Some(&decode),
        ContextPolicy::Error,
        |e| events.push(e.text.to_string()),
    )
    .unwrap();
    assert_eq!(out.tokens, vec![1, 2, 3, 4]);
    assert_eq!(out.stop_reason, StopReason::StopString("\nUser:".into()));
    assert_eq!(out.text, " there!\n");
    // "\n" is held back while it could begin the stop string; the first
    // newline is released once "\n\nUser" shows it is not part of it.
    assert_eq!(events, vec![" there", "!", "\n", ""]);
    assert_eq!(events.concat(), out.text);
}

#[test]
fn stop_string_inside_one_token_cuts_the_text_there() {
    const P: &[&str] = &["<s>", "one", " two\n\nthree", "four"];
    let decode = pieces(P);
    let mut model = chain(P.len(), 64);
    let stop = StopConditions::max_new_tokens(20).with_stop_string("\n\n");
    let out = generate(
        &mut model,
        &[0],
        &mut Sampler::greedy(),
        &stop,
        Some(&decode),
        ContextPolicy::Error,
        |_| {},
    )
    .unwrap();
    assert_eq!(out.tokens, vec![1, 2]);
    assert_eq!(out.text, "one two");
}

#[test]
fn held_back_text_that_never_becomes_a_stop_string_is_released() {
    const P: &[&str] = &["<s>", "a", "\n", "b"];
    let decode = pieces(P);
    let mut model = chain(P.len(), 64);
    let stop = StopConditions::max_new_tokens(2).with_stop_string("\n\n");
    let mut streamed = String::new();
    let out = generate(
        &mut model,
        &[0],
        &mut Sampler::greedy(),
        &stop,
        Some(&decode),
        ContextPolicy::Error,
        |e| streamed.push_str(e.text),
    )
    .unwrap();
    assert_eq!(out.stop_reason, StopReason::MaxNewTokens);
    assert_eq!(out.text, "a\n");
    assert_eq!(streamed, "a\n");
}

#[test]
fn streaming_waits_for_the_last_byte_of_a_utf8_character() {
    // Tokens are bytes: 'a', the two bytes of 'é', '!'.
    const BYTES: [u8; 4] = [b'a', 0xC3, 0xA9, b'!'];
    let decode = |ts: &[u32]| -> Result<String> {
        let bytes: Vec<u8> = ts.iter().map(|t| BYTES[*t as usize]).collect();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let mut model = chain(4, 64);
    let mut events = Vec::new();
    let out = generate(
        &mut model,
        &[3],
        &mut Sampler::greedy(),
        &StopConditions::max_new_tokens(4),
        Some(&decode as &dyn TokenDecoder),
        ContextPolicy::Error,
        |e| events.push(e.text.to_string()),
    )
    .unwrap();
    assert_eq!(out.tokens, vec![0, 1, 2, 3]);
    assert_eq!(events, vec!["a", "", "é", "!"]);
    assert_eq!(out.text, "aé!");
}

#[test]
fn a_generation_that_cannot_fit_the_context_is_refused_before_any_work() {
    let mut model = chain(10, 6);
    let stop = StopConditions::max_new_tokens(5);
    let err = generate(
        &mut model,
        &[1, 2, 3],
        &mut Sampler::greedy(),
        &stop,
        None,
        ContextPolicy::Error,
        |_| panic!("nothing may be streamed"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("generate") && err.contains("7") && err.contains("6"),
        "{err}"
    );
    assert_eq!(model.extend_calls(), 0);
    // Four new tokens fit exactly: 3 + 3 fed, the last one never fed.
    let stop = StopConditions::max_new_tokens(4);
    let out = generate(
        &mut model,
        &[1, 2, 3],
        &mut Sampler::greedy(),
        &stop,
        None,
        ContextPolicy::Error,
        |_| {},
    )
    .unwrap();
    assert_eq!(out.tokens.len(), 4);
    assert_eq!(model.cached_len(), 6);
}

#[test]
fn context_policy_stop_ends_cleanly_when_the_context_is_full() {
    let mut model = chain(10, 6);
    let stop = StopConditions::max_new_tokens(100);
    let out = generate(
        &mut model,
        &[1, 2, 3],
        &mut Sampler::greedy(),
        &stop,
        None,
        ContextPolicy::Stop,
        |_| {},
    )
    .unwrap();
    assert_eq!(out.tokens, vec![4, 5, 6, 7]);
    assert_eq!(out.stop_reason, StopReason::ContextFull);
    assert_eq!(model.cached_len(), 6);
}

#[test]
fn bad_requests_are_errors() {
    let mut model = chain(4, 16);
    let mut s = Sampler::greedy();
    let run = |model: &mut BigramModel, s: &mut Sampler, prompt: &[u32], stop: StopConditions| {
        generate(model, prompt, s, &stop, None, ContextPolicy::Error, |_| {})
    };
    let empty = run(&mut model, &mut s, &[], StopConditions::max_new_tokens(3));
    assert!(empty.unwrap_err().to_string().contains("prompt is empty"));
    let zero = run(&mut model, &mut s, &[1], StopConditions::max_new_tokens(0));
    assert!(zero.unwrap_err().to_string().contains("max_new_tokens"));
    let no_decoder = run(
        &mut model,
        &mut s,
        &[1],
        StopConditions::max_new_tokens(3).with_stop_string("x"),
    );
    assert!(no_decoder.unwrap_err().to_string().contains("decoder"));
    let bad_token = run(&mut model, &mut s, &[9], StopConditions::max_new_tokens(3));
    assert!(bad_token.unwrap_err().to_string().contains("token 9"));
}

#[test]
fn sampled_generation_is_reproducible_for_a_seed() {
    // A model close to uniform, so that different seeds diverge.
    let table: Vec<f32> = (0..64).map(|i| (i % 5) as f32 * 0.1).collect();
    let run = |seed| {
        let mut model = BigramModel::new(8, table.clone(), 64).unwrap();
        let mut s = Sampler::new(SamplingConfig::default(), seed).unwrap();
        let stop = StopConditions::max_new_tokens(30);
        generate(
            &mut model,
            &[0],
            &mut s,
            &stop,
            None,
            ContextPolicy::Error,
            |_| {},
        )
        .unwrap()
        .tokens
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}
