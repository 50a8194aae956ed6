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
use super::prefetch::prefetch_lines;
use chapter_02::scratch_buffer;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(target_arch = "x86_64")]
mod avx512;

/// Tiles a chunk of images aims for, times the larger channel count: the
/// transformed tiles `V` (`16 × C × tiles`) and products `M` (`16 × O ×
/// tiles`) of a chunk then stay within about 512 KiB each in `f32`.
/// Measured on ResNet14's layers (`conv_layers`, best of three): 4096 and
/// 16384 are each better on one layer size and worse on another, 32768 is
/// worse on all.
const CHUNK_TILE_CHANNELS: usize = 8192;

/// The products' rows of tiles are padded with zero columns to a multiple
/// of this. The GEMM copies a `[C, tiles]` operand into its own layout
/// (packs it) unless the tiles are a whole number of its vectors: 16
/// lanes of `f32` with AVX-512. The packing costs more than the few extra
/// columns do. With `conv_layers`, the 16-channel layer's forward pass and
/// input gradient, whose products have 392 columns, went from 1.55 / 1.50
/// to 1.37 / 1.33 ms (best of six alternating rounds). The 14 × 14 layer
/// (245 → 256 columns) was unchanged, and the 7 × 7 one has 128 already.
const ALIGN_TILES: usize = 16;

/// `s` rounded up to a multiple of [`ALIGN_TILES`].
fn aligned(s: usize) -> usize {
    s.next_multiple_of(ALIGN_TILES)
}

/// Tiles an image needs for Winograd's weight gradient to pay. The
/// transformed tiles of both the input and the output gradient must be
/// written and read again. On small images they are many times the size of
/// the images: a 7 × 7 image has 16 tiles of 16 values, five times its 49
/// pixels. Measured with `conv_layers` (2-core AVX-512 EPYC, best of four
/// alternating rounds), against the lowering's 2.69 / 1.74 / 1.99 ms: 1.55
/// ms for the 16-channel layer at 28 × 28 (196 tiles), 1.78 for the
/// 32-channel one at 14 × 14 (49 tiles), and 4.28 for the 64-channel one
/// at 7 × 7 (16 tiles).
const GRAD_TILES_PER_IMAGE: usize = 100;

