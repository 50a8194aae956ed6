//! Exercises for the optimiser, schedule and data-parallelism sections. Each test is ignored
//! until you fill in the `todo!()`s above it; run one with
//!
//! ```text
//! cargo test -p chapter-06 --test exercises_training -- --ignored lion
//! ```

mod exercises_training {
    use chapter_03::{RawTensor, Result, Tensor};
    use chapter_05::{mse_loss, Linear, Module, ModuleExt, Reduction};
    use chapter_06::{
        CosineAnnealingLr, LrSchedule, Optimizer, OptimizerState, ParamGroup, Scheduler, Sgd,
        SgdConfig,
    };
    use std::f64::consts::PI;

    /// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
    fn dev() -> chapter_02::Device {
        chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
    }

    // ANCHOR: exercise_lion
    // ---------------------------------------------------------------------
    // Exercise 1: the Lion optimiser (Chen et al., 2023, "Symbolic Discovery
    // of Optimization Algorithms"). With momentum m (zero at first):
    //
    //     c = β₁m + (1 − β₁)g          the direction: an interpolation
    //     p ← p(1 − ηλ) − η·sign(c)    every coordinate moves by exactly η
    //     m ← β₂m + (1 − β₂)g          the momentum, with a slower β₂
    //
    // Implement `Optimizer` for `Lion`, state dict included. Hint: follow
    // `Adam` in src/optim/adam.rs; for sign(c), compare with zero
    // (`RawTensor::cmp_scalar`) and pick ±1 with `where_cond`.
    // ---------------------------------------------------------------------

    #[derive(Debug, Clone, Copy)]
    pub struct LionConfig {
        pub lr: f64,
        pub betas: (f64, f64),
        pub weight_decay: f64,
    }

    pub struct Lion {
        pub groups: Vec<ParamGroup<LionConfig>>,
        /// The momentum of each group's parameters.
        pub momentum: Vec<Vec<Option<RawTensor>>>,
    }

    impl Lion {
        pub fn new(params: Vec<Tensor>, config: LionConfig) -> Lion {
            let momentum = vec![vec![None; params.len()]];
            Lion {
                groups: vec![ParamGroup { params, config }],
                momentum,
            }
        }
    }

    impl Optimizer for Lion {
        fn step(&mut self) -> Result<()> {
            let LionConfig {
                lr,
                betas,
                weight_decay,
            } = self.groups[0].config;
            todo!(
                "Lion's update (η = {lr}, β = {betas:?}, λ = {weight_decay}) of {} momentum list(s)",
                self.momentum.len()
            )
        }
        fn zero_grad(&self) {
            for g in &self.groups {
                for p in &g.params {
                    p.zero_grad();
                }
            }
        }
        fn learning_rates(&self) -> Vec<f64> {
            self.groups.iter().map(|g| g.config.lr).collect()
        }
        fn set_learning_rates(&mut self, lrs: &[f64]) {
            for (g, &lr) in self.groups.iter_mut().zip(lrs) {
                g.config.lr = lr;
            }
        }
        fn state_dict(&self) -> Result<OptimizerState> {
            todo!("save each momentum tensor and each group's lr")
        }
        fn load_state_dict(&mut self, state: &OptimizerState) -> Result<()> {
            todo!(
                "restore what state_dict saved: {} tensors",
                state.tensors.len()
            )
        }
    }
    // ANCHOR_END: exercise_lion

    fn param(v: &[f64]) -> Tensor {
        Tensor::param(RawTensor::from_vec(v.to_vec(), v.len(), &dev()).unwrap()).unwrap()
    }

    fn set_grad(p: &Tensor, g: &[f64]) {
        let g = RawTensor::from_vec(g.to_vec(), g.len(), &dev()).unwrap();
        p.set_grad(Some(Tensor::from_raw(g)));
    }

