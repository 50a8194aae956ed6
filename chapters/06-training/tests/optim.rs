//! Lesson: optimisers. Every optimiser of the chapter minimises a small
//! quadratic; parameter groups carry their own learning rates; the
//! hyper-parameters do what PyTorch's do (checked here on single steps by
//! hand, and on recorded PyTorch trajectories by the parity suite); and an
//! optimiser's state dict resumes it bit for bit.
//!
//! `cargo test -p chapter-06 optim` runs these; `... adam`, `... sgd`,
//! `... rmsprop`, `... adagrad` one optimiser's lessons.

mod optim {
    use chapter_03::{RawTensor, Tensor};
    use chapter_06::{
        Adagrad, AdagradConfig, Adam, AdamConfig, Optimizer, OptimizerState, ParamGroup, RmsProp,
        RmsPropConfig, Sgd, SgdConfig,
    };

    /// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
    fn dev() -> chapter_02::Device {
        chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
    }

    fn tensor(v: &[f64]) -> RawTensor {
        RawTensor::from_vec(v.to_vec(), v.len(), &dev()).unwrap()
    }

    fn param(v: &[f64]) -> Tensor {
        Tensor::param(tensor(v)).unwrap()
    }

    fn values(p: &Tensor) -> Vec<f64> {
        p.data().to_vec::<f64>().unwrap()
    }

    fn set_grad(p: &Tensor, g: &[f64]) {
        p.set_grad(Some(Tensor::from_raw(tensor(g))));
    }

    /// The quadratic every optimiser must minimise:
    /// `f(p) = ½ Σᵢ aᵢ (pᵢ − cᵢ)²`, minimum at `p = c`, with curvatures `a`
    /// spread over a factor 8 (an ill-conditioned bowl, mildly).
    const CURVATURE: [f64; 4] = [1.0, 2.0, 4.0, 8.0];
    const MINIMUM: [f64; 4] = [1.0, -2.0, 0.5, 3.0];
    const START: [f64; 4] = [0.0, 0.0, 0.0, 0.0];

    /// `f(p)`, with its gradient left in `p.grad` by `backward`.
    fn quadratic_loss(p: &Tensor) -> f64 {
        let a = Tensor::from_raw(tensor(&CURVATURE));
        let c = Tensor::from_raw(tensor(&MINIMUM));
        let d = p.sub(&c).unwrap();
        let loss = d.mul(&d).unwrap().mul(&a).unwrap().sum_all().unwrap();
        let loss = loss.mul_scalar(0.5).unwrap();
        loss.backward().unwrap();
        loss.item().unwrap()
    }

    /// Runs `steps` steps of the training loop on the quadratic and returns
    /// the loss before and after.
    fn minimise(p: &Tensor, optimizer: &mut dyn Optimizer, steps: usize) -> (f64, f64) {
        let mut first = None;
        for _ in 0..steps {
            optimizer.zero_grad();
            let loss = quadratic_loss(p);
            first.get_or_insert(loss);
            optimizer.step().unwrap();
        }
        optimizer.zero_grad();
        (first.unwrap(), quadratic_loss(p))
    }

    fn assert_at_minimum(p: &Tensor, tol: f64, what: &str) {
        let got = values(p);
        for (x, c) in got.iter().zip(MINIMUM) {
            assert!(
                (x - c).abs() < tol,
                "{what}: ended at {got:?}, minimum {MINIMUM:?}"
            );
        }
    }

