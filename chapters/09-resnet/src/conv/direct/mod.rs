//! 3 × 3 convolutions computed directly, in vector registers, for `f32`
//! images whose output rows are as wide as their input rows: stride 1 and
//! padding 1 on each side, every 3 × 3 layer of ResNet14 but the strided
//! ones, and their gradients.
//!
//! Winograd's method ([`super::winograd`]) does 16/36 of the direct
//! method's multiplications, but pays for them in memory: each input
//! value becomes four transformed values, written out and read back, and
//! each output value comes from four products. On a core with two FMA
//! units the multiplications are cheap and that traffic is not: measured
//! on a 2-core Xeon (Emerald Rapids), half of a Winograd forward pass of
//! the 16-channel 28 × 28 layer went to its two transforms. These kernels
//! write nothing but their results. Two layouts of the work:
//!
//! - **Pixels in the lanes** (the forward pass and the input gradient).
//!   Number an output plane's pixels `p = y·W + x`. Since the output is as
//!   wide as the input, the input pixel that tap `(i, j)` reads for output
//!   `p` is `p + (i − pt)·W + (j − pl)`: the same shift for every pixel.
//!   So a register holds consecutive output pixels (running across rows),
//!   and for each tap one load at the shifted address fetches the input
//!   values it multiplies. The lanes whose input lies in the padding must
//!   read zeros: AVX-512 masks them (`avx512.rs`); AVX2, whose masked
//!   loads cannot be folded into an FMA, reads copies of the plane in
//!   which the columns a shift would wrap into are zero (`avx2.rs`).
//! - **Output channels in the lanes** (the weight gradient, a sum over
//!   all pixels of `dY[o][p] · X[c][p + shift]`). Each image's `dY` is
//!   transposed to pixel-major order, so a register holds one pixel's
//!   gradient for as many output channels as it has lanes, and each input
//!   value is broadcast. The accumulators are the gradient itself, so
//!   nothing is reduced across lanes at the end.
//!
//! The input gradient of such a layer is a convolution of the same kind
//! (of `dY` with the flipped, transposed filters and padding `2 − p`), so
//! the first kernel serves both.
//!
//! The kernels exist twice, for AVX-512 (32 registers of 16 lanes) and for
//! AVX2 with FMA (16 registers of 8 lanes): the same arithmetic, blocked
//! to fill each register file. This file holds what the two share and
//! chooses between them.

mod avx2;
mod avx512;
mod weight_grad;

use super::geometry::ConvGeometry;
use super::registers::available;
use chapter_02::scratch_buffer;
use chapter_04::row_kernels::has_avx2_fma;
use std::sync::atomic::{AtomicBool, Ordering};
use weight_grad::Walk;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// See [`super::set_direct_enabled`].
pub(super) fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// The instruction set a direct kernel runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    /// AVX-512: 32 registers of 16 `f32` lanes, with masked loads.
    Avx512,
    /// AVX2 and FMA: 16 registers of 8 lanes.
    Avx2,
}

impl Isa {
    /// `f32` values in one register.
    fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }

    /// Output channels a block of the forward kernel holds (see
    /// `avx512.rs` and `avx2.rs`).
    fn channels(self) -> usize {
        match self {
            Isa::Avx512 => avx512::CHANNELS,
            Isa::Avx2 => avx2::CHANNELS,
        }
    }
}

/// The kernels to run, if any: the AVX-512 ones on a CPU with AVX-512
/// (unless [`super::set_avx512_enabled`] turned them off), the AVX2 ones on
/// a CPU that has AVX2 and FMA but not AVX-512, none where
/// [`super::set_direct_enabled`] turned them off. A CPU with AVX-512 never
/// runs the AVX2 kernels, so turning AVX-512 off there gives Winograd's
/// method, as it did before the AVX2 kernels existed.
fn isa() -> Option<Isa> {
    use std::sync::OnceLock;
    static AVX512: OnceLock<bool> = OnceLock::new();
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    match *AVX512.get_or_init(|| std::is_x86_feature_detected!("avx512f")) {
        true => available().then_some(Isa::Avx512),
        false => has_avx2_fma().then_some(Isa::Avx2),
    }
}

