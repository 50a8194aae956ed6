//! Random numbers, indexing and the optimiser step: `kernels/random.cu`
//! against `chapter_02::philox` bit for bit, `kernels/index.cu` against the
//! CPU backend's index ops, and `kernels/adam.cu` against chapter 06's
//! fused Adam program.

mod kernels_support;

use chapter_02::{DType, Distribution, Layout, RandomStream, Tensor};
use chapter_06::optim::{AdamConfig, AdamRule, UpdateRule};
use chapter_07::emulator::{RuntimeExt, Strided};
use chapter_07::{DevicePtr, Emulator, Runtime};
use kernels_support::*;

const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];
const ALL: [DType; 6] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::U8,
];

fn cpu_random(dist: Distribution, n: usize, dtype: DType, stream: RandomStream) -> Tensor {
    let dev = cpu();
    let s = dev
        .backend()
        .random(dist, &n.into(), dtype, stream)
        .unwrap();
    Tensor::from_storage(s, Layout::contiguous(n), dev)
}

#[test]
fn philox_draws_match_the_cpu_generator_bit_for_bit() {
    let e = emu();
    // Offsets not a multiple of 4 start mid-block; odd counts leave half a
    // normal pair.
    for (seed, offset, n) in [
        (0u64, 0u64, 1usize),
        (42, 3, 257),
        (u64::MAX - 5, 1 << 33, 1001),
    ] {
        let stream = RandomStream { seed, offset };
        let mut cases: Vec<(Distribution, &str, DType)> = Vec::new();
        for dtype in FLOATS {
            cases.push((
                Distribution::Uniform { lo: -2.0, hi: 3.0 },
                "uniform",
                dtype,
            ));
            cases.push((
                Distribution::Normal {
                    mean: 1.0,
                    std: 0.5,
                },
                "normal",
                dtype,
            ));
        }
        for dtype in ALL {
            cases.push((Distribution::Bernoulli { p: 0.3 }, "bernoulli", dtype));
        }
        for (dist, name, dtype) in cases {
            let kernel = format!("random_{name}_{}", suffix(dtype));
            let dy = alloc(&e, n, dtype);
            let a = args().arg(n as i64).arg(seed).arg(offset);
            let a = match dist {
                Distribution::Uniform { lo, hi } => a.arg(lo).arg(hi),
                Distribution::Normal { mean, std } => a.arg(mean).arg(std),
                Distribution::Bernoulli { p } => a.arg(p),
            };
            e.launch_args(&kernel, cfg1d(n), a.arg(dy)).unwrap();
            let got = download_tensor(&e, dy, &[n], dtype);
            assert_same(
                &got,
                &cpu_random(dist, n, dtype, stream),
                &format!("{kernel} seed {seed} offset {offset}"),
            );
            e.free(dy).unwrap();
        }
    }
}

/// Index data: `n` indices in `0..size`, with repeats.
fn ids(n: usize, size: usize, seed: u64) -> Vec<i64> {
    data(n, seed, 1.0)
        .iter()
        .map(|v| ((v.abs() * 997.0) as usize % size) as i64)
        .collect()
}

fn exact(t: &Tensor) -> Strided {
    let l = t.layout();
    Strided::exact(l.dims(), l.strides(), l.offset()).unwrap()
}

