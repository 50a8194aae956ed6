//! Winograd's minimal filtering: a 3 × 3 convolution with 2.25 times fewer
//! multiplications.
//!
//! Computing two outputs of a 3-tap filter, `y₀ = d₀g₀ + d₁g₁ + d₂g₂` and
//! `y₁ = d₁g₀ + d₂g₁ + d₃g₂`, takes six multiplications written out. Winograd
//! (1980) showed that four suffice, `F(2, 3)`:
//!
//! ```text
//! m₁ = (d₀ − d₂)·g₀                 m₂ = (d₁ + d₂)·(g₀ + g₁ + g₂)/2
//! m₄ = (d₁ − d₃)·g₂                 m₃ = (d₂ − d₁)·(g₀ − g₁ + g₂)/2
//! y₀ = m₁ + m₂ + m₃                 y₁ = m₂ − m₃ − m₄
//! ```
//!
//! The filter's combinations are computed once per filter, the data's with
//! additions only. Nested in two dimensions, `F(2×2, 3×3)` computes a 2 × 2
//! block of outputs from a 4 × 4 tile of input with 16 multiplications
//! instead of 36: in matrix form `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, with
//!
//! ```text
//!      ⎡1  0 −1  0⎤        ⎡1   0   0⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢½   ½   ½⎥    Aᵀ = ⎡1 1  1  0⎤
//!      ⎢0 −1  1  0⎥        ⎢½  −½   ½⎥         ⎣0 1 −1 −1⎦
//!      ⎣0  1  0 −1⎦        ⎣0   0   1⎦
//! ```
//!
//! What makes this a *convolution layer* algorithm (Lavin and Gray, 2016)
//! is that the `⊙` sums over input channels: for each of the 16 positions
//! `ξ` of the transformed tile, the output channels' values over all tiles
//! are one matrix product, `M_ξ = U_ξ · V_ξ` with `U_ξ` the transformed
//! filters (`[O, C]`) and `V_ξ` the transformed input tiles (`[C, tiles]`).
//! So a convolution becomes: transform the input tiles (additions), 16
//! GEMMs with `K = C`, transform the products back (additions). The GEMMs
//! do `16/36` of the direct method's arithmetic; the transforms read and
//! write four values per input and output pixel, against the nine copies
//! per input pixel of im2col.
//!
//! The price is accuracy: the transforms add and subtract values before
//! the multiplications, so rounding errors grow by a small constant factor
//! (`F(2×2, 3×3)` is the mildest member of the family; larger tiles save
//! more and lose more). The tests hold it to the direct lowering within
//! `f32` tolerances, and the parity suite to PyTorch's fixtures.
//!
//! Used for 3 × 3 convolutions with stride 1, no dilation and no groups:
//! their forward pass, and their input gradient, which is the same kind of
//! convolution of `dY` with the filters flipped and transposed.

use super::geometry::ConvGeometry;
use super::im2col::ConvFloat;
use chapter_02::scratch_buffer;
use std::sync::atomic::{AtomicBool, Ordering};

/// Tiles a chunk of images aims for, times the larger channel count: the
/// transformed tiles `V` (`16 × C × tiles`) and products `M` (`16 × O ×
/// tiles`) of a chunk then stay within about 512 KiB each in `f32`.
/// Measured on ResNet14's layers (`conv_layers`, best of three): 4096 and
/// 16384 are each better on one layer size and worse on another, 32768 is
/// worse on all.
const CHUNK_TILE_CHANNELS: usize = 8192;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Lets the CPU convolution kernels use Winograd's method where it applies
/// (`true`, the default) or makes them use the lowering to a matrix
/// product everywhere (`false`), for every thread of the process: for
/// measuring one against the other, and for tests that check both.
pub fn set_winograd_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// The tiling of one convolution, or `None` where Winograd's method is not
/// used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Winograd {
    /// Tiles down and across one image: `⌈out_h/2⌉`, `⌈out_w/2⌉`.
    th: usize,
    tw: usize,
    /// The padded image: `2·th + 2` rows of `2·tw + 2` (zeros around the
    /// input, and one more row or column where the output size is odd).
    hq: usize,
    wq: usize,
    /// Images transformed together (their tiles side by side in one GEMM).
    pub(crate) chunk: usize,
}