/// Images one partial sum of the weight gradient covers. The partial sums
/// run on the cores in parallel and are added in order, so the result does
/// not depend on the number of threads. Measured with `conv_layers` on the
/// 64-channel 7 × 7 layer: 2.3 ms with 32 images a partial sum, 3.0–3.4
/// with 8 (each partial sum has its own buffers and its own final pass).
pub(crate) const WEIGHT_GRAD_IMAGES: usize = 32;

/// Whether the kernels can compute the convolution `g` at all: a 3 × 3
/// filter with stride 1, no dilation and no groups, output rows exactly as
/// wide as the input's. The sizes must also be those of such a
/// convolution (`out = in + pads − 2`): the input gradient's geometry is
/// built as a 3 × 3 convolution for any layer, and only a 3 × 3 layer's is
/// one.
fn applies(g: &ConvGeometry) -> bool {
    g.kernel == (3, 3)
        && g.stride == (1, 1)
        && g.dilation == (1, 1)
        && g.groups == 1
        && g.out_w == g.in_w
        && g.out_h > 0
        && g.out_w > 0
        && g.out_h + 2 == g.in_h + g.pad_begin.0 + g.pad_end.0
        && g.out_w + 2 == g.in_w + g.pad_begin.1 + g.pad_end.1
}

/// Whether the strided forward kernel (AVX2 only) can compute `g`: a 3 × 3
/// filter with stride 2, no dilation and no groups, padding at most 2 on a
/// side, and the output size that stride and padding give. Its rows are
/// padded on both sides (see `avx2::convolve_strided`).
fn applies_strided(g: &ConvGeometry) -> bool {
    let fits = |input: usize, before: usize, after: usize, out: usize| {
        let padded = input + before + after;
        before <= 2 && after <= 2 && padded >= 3 && out == (padded - 3) / 2 + 1
    };
    g.kernel == (3, 3)
        && g.stride == (2, 2)
        && g.dilation == (1, 1)
        && g.groups == 1
        && g.out_h > 0
        && g.out_w > 0
        && fits(g.in_h, g.pad_begin.0, g.pad_end.0, g.out_h)
        && fits(g.in_w, g.pad_begin.1, g.pad_end.1, g.out_w)
}

/// Whether the forward kernel should compute `g`: output channels in
/// whole blocks, and at most 10% of the work wasted. With AVX-512 the
/// waste is the last register of each plane, which a 7 × 7 plane fills to
/// 77% (in four registers); with AVX2 it is the gap column the padded
/// pitch adds to each row, 1 in 8 at 7 × 7. There Winograd's method
/// measured faster (the 64-channel layer's forward pass: with AVX-512 on a
/// Xeon, 2.1–2.2 ms against the direct kernel's 2.3–2.6; with AVX2 on one
/// core of a Zen 3 EPYC and 64 images, 3.4–3.6 against 3.6–3.7).
///
/// With AVX2 a stride-2 3 × 3 layer also suits, with 8 output channels to
/// a block (see [`applies_strided`]).
pub(crate) fn suits_forward(g: &ConvGeometry) -> bool {
    let plane = g.out_h * g.out_w;
    if isa() == Some(Isa::Avx2) && applies_strided(g) {
        return g.out_channels.is_multiple_of(avx2::STRIDED_CHANNELS);
    }
    isa().is_some_and(|isa| {
        let computed = match isa {
            Isa::Avx512 => 16 * plane.div_ceil(16),
            Isa::Avx2 => g.out_h * padded_pitch(g),
        };
        applies(g) && g.out_channels.is_multiple_of(isa.channels()) && 10 * plane >= 9 * computed
    })
}

/// The filters `w` (`[O, C, 3, 3]`) laid out `[C][9][O]`, so that the
/// forward kernel's broadcasts for one input channel and tap are
/// consecutive; with `flip`, those of the input gradient (a convolution
/// from `O` channels to `C` with the filters transposed and rotated by
/// 180°), laid out `[O][9][C]`.
pub(crate) fn arrange_filters(w: &[f32], o: usize, c: usize, flip: bool) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for oi in 0..o {
        for ci in 0..c {
            for tap in 0..9 {
                let value = w[(oi * c + ci) * 9 + tap];
                match flip {
                    false => out[(ci * 9 + tap) * o + oi] = value,
                    true => out[(oi * 9 + (8 - tap)) * c + ci] = value,
                }
            }
        }
    }
    out
}