#[test]
fn embedding_forward_gathers_rows_and_backward_scatters_with_atomics() {
    let e = emu();
    let (vocab, dim, n) = (11usize, 37usize, 50usize);
    let id = ids(n, vocab, 5);
    let ids_t = Tensor::from_vec(id.clone(), n, &cpu()).unwrap();
    for dtype in ALL {
        let table = tensor(
            &data(vocab * dim, 6, 4.0)
                .iter()
                .map(|v| v.abs())
                .collect::<Vec<_>>(),
            &[vocab, dim],
            dtype,
        );
        let (dt, di) = (upload_tensor(&e, &table), e.upload(&id).unwrap());
        let (dy, derr) = (alloc(&e, n * dim, dtype), e.upload(&[-1i64]).unwrap());
        let kernel = format!("embedding_{}", suffix(dtype));
        e.launch_args(
            &kernel,
            cfg1d(n * dim),
            args()
                .arg(n as i64)
                .arg(dim as i64)
                .arg(di)
                .arg(dt)
                .arg(vocab as i64)
                .arg(dy)
                .arg(derr),
        )
        .unwrap();
        assert_eq!(e.download::<i64>(derr, 1).unwrap(), vec![-1]);
        assert_same(
            &download_tensor(&e, dy, &[n, dim], dtype),
            &table.index_select(&ids_t, 0).unwrap(),
            &kernel,
        );

        if dtype == DType::U8 {
            continue;
        }
        let g = tensor(&data(n * dim, 7, 2.0), &[n, dim], dtype);
        let dg = upload_tensor(&e, &g);
        let dtab = alloc(&e, vocab * dim, dtype);
        e.memset_zero(dtab, vocab * dim * dtype.size_in_bytes())
            .unwrap();
        let kernel = format!("embedding_backward_{}", suffix(dtype));
        e.launch_args(
            &kernel,
            cfg1d(n * dim),
            args()
                .arg(n as i64)
                .arg(dim as i64)
                .arg(di)
                .arg(dg)
                .arg(vocab as i64)
                .arg(dtab)
                .arg(derr),
        )
        .unwrap();
        let zeros = Tensor::zeros((vocab, dim), dtype, &cpu()).unwrap();
        let want = zeros.index_add(&ids_t, &g, 0).unwrap();
        // Each add rounds to the dtype: halves are close, the rest exact
        // (the values are multiples of 1/64).
        let tol = match dtype {
            DType::F16 => 1e-2,
            DType::BF16 => 6e-2,
            _ => 0.0,
        };
        assert_close(
            &download_tensor(&e, dtab, &[vocab, dim], dtype),
            &want,
            tol,
            &kernel,
        );
    }
}

#[test]
fn embedding_reports_an_id_out_of_range_without_reading_it() {
    let e = emu();
    let table = e.upload(&[1.0f32; 6]).unwrap(); // [3, 2]
    let id = e.upload(&[0i64, 3, 1]).unwrap();
    let (dy, derr) = (e.alloc(3 * 2 * 4).unwrap(), e.upload(&[-1i64]).unwrap());
    e.launch_args(
        "embedding_f32",
        cfg1d(6),
        args()
            .arg(3i64)
            .arg(2i64)
            .arg(id)
            .arg(table)
            .arg(3i64)
            .arg(dy)
            .arg(derr),
    )
    .unwrap();
    assert_eq!(e.download::<i64>(derr, 1).unwrap(), vec![3]);
    assert_eq!(
        e.download::<f32>(dy, 6).unwrap(),
        vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    );
}

#[test]
fn index_select_and_gather_match_cpu_along_every_dim() {
    let e = emu();
    let shape = [4usize, 5, 6];
    for dtype in ALL {
        let base = tensor(
            &data(120, 8, 30.0)
                .iter()
                .map(|v| v.abs())
                .collect::<Vec<_>>(),
            &shape,
            dtype,
        );
        // A strided source: a permuted view of a base of another shape.
        let src_base = base.reshape((6, 5, 4)).unwrap();
        let src = src_base.permute(&[2, 1, 0]).unwrap();
        let dsrc = upload_tensor(&e, &src_base);
        for dim in 0..3 {
            let size = shape[dim];
            // index_select with 7 ids (repeats) along `dim`.
            let id = ids(7, size, dim as u64);
            let ids_t = Tensor::from_vec(id.clone(), 7, &cpu()).unwrap();
            let want = src.index_select(&ids_t, dim).unwrap();
            let did = e.upload(&id).unwrap();
            let n = want.elem_count();
            let (dy, derr) = (alloc(&e, n, dtype), e.upload(&[-1i64]).unwrap());
            let out_shape = Strided::exact(want.dims(), want.layout().strides(), 0).unwrap();
            let kernel = format!("index_select_{}", suffix(dtype));
            e.launch_args(
                &kernel,
                cfg1d(n),
                args()
                    .arg(n as i64)
                    .arg(exact(&src))
                    .arg(dsrc)
                    .arg(exact(&ids_t))
                    .arg(did)
                    .arg(dim as i32)
                    .arg(out_shape)
                    .arg(dy)
                    .arg(derr),
            )
            .unwrap();
            assert_eq!(e.download::<i64>(derr, 1).unwrap(), vec![-1]);
            assert_same(
                &download_tensor(&e, dy, want.dims(), dtype),
                &want,
                &format!("{kernel} dim {dim}"),
            );

            // gather with ids of shape [3, 4, 2] (smaller than src along other dims).
            let mut gshape = [3usize, 4, 2];
            gshape[dim] = 5;
            let gn: usize = gshape.iter().product();
            let gid = ids(gn, size, 10 + dim as u64);
            let gids = Tensor::from_vec(gid.clone(), gshape.to_vec(), &cpu()).unwrap();
            let want = src.gather(&gids, dim).unwrap();
            let dgid = e.upload(&gid).unwrap();
            let dz = alloc(&e, gn, dtype);
            let kernel = format!("gather_{}", suffix(dtype));
            e.launch_args(
                &kernel,
                cfg1d(gn),
                args()
                    .arg(gn as i64)
                    .arg(exact(&src))
                    .arg(dsrc)
                    .arg(exact(&gids))
                    .arg(dgid)
                    .arg(dim as i32)
                    .arg(dz)
                    .arg(derr),
            )
            .unwrap();
            assert_eq!(e.download::<i64>(derr, 1).unwrap(), vec![-1]);
            assert_same(
                &download_tensor(&e, dz, &gshape, dtype),
                &want,
                &format!("{kernel} dim {dim}"),
            );
        }
    }
}