impl Winograd {
    /// The tiling of a 3 × 3, stride-1, undilated, ungrouped convolution
    /// whose channels are not too few for the 16 products to pay (fewer
    /// than 8 input or output channels make GEMMs too thin).
    pub(crate) fn new(g: &ConvGeometry) -> Option<Self> {
        let simple = ENABLED.load(Ordering::Relaxed)
            && g.kernel == (3, 3)
            && g.stride == (1, 1)
            && g.dilation == (1, 1)
            && g.groups == 1
            && g.in_channels >= 8
            && g.out_channels >= 8
            && g.out_h > 0
            && g.out_w > 0
            && g.out_h + 2 == g.in_h + g.pad_begin.0 + g.pad_end.0
            && g.out_w + 2 == g.in_w + g.pad_begin.1 + g.pad_end.1;
        if !simple {
            return None;
        }
        let (th, tw) = (g.out_h.div_ceil(2), g.out_w.div_ceil(2));
        let per_image = th * tw;
        let widest = g.in_channels.max(g.out_channels);
        let chunk = (CHUNK_TILE_CHANNELS / widest / per_image).clamp(1, g.batch.max(1));
        Some(Winograd {
            th,
            tw,
            hq: 2 * th + 2,
            wq: 2 * tw + 2,
            chunk,
        })
    }

    fn tiles_per_image(&self) -> usize {
        self.th * self.tw
    }

    /// The geometry of the input gradient of `g` as a convolution of `dY`
    /// with the flipped, transposed filters: stride 1 keeps it a 3 × 3
    /// convolution, padded by `2 − pad` on each side. `None` where a
    /// padding above 2 would make that negative.
    pub(crate) fn input_grad_geometry(g: &ConvGeometry) -> Option<ConvGeometry> {
        let flip = |p: usize| 2usize.checked_sub(p);
        let t = ConvGeometry {
            batch: g.batch,
            in_channels: g.out_channels,
            in_h: g.out_h,
            in_w: g.out_w,
            out_channels: g.in_channels,
            kernel: (3, 3),
            stride: (1, 1),
            pad_begin: (flip(g.pad_begin.0)?, flip(g.pad_begin.1)?),
            pad_end: (flip(g.pad_end.0)?, flip(g.pad_end.1)?),
            dilation: (1, 1),
            groups: 1,
            out_h: g.in_h,
            out_w: g.in_w,
        };
        Some(t)
    }
}

// ANCHOR: filter_transform
/// `U_ξ = (G g Gᵀ)_ξ` for every filter: `w` is `[O, C, 3, 3]` (or, with
/// `flip`, the filters of the input gradient: `[C, O, 3, 3]` read
/// transposed and rotated by 180°), the result `[16, O, C]`. Computed in
/// `f64`; the `½`s are exact in binary.
pub(crate) fn transform_filters<T: ConvFloat>(w: &[T], o: usize, c: usize, flip: bool) -> Vec<T> {
    let mut u = vec![T::default(); 16 * o * c];
    for oi in 0..o {
        for ci in 0..c {
            // g[i][j] of the filter from input channel ci to output oi.
            let g = |i: usize, j: usize| -> f64 {
                match flip {
                    false => w[(oi * c + ci) * 9 + i * 3 + j].to_f64(),
                    true => w[(ci * o + oi) * 9 + (2 - i) * 3 + (2 - j)].to_f64(),
                }
            };
            // G g: 4 × 3, a column at a time.
            let columns: [[f64; 4]; 3] = std::array::from_fn(|j| {
                let (a, b, d) = (g(0, j), g(1, j), g(2, j));
                [a, (a + b + d) / 2.0, (a - b + d) / 2.0, d]
            });
            let gg: [[f64; 3]; 4] = std::array::from_fn(|k| std::array::from_fn(|j| columns[j][k]));
            // (G g) Gᵀ: 4 × 4.
            for (k, row) in gg.iter().enumerate() {
                let (a, b, d) = (row[0], row[1], row[2]);
                let out = [a, (a + b + d) / 2.0, (a - b + d) / 2.0, d];
                for (l, v) in out.into_iter().enumerate() {
                    u[((k * 4 + l) * o + oi) * c + ci] = T::from_f64(v);
                }
            }
        }
    }
    u
}
// ANCHOR_END: filter_transform