/// `y = conv(x, w)` for every image (`x`: `[N, C, H, W]`, `y`: `[N, O,
/// out_h, W]`), `w` arranged by [`arrange_filters`]. Images run on the
/// cores in parallel. Call only where [`suits_forward`] holds.
pub(crate) fn convolve(g: &ConvGeometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    assert!(suits_forward(g), "the direct kernel does not fit {g:?}");
    let chw = g.in_channels * g.in_h * g.in_w;
    assert!(x.len() >= g.batch * chw && w.len() >= g.out_channels * g.in_channels * 9);
    assert!(y.len() >= g.batch * g.out_channels * g.out_h * g.out_w);
    match isa() {
        Some(Isa::Avx512) => avx512::convolve(g, x, w, y),
        _ if g.stride == (2, 2) => avx2::convolve_strided(g, x, w, y),
        _ => avx2::convolve(g, x, w, y),
    }
}

/// The pitch of the padded planes of the weight gradient: the input's
/// width and, between rows, as many zeros as the wider of the left and
/// right paddings (one gap serves as the right padding of a row and the
/// left of the next). The padded-row lowering's planes (`PaddedRows`)
/// give each row both of its paddings; here every column of the pitch is
/// a column of pixels the kernel computes (and drops), so the narrower
/// pitch saves work: 29 columns a row instead of 30 at 28 × 28, 8 instead
/// of 9 at 7 × 7.
fn padded_pitch(g: &ConvGeometry) -> usize {
    g.in_w + g.pad_begin.1.max(g.pad_end.1)
}

/// Pixels the weight gradient's accumulators sum before they are added to
/// the partial sum: a sum of `f32` values in one long chain loses about
/// one rounding per term, so the pixels are summed in runs, the runs per
/// image, the images per partial sum and the partial sums in order. With
/// one chain per image, a 17-image batch of 20 × 20 images missed the
/// lowering's gradient by 2.5e-4 relative; in runs of 64 it agrees to
/// within the tests' 1e-4.
const SUM_PIXELS: usize = 64;

/// Output-channel registers `V` and filter rows `R` of one block of the
/// weight gradient's kernel, which holds `3·R·V` accumulators: 24 of
/// AVX-512's 32 registers, 12 or 9 of AVX2's 16 (the `V` gradient
/// registers and a broadcast input need the rest). `None` where the
/// output channels do not fill whole registers.
fn lane_blocking(isa: Isa, g: &ConvGeometry) -> Option<(usize, usize)> {
    let (o, rows) = (g.out_channels, 3 * g.in_channels);
    let blocking = match isa {
        Isa::Avx512 => match (o % 64, o % 32) {
            (0, _) => (4, 2),
            (_, 0) => (2, 4),
            _ => (1, 8),
        },
        Isa::Avx2 => match (o % 16, rows % 2) {
            (0, 0) => (2, 2),
            _ if rows.is_multiple_of(4) => (1, 4),
            _ => (1, 3),
        },
    };
    let (v, r) = blocking;
    (o.is_multiple_of(isa.lanes() * v) && rows.is_multiple_of(r)).then_some(blocking)
}

/// Whether the weight-gradient kernel should compute `g`: output channels
/// in whole registers, and input channels in whole groups of rows (see
/// [`lane_blocking`]).
///
/// With AVX2 the kernel also takes stride-2 layers (see [`Walk`]).
pub(crate) fn suits_weight_grad(g: &ConvGeometry) -> bool {
    isa().is_some_and(|isa| {
        let strided = isa == Isa::Avx2 && applies_strided(g);
        (applies(g) || strided) && lane_blocking(isa, g).is_some()
    })
}

/// The pitch and plane length of the weight gradient's padded images:
/// with stride 1, rows that share their gap ([`padded_pitch`]); with
/// stride 2, rows padded on both sides, as for the strided forward kernel.
fn weight_grad_padding(g: &ConvGeometry) -> (usize, usize) {
    match g.stride {
        (1, 1) => (padded_pitch(g), padded_len(g, padded_pitch(g))),
        _ => {
            let pw = g.pad_begin.1 + g.in_w + g.pad_end.1;
            (pw, (g.pad_begin.0 + g.in_h + g.pad_end.0) * pw)
        }
    }
}

