use std::time::Instant;
#[allow(clippy::too_many_arguments)]
fn run(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    (ars, acs): (usize, usize),
    b: &[f32],
    (brs, bcs): (usize, usize),
    c: &mut [f32],
    (crs, ccs): (usize, usize),
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            ccs as isize,
            crs as isize,
            true,
            a.as_ptr(),
            acs as isize,
            ars as isize,
            b.as_ptr(),
            bcs as isize,
            brs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
fn time(label: &str, flops: f64, mut f: impl FnMut()) {
    for _ in 0..50 {
        f();
    }
    let t = Instant::now();
    let reps = 400;
    for _ in 0..reps {
        f();
    }
    let s = t.elapsed().as_secs_f64() / reps as f64;
    println!("{label}: {:.1} us, {:.1} GFLOP/s", s * 1e6, flops / s / 1e9);
}
fn main() {
    for &(c, o, s) in &[
        (16usize, 16usize, 588usize),
        (16, 16, 2352),
        (32, 32, 539),
        (32, 32, 2156),
        (64, 64, 512),
        (64, 64, 2048),
    ] {
        let v = vec![1.0f32; c * s];
        let u = vec![1.0f32; o * s];
        let mut m = vec![0.0f32; c * o];
        let fl = 2.0 * (o * c * s) as f64;
        // M [c x o] += V [c x s] * U^T [s x o]
        time(&format!("MT=V*UT ({c},{o},K={s})"), fl, || {
            run(c, o, s, &v, (s, 1), &u, (1, s), &mut m, (o, 1))
        });
    }
}
