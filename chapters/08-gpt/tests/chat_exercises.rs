//! Exercises for the chat section. Each exercise is a stub in this file
//! with a test marked `#[ignore]`: fill in the stub, then run
//! `cargo test -p chapter-08 --test chat_exercises -- --ignored`.

mod chat_exercises {
    // ANCHOR: exercise_keep_first
    /// Exercise 1 (keep the first exchange): the first message of a chat
    /// often sets its topic, so drop the *second*-oldest turn first, then
    /// the third, and so on, and the first turn only when it is the last
    /// one left. `turns` are the turns' lengths in tokens, oldest first;
    /// `fixed` is what the prompt needs besides them (system block, new
    /// message, room for the reply). Return the indices of the turns to
    /// drop, in the order they are dropped, or `None` when `fixed` alone
    /// exceeds `context`.
    fn turns_to_drop(_turns: &[usize], _fixed: usize, _context: usize) -> Option<Vec<usize>> {
        todo!("exercise: choose the turns to drop, keeping the first")
    }
    // ANCHOR_END: exercise_keep_first

    // ANCHOR: keep_first_test
    #[test]
    #[ignore = "exercise: implement turns_to_drop in this file"]
    fn exercise_dropping_turns_keeps_the_first_exchange() {
        // 40 + 10 + 10 + 10 = 70 fits exactly.
        assert_eq!(turns_to_drop(&[10, 10, 10], 40, 70), Some(vec![]));
        // 40 too many: turns 1 and 2 go, the first stays.
        assert_eq!(turns_to_drop(&[10, 20, 30, 40], 40, 100), Some(vec![1, 2]));
        // Nothing but the first turn could go, and it must.
        assert_eq!(turns_to_drop(&[10, 20], 70, 75), Some(vec![1, 0]));
        assert_eq!(turns_to_drop(&[10], 90, 80), None);
    }
    // ANCHOR_END: keep_first_test
}