/// One partial sum of the weight gradient, in the kernel's layout
/// `[O/L][C][9][L]` (`L` output channels side by side, a register's
/// lanes): for each image, its input is padded and its output gradient
/// transposed, then every block of accumulators runs over all its pixels.
/// Call only where [`suits_weight_grad`] holds.
pub(crate) fn weight_grad_lanes(
    g: &ConvGeometry,
    x: &[f32],
    dy: &[f32],
    images: std::ops::Range<usize>,
) -> Vec<f32> {
    assert!(suits_weight_grad(g), "the direct kernel does not fit {g:?}");
    let isa = isa().expect("checked by suits_weight_grad");
    let blocking = lane_blocking(isa, g).expect("checked by suits_weight_grad");
    let (c, o) = (g.in_channels, g.out_channels);
    let chw = c * g.in_h * g.in_w;
    let ol = o * g.out_h * g.out_w;
    assert!(x.len() >= images.end * chw && dy.len() >= images.end * ol);
    let (pw, len) = weight_grad_padding(g);
    let walk = Walk::new(g, pw);
    // From the buffer pool: `pad_image` and the transpositions of `dY`
    // write every value before it is read.
    let mut xp = scratch_buffer(c * len, 0.0f32);
    let mut dt = scratch_buffer(walk.pixels() * o, 0.0f32);
    let mut lanes = vec![0.0f32; o * c * 9];
    for n in images {
        pad_image(g, &x[n * chw..][..chw], &mut xp, (pw, len));
        let dy_n = &dy[n * ol..][..ol];
        let padded = ((&xp[..], pw, len), walk);
        match isa {
            Isa::Avx512 => {
                avx512::weight_grad_image(g, blocking, padded, dy_n, &mut dt, &mut lanes)
            }
            Isa::Avx2 => avx2::weight_grad_image(g, blocking, padded, dy_n, &mut dt, &mut lanes),
        }
    }
    lanes
}

/// The weight gradient `dw` (`[O, C, 3, 3]`) from the sum `lanes` of the
/// partial sums of [`weight_grad_lanes`] (the caller adds them in order,
/// [`WEIGHT_GRAD_IMAGES`] images each, with the lowering's
/// `sum_over_chunks`): from `[O/L][C][9][L]` to `[O][C][9]`.
pub(crate) fn from_lanes(g: &ConvGeometry, lanes: &[f32], dw: &mut [f32]) {
    let isa = isa().expect("the direct kernels computed `lanes`");
    unpack_lanes(isa.lanes(), g.in_channels, lanes, dw);
}

/// `lanes` (`[O/l][C][9][l]`) as `dw` (`[O][C][9]`).
fn unpack_lanes(l: usize, c: usize, lanes: &[f32], dw: &mut [f32]) {
    for (oi, dw_o) in dw.chunks_exact_mut(c * 9).enumerate() {
        for (i, v) in dw_o.iter_mut().enumerate() {
            *v = lanes[((oi / l) * c * 9 + i) * l + oi % l];
        }
    }
}

/// One image's padded planes (by [`pad_image`]), with their pitch `pw`
/// and the length of each plane.
type Padded<'a> = (&'a [f32], usize, usize);

/// Values in one padded plane: the rows the kernel reads, for every pixel
/// of `out_h` rows of `pw` (the last row's gap included) and the taps two
/// rows and two columns on.
fn padded_len(g: &ConvGeometry, pw: usize) -> usize {
    (g.out_h + 2) * pw + 2
}

/// Copies image `x_n` into `padded`: `C` planes of `len` values, input
/// row `yy` of each at `(yy + pt)·pw + pl`, zeros everywhere else.
fn pad_image(g: &ConvGeometry, x_n: &[f32], padded: &mut [f32], (pw, len): (usize, usize)) {
    let (h, w) = (g.in_h, g.in_w);
    let (pt, pl) = g.pad_begin;
    for (x_c, p_c) in x_n.chunks_exact(h * w).zip(padded.chunks_exact_mut(len)) {
        // Every value written once, in order: the zeros before each row
        // (the padding above, and the gap between rows), the row, and the
        // zeros after the last.
        let mut at = 0;
        for (yy, row) in x_c.chunks_exact(w).enumerate() {
            let start = (yy + pt) * pw + pl;
            p_c[at..start].fill(0.0);
            p_c[start..][..w].copy_from_slice(row);
            at = start + w;
        }
        p_c[at..].fill(0.0);
    }
}

