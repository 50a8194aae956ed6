//! The chat session: the transcript, turns dropped to fit the context, and
//! the KV cache reused from turn to turn.
//!
//! The model is a [`BigramModel`] over a character vocabulary, whose table
//! makes greedy decoding answer every message with " ok" and then start
//! the user's next line: ` ok\nUser:`. It counts the tokens fed to it, so
//! the tests see exactly what the session recomputed.
//!
//! `cargo test -p chapter-08 --test chat`

use chapter_08::char_data::CharVocab;
use chapter_08::chat::{ChatOptions, ChatSession, ChatTemplate};
use chapter_08::sampling::{BigramModel, Sampler, StopReason};
use chapter_08::{LanguageModel, TextCodec};

const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzSTU :.!?\n";

/// Greedy successors: ':' → ' ' → 'o' → 'k' → '\n' → 'U' → 's' → 'e' →
/// 'r' → ':'; every other character → ' '.
fn ok_model(vocab: &CharVocab, context: usize) -> BigramModel {
    let next = |c: char| match c {
        ':' => ' ',
        ' ' => 'o',
        'o' => 'k',
        'k' => '\n',
        '\n' => 'U',
        'U' => 's',
        's' => 'e',
        'e' => 'r',
        'r' => ':',
        _ => ' ',
    };
    let n = vocab.len();
    let mut table = vec![0.0f32; n * n];
    for (i, &c) in vocab.chars().iter().enumerate() {
        let j = vocab.encode(&next(c).to_string()).unwrap()[0] as usize;
        table[i * n + j] = 10.0;
    }
    BigramModel::new(n, table, context).unwrap()
}

fn session(context: usize, max_reply: usize) -> ChatSession<BigramModel, CharVocab> {
    let vocab = CharVocab::from_text(ALPHABET);
    let model = ok_model(&vocab, context);
    ChatSession::new(
        model,
        vocab,
        ChatTemplate::new("Taylor is nice.", "Taylor"),
        ChatOptions {
            max_reply_tokens: max_reply,
            eos_tokens: Vec::new(),
        },
        Sampler::greedy(),
    )
    .unwrap()
}

#[test]
fn chat_writes_the_transcript_and_stops_at_the_users_next_line() {
    let mut chat = session(512, 20);
    let mut streamed = String::new();
    let reply = chat.respond("hi there", |t| streamed.push_str(t)).unwrap();
    assert_eq!(reply.text, " ok");
    assert_eq!(streamed, " ok");
    assert_eq!(reply.stop_reason, StopReason::StopString("\nUser:".into()));
    chat.respond("how are you?", |_| {}).unwrap();
    assert_eq!(
        chat.transcript(),
        "System: Taylor is nice.\nUser: hi there\nTaylor: ok\nUser: how are you?\nTaylor: ok\n"
    );
}

#[test]
fn chat_reuses_the_kv_cache_across_turns() {
    let mut chat = session(512, 20);
    let vocab = CharVocab::from_text(ALPHABET);
    let first = chat.respond("hi there", |_| {}).unwrap();
    let system_and_message = "System: Taylor is nice.\nUser: hi there\nTaylor:";
    assert_eq!(first.reused, 0);
    assert_eq!(first.fed, system_and_message.len());
    // ` ok\nUser:` sampled; all but the last token were fed back.
    assert_eq!(first.generated, 9);
    assert_eq!(chat.model().tokens_fed(), first.fed + 8);
    assert_eq!(chat.model().cached_len(), first.fed + 8);

    let fed_before = chat.model().tokens_fed();
    let second = chat.respond("and you", |_| {}).unwrap();
    // The cache holds "... Taylor: ok\nUser" from the first turn: the new
    // prompt shares all of it, so only ": and you\nTaylor:" is fed.
    let prompt = format!("{system_and_message} ok\nUser: and you\nTaylor:");
    let held = format!("{system_and_message} ok\nUser");
    assert_eq!(second.reused, held.len());
    assert_eq!(second.fed, prompt.len() - held.len());
    assert_eq!(chat.model().tokens_fed() - fed_before, second.fed + 8);
    // What the model holds is the transcript's tokens, token for token.
    let expected = vocab.encode(&format!("{prompt} ok\nUser")).unwrap();
    assert_eq!(chat.model().tokens(), expected.as_slice());
}