    #[test]
    #[ignore = "exercise: implement the Lion optimiser (step, state_dict, load_state_dict)"]
    fn lion_moves_every_coordinate_by_exactly_lr() {
        let config = LionConfig {
            lr: 0.1,
            betas: (0.9, 0.99),
            weight_decay: 0.0,
        };
        let p = param(&[1.0, 1.0, 1.0]);
        let mut lion = Lion::new(vec![p.clone()], config);
        set_grad(&p, &[1e-6, -3.0, 200.0]);
        lion.step().unwrap();
        assert_eq!(p.data().to_vec::<f64>().unwrap(), [0.9, 1.1, 0.9]);
        // Step 2: m = 0.01·g₁; with g₂ = (−1, 1, −1): c = 0.9m + 0.1g₂ has
        // the sign of g₂ in the first coordinate (0.9·1e-8 − 0.1 < 0), but
        // not in the third (0.9·2 − 0.1 > 0): the momentum wins there.
        set_grad(&p, &[-1.0, 1.0, -1.0]);
        lion.step().unwrap();
        let got = p.data().to_vec::<f64>().unwrap();
        let want = [1.0, 1.0, 0.8];
        assert!(
            got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{got:?}"
        );
    }

    #[test]
    #[ignore = "exercise: implement the Lion optimiser (step, state_dict, load_state_dict)"]
    fn lion_decoupled_weight_decay_and_state_dict() {
        let config = LionConfig {
            lr: 0.1,
            betas: (0.9, 0.99),
            weight_decay: 0.5,
        };
        let p = param(&[2.0]);
        let mut lion = Lion::new(vec![p.clone()], config);
        set_grad(&p, &[1.0]);
        lion.step().unwrap();
        // p(1 − ηλ) − η·sign(c) = 2·0.95 − 0.1
        assert!((p.data().to_vec::<f64>().unwrap()[0] - 1.8).abs() < 1e-12);
        // A fresh Lion that loads the state continues identically.
        let state = lion.state_dict().unwrap();
        let q = param(&p.data().to_vec::<f64>().unwrap());
        let mut fresh = Lion::new(vec![q.clone()], config);
        fresh.load_state_dict(&state).unwrap();
        for (opt, t) in [(&mut lion as &mut dyn Optimizer, &p), (&mut fresh, &q)] {
            set_grad(t, &[-0.05]);
            opt.step().unwrap();
        }
        assert_eq!(
            p.data().to_vec::<f64>().unwrap(),
            q.data().to_vec::<f64>().unwrap()
        );
    }

    // ANCHOR: exercise_sgdr
    // ---------------------------------------------------------------------
    // Exercise 2: cosine annealing with warm restarts (SGDR, Loshchilov &
    // Hutter, 2017; PyTorch's CosineAnnealingWarmRestarts). The first cycle
    // lasts T₀ steps, each next one T_mult times longer; inside a cycle, at
    // step t_cur of T_i,
    //
    //     η = η_min + (η₀ − η_min)(1 + cos(π·t_cur/T_i))/2
    //
    // and at the start of each cycle the rate jumps back to η₀.
    // ---------------------------------------------------------------------

    pub struct CosineWarmRestarts {
        pub t_0: usize,
        pub t_mult: usize,
        pub eta_min: f64,
    }

    impl LrSchedule for CosineWarmRestarts {
        fn lr_at(&self, t: usize, base_lr: f64) -> f64 {
            todo!(
                "lr at step {t} from {base_lr}: find the cycle (T₀ = {}, T_mult = {}), then anneal to {}",
                self.t_0,
                self.t_mult,
                self.eta_min
            )
        }
    }
    // ANCHOR_END: exercise_sgdr

