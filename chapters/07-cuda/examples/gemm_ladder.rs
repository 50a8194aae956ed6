//! The GEMM ladder, measured: each rung of `kernels/gemm.cu` and cuBLAS on
//! square `f32` products, in GFLOP/s, with a table and a figure for the
//! chapter 07 page.
//!
//! ```text
//! cargo run --release -p chapter-07 --example gemm_ladder              # the GPU (cuda:0)
//! cargo run --release -p chapter-07 --example gemm_ladder -- --emulator   # checks only
//! ```
//!
//! On a GPU it times every rung at 512, 1024, 2048 and 4096 (the best of
//! several runs, each bracketed by `synchronize`), checks every rung's
//! result against the register-blocked one, and writes
//! `book/src/figures/07-gemm-ladder.{svg,png}` and `07-gemm-ladder.md` (the
//! table). With `--emulator` (or without a GPU) it runs the rungs on the
//! CUDA emulator at small ragged sizes to check them, and says that nothing
//! was timed: the emulator's speed says nothing about a GPU's.
//!
//! Options: `--sizes 512,1024`, `--out DIR` (default `book/src/figures`).

use chapter_02::{Layout, Result};
use chapter_07::cublas::Cublas;
use chapter_07::driver::Driver;
use chapter_07::emulator::{KernelArgs, RuntimeExt};
use chapter_07::{DevicePtr, Emulator, LaunchConfig, Runtime};
use plotters::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The rungs, with the launch shape each needs (see `kernels/gemm.cu`).
const RUNGS: [(&str, &str); 4] = [
    ("gemm_naive_f32", "naive"),
    ("gemm_coalesced_f32", "coalesced"),
    ("gemm_tiled_f32", "shared-memory tiles"),
    ("gemm_regblock_f32", "register blocks"),
];

fn launch_shape(kernel: &str, m: usize, n: usize) -> LaunchConfig {
    let up = |x: usize, d: usize| x.div_ceil(d).max(1) as u32;
    let (grid, block) = match kernel {
        "gemm_naive_f32" => ([up(m, 16), up(n, 16), 1], [16, 16, 1]),
        "gemm_regblock_f32" => ([up(n, 64), up(m, 64), 1], [256, 1, 1]),
        _ => ([up(n, 16), up(m, 16), 1], [16, 16, 1]),
    };
    LaunchConfig {
        grid,
        block,
        shared_mem_bytes: 0,
    }
}

fn run_rung<R: Runtime + ?Sized>(
    rt: &R,
    kernel: &str,
    (m, n, k): (usize, usize, usize),
    (a, b, c): (DevicePtr, DevicePtr, DevicePtr),
) -> Result<()> {
    let args = KernelArgs::new()
        .arg(m as i32)
        .arg(n as i32)
        .arg(k as i32)
        .arg(a)
        .arg(b)
        .arg(c);
    rt.launch_args(kernel, launch_shape(kernel, m, n), args)
}

/// Small integers: every product and sum is exact in `f32`, so all rungs
/// must agree bit for bit.
fn operand(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7 + seed * 13) % 9) as f32 - 4.0)
        .collect()
}

fn check_all<R: Runtime + ?Sized>(rt: &R, (m, n, k): (usize, usize, usize)) -> Result<()> {
    let (ha, hb) = (operand(m * k, 1), operand(k * n, 2));
    let mut expected = vec![0f32; m * n];
    for i in 0..m {
        for p in 0..k {
            for j in 0..n {
                expected[i * n + j] += ha[i * k + p] * hb[p * n + j];
            }
        }
    }
    let (a, b) = (rt.upload(&ha)?, rt.upload(&hb)?);
    let c = rt.alloc(4 * m * n)?;
    for (kernel, _) in RUNGS {
        run_rung(rt, kernel, (m, n, k), (a, b, c))?;
        let got: Vec<f32> = rt.download(c, m * n)?;
        if got != expected {
            let bad = got.iter().zip(&expected).filter(|(x, y)| x != y).count();
            return Err(chapter_02::Error::invalid(
                "gemm_ladder",
                format!("{kernel} at {m}x{n}x{k}: {bad} of {} elements wrong", m * n),
            ));
        }
    }
    for p in [a, b, c] {
        rt.free(p)?;
    }
    println!("{m}x{n}x{k}: every rung matches the exact product");
    Ok(())
}

