//! Exercises for the GPT-2 page. Each exercise is a stub in this file with
//! a test marked `#[ignore]`: fill in the stub, then run
//! `cargo test -p chapter-08 --test gpt2_exercises -- --ignored`.

mod gpt2_exercises {
    use chapter_03::{DType, Device};
    use chapter_05::{GeluApproximation, ModuleExt};
    use chapter_08::gpt2::Gpt2Config;
    use chapter_08::{Gpt, GptConfig};
    use std::path::Path;

    // ANCHOR: exercise_count
    /// Exercise 1: the number of parameters of a GPT with this config,
    /// counted from the shapes (embeddings, per block: two layer norms,
    /// `c_attn`, `c_proj`, the MLP; the final layer norm; the head is tied
    /// and costs nothing). GPT-2 small has 124,439,808.
    fn count_parameters(_config: &GptConfig) -> usize {
        todo!("exercise: implement count_parameters")
    }
    // ANCHOR_END: exercise_count

    // ANCHOR: exercise_config_json
    /// Exercise 2: the `config.json` Hugging Face would need to load a model
    /// of this config (`vocab_size`, `n_positions`, `n_embd`, `n_layer`,
    /// `n_head`, `n_inner`, `activation_function`, `layer_norm_epsilon`,
    /// the three dropout rates). Use `serde_json::json!`.
    fn gpt2_config_json(_config: &GptConfig) -> String {
        todo!("exercise: implement gpt2_config_json")
    }
    // ANCHOR_END: exercise_config_json

    #[test]
    #[ignore = "exercise: implement count_parameters in this file"]
    fn exercise_count_the_parameters_of_gpt2() {
        assert_eq!(count_parameters(&GptConfig::gpt2_small()), 124_439_808);
        let tiny = GptConfig {
            n_layer: 3,
            n_embd: 16,
            n_head: 2,
            vocab_size: 30,
            context_length: 8,
            ..GptConfig::gpt2_small()
        };
        let model = Gpt::zeros(&tiny, DType::F32, &Device::cpu()).unwrap();
        assert_eq!(count_parameters(&tiny), model.num_parameters());
    }

    #[test]
    #[ignore = "exercise: implement gpt2_config_json in this file"]
    fn exercise_config_json_round_trips() {
        let config = GptConfig {
            n_inner: Some(100),
            activation: GeluApproximation::None,
            ..GptConfig::gpt2_small()
        };
        let text = gpt2_config_json(&config);
        let back = Gpt2Config::from_json(&text, Path::new("config.json")).unwrap();
        assert_eq!(back.to_gpt_config().unwrap(), config);
    }
}