impl Winograd {
    /// Writes image `x_n` (`[C, H, W]`) into `padded` (`[C, hq, wq]`),
    /// zeros around it, each row *split*: its even columns first (`tw + 1`
    /// of them), then its odd ones. Tile `t` covers columns `2t..2t + 4`,
    /// that is even columns `t, t + 1` and odd columns `t, t + 1`: in the
    /// split row those are four runs that advance one by one with `t`, so
    /// the transform below reads them as plain slices and vectorises.
    fn pad<T: ConvFloat>(&self, g: &ConvGeometry, x_n: &[T], padded: &mut [T]) {
        let (h, w) = (g.in_h, g.in_w);
        let (pt, pl) = g.pad_begin;
        let (wq, half) = (self.wq, self.tw + 1);
        let plane = self.hq * wq;
        padded.fill(T::default());
        for (c, src) in x_n.chunks_exact(h * w).enumerate() {
            let dst = &mut padded[c * plane + pt * wq..];
            for (r, row) in src.chunks_exact(w).enumerate() {
                let (even, odd) = dst[r * wq..][..wq].split_at_mut(half);
                // Input column j lands at padded column j + pl.
                let (first_even, first_odd) = (pl.div_ceil(2), pl / 2);
                let (src_even, src_odd) = (pl % 2, 1 - pl % 2);
                for (d, &v) in even[first_even..]
                    .iter_mut()
                    .zip(row[src_even..].iter().step_by(2))
                {
                    *d = v;
                }
                for (d, &v) in odd[first_odd..]
                    .iter_mut()
                    .zip(row[src_odd..].iter().step_by(2))
                {
                    *d = v;
                }
            }
        }
    }

    // ANCHOR: input_transform
    /// `V_ξ = (Bᵀ d B)_ξ` for every 4 × 4 tile `d` (tiles overlap by two
    /// rows and two columns) of every channel of one padded image, written
    /// to columns `first..` of the `[16, C, stride]` matrix `v`. A tile row
    /// at a time: first `Bᵀ` combines the tile row's four image rows (whole
    /// rows at once, which vectorises), then `B` combines columns within
    /// each tile.
    fn transform_input<T: ConvFloat>(
        &self,
        c: usize,
        padded: &[T],
        v: &mut [T],
        stride: usize,
        first: usize,
        rows: &mut [Vec<T>; 4],
    ) {
        let (tw, wq) = (self.tw, self.wq);
        let plane = self.hq * wq;
        for ci in 0..c {
            let p = &padded[ci * plane..][..plane];
            for a in 0..self.th {
                let r = |k: usize| &p[(2 * a + k) * wq..][..wq];
                let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
                let [s0, s1, s2, s3] = rows;
                let (s0, s1, s2, s3) = (&mut s0[..wq], &mut s1[..wq], &mut s2[..wq], &mut s3[..wq]);
                for x in 0..wq {
                    s0[x] = r0[x] - r2[x];
                    s1[x] = r1[x] + r2[x];
                    s2[x] = r2[x] - r1[x];
                    s3[x] = r1[x] - r3[x];
                }
                let col = first + a * tw;
                for (k, s) in rows.iter().enumerate() {
                    let at = |l: usize| ((k * 4 + l) * c + ci) * stride + col;
                    let [v0, v1, v2, v3] = four_rows(v, [at(0), at(1), at(2), at(3)], tw);
                    // The tile's columns 0..4 are even[t], odd[t],
                    // even[t + 1], odd[t + 1].
                    let (even, odd) = s.split_at(tw + 1);
                    let (e0, e2) = (&even[..tw], &even[1..tw + 1]);
                    let (o1, o3) = (&odd[..tw], &odd[1..tw + 1]);
                    for t in 0..tw {
                        v0[t] = e0[t] - e2[t];
                        v1[t] = o1[t] + e2[t];
                        v2[t] = e2[t] - o1[t];
                        v3[t] = o1[t] - o3[t];
                    }
                }
            }
        }
    }
    // ANCHOR_END: input_transform

    /// `Y = Aᵀ M A` for every tile of one image: reads columns `first..` of
    /// the `[16, O, stride]` products `m` and writes the image's output
    /// `y_n` (`[O, out_h, out_w]`), leaving out the row and column of the
    /// last tiles that fall past an odd output size.
    #[allow(clippy::too_many_arguments)]
    fn transform_output<T: ConvFloat>(
        &self,
        g: &ConvGeometry,
        m: &[T],
        stride: usize,
        first: usize,
        y_n: &mut [T],
        sums: &mut [Vec<T>; 8],
    ) {
        let (o, tw) = (g.out_channels, self.tw);
        let (oh, ow) = (g.out_h, g.out_w);
        let pairs = ow / 2;
        for oi in 0..o {
            let y_o = &mut y_n[oi * oh * ow..][..oh * ow];
            for a in 0..self.th {
                let col = first + a * tw;
                let row = |k: usize, l: usize| &m[((k * 4 + l) * o + oi) * stride + col..][..tw];
                // Aᵀ M: p[0][l] = m₀ₗ + m₁ₗ + m₂ₗ, p[1][l] = m₁ₗ − m₂ₗ − m₃ₗ.
                for l in 0..4 {
                    let (m0, m1, m2, m3) = (row(0, l), row(1, l), row(2, l), row(3, l));
                    let [lo, hi] = two_rows(sums, l);
                    let (lo, hi) = (&mut lo[..tw], &mut hi[..tw]);
                    for t in 0..tw {
                        lo[t] = m0[t] + m1[t] + m2[t];
                        hi[t] = m1[t] - m2[t] - m3[t];
                    }
                }
                // (Aᵀ M) A, written to output rows 2a and 2a + 1.
                for half in 0..2 {
                    let y_row = 2 * a + half;
                    if y_row >= oh {
                        break;
                    }
                    let ps = |l: usize| &sums[2 * l + half][..pairs];
                    let (p0, p1, p2, p3) = (ps(0), ps(1), ps(2), ps(3));
                    let pairs_dst = &mut y_o[y_row * ow..][..2 * pairs];
                    for t in 0..pairs {
                        pairs_dst[2 * t] = p0[t] + p1[t] + p2[t];
                        pairs_dst[2 * t + 1] = p1[t] - p2[t] - p3[t];
                    }
                    if ow % 2 == 1 {
                        let p = |l: usize| sums[2 * l + half][pairs];
                        y_o[y_row * ow + ow - 1] = p(0) + p(1) + p(2);
                    }
                }
            }
        }
    }
}