/// The AVX2 kernels run by themselves, against the definition, on any CPU
/// with AVX2 and FMA: on a CPU with AVX-512 [`isa`] never picks them, so
/// `direct_kernels_match_the_composites` (tests/conv.rs) would not see
/// them there.
#[cfg(test)]
mod tests {
    use super::super::registers::testing::values;
    use super::*;

    /// A 3 × 3, stride-1 geometry with output rows as wide as the input's.
    fn geometry(n: usize, c: usize, o: usize, (h, w): (usize, usize), top: usize) -> ConvGeometry {
        let (pt, pb) = (top, 2 - top);
        ConvGeometry {
            batch: n,
            in_channels: c,
            in_h: h,
            in_w: w,
            out_channels: o,
            kernel: (3, 3),
            stride: (1, 1),
            pad_begin: (pt, 1),
            pad_end: (pb, 1),
            dilation: (1, 1),
            groups: 1,
            out_h: h,
            out_w: w,
        }
    }

    /// The input value that tap `(i, j)` of output `(y, x)` reads, or 0 in
    /// the padding.
    fn tap(g: &ConvGeometry, x_c: &[f32], (y, x): (usize, usize), (i, j): (usize, usize)) -> f64 {
        let (sy, sx) = g.stride;
        let row = (sy * y + i)
            .checked_sub(g.pad_begin.0)
            .filter(|&r| r < g.in_h);
        let column = (sx * x + j)
            .checked_sub(g.pad_begin.1)
            .filter(|&c| c < g.in_w);
        match (row, column) {
            (Some(r), Some(c)) => x_c[r * g.in_w + c] as f64,
            _ => 0.0,
        }
    }

    /// The forward pass and the weight gradient by their definitions, in
    /// `f64`: `y[n][o][p] = Σ w[o][c][t] · x[n][c][p + t]`, `dw[o][c][t] =
    /// Σ dy[n][o][p] · x[n][c][p + t]`.
    fn reference(g: &ConvGeometry, x: &[f32], w: &[f32], dy: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (c, o, oh, ow) = (g.in_channels, g.out_channels, g.out_h, g.out_w);
        let (hw, plane) = (g.in_h * g.in_w, oh * ow);
        let mut y = vec![0.0; g.batch * o * plane];
        let mut dw = vec![0.0; o * c * 9];
        for n in 0..g.batch {
            for ci in 0..c {
                let x_c = &x[(n * c + ci) * hw..][..hw];
                for oi in 0..o {
                    for p in 0..plane {
                        let out = (n * o + oi) * plane + p;
                        for t in 0..9 {
                            let v = tap(g, x_c, (p / ow, p % ow), (t / 3, t % 3));
                            y[out] += w[(oi * c + ci) * 9 + t] as f64 * v;
                            dw[(oi * c + ci) * 9 + t] += dy[out] as f64 * v;
                        }
                    }
                }
            }
        }
        (y, dw)
    }