/// The same where the transforms run in AVX-512 registers
/// ([`avx512`]), which are cheap enough for the 14 × 14 layer to gain
/// too: its weight gradient took 1.65–1.72 ms against the lowering's
/// 1.90–1.95 (three alternating rounds, same machine). At 7 × 7 it still
/// lost, even with whole planes in registers: 2.16–2.35 ms against
/// 1.91–2.08.
const GRAD_TILES_PER_IMAGE_IN_REGISTERS: usize = 40;

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
    /// Rows of the padded image: `2·th + 2` (zeros around the input, and
    /// one more row where the output height is odd). Its `2·tw + 2`
    /// columns are never stored: the transform reads the input rows in
    /// place and supplies the zeros itself.
    hq: usize,
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
            chunk,
        })
    }

    fn tiles_per_image(&self) -> usize {
        self.th * self.tw
    }

    /// Whether the weight gradient of `T` values should use this tiling
    /// too: only for images of at least [`GRAD_TILES_PER_IMAGE`] tiles, or
    /// [`GRAD_TILES_PER_IMAGE_IN_REGISTERS`] where the transforms run in
    /// AVX-512 registers.
    pub(crate) fn suits_weight_grad<T: ConvFloat>(&self, g: &ConvGeometry) -> bool {
        #[cfg(target_arch = "x86_64")]
        if T::as_f32(&[]).is_some() && avx512::applies(self, g) {
            return self.tiles_per_image() >= GRAD_TILES_PER_IMAGE_IN_REGISTERS;
        }
        self.tiles_per_image() >= GRAD_TILES_PER_IMAGE
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
    /// Values in one row-parity plane of the column sums: `th + 1` rows of
    /// `tw` tiles.
    fn half_plane(&self) -> usize {
        (self.th + 1) * self.tw
    }

    // ANCHOR: input_transform
    /// `V_ξ = (Bᵀ d B)_ξ` for every 4 × 4 tile `d` of channel `x_c`
    /// (`[H, W]`, one plane of an image; tiles overlap by two rows and two
    /// columns), written to the `th·tw` columns `first..` of the rows `ξ`
    /// of the `[16, C, stride]` matrix `v` (channel `ci`). In two steps,
    /// each loop over a slice:
    ///
    /// 1. `d B` for every padded row `r`: the row's four column
    ///    combinations (one value per tile across) go to
    ///    `cols[l][r mod 2][r / 2]`, rows of `tw` values; the planes of
    ///    even and odd rows are kept apart. Rows of padding give zeros.
    /// 2. `Bᵀ (d B)`: tile row `a` combines padded rows `2a .. 2a + 4`,
    ///    that is rows `a` and `a + 1` of the even and odd planes. Since
    ///    those planes hold `tw` values a row, like the tile rows of `v`,
    ///    all the image's tiles are one loop of `th·tw` values.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn transform_input<T: ConvFloat>(
        &self,
        g: &ConvGeometry,
        x_c: &[T],
        cols: &mut [T],
        v: &mut [T],
        (c, ci): (usize, usize),
        (stride, first): (usize, usize),
    ) {
        let (h, w) = (g.in_h, g.in_w);
        let (pt, pl) = g.pad_begin;
        let (tw, half) = (self.tw, self.half_plane());
        for r in 0..self.hq {
            let [c0, c1, c2, c3] = four_rows(
                cols,
                std::array::from_fn(|l| (2 * l + r % 2) * half + r / 2 * tw),
                tw,
            );
            match r.checked_sub(pt).filter(|&i| i < h) {
                Some(i) => row_columns(&x_c[i * w..][..w], pl, [c0, c1, c2, c3]),
                None => {
                    for c in [c0, c1, c2, c3] {
                        c.fill(T::default());
                    }
                }
            }
        }
        let n = self.th * tw;
        for l in 0..4 {
            let (even, odd) = cols[2 * l * half..][..2 * half].split_at(half);
            let at = |k: usize| ((k * 4 + l) * c + ci) * stride + first;
            let [v0, v1, v2, v3] = four_rows(v, [at(0), at(1), at(2), at(3)], n);
            combine_input_rows(
                (&even[..n], &odd[..n], &even[tw..tw + n], &odd[tw..tw + n]),
                v0,
                v1,
                v2,
                v3,
            );
        }
    }
    // ANCHOR_END: input_transform

    /// `Y = Aᵀ M A` for every tile of output channel `oi` of one image:
    /// reads the `th·tw` columns `first..` of the `[16, O, stride]`
    /// products `m` and writes `y_o` (`[out_h, out_w]`), leaving out the
    /// row and column of the last tiles that fall past an odd output size.
    /// `Aᵀ M` and then `(Aᵀ M) A`, each for all the image's tiles in loops
    /// of `th·tw` values (through `sums`, `[12, th·tw]`), and last each
    /// output row, interleaving its tiles' two columns.
    #[inline(always)]
    fn transform_output<T: ConvFloat>(
        &self,
        (o, oi): (usize, usize),
        m: &[T],
        (stride, first): (usize, usize),
        y_o: &mut [T],
        (oh, ow): (usize, usize),
        sums: &mut [T],
    ) {
        let (th, tw) = (self.th, self.tw);
        let n = th * tw;
        // Aᵀ M: p[0][l] = m₀ₗ + m₁ₗ + m₂ₗ, p[1][l] = m₁ₗ − m₂ₗ − m₃ₗ.
        for l in 0..4 {
            let row = |k: usize| &m[((k * 4 + l) * o + oi) * stride + first..][..n];
            let (lo, hi) = sums.split_at_mut(4 * n);
            combine_output_rows(
                (row(0), row(1), row(2), row(3)),
                &mut lo[l * n..][..n],
                &mut hi[l * n..][..n],
            );
        }
        // (Aᵀ M) A over all tiles too: the even output columns of tile row
        // half h in `even[h]`, the odd ones in `odd[h]`.
        let (p, rest) = sums.split_at_mut(8 * n);
        let (even, odd) = rest[..4 * n].split_at_mut(2 * n);
        for half in 0..2 {
            let q = |l: usize| &p[(half * 4 + l) * n..][..n];
            combine_output_rows(
                (q(0), q(1), q(2), q(3)),
                &mut even[half * n..][..n],
                &mut odd[half * n..][..n],
            );
        }
        // Then each output row interleaves its two columns per tile.
        let pairs = ow / 2;
        for half in 0..2 {
            for a in 0..th {
                let y_row = 2 * a + half;
                if y_row >= oh {
                    break;
                }
                let at = half * n + a * tw;
                let dst = &mut y_o[y_row * ow..][..ow];
                interleave(&even[at..][..tw], &odd[at..][..tw], dst, pairs);
            }
        }
    }
}

