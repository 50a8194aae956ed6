//! `candle chat`, driven through standard input as a user would type, on
//! the tiny GPT-2 fixture (context 64 tokens). The session's logic (turns
//! dropped, the KV cache reused) is tested exactly in chapter 08's
//! `tests/chat.rs`; here the command's side: replies streamed, commands,
//! end of input, errors and the exit status.
//!
//! `cargo test -p candle-lib --test chat_cli`

mod common;

use common::*;

fn chat(folder: &str, extra: &[&str], input: &str) -> std::process::Output {
    let cache = tempfile::tempdir().unwrap();
    let mut args = vec![
        "chat",
        "--model",
        folder,
        "--system",
        "Taylor is kind.",
        "--max-new-tokens",
        "6",
        "--seed",
        "3",
    ];
    args.extend_from_slice(extra);
    candle_in(cache.path(), &args, Some(input))
}

#[test]
fn chat_answers_each_line_and_ends_cleanly_at_end_of_input() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder(dir.path()).display().to_string();
    let o = ok(chat(&folder, &[], "Hello there\nHow are you?\n"));
    let out = stdout(&o);
    let replies: Vec<&str> = out.lines().filter(|l| l.starts_with("Taylor:")).collect();
    assert_eq!(replies.len(), 2, "{out}");
    let err = stderr(&o);
    assert!(err.contains("chatting with"), "{err}");
    // The second turn's prompt starts with what the first left in the cache.
    let reused: Vec<usize> = err
        .lines()
        .filter_map(|l| l.split("prompt: ").nth(1))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(reused.len(), 2, "{err}");
    assert_eq!(reused[0], 0);
    assert!(reused[1] > 0, "{err}");
}

#[test]
fn chat_reset_forgets_the_conversation_and_quit_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder(dir.path()).display().to_string();
    let o = ok(chat(
        &folder,
        &["--name", "Robin"],
        "Hello\n/reset\nHello\n/quit\nnot read\n",
    ));
    let out = stdout(&o);
    let replies: Vec<&str> = out.lines().filter(|l| l.starts_with("Robin:")).collect();
    assert_eq!(replies.len(), 2, "{out}");
    // Same seed stream aside, the same message after a reset sees the same
    // prompt as the first time: the system prompt, then the message.
    let err = stderr(&o);
    assert!(err.contains("the conversation is forgotten"), "{err}");
    assert!(!out.contains("not read"));
    // Unknown commands are explained, not sent to the model.
    let o = ok(chat(&folder, &[], "/help\n"));
    assert!(stderr(&o).contains("unknown command /help"));
    assert!(!stdout(&o).contains("Taylor:"));
}

#[test]
fn chat_reports_a_message_that_cannot_fit_and_fails_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder(dir.path()).display().to_string();
    let long = "summer ".repeat(60);
    let o = chat(&folder, &[], &format!("Hi\n{long}\nBye\n"));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("this message does not fit"), "{err}");
    assert!(err.contains("context of 64"), "{err}");
    assert!(err.contains("1 of 3 messages got no reply"), "{err}");
    // The other two were answered.
    let replies = stdout(&o)
        .lines()
        .filter(|l| l.starts_with("Taylor:"))
        .count();
    assert_eq!(replies, 2, "{}", stdout(&o));
}

#[test]
fn chat_without_downloaded_weights_says_how_to_get_them() {
    let o = candle(&["chat"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("candle download gpt2"), "{err}");
    assert!(err.contains("not in the Hugging Face cache"), "{err}");
}

#[test]
fn chat_refuses_settings_that_leave_no_room() {
    let dir = tempfile::tempdir().unwrap();
    let folder = gpt2_folder(dir.path()).display().to_string();
    let cache = tempfile::tempdir().unwrap();
    let args = [
        "chat",
        "--model",
        &folder,
        "--system",
        "Taylor is kind.",
        "--max-new-tokens",
        "60",
    ];
    let o = candle_in(cache.path(), &args, Some("Hi\n"));
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("leave no room for a message"), "{err}");
    let o = chat(&folder, &["--name", "Ta:ylor"], "Hi\n");
    assert!(stderr(&o).contains("without ':'"), "{}", stderr(&o));
    assert!(!o.status.success());
    let o = chat(&folder, &["--temperature", "nan"], "Hi\n");
    assert!(stderr(&o).contains("NaN is not allowed"));
    assert!(!o.status.success());
    let o = candle(&["chat", "--model", &folder, "--system-file", "/no/such/file"]);
    assert!(stderr(&o).contains("--system-file /no/such/file: cannot read"));
}