#[test]
fn chat_reset_keeps_the_system_prompt_in_the_cache() {
    let mut chat = session(512, 20);
    chat.respond("hi there", |_| {}).unwrap();
    chat.reset().unwrap();
    assert_eq!(chat.turns().count(), 0);
    let system = "System: Taylor is nice.\n";
    assert_eq!(chat.model().cached_len(), system.len());
    let reply = chat.respond("hello", |_| {}).unwrap();
    assert_eq!(reply.reused, system.len());
    assert_eq!(
        chat.transcript(),
        "System: Taylor is nice.\nUser: hello\nTaylor: ok\n"
    );
}

#[test]
fn chat_drops_the_oldest_turns_to_fit_the_context() {
    // System 24 characters; each turn "User: mN\nTaylor: ok\n" is 20; a
    // message block 16 and a reply room of 10: 24 + 16 + 10 = 50 leaves
    // room for two turns in a context of 90.
    let mut chat = session(90, 10);
    let mut dropped = Vec::new();
    for i in 0..5 {
        let reply = chat
            .respond(&format!("m{}", "abcde".as_bytes()[i] as char), |_| {})
            .unwrap();
        assert_eq!(reply.text, " ok");
        dropped.push(reply.dropped);
        assert!(chat.model().cached_len() <= 90);
    }
    assert_eq!(dropped, vec![0, 0, 0, 1, 1]);
    let users: Vec<&str> = chat.turns().map(|t| t.user.as_str()).collect();
    assert_eq!(users, vec!["mc", "md", "me"]);
    // The system prompt is never dropped.
    assert!(chat
        .transcript()
        .starts_with("System: Taylor is nice.\nUser: mc\n"));
    // After a drop the turns moved, so only the system prompt was reused
    // (and "User: m", which the dropped turn happened to begin with too).
    let vocab = CharVocab::from_text(ALPHABET);
    let reply = chat.respond("mf", |_| {}).unwrap();
    assert_eq!(reply.dropped, 1);
    assert_eq!(reply.reused, "System: Taylor is nice.\nUser: m".len());
    assert_eq!(
        chat.model().tokens(),
        vocab
            .encode("System: Taylor is nice.\nUser: md\nTaylor: ok\nUser: me\nTaylor: ok\nUser: mf\nTaylor: ok\nUser")
            .unwrap()
            .as_slice()
    );
}

#[test]
fn chat_says_when_one_message_alone_does_not_fit() {
    let mut chat = session(90, 10);
    chat.respond("hi", |_| {}).unwrap();
    let long = "a".repeat(60);
    let err = chat.respond(&long, |_| {}).unwrap_err().to_string();
    assert!(err.contains("this message does not fit"), "{err}");
    assert!(err.contains("context of 90"), "{err}");
    // Nothing was dropped or added.
    assert_eq!(chat.turns().count(), 1);
    assert!(chat.respond("ho", |_| {}).is_ok());
}

#[test]
fn chat_refuses_bad_input_with_a_reason() {
    let vocab = CharVocab::from_text(ALPHABET);
    let model = ok_model(&vocab, 40);
    let options = ChatOptions {
        max_reply_tokens: 30,
        eos_tokens: Vec::new(),
    };
    let err = ChatSession::new(
        model.clone(),
        vocab.clone(),
        ChatTemplate::new("Taylor is nice.", "Taylor"),
        options.clone(),
        Sampler::greedy(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("leave no room for a message"), "{err}");
    for (system, name, why) in [
        ("", "Taylor", "system prompt is empty"),
        ("nice", "Tay:lor", "without ':'"),
        ("nice", "User", "user's label too"),
    ] {
        let err = ChatSession::new(
            model.clone(),
            vocab.clone(),
            ChatTemplate::new(system, name),
            options.clone(),
            Sampler::greedy(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains(why), "{err}");
    }
    let mut chat = session(512, 20);
    assert!(chat.respond("   ", |_| {}).is_err());
    assert!(chat.respond("two\nlines", |_| {}).is_err());
    // A character the vocabulary lacks is named.
    let err = chat.respond("héllo", |_| {}).unwrap_err().to_string();
    assert!(err.contains("'é'"), "{err}");
    assert_eq!(chat.turns().count(), 0);
    assert_eq!(TextCodec::vocab_size(&vocab), vocab.len());
}
