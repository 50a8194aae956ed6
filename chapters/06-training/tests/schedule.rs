//! Lesson: learning-rate schedules. Each schedule is a pure function of the
//! step count, checked here on values worked out by hand; a `Scheduler`
//! applies one to an optimiser's groups (and its momentum, for one-cycle)
//! and its whole state is the step count, which `set_steps` restores.
//!
//! `cargo test -p chapter-06 schedule` runs these; `... one_cycle`,
//! `... cosine`, `... sequential` narrower lessons.

mod schedule {
    use chapter_03::{RawTensor, Tensor};
    use chapter_06::{
        Adam, AdamConfig, Anneal, ConstantLr, CosineAnnealingLr, ExponentialLr, LinearLr,
        LrSchedule, MultiStepLr, OneCycleLr, Optimizer, ParamGroup, Scheduler, SequentialLr, Sgd,
        SgdConfig, StepLr,
    };
    use std::f64::consts::PI;

    /// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
    fn dev() -> chapter_02::Device {
        chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 + 1e-12 * b.abs()
    }

    fn assert_lrs(schedule: &dyn LrSchedule, base: f64, expected: &[f64]) {
        let got: Vec<f64> = (0..expected.len())
            .map(|t| schedule.lr_at(t, base))
            .collect();
        assert!(
            got.iter().zip(expected).all(|(a, b)| close(*a, *b)),
            "got {got:?}\nexpected {expected:?}"
        );
    }

    fn sgd(lr: f64, momentum: f64) -> Sgd {
        let p =
            Tensor::param(RawTensor::zeros(1, chapter_03::DType::F32, &dev()).unwrap()).unwrap();
        Sgd::new(
            vec![p],
            SgdConfig {
                momentum,
                ..SgdConfig::new(lr)
            },
        )
        .unwrap()
    }

    #[test]
    fn step_lr_multiplies_every_step_size_steps() {
        let s = StepLr {
            step_size: 3,
            gamma: 0.5,
        };
        assert_lrs(&s, 0.8, &[0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2]);
    }

    #[test]
    fn multistep_lr_multiplies_at_each_milestone() {
        let s = MultiStepLr {
            milestones: vec![2, 5],
            gamma: 0.1,
        };
        assert_lrs(&s, 1.0, &[1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01]);
    }

    #[test]
    fn exponential_lr_multiplies_every_step() {
        let s = ExponentialLr { gamma: 0.5 };
        assert_lrs(&s, 2.0, &[2.0, 1.0, 0.5, 0.25]);
    }

    #[test]
    fn cosine_annealing_goes_down_a_half_cosine_and_back_up() {
        // T = 4: the cosine at 0, π/4, π/2, 3π/4, π, then rising again.
        let s = CosineAnnealingLr {
            t_max: 4,
            eta_min: 0.1,
        };
        let c = |x: f64| 0.1 + 0.9 * (1.0 + x.cos()) / 2.0;
        let expected: Vec<f64> = (0..=8).map(|t| c(PI * t as f64 / 4.0)).collect();
        assert_lrs(&s, 1.0, &expected);
        assert!(close(s.lr_at(2, 1.0), 0.55) && close(s.lr_at(4, 1.0), 0.1));
        assert!(close(s.lr_at(8, 1.0), 1.0));
    }

    #[test]
    fn linear_lr_warms_up_then_holds() {
        let s = LinearLr {
            start_factor: 0.25,
            end_factor: 1.0,
            total_iters: 3,
        };
        assert_lrs(&s, 0.4, &[0.1, 0.2, 0.3, 0.4, 0.4, 0.4]);
        // It can decay too.
        let s = LinearLr {
            start_factor: 1.0,
            end_factor: 0.0,
            total_iters: 2,
        };
        assert_lrs(&s, 1.0, &[1.0, 0.5, 0.0, 0.0]);
    }

    #[test]
    fn constant_lr_is_the_base_rate() {
        assert_lrs(&ConstantLr, 0.3, &[0.3; 5]);
    }