#[test]
fn scatter_add_and_index_add_are_the_adjoints_on_the_device() {
    let e = emu();
    let shape = [4usize, 5, 6];
    for dtype in [DType::F32, DType::F64, DType::I64, DType::F16, DType::BF16] {
        let base = tensor(&data(120, 12, 8.0), &shape, dtype);
        let out_layout = Strided::exact(&shape, base.layout().strides(), 0).unwrap();
        for dim in 0..3 {
            let size = shape[dim];
            // scatter_add: ids and src of shape [3, 4, 2] with `dim` resized.
            let mut sshape = [3usize, 4, 2];
            sshape[dim] = 7;
            let sn: usize = sshape.iter().product();
            let sid = ids(sn, size, 20 + dim as u64);
            let sids = Tensor::from_vec(sid.clone(), sshape.to_vec(), &cpu()).unwrap();
            let src = tensor(&data(sn, 21, 4.0), &sshape, dtype);
            let want = base.scatter_add(&sids, &src, dim).unwrap();
            let (dout, dids, dsrc) = (
                upload_tensor(&e, &base),
                e.upload(&sid).unwrap(),
                upload_tensor(&e, &src),
            );
            let derr = e.upload(&[-1i64]).unwrap();
            let kernel = format!("scatter_add_{}", suffix(dtype));
            e.launch_args(
                &kernel,
                cfg1d(sn),
                args()
                    .arg(sn as i64)
                    .arg(exact(&sids))
                    .arg(dids)
                    .arg(exact(&src))
                    .arg(dsrc)
                    .arg(dim as i32)
                    .arg(out_layout)
                    .arg(dout)
                    .arg(derr),
            )
            .unwrap();
            let tol = match dtype {
                DType::F16 => 1e-2,
                DType::BF16 => 6e-2,
                _ => 0.0,
            };
            assert_close(
                &download_tensor(&e, dout, &shape, dtype),
                &want,
                tol,
                &format!("{kernel} dim {dim}"),
            );

            // index_add: 9 ids along `dim`, src the base's shape with `dim` resized.
            let id = ids(9, size, 30 + dim as u64);
            let ids_t = Tensor::from_vec(id.clone(), 9, &cpu()).unwrap();
            let mut ashape = shape;
            ashape[dim] = 9;
            let an: usize = ashape.iter().product();
            let asrc_base = tensor(&data(an, 31, 4.0), &[an], dtype);
            let asrc = asrc_base.reshape(ashape.to_vec()).unwrap();
            let want = base.index_add(&ids_t, &asrc, dim).unwrap();
            let (dout, did, dsrc) = (
                upload_tensor(&e, &base),
                e.upload(&id).unwrap(),
                upload_tensor(&e, &asrc_base),
            );
            let kernel = format!("index_add_{}", suffix(dtype));
            e.launch_args(
                &kernel,
                cfg1d(an),
                args()
                    .arg(an as i64)
                    .arg(exact(&asrc))
                    .arg(dsrc)
                    .arg(exact(&ids_t))
                    .arg(did)
                    .arg(dim as i32)
                    .arg(out_layout)
                    .arg(dout)
                    .arg(derr),
            )
            .unwrap();
            assert_eq!(e.download::<i64>(derr, 1).unwrap(), vec![-1]);
            assert_close(
                &download_tensor(&e, dout, &shape, dtype),
                &want,
                tol,
                &format!("{kernel} dim {dim}"),
            );
        }
    }
}