/// The input transform of every channel of image `x_n` (`[C, H, W]`), to
/// columns `first..` of `v`: in AVX-512 registers where the CPU has them
/// and the image fits ([`avx512`]), otherwise by the portable loops.
fn input_tiles<T: ConvFloat>(
    p: &Winograd,
    g: &ConvGeometry,
    x_n: &[T],
    cols: &mut [T],
    v: &mut [T],
    at: (usize, usize),
) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(x32), Some(v32)) = (T::as_f32(x_n), T::as_f32_mut(v)) {
        if avx512::input_tiles(p, g, x32, v32, at) {
            return;
        }
    }
    portable_input_tiles(p, g, x_n, cols, v, at);
}

/// The output transform of every channel of image `y_n` (`[O, out_h,
/// out_w]`), from columns `first..` of `m`; in AVX-512 registers where
/// they apply, like [`input_tiles`].
fn output_tiles<T: ConvFloat>(
    p: &Winograd,
    g: &ConvGeometry,
    m: &[T],
    at: (usize, usize),
    y_n: &mut [T],
    sums: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(m32), Some(y32)) = (T::as_f32(m), T::as_f32_mut(y_n)) {
        if avx512::output_tiles(p, g, m32, at, y32) {
            return;
        }
    }
    portable_output_tiles(p, g, m, at, y_n, sums);
}

/// The portable input transform. This function and the next two are the
/// portable transforms' entry points, compiled twice (the `multiversion`
/// crate): for the baseline x86-64 and for AVX2, chosen once at run time;
/// the loops below are inlined into both.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn portable_input_tiles<T: ConvFloat>(
    p: &Winograd,
    g: &ConvGeometry,
    x_n: &[T],
    cols: &mut [T],
    v: &mut [T],
    (stride, first): (usize, usize),
) {
    let c = g.in_channels;
    for (ci, x_c) in x_n.chunks_exact(g.in_h * g.in_w).enumerate() {
        prefetch_lines(x_c.as_ptr_range().end, x_c.len());
        p.transform_input(g, x_c, cols, v, (c, ci), (stride, first));
    }
}

/// The portable output transform.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn portable_output_tiles<T: ConvFloat>(
    p: &Winograd,
    g: &ConvGeometry,
    m: &[T],
    (stride, first): (usize, usize),
    y_n: &mut [T],
    sums: &mut [T],
) {
    let (o, size) = (g.out_channels, (g.out_h, g.out_w));
    for (oi, y_o) in y_n.chunks_exact_mut(g.out_h * g.out_w).enumerate() {
        prefetch_next_products(p, m, (o, oi), (stride, first));
        prefetch_lines(y_o.as_ptr_range().end, y_o.len());
        p.transform_output((o, oi), m, (stride, first), y_o, size, sums);
    }
}

/// Asks for output channel `oi + 1`'s 16 rows of products in `m` (`[16,
/// O, stride]`, this image's tiles from column `first`) while channel
/// `oi`'s are transformed back (see [`super::prefetch`]).
#[inline(always)]
fn prefetch_next_products<T>(
    p: &Winograd,
    m: &[T],
    (o, oi): (usize, usize),
    (stride, first): (usize, usize),
) {
    for xi in 0..16 {
        let next = m.as_ptr().wrapping_add((xi * o + oi + 1) * stride + first);
        prefetch_lines(next, p.tiles_per_image());
    }
}