    // ANCHOR: sequential
    #[test]
    fn sequential_lr_switches_at_the_milestone_to_the_next_schedule_from_its_step_0() {
        // Warm up for 2 steps, then cosine over 4 steps, started afresh:
        // at the milestone the second schedule is at its own t = 0 (the
        // base rate), as in PyTorch's SequentialLR.
        let s = SequentialLr {
            schedules: vec![
                Box::new(LinearLr {
                    start_factor: 0.5,
                    end_factor: 1.0,
                    total_iters: 2,
                }),
                Box::new(CosineAnnealingLr {
                    t_max: 4,
                    eta_min: 0.0,
                }),
            ],
            milestones: vec![2],
        };
        let cos = |t: f64| (1.0 + (PI * t / 4.0).cos()) / 2.0;
        assert_lrs(
            &s,
            1.0,
            &[0.5, 0.75, 1.0, cos(1.0), cos(2.0), cos(3.0), 0.0],
        );

        // Three schedules, two milestones.
        let s = SequentialLr {
            schedules: vec![
                Box::new(ConstantLr),
                Box::new(ExponentialLr { gamma: 0.5 }),
                Box::new(StepLr {
                    step_size: 10,
                    gamma: 0.1,
                }),
            ],
            milestones: vec![1, 3],
        };
        assert_lrs(&s, 1.0, &[1.0, 1.0, 0.5, 1.0, 1.0]);
    }
    // ANCHOR_END: sequential

    // ANCHOR: one_cycle
    #[test]
    fn one_cycle_warms_up_to_max_lr_then_anneals_to_almost_zero() {
        // 10 steps, 30% warm-up: phase 1 ends at step 0.3·10 − 1 = 2,
        // phase 2 at step 9. Initial rate 1/25, final (1/25)/1e4.
        let s = OneCycleLr::new(1.0, 10);
        let cos = |from: f64, to: f64, pct: f64| to + (from - to) / 2.0 * ((PI * pct).cos() + 1.0);
        let (initial, min) = (1.0 / 25.0, 1.0 / 25.0 / 1e4);
        let mut expected = vec![cos(initial, 1.0, 0.0), cos(initial, 1.0, 0.5), 1.0];
        expected.extend((3..10).map(|t| cos(1.0, min, (t as f64 - 2.0) / 7.0)));
        assert_lrs(&s, 123.0, &expected); // the base rate plays no part
        assert!(close(s.lr_at(0, 0.0), 0.04) && close(s.lr_at(9, 0.0), 4e-6));

        // Momentum moves the other way: 0.95 down to 0.85 at the peak, back up.
        assert_eq!(s.momentum_at(0), Some(0.95));
        assert!(close(s.momentum_at(2).unwrap(), 0.85));
        assert!(close(s.momentum_at(9).unwrap(), 0.95));
        let no_momentum = OneCycleLr {
            cycle_momentum: false,
            ..OneCycleLr::new(1.0, 10)
        };
        assert_eq!(no_momentum.momentum_at(3), None);
    }

    #[test]
    fn one_cycle_linear_anneal_interpolates_in_straight_lines() {
        let s = OneCycleLr {
            anneal: Anneal::Linear,
            div_factor: 10.0,
            final_div_factor: 1.0,
            pct_start: 0.5,
            ..OneCycleLr::new(1.0, 5)
        };
        // Phase 1 ends at 1.5: 0.1 -> 1.0; phase 2 from 1.5 to 4: 1.0 -> 0.1.
        let up = |t: f64| 0.1 + 0.9 * t / 1.5;
        let down = |t: f64| 1.0 - 0.9 * (t - 1.5) / 2.5;
        assert_lrs(
            &s,
            1.0,
            &[up(0.0), up(1.0), down(2.0), down(3.0), down(4.0)],
        );
        assert!(close(s.momentum_at(1).unwrap(), 0.95 - 0.1 / 1.5));
    }