    // ANCHOR: converge
    #[test]
    fn every_optimizer_converges_on_a_quadratic() {
        type Make = fn(Tensor) -> Box<dyn Optimizer>;
        let cases: [(&str, Make, usize); 8] = [
            (
                "sgd",
                |p| Box::new(Sgd::new(vec![p], SgdConfig::new(0.1)).unwrap()),
                200,
            ),
            (
                "sgd_momentum",
                |p| {
                    let c = SgdConfig {
                        momentum: 0.9,
                        ..SgdConfig::new(0.02)
                    };
                    Box::new(Sgd::new(vec![p], c).unwrap())
                },
                300,
            ),
            (
                "sgd_nesterov",
                |p| {
                    let c = SgdConfig {
                        momentum: 0.9,
                        nesterov: true,
                        ..SgdConfig::new(0.02)
                    };
                    Box::new(Sgd::new(vec![p], c).unwrap())
                },
                300,
            ),
            (
                "adam",
                |p| Box::new(Adam::new(vec![p], AdamConfig::adam(0.1)).unwrap()),
                500,
            ),
            (
                "adam_amsgrad",
                |p| {
                    let c = AdamConfig {
                        amsgrad: true,
                        ..AdamConfig::adam(0.1)
                    };
                    Box::new(Adam::new(vec![p], c).unwrap())
                },
                500,
            ),
            (
                "rmsprop",
                |p| Box::new(RmsProp::new(vec![p], RmsPropConfig::new(0.01)).unwrap()),
                800,
            ),
            (
                "rmsprop_centered_momentum",
                |p| {
                    let c = RmsPropConfig {
                        centered: true,
                        momentum: 0.5,
                        ..RmsPropConfig::new(0.01)
                    };
                    Box::new(RmsProp::new(vec![p], c).unwrap())
                },
                800,
            ),
            (
                "adagrad",
                |p| Box::new(Adagrad::new(vec![p], AdagradConfig::new(0.5)).unwrap()),
                800,
            ),
        ];
        for (name, make, steps) in cases {
            let p = param(&START);
            let mut optimizer = make(p.clone());
            let (before, after) = minimise(&p, optimizer.as_mut(), steps);
            assert!(after < 1e-6 * before, "{name}: loss {before} -> {after}");
            assert_at_minimum(&p, 1e-3, name);
        }
    }
    // ANCHOR_END: converge

    #[test]
    fn every_optimizer_with_maximize_climbs_to_the_top_of_minus_the_quadratic() {
        type Make = fn(Tensor) -> Box<dyn Optimizer>;
        let cases: [(&str, Make, usize); 4] = [
            (
                "sgd",
                |p| {
                    let c = SgdConfig {
                        maximize: true,
                        ..SgdConfig::new(0.1)
                    };
                    Box::new(Sgd::new(vec![p], c).unwrap())
                },
                200,
            ),
            (
                "adam",
                |p| {
                    let c = AdamConfig {
                        maximize: true,
                        ..AdamConfig::adam(0.1)
                    };
                    Box::new(Adam::new(vec![p], c).unwrap())
                },
                500,
            ),
            (
                "rmsprop",
                |p| {
                    let c = RmsPropConfig {
                        maximize: true,
                        ..RmsPropConfig::new(0.01)
                    };
                    Box::new(RmsProp::new(vec![p], c).unwrap())
                },
                800,
            ),
            (
                "adagrad",
                |p| {
                    let c = AdagradConfig {
                        maximize: true,
                        ..AdagradConfig::new(0.5)
                    };
                    Box::new(Adagrad::new(vec![p], c).unwrap())
                },
                800,
            ),
        ];
        for (name, make, steps) in cases {
            let p = param(&START);
            let mut optimizer = make(p.clone());
            for _ in 0..steps {
                optimizer.zero_grad();
                // The gradient of −f: ascending it is descending f.
                quadratic_loss(&p);
                let g = p.grad_opt().unwrap().data().neg().unwrap();
                p.set_grad(Some(Tensor::from_raw(g)));
                optimizer.step().unwrap();
            }
            assert_at_minimum(&p, 1e-3, name);
        }
    }