/// `d B` for one padded row: the input row `x_row` with `pl` zeros before
/// it and zeros after. Tile `t` reads padded columns `2t .. 2t + 4`, and
/// its four combinations go to `c[0..4]` at `t`. The tiles whose columns
/// all lie in `x_row` read it directly (no padded copy is made); the one
/// or two at each edge take zeros for the columns outside.
#[inline(always)]
fn row_columns<T: ConvFloat>(x_row: &[T], pl: usize, [c0, c1, c2, c3]: [&mut [T]; 4]) {
    let (w, tw) = (x_row.len(), c0.len());
    let (c1, c2, c3) = (&mut c1[..tw], &mut c2[..tw], &mut c3[..tw]);
    let combine = |d: [T; 4]| [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]];
    // Tiles lo..hi lie inside: 2t ≥ pl and 2t + 3 < pl + w.
    let lo = pl.div_ceil(2).min(tw);
    let hi = ((w + pl).saturating_sub(2) / 2).clamp(lo, tw);
    // Tile lo starts at input column 2·lo − pl ≥ 0; the k inner tiles
    // read 2k + 2 columns from there.
    let k = hi - lo;
    if k > 0 {
        let inner = &x_row[2 * lo - pl..][..2 * k + 2];
        let (c0, c1, c2, c3) = (
            &mut c0[lo..hi],
            &mut c1[lo..hi],
            &mut c2[lo..hi],
            &mut c3[lo..hi],
        );
        for i in 0..k {
            let d = [
                inner[2 * i],
                inner[2 * i + 1],
                inner[2 * i + 2],
                inner[2 * i + 3],
            ];
            [c0[i], c1[i], c2[i], c3[i]] = combine(d);
        }
    }
    let padded = |j: usize| match j.checked_sub(pl) {
        Some(k) if k < w => x_row[k],
        _ => T::default(),
    };
    for t in (0..lo).chain(hi..tw) {
        let d = std::array::from_fn(|j| padded(2 * t + j));
        [c0[t], c1[t], c2[t], c3[t]] = combine(d);
    }
}

/// `Bᵀ` over whole slices: `v₀ = d₀ − d₂`, `v₁ = d₁ + d₂`, `v₂ = d₂ − d₁`,
/// `v₃ = d₁ − d₃`, element by element.
#[inline(always)]
fn combine_input_rows<T: ConvFloat>(
    (d0, d1, d2, d3): (&[T], &[T], &[T], &[T]),
    v0: &mut [T],
    v1: &mut [T],
    v2: &mut [T],
    v3: &mut [T],
) {
    let n = v0.len();
    let (d0, d1, d2, d3) = (&d0[..n], &d1[..n], &d2[..n], &d3[..n]);
    let (v1, v2, v3) = (&mut v1[..n], &mut v2[..n], &mut v3[..n]);
    for f in 0..n {
        v0[f] = d0[f] - d2[f];
        v1[f] = d1[f] + d2[f];
        v2[f] = d2[f] - d1[f];
        v3[f] = d1[f] - d3[f];
    }
}

/// `Aᵀ` over whole slices: `lo = m₀ + m₁ + m₂`, `hi = m₁ − m₂ − m₃`.
#[inline(always)]
fn combine_output_rows<T: ConvFloat>(
    (m0, m1, m2, m3): (&[T], &[T], &[T], &[T]),
    lo: &mut [T],
    hi: &mut [T],
) {
    let n = lo.len();
    let (m0, m1, m2, m3) = (&m0[..n], &m1[..n], &m2[..n], &m3[..n]);
    let hi = &mut hi[..n];
    for f in 0..n {
        lo[f] = m0[f] + m1[f] + m2[f];
        hi[f] = m1[f] - m2[f] - m3[f];
    }
}

