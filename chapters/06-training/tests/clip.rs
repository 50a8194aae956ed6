//! Lesson: gradient clipping. `clip_grad_norm_` rescales all gradients
//! together when their combined norm is too large (keeping their direction);
//! `clip_grad_value_` clamps each entry (changing the direction).
//!
//! `cargo test -p chapter-06 clip` runs these.

mod clip {
    use chapter_02::{default_device, CountingDevice, Device};
    use chapter_03::{RawTensor, Tensor};
    use chapter_06::{clip_grad_norm_, clip_grad_value_, grad_norm};

    fn dev() -> Device {
        default_device().unwrap_or_else(|e| panic!("{e}"))
    }

    fn tensor(v: &[f64]) -> RawTensor {
        RawTensor::from_vec(v.to_vec(), v.len(), &dev()).unwrap()
    }

    /// `clip_grad_norm_`'s returned norm, read back.
    fn clip(params: &[Tensor], max_norm: f64, norm_type: f64) -> f64 {
        clip_grad_norm_(params, max_norm, norm_type)
            .unwrap()
            .item()
            .unwrap()
    }

    /// Parameters whose gradients are `grads`.
    fn params_with_grads(grads: &[&[f64]]) -> Vec<Tensor> {
        grads
            .iter()
            .map(|g| {
                let p = Tensor::param(tensor(&vec![0.0; g.len()])).unwrap();
                p.set_grad(Some(Tensor::from_raw(tensor(g))));
                p
            })
            .collect()
    }

    fn grads(params: &[Tensor]) -> Vec<Vec<f64>> {
        params
            .iter()
            .map(|p| p.grad_opt().unwrap().data().to_vec::<f64>().unwrap())
            .collect()
    }