/// Four disjoint rows of `len` values of `v`, starting at `at` (which the
/// callers keep increasing and at least `len` apart).
fn four_rows<T>(v: &mut [T], at: [usize; 4], len: usize) -> [&mut [T]; 4] {
    let (a, rest) = v[at[0]..].split_at_mut(at[1] - at[0]);
    let (b, rest) = rest.split_at_mut(at[2] - at[1]);
    let (c, d) = rest.split_at_mut(at[3] - at[2]);
    [&mut a[..len], &mut b[..len], &mut c[..len], &mut d[..len]]
}

/// Rows `2l` and `2l + 1` of the scratch rows.
fn two_rows<T>(sums: &mut [Vec<T>; 8], l: usize) -> [&mut Vec<T>; 2] {
    let (lo, hi) = sums.split_at_mut(2 * l + 1);
    [&mut lo[2 * l], &mut hi[0]]
}

// ANCHOR: winograd_conv
/// `y = conv(x, filters)` for every image, the filters already transformed
/// (`u`: `[16, O, C]`): per chunk of images, pad and transform each image's
/// tiles, run the 16 products `M_ξ = U_ξ · V_ξ`, and transform each image's
/// tiles back into its output. Chunks run on the cores in parallel.
pub(crate) fn convolve<T: ConvFloat>(
    g: &ConvGeometry,
    p: &Winograd,
    x: &[T],
    u: &[T],
    y: &mut [T],
    gemm: impl Fn((usize, usize, usize), &mut [T], &[T], &[T]) + Sync,
) {
    use rayon::prelude::*;
    let (c, o) = (g.in_channels, g.out_channels);
    let chw = c * g.in_h * g.in_w;
    let ol = o * g.out_h * g.out_w;
    let per_image = p.tiles_per_image();
    let most = p.chunk * per_image;
    if ol == 0 {
        return;
    }
    y.par_chunks_mut(p.chunk * ol).enumerate().for_each_init(
        || {
            // From the buffer pool: every value is written before it is read.
            let padded = scratch_buffer(c * p.hq * p.wq, T::default());
            let v = scratch_buffer(16 * c * most, T::default());
            let m = scratch_buffer(16 * o * most, T::default());
            let rows: [Vec<T>; 4] = std::array::from_fn(|_| vec![T::default(); p.wq]);
            let sums: [Vec<T>; 8] = std::array::from_fn(|_| vec![T::default(); p.tw]);
            (padded, v, m, rows, sums)
        },
        |(padded, v, m, rows, sums), (chunk, y_chunk)| {
            let (first, images) = (chunk * p.chunk, y_chunk.len() / ol);
            let s = images * per_image; // this chunk's tiles
            for b in 0..images {
                p.pad(g, &x[(first + b) * chw..][..chw], padded);
                p.transform_input(c, padded, &mut v[..16 * c * s], s, b * per_image, rows);
            }
            for xi in 0..16 {
                gemm(
                    (o, c, s),
                    &mut m[xi * o * s..][..o * s],
                    &u[xi * o * c..][..o * c],
                    &v[xi * c * s..][..c * s],
                );
            }
            for (b, y_n) in y_chunk.chunks_exact_mut(ol).enumerate() {
                p.transform_output(g, &m[..16 * o * s], s, b * per_image, y_n, sums);
            }
        },
    );
}
// ANCHOR_END: winograd_conv