    fn assert_close(what: &str, g: &ConvGeometry, got: &[f32], want: &[f64]) {
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
            let error = (a as f64 - b).abs() / scale;
            assert!(
                error < 1e-5,
                "{what} of {g:?}: value {i} is {a}, expected {b}"
            );
        }
    }

    #[test]
    fn avx2_kernels_match_the_definition() {
        if !has_avx2_fma() {
            println!("skipped: this CPU has no AVX2 with FMA");
            return;
        }
        let cases = [
            // (N, C, O, (H, W), top padding): the stem, rows that end
            // inside an 8 × 8 block of the transposes, widths under 8,
            // padding 0 and 2 above, the three weight-gradient blockings
            // ((2, 2), (1, 4) and (1, 3)), a last block of fewer than 6
            // pixels.
            (2, 1, 16, (28, 28), 1),
            (3, 16, 16, (9, 17), 1),
            (2, 8, 32, (5, 5), 0),
            (2, 6, 16, (4, 7), 2),
            (3, 4, 8, (6, 11), 1),
            (1, 3, 8, (3, 12), 1),
            (2, 16, 48, (7, 7), 1),
        ];
        for (k, &(n, c, o, size, top)) in cases.iter().enumerate() {
            let g = geometry(n, c, o, size, top);
            assert!(applies(&g));
            let x = values(n * c * size.0 * size.1, 3 * k as u64 + 1);
            let w = values(o * c * 9, 3 * k as u64 + 2);
            let dy = values(n * o * size.0 * size.1, 3 * k as u64 + 3);
            let (y_want, dw_want) = reference(&g, &x, &w, &dy);
            if o.is_multiple_of(avx2::CHANNELS) {
                let mut y = vec![f32::NAN; y_want.len()];
                avx2::convolve(&g, &x, &arrange_filters(&w, o, c, false), &mut y);
                assert_close("the AVX2 forward pass", &g, &y, &y_want);
            }
            assert_close(
                "the AVX2 weight gradient",
                &g,
                &avx2_weight_grad(&g, &x, &dy),
                &dw_want,
            );
        }
    }

    /// The AVX2 weight gradient of `g`, image by image in one partial sum.
    fn avx2_weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let (c, o) = (g.in_channels, g.out_channels);
        let blocking = lane_blocking(Isa::Avx2, g).expect("a blocking for every case");
        let (pw, len) = weight_grad_padding(g);
        let walk = Walk::new(g, pw);
        let (chw, ol) = (c * g.in_h * g.in_w, o * g.out_h * g.out_w);
        let mut xp = vec![f32::NAN; c * len];
        let mut dt = vec![f32::NAN; walk.pixels() * o];
        let mut lanes = vec![0.0f32; o * c * 9];
        for i in 0..g.batch {
            pad_image(g, &x[i * chw..][..chw], &mut xp, (pw, len));
            let padded = ((&xp[..], pw, len), walk);
            let dy_n = &dy[i * ol..][..ol];
            avx2::weight_grad_image(g, blocking, padded, dy_n, &mut dt, &mut lanes);
        }
        let mut dw = vec![f32::NAN; o * c * 9];
        unpack_lanes(Isa::Avx2.lanes(), c, &lanes, &mut dw);
        dw
    }

    #[test]
    fn avx2_strided_kernels_match_the_definition() {
        if !has_avx2_fma() {
            println!("skipped: this CPU has no AVX2 with FMA");
            return;
        }
        // (N, C, O, (H, W), padding): ResNet14's 28 → 14 layer, rows of
        // 5 and 4 pixels (blocks of fewer than 7), padding 0 and 2.
        let cases = [
            (2, 16, 32, (28, 28), 1),
            (3, 5, 8, (9, 10), 1),
            (2, 3, 16, (8, 9), 0),
            (1, 4, 8, (5, 6), 2),
        ];
        for (k, &(n, c, o, (h, w), pad)) in cases.iter().enumerate() {
            let out = |size: usize| (size + 2 * pad - 3) / 2 + 1;
            let g = ConvGeometry {
                stride: (2, 2),
                pad_begin: (pad, pad),
                pad_end: (pad, pad),
                out_h: out(h),
                out_w: out(w),
                ..geometry(n, c, o, (h, w), 1)
            };
            assert!(applies_strided(&g));
            let x = values(n * c * h * w, 5 * k as u64 + 1);
            let wt = values(o * c * 9, 5 * k as u64 + 2);
            let dy = values(n * o * g.out_h * g.out_w, 5 * k as u64 + 3);
            let (y_want, dw_want) = reference(&g, &x, &wt, &dy);
            let mut y = vec![f32::NAN; y_want.len()];
            avx2::convolve_strided(&g, &x, &arrange_filters(&wt, o, c, false), &mut y);
            assert_close("the AVX2 strided forward pass", &g, &y, &y_want);
            let dw = avx2_weight_grad(&g, &x, &dy);
            assert_close("the AVX2 strided weight gradient", &g, &dw, &dw_want);
        }
    }
}