    #[test]
    #[ignore = "exercise: implement cosine annealing with warm restarts"]
    fn cosine_warm_restarts_jump_back_at_the_start_of_each_longer_cycle() {
        let s = CosineWarmRestarts {
            t_0: 2,
            t_mult: 2,
            eta_min: 0.0,
        };
        let c = |t_cur: f64, t_i: f64| (1.0 + (PI * t_cur / t_i).cos()) / 2.0;
        // Cycles of 2, 4 and 8 steps start at steps 0, 2 and 6.
        let expected = [
            c(0.0, 2.0),
            c(1.0, 2.0),
            1.0,
            c(1.0, 4.0),
            c(2.0, 4.0),
            c(3.0, 4.0),
            1.0,
            c(1.0, 8.0),
        ];
        for (t, want) in expected.iter().enumerate() {
            assert!((s.lr_at(t, 1.0) - want).abs() < 1e-12, "step {t}");
        }
        // With T_mult = 1 each cycle is one CosineAnnealingLr over T₀ steps.
        let flat = CosineWarmRestarts {
            t_0: 5,
            t_mult: 1,
            eta_min: 0.01,
        };
        let one = CosineAnnealingLr {
            t_max: 5,
            eta_min: 0.01,
        };
        for t in 0..20 {
            assert!(
                (flat.lr_at(t, 0.3) - one.lr_at(t % 5, 0.3)).abs() < 1e-12,
                "step {t}"
            );
        }
        // It drives an optimiser through a Scheduler like any schedule.
        let mut sgd = Sgd::new(vec![param(&[0.0])], SgdConfig::new(1.0)).unwrap();
        let mut scheduler = Scheduler::new(s, &mut sgd);
        for _ in 0..2 {
            scheduler.step(&mut sgd);
        }
        assert_eq!(sgd.learning_rates(), [1.0]);
    }

    // ANCHOR: exercise_shards
    // ---------------------------------------------------------------------
    // Exercise 3: data parallelism without the threads. `DataParallel`
    // (src/data_parallel.rs) gives each replica a shard of the batch and
    // seeds its backward pass with the shard's share of the examples,
    // nᵢ / n, so that the gradients add up to the batch's. Do the same one
    // shard after another: for each shard of `x` and `y`, compute the mean
    // squared error of `model` on it, and run its backward pass seeded with
    // nᵢ / n (`Tensor::backward_with` takes the seed, a tensor of the loss's
    // shape). `backward` adds into `.grad`, so the sum happens by itself.
    // Return the batch's loss, Σᵢ (nᵢ / n) · Lᵢ. (`x.narrow(0, start, len)`
    // takes a shard's rows; it comes with `use chapter_04::prelude::*`.)
    // ---------------------------------------------------------------------

    pub fn sharded_backward(
        model: &Linear,
        x: &Tensor,
        y: &Tensor,
        shards: &[std::ops::Range<usize>],
    ) -> Result<f64> {
        let _ = (model, x, y, shards, mse_loss, Reduction::Mean);
        todo!("one backward per shard, seeded with the shard's share of the batch")
    }
    // ANCHOR_END: exercise_shards

    #[test]
    #[ignore = "exercise: fill in sharded_backward"]
    fn sharded_backward_gives_the_batch_gradient() {
        let dev = dev();
        let mut rng = chapter_02::Generator::new(3);
        let mut randn = |shape: &[usize]| {
            RawTensor::randn_with(0.0, 1.0, shape, chapter_02::DType::F64, &dev, &mut rng).unwrap()
        };
        let model = Linear::from_weights(
            Tensor::param(randn(&[2, 4])).unwrap(),
            Some(Tensor::param(randn(&[2])).unwrap()),
        );
        let (x, y) = (
            Tensor::from_raw(randn(&[7, 4])),
            Tensor::from_raw(randn(&[7, 2])),
        );
        // The whole batch at once.
        let full = mse_loss(&model.forward(&x).unwrap(), &y, Reduction::Mean).unwrap();
        full.backward().unwrap();
        let expected: Vec<Vec<f64>> = model
            .parameters()
            .iter()
            .map(|p| p.grad().unwrap().to_vec_f64().unwrap())
            .collect();
        // Uneven shards, and one shard of everything.
        let everything: Vec<std::ops::Range<usize>> = std::iter::once(0..7).collect();
        for shards in [vec![0..3, 3..4, 4..7], everything] {
            model.zero_grad();
            let loss = sharded_backward(&model, &x, &y, &shards).unwrap();
            assert!(
                (loss - full.item().unwrap()).abs() < 1e-12,
                "{shards:?}: loss {loss}"
            );
            for (p, want) in model.parameters().iter().zip(&expected) {
                let got = p.grad().unwrap().to_vec_f64().unwrap();
                for (a, b) in got.iter().zip(want) {
                    assert!((a - b).abs() < 1e-12, "{shards:?}: gradient {a} vs {b}");
                }
            }
        }
    }
}