    #[test]
    fn adamw_converges_near_the_minimum_pulled_slightly_towards_zero() {
        let p = param(&START);
        let mut adamw = Adam::new(vec![p.clone()], AdamConfig::adamw(0.1)).unwrap();
        let (before, after) = minimise(&p, &mut adamw, 500);
        assert!(after < 1e-4 * before, "loss {before} -> {after}");
        assert_at_minimum(&p, 0.05, "adamw");
        // The decay balances a small gradient: every coordinate stops short.
        let got = values(&p);
        assert!(
            got.iter().zip(MINIMUM).all(|(x, c)| x.abs() < c.abs()),
            "{got:?}"
        );
    }

    #[test]
    fn sgd_one_step_is_minus_lr_times_the_gradient() {
        let p = param(&[1.0, -2.0]);
        let mut sgd = Sgd::new(vec![p.clone()], SgdConfig::new(0.5)).unwrap();
        set_grad(&p, &[0.2, 0.4]);
        sgd.step().unwrap();
        assert_eq!(values(&p), [0.9, -2.2]);
        // No gradient, no update (a parameter unused by this batch).
        p.set_grad(None);
        sgd.step().unwrap();
        assert_eq!(values(&p), [0.9, -2.2]);
    }

    #[test]
    fn sgd_momentum_starts_with_the_gradient_then_accumulates() {
        // b₁ = g₁; b₂ = μb₁ + (1 − τ)g₂; Nesterov steps along g + μb.
        let p = param(&[0.0]);
        let c = SgdConfig {
            momentum: 0.5,
            dampening: 0.5,
            ..SgdConfig::new(1.0)
        };
        let mut sgd = Sgd::new(vec![p.clone()], c).unwrap();
        set_grad(&p, &[1.0]);
        sgd.step().unwrap(); // b = 1
        assert_eq!(values(&p), [-1.0]);
        sgd.step().unwrap(); // b = 0.5·1 + 0.5·1 = 1
        assert_eq!(values(&p), [-2.0]);

        let q = param(&[0.0]);
        let c = SgdConfig {
            momentum: 0.5,
            nesterov: true,
            ..SgdConfig::new(1.0)
        };
        let mut nesterov = Sgd::new(vec![q.clone()], c).unwrap();
        set_grad(&q, &[1.0]);
        nesterov.step().unwrap(); // b = 1, step g + μb = 1.5
        assert_eq!(values(&q), [-1.5]);
        nesterov.step().unwrap(); // b = 1.5, step 1 + 0.75
        assert_eq!(values(&q), [-3.25]);
    }

    #[test]
    fn sgd_nesterov_needs_momentum_and_no_dampening() {
        let p = param(&[0.0]);
        let c = SgdConfig {
            nesterov: true,
            ..SgdConfig::new(0.1)
        };
        assert!(Sgd::new(vec![p.clone()], c).is_err());
        let c = SgdConfig {
            nesterov: true,
            momentum: 0.9,
            dampening: 0.1,
            ..SgdConfig::new(0.1)
        };
        assert!(Sgd::new(vec![p], c).is_err());
    }

    #[test]
    fn sgd_maximize_flips_the_gradient_but_weight_decay_still_shrinks() {
        // PyTorch: g = −∇ + λp, so p ← p − η(−∇ + λp).
        let p = param(&[2.0]);
        let c = SgdConfig {
            maximize: true,
            weight_decay: 0.25,
            ..SgdConfig::new(0.5)
        };
        let mut sgd = Sgd::new(vec![p.clone()], c).unwrap();
        set_grad(&p, &[1.0]);
        sgd.step().unwrap();
        assert_eq!(values(&p), [2.0 - 0.5 * (-1.0 + 0.25 * 2.0)]);
    }