/// The best time of one call of `f` over at least 3 calls and about 0.3 s.
fn best_time(rt: &dyn Runtime, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    rt.synchronize()?;
    let (mut best, mut spent, mut runs) = (f64::MAX, Duration::ZERO, 0);
    while runs < 3 || spent < Duration::from_millis(300) {
        let t = Instant::now();
        f()?;
        rt.synchronize()?;
        let e = t.elapsed();
        best = best.min(e.as_secs_f64());
        spent += e;
        runs += 1;
    }
    Ok(best)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let sizes: Vec<usize> = match value("--sizes") {
        Some(s) => s
            .split(',')
            .map(|x| x.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| format!("--sizes {s}: {e}"))?,
        None => vec![512, 1024, 2048, 4096],
    };
    if sizes.iter().any(|&s| s == 0 || s > 16384) {
        return Err("--sizes: each size must be in 1..=16384".into());
    }
    let out = PathBuf::from(value("--out").unwrap_or_else(|| "book/src/figures".into()));

    let driver = if args.iter().any(|a| a == "--emulator") {
        None
    } else {
        match Driver::open(0) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                println!("no GPU ({e}): checking the rungs on the emulator, timing nothing");
                None
            }
        }
    };
    let Some(driver) = driver else {
        let emu = Emulator::new();
        for shape in [(67, 45, 33), (128, 64, 80), (1, 70, 3)] {
            check_all(&emu, shape)?;
        }
        return Ok(());
    };

    println!("GEMM ladder on {}", driver.describe());
    check_all(driver.as_ref(), (67, 45, 33))?;
    check_all(driver.as_ref(), (256, 320, 192))?;
    let cublas = Cublas::new(driver.clone());
    let mut names: Vec<&str> = RUNGS.iter().map(|r| r.1).collect();
    if cublas.is_some() {
        names.push("cuBLAS");
    }
    // gflops[rung][size]
    let mut gflops = vec![Vec::new(); names.len()];
    for &s in &sizes {
        let (ha, hb) = (operand(s * s, 1), operand(s * s, 2));
        let (a, b) = (driver.upload(&ha)?, driver.upload(&hb)?);
        let c = driver.alloc(4 * s * s)?;
        let flop = 2.0 * (s as f64).powi(3);
        for (r, (kernel, _)) in RUNGS.iter().enumerate() {
            let t = best_time(driver.as_ref(), || {
                run_rung(driver.as_ref(), kernel, (s, s, s), (a, b, c))
            })?;
            gflops[r].push(flop / t / 1e9);
        }
        if let Some(blas) = &cublas {
            let l = Layout::contiguous((s, s));
            let t = best_time(driver.as_ref(), || blas.sgemm(a, &l, b, &l, c).map(|_| ()))?;
            gflops[RUNGS.len()].push(flop / t / 1e9);
        }
        for p in [a, b, c] {
            driver.free(p)?;
        }
    }

    // The table, as Markdown.
    let mut table = format!(
        "| kernel | {} |\n|---|{}\n",
        sizes
            .iter()
            .map(|s| format!("{s}³ GFLOP/s"))
            .collect::<Vec<_>>()
            .join(" | "),
        "---:|".repeat(sizes.len())
    );
    for (name, row) in names.iter().zip(&gflops) {
        let cells: Vec<String> = row.iter().map(|g| format!("{g:.0}")).collect();
        table += &format!("| {name} | {} |\n", cells.join(" | "));
    }
    table += &format!(
        "\nMeasured on {} by `cargo run --release -p chapter-07 --example gemm_ladder`.\n",
        driver.describe()
    );
    print!("{table}");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("07-gemm-ladder.md"), &table)?;

    // The figure.
    chapter_01::plot::register_font()?;
    let title = format!("f32 GEMM on {}", driver.describe());
    let svg = out.join("07-gemm-ladder.svg");
    draw(
        SVGBackend::new(&svg, (720, 440)).into_drawing_area(),
        &title,
        &sizes,
        &names,
        &gflops,
    )?;
    let png = out.join("07-gemm-ladder.png");
    draw(
        BitMapBackend::new(&png, (720, 440)).into_drawing_area(),
        &title,
        &sizes,
        &names,
        &gflops,
    )?;
    println!("wrote {} and {}", svg.display(), png.display());
    Ok(())
}

/// GFLOP/s against matrix size, one line per rung, on a log scale.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    sizes: &[usize],
    names: &[&str],
    gflops: &[Vec<f64>],
) -> std::result::Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let font = chapter_01::plot::FONT_FAMILY;
    let top = gflops.iter().flatten().cloned().fold(1.0, f64::max) * 2.0;
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (font, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0..sizes.len()).into_segmented(), (1.0..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("matrix size n (n × n times n × n)")
        .y_desc("GFLOP/s")
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => sizes.get(*i).map_or(String::new(), |s| s.to_string()),
            _ => String::new(),
        })
        .label_style((font, 14))
        .draw()?;
    for (r, (name, row)) in names.iter().zip(gflops).enumerate() {
        let color = Palette99::pick(r).to_rgba();
        chart
            .draw_series(LineSeries::new(
                row.iter()
                    .enumerate()
                    .map(|(i, &g)| (SegmentValue::CenterOf(i), g)),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((font, 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}