    #[test]
    fn one_cycle_three_phase_comes_back_down_before_annihilating() {
        // 10 steps, pct 0.2: up to step 1, back to the initial rate at
        // step 2·0.2·10 − 2 = 2, then down to the minimum at step 9.
        let s = OneCycleLr {
            three_phase: true,
            anneal: Anneal::Linear,
            pct_start: 0.2,
            div_factor: 10.0,
            final_div_factor: 100.0,
            ..OneCycleLr::new(1.0, 10)
        };
        let (initial, min) = (0.1, 0.001);
        let mut expected = vec![initial, 1.0, initial];
        expected.extend((3..10).map(|t| initial + (min - initial) * (t as f64 - 2.0) / 7.0));
        assert_lrs(&s, 1.0, &expected);
        // Momentum: down, up, then held at the maximum.
        let m: Vec<f64> = (0..10).map(|t| s.momentum_at(t).unwrap()).collect();
        assert!(
            close(m[0], 0.95) && close(m[1], 0.85) && close(m[2], 0.95),
            "{m:?}"
        );
        assert!(m[3..].iter().all(|&x| close(x, 0.95)), "{m:?}");
    }

    #[test]
    fn one_cycle_scheduler_cycles_sgd_momentum_and_adam_beta1() {
        let mut opt = sgd(0.1, 0.9);
        let mut scheduler = Scheduler::new(OneCycleLr::new(0.1, 10), &mut opt);
        assert!(close(opt.learning_rates()[0], 0.004));
        assert_eq!(opt.groups[0].config.momentum, 0.95);
        scheduler.step(&mut opt);
        scheduler.step(&mut opt);
        assert!(close(opt.learning_rates()[0], 0.1));
        assert!(close(opt.groups[0].config.momentum, 0.85));

        let p =
            Tensor::param(RawTensor::zeros(1, chapter_03::DType::F32, &dev()).unwrap()).unwrap();
        let mut adam = Adam::new(vec![p], AdamConfig::adam(0.1)).unwrap();
        let mut scheduler = Scheduler::new(OneCycleLr::new(0.1, 10), &mut adam);
        scheduler.step(&mut adam);
        assert!(close(
            adam.groups[0].config.betas.0,
            OneCycleLr::new(0.1, 10).momentum_at(1).unwrap()
        ));
        assert_eq!(adam.groups[0].config.betas.1, 0.999);
    }
    // ANCHOR_END: one_cycle

    // ANCHOR: scheduler
    #[test]
    fn scheduler_scales_each_group_from_its_own_base_rate() {
        let p = |v: f32| Tensor::param(RawTensor::from_vec(vec![v], 1, &dev()).unwrap()).unwrap();
        let mut opt = Sgd::with_groups(vec![
            ParamGroup {
                params: vec![p(0.0)],
                config: SgdConfig::new(1.0),
            },
            ParamGroup {
                params: vec![p(0.0)],
                config: SgdConfig::new(0.1),
            },
        ])
        .unwrap();
        let mut scheduler = Scheduler::new(
            StepLr {
                step_size: 1,
                gamma: 0.5,
            },
            &mut opt,
        );
        assert_eq!(opt.learning_rates(), [1.0, 0.1]);
        scheduler.step(&mut opt);
        assert_eq!(opt.learning_rates(), [0.5, 0.05]);
        assert_eq!(scheduler.current_lrs(), [0.5, 0.05]);
        assert_eq!(scheduler.steps(), 1);
    }

    #[test]
    fn scheduler_set_steps_restores_the_whole_state() {
        // A scheduler's state is its step count: a fresh scheduler told it
        // is at step 7 sets the same rate (and momentum) as one stepped 7 times.
        let make = || OneCycleLr::new(0.5, 20);
        let mut a = sgd(0.5, 0.9);
        let mut stepped = Scheduler::new(make(), &mut a);
        for _ in 0..7 {
            stepped.step(&mut a);
        }
        let mut b = sgd(0.5, 0.9);
        let mut restored = Scheduler::new(make(), &mut b);
        restored.set_steps(7, &mut b);
        assert_eq!(restored.steps(), 7);
        assert_eq!(a.learning_rates(), b.learning_rates());
        assert_eq!(a.groups[0].config.momentum, b.groups[0].config.momentum);
        // And they stay together.
        stepped.step(&mut a);
        restored.step(&mut b);
        assert_eq!(a.learning_rates(), b.learning_rates());
        assert_eq!(a.learning_rates()[0], make().lr_at(8, 0.5));
        // Back to the start.
        restored.set_steps(0, &mut b);
        assert!(close(b.learning_rates()[0], 0.02));
    }
    // ANCHOR_END: scheduler
}