    #[test]
    fn adam_first_step_moves_every_coordinate_by_about_lr() {
        // After one step m̂ = g and v̂ = g², so the update is η·g/(|g| + ε):
        // the size of the gradient does not matter, only its sign.
        let p = param(&[0.0, 0.0, 0.0]);
        let mut adam = Adam::new(vec![p.clone()], AdamConfig::adam(0.1)).unwrap();
        set_grad(&p, &[1e-3, -5.0, 1e3]);
        adam.step().unwrap();
        let got = values(&p);
        for (x, want) in got.iter().zip([-0.1, 0.1, -0.1]) {
            assert!((x - want).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn adamw_weight_decay_is_decoupled_from_the_gradient() {
        // With a zero gradient, AdamW only shrinks: p ← p(1 − ηλ).
        let p = param(&[2.0, -4.0]);
        let mut adamw = Adam::new(vec![p.clone()], AdamConfig::adamw(0.1)).unwrap();
        set_grad(&p, &[0.0, 0.0]);
        adamw.step().unwrap();
        assert_eq!(
            values(&p),
            [2.0 * (1.0 - 0.1 * 0.01), -4.0 * (1.0 - 0.1 * 0.01)]
        );

        // Adam's L2 penalty goes into the gradient instead (g = λp) and is
        // normalised like any gradient: the first step is η·sign(p), however
        // small λ is.
        let q = param(&[2.0, -4.0]);
        let c = AdamConfig {
            weight_decay: 0.01,
            ..AdamConfig::adam(0.1)
        };
        let mut adam = Adam::new(vec![q.clone()], c).unwrap();
        set_grad(&q, &[0.0, 0.0]);
        adam.step().unwrap();
        let got = values(&q);
        assert!(
            (got[0] - 1.9).abs() < 1e-6 && (got[1] + 3.9).abs() < 1e-6,
            "{got:?}"
        );
    }

    #[test]
    fn adam_amsgrad_never_lets_the_denominator_shrink() {
        // A large gradient then small ones: AMSGrad keeps the largest v, so
        // its later steps are smaller than plain Adam's.
        let run = |amsgrad: bool| {
            let p = param(&[0.0]);
            let c = AdamConfig {
                amsgrad,
                betas: (0.0, 0.5),
                ..AdamConfig::adam(0.1)
            };
            let mut adam = Adam::new(vec![p.clone()], c).unwrap();
            set_grad(&p, &[10.0]);
            adam.step().unwrap();
            let after_first = values(&p)[0];
            for _ in 0..3 {
                set_grad(&p, &[0.1]);
                adam.step().unwrap();
            }
            after_first - values(&p)[0]
        };
        let (plain, ams) = (run(false), run(true));
        assert!(ams > 0.0 && ams < plain, "amsgrad {ams}, adam {plain}");
    }

    #[test]
    fn rmsprop_divides_by_the_running_root_mean_square() {
        // s = (1 − α)g², so the first step is η·g/(√(1 − α)|g| + ε).
        let p = param(&[0.0]);
        let c = RmsPropConfig {
            alpha: 0.75,
            ..RmsPropConfig::new(0.1)
        };
        let mut rms = RmsProp::new(vec![p.clone()], c).unwrap();
        set_grad(&p, &[3.0]);
        rms.step().unwrap();
        let want = -0.1 * 3.0 / ((0.25f64 * 9.0).sqrt() + 1e-8);
        assert!((values(&p)[0] - want).abs() < 1e-12);
    }

    #[test]
    fn adagrad_steps_shrink_as_squared_gradients_add_up() {
        // Σ = 1, 2, 3, ... for g = 1: steps η/√1, η/√2, η/√3.
        let p = param(&[0.0]);
        let mut adagrad = Adagrad::new(vec![p.clone()], AdagradConfig::new(1.0)).unwrap();
        let mut expected = 0.0;
        for t in 1..=3 {
            set_grad(&p, &[1.0]);
            adagrad.step().unwrap();
            expected -= 1.0 / ((t as f64).sqrt() + 1e-10);
            assert!((values(&p)[0] - expected).abs() < 1e-12);
        }
        // lr_decay divides the rate by 1 + (t − 1)·decay; the accumulator
        // can start above zero.
        let q = param(&[0.0]);
        let c = AdagradConfig {
            lr_decay: 1.0,
            initial_accumulator_value: 3.0,
            ..AdagradConfig::new(1.0)
        };
        let mut adagrad = Adagrad::new(vec![q.clone()], c).unwrap();
        set_grad(&q, &[1.0]);
        adagrad.step().unwrap(); // η = 1, Σ = 4
        adagrad.step().unwrap(); // η = 1/2, Σ = 5
        let want = -1.0 / (2.0 + 1e-10) - 0.5 / (5f64.sqrt() + 1e-10);
        assert!((values(&q)[0] - want).abs() < 1e-12);
    }

    // ANCHOR: param_groups
    #[test]
    fn param_groups_have_their_own_learning_rates() {
        let (body, head) = (param(&[1.0, 1.0]), param(&[1.0]));
        let mut sgd = Sgd::with_groups(vec![
            ParamGroup {
                params: vec![body.clone()],
                config: SgdConfig::new(0.01),
            },
            ParamGroup {
                params: vec![head.clone()],
                config: SgdConfig::new(0.1),
            },
        ])
        .unwrap();
        assert_eq!(sgd.learning_rates(), [0.01, 0.1]);
        set_grad(&body, &[1.0, 1.0]);
        set_grad(&head, &[1.0]);
        sgd.step().unwrap();
        assert_eq!(values(&body), [0.99, 0.99]);
        assert_eq!(values(&head), [0.9]);

        sgd.set_learning_rates(&[0.0, 0.5]);
        sgd.step().unwrap();
        assert_eq!(values(&body), [0.99, 0.99]); // frozen
        assert_eq!(values(&head), [0.4]);
        sgd.zero_grad();
        assert!(body.grad_opt().is_none() && head.grad_opt().is_none());
    }
    // ANCHOR_END: param_groups

    #[test]
    fn param_groups_work_for_every_optimizer() {
        let groups = |a: &Tensor, b: &Tensor| (vec![a.clone()], vec![b.clone()]);
        let (a, b) = (param(&[0.0]), param(&[0.0]));
        let (ga, gb) = groups(&a, &b);
        let mut opts: Vec<Box<dyn Optimizer>> = vec![
            Box::new(
                Adam::with_groups(vec![
                    ParamGroup {
                        params: ga.clone(),
                        config: AdamConfig::adam(0.1),
                    },
                    ParamGroup {
                        params: gb.clone(),
                        config: AdamConfig::adam(0.01),
                    },
                ])
                .unwrap(),
            ),
            Box::new(
                RmsProp::with_groups(vec![
                    ParamGroup {
                        params: ga.clone(),
                        config: RmsPropConfig::new(0.1),
                    },
                    ParamGroup {
                        params: gb.clone(),
                        config: RmsPropConfig::new(0.01),
                    },
                ])
                .unwrap(),
            ),
            Box::new(
                Adagrad::with_groups(vec![
                    ParamGroup {
                        params: ga,
                        config: AdagradConfig::new(0.1),
                    },
                    ParamGroup {
                        params: gb,
                        config: AdagradConfig::new(0.01),
                    },
                ])
                .unwrap(),
            ),
        ];
        for opt in &mut opts {
            a.set_data(tensor(&[0.0])).unwrap();
            b.set_data(tensor(&[0.0])).unwrap();
            set_grad(&a, &[1.0]);
            set_grad(&b, &[1.0]);
            opt.step().unwrap();
            // Same gradient, ten times the rate, ten times the step.
            let (da, db) = (values(&a)[0], values(&b)[0]);
            assert!(da < 0.0 && (da / db - 10.0).abs() < 1e-6, "{da} vs {db}");
        }
    }

    /// Runs `steps` steps on the quadratic (gradients that depend on where
    /// the parameter is, so any difference in state shows).
    fn run_steps(p: &Tensor, optimizer: &mut dyn Optimizer, steps: usize) {
        for _ in 0..steps {
            optimizer.zero_grad();
            quadratic_loss(p);
            optimizer.step().unwrap();
        }
    }

    fn bits(p: &Tensor) -> Vec<u64> {
        values(p).iter().map(|v| v.to_bits()).collect()
    }

    // ANCHOR: state_dict_round_trip
    #[test]
    fn state_dict_round_trip_continues_bit_for_bit() {
        type Make = fn(Tensor) -> Box<dyn Optimizer>;
        let cases: [(&str, Make); 7] = [
            ("sgd_momentum", |p| {
                let c = SgdConfig {
                    momentum: 0.9,
                    dampening: 0.1,
                    weight_decay: 0.01,
                    ..SgdConfig::new(0.02)
                };
                Box::new(Sgd::new(vec![p], c).unwrap())
            }),
            ("sgd_nesterov", |p| {
                let c = SgdConfig {
                    momentum: 0.9,
                    nesterov: true,
                    ..SgdConfig::new(0.02)
                };
                Box::new(Sgd::new(vec![p], c).unwrap())
            }),
            ("adam", |p| {
                Box::new(Adam::new(vec![p], AdamConfig::adam(0.05)).unwrap())
            }),
            ("adamw_amsgrad", |p| {
                let c = AdamConfig {
                    amsgrad: true,
                    ..AdamConfig::adamw(0.05)
                };
                Box::new(Adam::new(vec![p], c).unwrap())
            }),
            ("rmsprop", |p| {
                Box::new(RmsProp::new(vec![p], RmsPropConfig::new(0.01)).unwrap())
            }),
            ("rmsprop_centered_momentum", |p| {
                let c = RmsPropConfig {
                    centered: true,
                    momentum: 0.9,
                    ..RmsPropConfig::new(0.01)
                };
                Box::new(RmsProp::new(vec![p], c).unwrap())
            }),
            ("adagrad", |p| {
                let c = AdagradConfig {
                    lr_decay: 0.1,
                    ..AdagradConfig::new(0.3)
                };
                Box::new(Adagrad::new(vec![p], c).unwrap())
            }),
        ];
        for (name, make) in cases {
            // Six steps straight.
            let straight = param(&START);
            run_steps(&straight, make(straight.clone()).as_mut(), 6);

            // Three steps, save, a new optimiser (and parameter) loads, three more.
            let first = param(&START);
            let mut optimizer = make(first.clone());
            run_steps(&first, optimizer.as_mut(), 3);
            let saved = optimizer.state_dict().unwrap();
            // Through the flat form a checkpoint stores.
            let flat = saved.to_flat("optim.").unwrap();
            let restored = OptimizerState::from_flat(&flat, "optim.").unwrap();
            let resumed = param(&values(&first));
            let mut fresh = make(resumed.clone());
            fresh.load_state_dict(&restored).unwrap();
            run_steps(&resumed, fresh.as_mut(), 3);

            assert_eq!(bits(&resumed), bits(&straight), "{name}");
            // And without the state, the continuation differs: the state matters.
            let amnesiac = param(&values(&first));
            run_steps(&amnesiac, make(amnesiac.clone()).as_mut(), 3);
            assert_ne!(bits(&amnesiac), bits(&straight), "{name}");
        }
    }
    // ANCHOR_END: state_dict_round_trip

    #[test]
    fn state_dict_keeps_the_learning_rate_a_scheduler_set() {
        let p = param(&[0.0]);
        let mut adam = Adam::new(vec![p.clone()], AdamConfig::adam(0.1)).unwrap();
        adam.set_learning_rates(&[0.025]);
        let state = adam.state_dict().unwrap();
        let mut fresh = Adam::new(vec![p], AdamConfig::adam(0.1)).unwrap();
        fresh.load_state_dict(&state).unwrap();
        assert_eq!(fresh.learning_rates(), [0.025]);
        // A state without the entries it needs is an error, not a silent reset.
        let err = fresh
            .load_state_dict(&OptimizerState::default())
            .unwrap_err();
        assert!(err.to_string().contains("0.lr"), "{err}");
    }

    #[test]
    fn optimizers_update_f32_parameters_in_f32() {
        let p = Tensor::param(RawTensor::from_vec(vec![1f32, 2.0], 2, &dev()).unwrap()).unwrap();
        let mut adam = Adam::new(vec![p.clone()], AdamConfig::adamw(0.1)).unwrap();
        p.set_grad(Some(Tensor::from_raw(
            RawTensor::from_vec(vec![1f32, -1.0], 2, &dev()).unwrap(),
        )));
        adam.step().unwrap();
        assert_eq!(p.dtype(), chapter_03::DType::F32);
        let v = p.data().to_vec::<f32>().unwrap();
        assert!(
            (v[0] - (1.0 * 0.999 - 0.1)).abs() < 1e-6 && (v[1] - (2.0 * 0.999 + 0.1)).abs() < 1e-6,
            "{v:?}"
        );
    }

    // ANCHOR: one_program
    /// Every optimiser, in every configuration, updates through one fused
    /// program that its step reuses: the learning rate, the step count and
    /// the bias corrections change (a schedule moves the rate at every
    /// step here), the program does not. A device that compiles programs
    /// compiles each optimiser's update once.
    #[test]
    fn optim_one_fused_program_per_optimizer_configuration() {
        use chapter_02::{CountingDevice, Device};
        type Make = fn(Vec<Tensor>) -> Box<dyn Optimizer>;
        fn sgd_nesterov() -> SgdConfig {
            SgdConfig {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-4,
                ..SgdConfig::new(0.1)
            }
        }
        fn rms_centered() -> RmsPropConfig {
            RmsPropConfig {
                centered: true,
                momentum: 0.5,
                ..RmsPropConfig::new(0.01)
            }
        }
        fn adam_amsgrad() -> AdamConfig {
            AdamConfig {
                amsgrad: true,
                ..AdamConfig::adam(0.01)
            }
        }
        let cases: Vec<(&str, Make)> = vec![
            ("sgd", |p| {
                Box::new(Sgd::new(p, SgdConfig::new(0.1)).unwrap())
            }),
            ("sgd nesterov", |p| {
                Box::new(Sgd::new(p, sgd_nesterov()).unwrap())
            }),
            ("rmsprop", |p| {
                Box::new(RmsProp::new(p, RmsPropConfig::new(0.01)).unwrap())
            }),
            ("rmsprop centered", |p| {
                Box::new(RmsProp::new(p, rms_centered()).unwrap())
            }),
            ("adagrad", |p| {
                Box::new(Adagrad::new(p, AdagradConfig::new(0.1)).unwrap())
            }),
            ("adam", |p| {
                Box::new(Adam::new(p, AdamConfig::adam(0.01)).unwrap())
            }),
            ("adam amsgrad", |p| {
                Box::new(Adam::new(p, adam_amsgrad()).unwrap())
            }),
            ("adamw", |p| {
                Box::new(Adam::new(p, AdamConfig::adamw(0.01)).unwrap())
            }),
        ];
        for (name, make) in cases {
            let counter = CountingDevice::new(Device::cpu());
            let params: Vec<Tensor> = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
                .iter()
                .map(|v| {
                    let t = RawTensor::from_vec(v.to_vec(), 3, counter.device()).unwrap();
                    Tensor::param(t).unwrap()
                })
                .collect();
            let mut opt = make(params.clone());
            let steps = 10;
            for step in 0..steps {
                for p in &params {
                    let g = p.data().sin().unwrap();
                    p.set_grad(Some(Tensor::from_raw(g)));
                }
                opt.set_learning_rates(&[0.01 / (step + 1) as f64]);
                opt.step().unwrap();
            }
            let counts = counter.counts();
            assert_eq!(counts.fused_calls, steps * params.len(), "{name}");
            assert_eq!(counts.programs.len(), 1, "{name}: one program, reused");
            assert_eq!(counts.host_transfers(), 2, "{name}: only the two uploads");
        }
    }
    // ANCHOR_END: one_program
}