    fn close(a: &[Vec<f64>], b: &[Vec<f64>], tol: f64) -> bool {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(x, y)| (x - y).abs() <= tol)
    }

    // ANCHOR: clip_norm
    #[test]
    fn clip_grad_norm_scales_all_gradients_together_to_max_norm() {
        // Two parameters, gradients (3, 0) and (0, 4): one vector of norm 5.
        let params = params_with_grads(&[&[3.0, 0.0], &[0.0, 4.0]]);
        let total = clip(&params, 1.0, 2.0);
        assert_eq!(total, 5.0); // the norm *before* clipping
                                // Scaled by 1/(5 + 1e-6): same direction, norm just under 1.
        let scale = 1.0 / (5.0 + 1e-6);
        assert_eq!(
            grads(&params),
            [vec![3.0 * scale, 0.0], vec![0.0, 4.0 * scale]]
        );
        let after = grad_norm(&params).unwrap().item().unwrap();
        assert!(after < 1.0 && after > 1.0 - 1e-6, "{after}");
    }
    // ANCHOR_END: clip_norm

    #[test]
    fn clip_grad_norm_is_a_no_op_below_the_threshold() {
        let params = params_with_grads(&[&[0.3, -0.4], &[1.2]]);
        let before = grads(&params);
        // (0.3, -0.4, 1.2) has norm 1.3.
        let total = clip(&params, 2.0, 2.0);
        assert!((total - 1.3).abs() < 1e-12);
        assert_eq!(grads(&params), before); // untouched, bit for bit
                                            // Exactly at the threshold: the 1e-6 keeps it untouched too... almost:
                                            // the coefficient is 1.3/(1.3 + 1e-6) < 1, so PyTorch (and we) scale
                                            // by a hair.
        let total = clip(&params, 1.3, 2.0);
        assert!((total - 1.3).abs() < 1e-12);
        assert!(close(&grads(&params), &before, 1e-6));
    }

    #[test]
    fn clip_grad_norm_inf_norm_is_the_largest_entry() {
        let params = params_with_grads(&[&[0.5, -2.0], &[1.0, 0.25]]);
        let total = clip(&params, 1.0, f64::INFINITY);
        assert_eq!(total, 2.0);
        let s = 1.0 / (2.0 + 1e-6);
        let expected = [vec![0.5 * s, -2.0 * s], vec![s, 0.25 * s]];
        assert!(close(&grads(&params), &expected, 1e-15));
        // The largest entry is now (just under) max_norm in absolute value.
        let largest = grads(&params)
            .iter()
            .flatten()
            .fold(0f64, |m, v| m.max(v.abs()));
        assert!(largest <= 1.0 && largest > 1.0 - 1e-6);
    }

    #[test]
    fn clip_grad_norm_other_p_norms_and_errors() {
        // 1-norm: sum of absolute values.
        let params = params_with_grads(&[&[1.0, -2.0], &[3.0]]);
        assert!((clip(&params, 100.0, 1.0) - 6.0).abs() < 1e-12);
        // A non-positive norm type is an error, not a silent wrong answer.
        for bad in [0.0, -2.0, f64::NEG_INFINITY, f64::NAN] {
            let err = clip_grad_norm_(&params, 1.0, bad).unwrap_err();
            assert!(err.to_string().contains("norm_type"), "{err}");
        }
        // Parameters without gradients are skipped; none at all: norm 0.
        let bare = vec![Tensor::param(tensor(&[1.0])).unwrap()];
        assert_eq!(clip(&bare, 1.0, 2.0), 0.0);
        let mut mixed = params_with_grads(&[&[6.0, 8.0]]);
        mixed.extend(bare);
        assert!((clip(&mixed, 5.0, 2.0) - 10.0).abs() < 1e-12);
        assert!(mixed[1].grad_opt().is_none());
    }

    // ANCHOR: clip_value
    #[test]
    fn clip_grad_value_clamps_each_entry() {
        let params = params_with_grads(&[&[-3.0, 0.5, 2.0], &[0.1]]);
        clip_grad_value_(&params, 1.0).unwrap();
        assert_eq!(grads(&params), [vec![-1.0, 0.5, 1.0], vec![0.1]]);
        // Unlike norm clipping, this changes the gradient's direction.
    }
    // ANCHOR_END: clip_value

    #[test]
    fn clip_grad_norm_then_a_step_moves_at_most_lr_times_max_norm() {
        use chapter_06::{Optimizer, Sgd, SgdConfig};
        let params = params_with_grads(&[&[300.0, -400.0]]);
        let mut sgd = Sgd::new(params.clone(), SgdConfig::new(0.1)).unwrap();
        clip_grad_norm_(&params, 1.0, 2.0).unwrap();
        sgd.step().unwrap();
        let p = params[0].data().to_vec::<f64>().unwrap();
        let moved = (p[0] * p[0] + p[1] * p[1]).sqrt();
        assert!(moved <= 0.1 && moved > 0.1 - 1e-6, "{moved}");
    }

    // ANCHOR: clip_on_device
    #[test]
    fn clip_grad_norm_stays_on_the_device() {
        let counter = CountingDevice::new(dev());
        let params: Vec<Tensor> = [vec![3.0, 0.0], vec![0.0, 4.0], vec![12.0]]
            .iter()
            .map(|g| {
                let t = RawTensor::from_vec(g.clone(), g.len(), counter.device()).unwrap();
                let p = Tensor::param(t.zeros_like().unwrap()).unwrap();
                p.set_grad(Some(Tensor::from_raw(t)));
                p
            })
            .collect();
        counter.reset();
        let norm = clip_grad_norm_(&params, 1.0, 2.0).unwrap();
        assert_eq!(counter.host_transfers(), 0, "no value read back");
        // The norm is there to read, if the caller wants it: one transfer.
        assert_eq!(norm.item().unwrap(), 13.0);
        assert_eq!(counter.host_transfers(), 1);
    }
    // ANCHOR_END: clip_on_device

    #[test]
    fn clip_refuses_meaningless_limits() {
        let params = params_with_grads(&[&[1.0]]);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let e = clip_grad_norm_(&params, bad, 2.0).unwrap_err().to_string();
            assert!(e.contains("max_norm must be finite and >= 0"), "{e}");
        }
        assert!(clip_grad_value_(&params, -1.0).is_err());
        assert_eq!(
            grads(&params),
            [vec![1.0]],
            "a refused clip changes nothing"
        );
    }
}