/// One output row from its tiles' two columns: tile `t` writes `even[t]`
/// and `odd[t]` to columns `2t` and `2t + 1` of `dst`, and an odd last
/// column takes only `even`.
#[inline(always)]
fn interleave<T: ConvFloat>(even: &[T], odd: &[T], dst: &mut [T], pairs: usize) {
    let (e, o) = (&even[..pairs], &odd[..pairs]);
    for (t, pair) in dst[..2 * pairs].chunks_exact_mut(2).enumerate() {
        pair[0] = e[t];
        pair[1] = o[t];
    }
    if dst.len() % 2 == 1 {
        dst[2 * pairs] = even[pairs];
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
    let hw = g.in_h * g.in_w;
    let chw = c * hw;
    let ol = o * g.out_h * g.out_w;
    let per_image = p.tiles_per_image();
    let most = aligned(p.chunk * per_image);
    if ol == 0 {
        return;
    }
    y.par_chunks_mut(p.chunk * ol).enumerate().for_each_init(
        || {
            // From the buffer pool: every value is written before it is read.
            let cols = scratch_buffer(8 * p.half_plane(), T::default());
            let v = scratch_buffer(16 * c * most, T::default());
            let m = scratch_buffer(16 * o * most, T::default());
            let sums = scratch_buffer(12 * per_image, T::default());
            (cols, v, m, sums)
        },
        |(cols, v, m, sums), (chunk, y_chunk)| {
            let (first, images) = (chunk * p.chunk, y_chunk.len() / ol);
            // This chunk's tiles, and zero columns after them up to a
            // multiple of ALIGN_TILES, which spares the GEMM a packing.
            let tiles = images * per_image;
            let s = aligned(tiles);
            for b in 0..images {
                let x_n = &x[(first + b) * chw..][..chw];
                input_tiles(p, g, x_n, cols, &mut v[..16 * c * s], (s, b * per_image));
            }
            for row in v[..16 * c * s].chunks_exact_mut(s) {
                row[tiles..].fill(T::default());
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
                output_tiles(p, g, &m[..16 * o * s], (s, b * per_image), y_n, sums);
            }
        },
    );
}
// ANCHOR_END: winograd_conv

// ANCHOR: winograd_weight_grad
/// The weight gradient by the same algebra run backwards. Since
/// `Y = Aᵀ M A` with `M_ξ = U_ξ · V_ξ` summed over the tiles, the gradient
/// of the transformed filters is a sum over tiles too,
///
/// ```text
/// dU_ξ = Σ_tiles dM_ξ · V_ξᵀ        dM = A dY Aᵀ (each 2 × 2 block of dY)
/// ```
///
/// (16 products of `[O, tiles] · [tiles, C]`, with 16/36 of the direct
/// method's arithmetic), and the filters' gradient is `dW = Gᵀ dU G`
/// ([`untransform_filter_grad`]). This computes `dU` (`[16, O, C]`) over
/// the images `images`, a chunk at a time: the input's tiles `V` by the
/// forward pass's transform, `dM` by [`grad_tiles`], and `dU_ξ +=
/// dM_ξ · V_ξᵀ` by `gemm_nt`.
pub(crate) fn filter_grad_products<T: ConvFloat>(
    g: &ConvGeometry,
    p: &Winograd,
    (x, dy): (&[T], &[T]),
    images: std::ops::Range<usize>,
    gemm_nt: impl Fn((usize, usize, usize), &mut [T], &[T], &[T]),
) -> Vec<T> {
    let (c, o) = (g.in_channels, g.out_channels);
    let chw = c * g.in_h * g.in_w;
    let ol = o * g.out_h * g.out_w;
    let per_image = p.tiles_per_image();
    let chunk = p.chunk;
    let most = chunk * per_image;
    let mut du = vec![T::default(); 16 * o * c];
    // From the buffer pool: every value is written before it is read.
    let mut cols = scratch_buffer(8 * p.half_plane(), T::default());
    let mut rows = scratch_buffer(8 * per_image, T::default());
    let mut v = scratch_buffer(16 * c * most, T::default());
    let mut dm = scratch_buffer(16 * o * most, T::default());
    for first in images.clone().step_by(chunk) {
        let count = chunk.min(images.end - first);
        let s = count * per_image; // this chunk's tiles
        for b in 0..count {
            let n = first + b;
            let x_n = &x[n * chw..][..chw];
            input_tiles(
                p,
                g,
                x_n,
                &mut cols,
                &mut v[..16 * c * s],
                (s, b * per_image),
            );
            let dy_n = &dy[n * ol..][..ol];
            grad_tiles(
                p,
                g,
                dy_n,
                &mut rows,
                &mut dm[..16 * o * s],
                (s, b * per_image),
            );
        }
        for xi in 0..16 {
            gemm_nt(
                (o, s, c),
                &mut du[xi * o * c..][..o * c],
                &dm[xi * o * s..][..o * s],
                &v[xi * c * s..][..c * s],
            );
        }
    }
    du
}
// ANCHOR_END: winograd_weight_grad

/// `dW = Gᵀ dU G` for every filter: `du` is `[16, O, C]` (as
/// [`filter_grad_products`] sums it), `dw` the `[O, C, 3, 3]` gradient.
/// In `f64`, like the filter transform.
pub(crate) fn untransform_filter_grad<T: ConvFloat>(du: &[T], o: usize, c: usize, dw: &mut [T]) {
    // Gᵀ applied to four values u₀..u₃: G's columns are (1, ½, ½, 0),
    // (0, ½, −½, 0) and (0, ½, ½, 1).
    let gt = |u: [f64; 4]| {
        let (sum, diff) = ((u[1] + u[2]) / 2.0, (u[1] - u[2]) / 2.0);
        [u[0] + sum, diff, sum + u[3]]
    };
    for oi in 0..o {
        for ci in 0..c {
            let u = |k: usize, l: usize| du[((k * 4 + l) * o + oi) * c + ci].to_f64();
            // Gᵀ dU: 3 × 4, a column l at a time.
            let columns: [[f64; 3]; 4] = std::array::from_fn(|l| gt([0, 1, 2, 3].map(|k| u(k, l))));
            // (Gᵀ dU) G: row i combines its four columns.
            for i in 0..3 {
                let row = gt([0, 1, 2, 3].map(|l| columns[l][i]));
                for (j, v) in row.into_iter().enumerate() {
                    dw[((oi * c + ci) * 3 + i) * 3 + j] = T::from_f64(v);
                }
            }
        }
    }
}

impl Winograd {
    /// `dM_ξ = (A dY Aᵀ)_ξ` for every 2 × 2 block of output channel `oi`'s
    /// gradient `dy_o` (`[out_h, out_w]`; blocks past an odd edge are
    /// completed with zeros), written to the `th·tw` columns `first..` of
    /// the rows `ξ` of the `[16, O, stride]` matrix `dm`. Like the input
    /// transform: `A` along each row, into planes of even and odd rows
    /// (`rows`, `[4, 2, th·tw]`), then `A` down the rows for all the
    /// image's tiles in one loop. `A`'s rows are `(1, 0)`, `(1, 1)`,
    /// `(1, −1)` and `(0, −1)`.
    #[inline(always)]
    fn transform_grad<T: ConvFloat>(
        &self,
        (oh, ow): (usize, usize),
        dy_o: &[T],
        rows: &mut [T],
        dm: &mut [T],
        (o, oi): (usize, usize),
        (stride, first): (usize, usize),
    ) {
        let (th, tw) = (self.th, self.tw);
        let n = th * tw;
        let pairs = ow / 2;
        for r in 0..2 * th {
            let [w0, w1, w2, w3] = four_rows(
                rows,
                std::array::from_fn(|l| (2 * l + r % 2) * n + r / 2 * tw),
                tw,
            );
            if r >= oh {
                for w in [w0, w1, w2, w3] {
                    w.fill(T::default());
                }
                continue;
            }
            let y = &dy_o[r * ow..][..ow];
            for (t, pair) in y[..2 * pairs].chunks_exact(2).enumerate() {
                let (e, od) = (pair[0], pair[1]);
                [w0[t], w1[t], w2[t], w3[t]] = [e, e + od, e - od, T::default() - od];
            }
            if ow % 2 == 1 {
                // The last block's second column is past the edge.
                let e = y[ow - 1];
                [w0[pairs], w1[pairs], w2[pairs], w3[pairs]] = [e, e, e, T::default()];
            }
        }
        for l in 0..4 {
            let (even, odd) = rows[2 * l * n..][..2 * n].split_at(n);
            let at = |k: usize| ((k * 4 + l) * o + oi) * stride + first;
            let [m0, m1, m2, m3] = four_rows(dm, [at(0), at(1), at(2), at(3)], n);
            for f in 0..n {
                let (r0, r1) = (even[f], odd[f]);
                m0[f] = r0;
                m1[f] = r0 + r1;
                m2[f] = r0 - r1;
                m3[f] = T::default() - r1;
            }
        }
    }
}

/// The gradient transform of every channel of image `dy_n` (`[O, out_h,
/// out_w]`), to columns `first..` of `dm`; in AVX-512 registers where they
/// apply, like [`input_tiles`].
fn grad_tiles<T: ConvFloat>(
    p: &Winograd,
    g: &ConvGeometry,
    dy_n: &[T],
    rows: &mut [T],
    dm: &mut [T],
    at: (usize, usize),
) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(dy32), Some(dm32)) = (T::as_f32(dy_n), T::as_f32_mut(dm)) {
        if avx512::grad_tiles(p, g, dy32, dm32, at) {
            return;
        }
    }
    portable_grad_tiles(p, g, dy_n, rows, dm, at);
}

/// The portable gradient transform, compiled for AVX2 as well.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn portable_grad_tiles<T: ConvFloat>(
    p: &Winograd,
    g: &ConvGeometry,
    dy_n: &[T],
    rows: &mut [T],
    dm: &mut [T],
    (stride, first): (usize, usize),
) {
    let (o, size) = (g.out_channels, (g.out_h, g.out_w));
    for (oi, dy_o) in dy_n.chunks_exact(g.out_h * g.out_w).enumerate() {
        prefetch_lines(dy_o.as_ptr_range().end, dy_o.len());
        p.transform_grad(size, dy_o, rows, dm, (o, oi), (stride, first));
    }
}