#[test]
fn index_kernels_report_out_of_range_indices() {
    let e = emu();
    let src = Tensor::from_vec(
        (0..12).map(|v| v as f32).collect::<Vec<_>>(),
        (3, 4),
        &cpu(),
    )
    .unwrap();
    let ds = upload_tensor(&e, &src);
    let bad = Tensor::from_vec(vec![1i64, -2, 0], 3, &cpu()).unwrap();
    let dbad = upload_tensor(&e, &bad);
    let out_shape = Strided::exact(&[3, 4], &[4, 1], 0).unwrap();
    let (dy, derr) = (e.alloc(12 * 4).unwrap(), e.upload(&[-1i64]).unwrap());
    e.launch_args(
        "index_select_f32",
        cfg1d(12),
        args()
            .arg(12i64)
            .arg(exact(&src))
            .arg(ds)
            .arg(exact(&bad))
            .arg(dbad)
            .arg(0i32)
            .arg(out_shape)
            .arg(dy)
            .arg(derr),
    )
    .unwrap();
    assert_eq!(e.download::<i64>(derr, 1).unwrap(), vec![-2]);
}

/// One Adam step on the emulator against chapter 06's fused program on
/// the CPU, for each variant: plain, L2 weight decay, AdamW, AMSGrad,
/// maximize, over three steps (so the moments are not zero).
#[test]
fn adam_step_matches_chapter_06_fused_program_exactly() {
    let e = emu();
    let n = 1000;
    let variants = [
        AdamConfig::adam(1e-2),
        AdamConfig {
            weight_decay: 0.1,
            ..AdamConfig::adam(1e-2)
        },
        AdamConfig::adamw(1e-2),
        AdamConfig {
            amsgrad: true,
            ..AdamConfig::adam(1e-2)
        },
        AdamConfig {
            maximize: true,
            weight_decay: 0.05,
            ..AdamConfig::adamw(3e-3)
        },
    ];
    for dtype in FLOATS {
        for c in variants {
            let program = AdamRule::program(&c);
            let mut p = tensor(&data(n, 1, 1.0), &[n], dtype);
            let mut m = Tensor::zeros(n, dtype, &cpu()).unwrap();
            let mut v = Tensor::zeros(n, dtype, &cpu()).unwrap();
            let mut vmax = Tensor::zeros(n, dtype, &cpu()).unwrap();
            let (dp, dm, dv, dvmax) = (
                upload_tensor(&e, &p),
                upload_tensor(&e, &m),
                upload_tensor(&e, &v),
                upload_tensor(&e, &vmax),
            );
            for t in 1..=3u64 {
                let g = tensor(&data(n, 10 + t, 2.0), &[n], dtype);
                let dg = upload_tensor(&e, &g);
                let s = AdamRule::scalars(&c, t);
                let mut ins = vec![&p, &g, &m, &v];
                if c.amsgrad {
                    ins.push(&vmax);
                }
                let out = Tensor::fused(&program, &ins, &s).unwrap();
                let flags = (c.weight_decay != 0.0) as i32
                    | ((c.decoupled_weight_decay as i32) << 1)
                    | ((c.maximize as i32) << 2);
                let vmax_ptr: DevicePtr = if c.amsgrad { dvmax } else { 0 };
                let kernel = format!("adam_{}", suffix(dtype));
                e.launch_args(
                    &kernel,
                    cfg1d(n),
                    args()
                        .arg(n as i64)
                        .arg(dp)
                        .arg(dg)
                        .arg(dm)
                        .arg(dv)
                        .arg(vmax_ptr)
                        .arg(s[2])
                        .arg(s[3])
                        .arg(s[4])
                        .arg(s[5])
                        .arg(s[6])
                        .arg(s[7])
                        .arg(s[8])
                        .arg(s[0])
                        .arg(s[1])
                        .arg(flags),
                )
                .unwrap();
                p = out[0].clone();
                m = out[1].clone();
                v = out[2].clone();
                if c.amsgrad {
                    vmax = out[3].clone();
                }
                let what = format!("{kernel} {c:?} step {t}");
                assert_same(&download_tensor(&e, dp, &[n], dtype), &p, &what);
                assert_same(&download_tensor(&e, dm, &[n], dtype), &m, &what);
                assert_same(&download_tensor(&e, dv, &[n], dtype), &v, &what);
                e.free(dg).unwrap();
            }
        }
    }
    let _: &Emulator = &e;
}
