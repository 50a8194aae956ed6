//! Winograd's three transforms in AVX-512 registers, for `f32` images up
//! to 32 pixels wide: MNIST's 28 × 28 and its halvings, CIFAR's 32 × 32.
//!
//! The portable transforms ([`super::Winograd::transform_input`] and the
//! others) loop over rows of `tw` tiles, writing each step's results to
//! memory and reading them back. Where an image's row has at most 16
//! tiles, a row of tiles fits in one 16-lane register instead, and a
//! whole tile row can be transformed without leaving the registers:
//!
//! - **`d B` along a padded input row.** Tile `t` needs padded columns
//!   `2t .. 2t + 4`. The row (at most 32 values) is loaded into two
//!   registers, and one two-register permutation per column `j` gathers
//!   `d_j` for all the tiles at once (`vpermt2ps`, with the lanes that fall
//!   in the padding or past the last tile zeroed by a mask). Four
//!   additions or subtractions give the row's four combinations.
//! - **`Bᵀ (d B)` down the rows.** A tile row combines four padded rows,
//!   the last two of which are the first two of the next tile row. The
//!   plane's rows of `d B` (at most 34 of four registers) are staged on
//!   the stack, and the rows of `V` are then written one after another,
//!   four at a time, a masked store per tile row.
//!
//! The output transform applies `Aᵀ` to four rows of `M` at a time for
//! every tile row, stages the results, then applies `A` and interleaves
//! each tile's two columns into the output row with one permutation. The
//! gradient transform `A dY Aᵀ` is the input transform's pattern with `A`
//! in place of `B`.
//!
//! Each plane also asks for the next one ahead of time (`prefetch_lines`):
//! in a training step the images come from main memory, and without it
//! these kernels were no faster there than the portable ones, though
//! twice as fast on images already in the cache.
//!
//! Every value is computed by the same additions, in the same order, as
//! the portable code, so the results are identical bit for bit (the
//! tests check it). Book chapter 09 has the measurements.

use super::super::prefetch::prefetch_lines;
use super::super::registers::{available, load_lanes, load_row, store_lanes, Gather};
use super::{prefetch_next_products, ConvGeometry, Winograd};
use std::arch::x86_64::*;

/// The most tiles across an image this path handles (one register), and
/// down it.
const MAX_TILES: usize = 16;

/// The most padded rows of an image: `2·th + 2`.
const MAX_ROWS: usize = 2 * MAX_TILES + 2;

/// Whether images of this geometry fit: at most 16 tiles across (one
/// register) and down, and input rows of at most 32 values (two
/// registers).
fn fits(p: &Winograd, g: &ConvGeometry) -> bool {
    p.tw <= MAX_TILES && p.th <= MAX_TILES && g.in_w <= 2 * MAX_TILES && g.out_w <= 2 * MAX_TILES
}

/// Whether these kernels run for images of this geometry: on this CPU,
/// and the images fit.
pub(super) fn applies(p: &Winograd, g: &ConvGeometry) -> bool {
    available() && fits(p, g)
}

// ANCHOR: row_registers
/// `d B` of one padded row (`None` for a row of padding): its four
/// combinations, lane `t` for tile `t`.
#[inline]
#[target_feature(enable = "avx512f")]
fn row_columns(row: Option<&[f32]>, d: &[Gather; 4]) -> [__m512; 4] {
    let Some(row) = row else {
        return [_mm512_setzero_ps(); 4];
    };
    let x = load_row(row);
    // (Written out: a closure would not inherit the target feature.)
    let (d0, d1, d2, d3) = (d[0].apply(x), d[1].apply(x), d[2].apply(x), d[3].apply(x));
    [
        _mm512_sub_ps(d0, d2),
        _mm512_add_ps(d1, d2),
        _mm512_sub_ps(d2, d1),
        _mm512_sub_ps(d1, d3),
    ]
}
// ANCHOR_END: row_registers

/// Padded row `r` of plane `x_c` (`[h, w]`, `pt` rows of zeros above it):
/// a row of `x_c`, or `None` for a row of padding.
#[inline]
fn padded_row(x_c: &[f32], (h, w): (usize, usize), pt: usize, r: usize) -> Option<&[f32]> {
    match r.checked_sub(pt) {
        Some(i) if i < h => Some(&x_c[i * w..][..w]),
        _ => None,
    }
}

/// Asks for the plane after `plane` in memory (the next channel, or the
/// next image's first) while this one is transformed.
#[inline]
fn prefetch_next(plane: &[f32]) {
    prefetch_lines(plane.as_ptr_range().end, plane.len());
}

/// The input transform of every channel of image `x_n`, like the portable
/// `input_tiles`; `false` (and nothing written) where this CPU or these
/// images do not fit the registers.
pub(super) fn input_tiles(
    p: &Winograd,
    g: &ConvGeometry,
    x_n: &[f32],
    v: &mut [f32],
    at: (usize, usize),
) -> bool {
    if !applies(p, g) {
        return false;
    }
    // SAFETY: AVX-512 was detected above.
    unsafe {
        match small(p, g) {
            true => small_input_tiles(p, g, x_n, v, at),
            false => input_tiles_avx512(p, g, x_n, v, at),
        }
    }
    true
}

// ANCHOR: input_registers
// `l` picks the same register of rows at several offsets.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
fn input_tiles_avx512(
    p: &Winograd,
    g: &ConvGeometry,
    x_n: &[f32],
    v: &mut [f32],
    (stride, first): (usize, usize),
) {
    let (c, h, w) = (g.in_channels, g.in_h, g.in_w);
    let (pt, pl) = g.pad_begin;
    let (th, tw) = (p.th, p.tw);
    // Tile t's padded column 2t + j is input column 2t + j − pl.
    let d: [Gather; 4] = std::array::from_fn(|j| Gather::new(j as isize - pl as isize, 2, w, tw));
    // Each plane's rows of `d B` are staged here first (at most 34 rows
    // of four registers, 8.5 KiB): the rows of `V` are then written one
    // after another, four at a time. Writing all 16 rows of a tile row
    // together was slower than the portable code: the rows lie
    // `C·stride` values apart, so 16 streams competed for the same cache
    // sets.
    let mut rows = [[_mm512_setzero_ps(); 4]; MAX_ROWS];
    for (ci, x_c) in x_n.chunks_exact(h * w).enumerate() {
        prefetch_next(x_c);
        for (r, row) in rows[..p.hq].iter_mut().enumerate() {
            *row = row_columns(padded_row(x_c, (h, w), pt, r), &d);
        }
        for l in 0..4 {
            let start = |k: usize| ((k * 4 + l) * c + ci) * stride + first;
            let (v0, rest) = v[start(0)..].split_at_mut(start(1) - start(0));
            let (v1, rest) = rest.split_at_mut(start(2) - start(1));
            let (v2, v3) = rest.split_at_mut(start(3) - start(2));
            for a in 0..th {
                let (r0, r1, r2, r3) = (
                    rows[2 * a][l],
                    rows[2 * a + 1][l],
                    rows[2 * a + 2][l],
                    rows[2 * a + 3][l],
                );
                let at = a * tw;
                store_lanes(&mut v0[at..][..tw], _mm512_sub_ps(r0, r2));
                store_lanes(&mut v1[at..][..tw], _mm512_add_ps(r1, r2));
                store_lanes(&mut v2[at..][..tw], _mm512_sub_ps(r2, r1));
                store_lanes(&mut v3[at..][..tw], _mm512_sub_ps(r1, r3));
            }
        }
    }
}
// ANCHOR_END: input_registers

/// The output transform of every channel of image `y_n`, like the
/// portable `output_tiles`; `false` where it does not apply.
pub(super) fn output_tiles(
    p: &Winograd,
    g: &ConvGeometry,
    m: &[f32],
    at: (usize, usize),
    y_n: &mut [f32],
) -> bool {
    if !applies(p, g) {
        return false;
    }
    // SAFETY: AVX-512 was detected above.
    unsafe {
        match small(p, g) {
            true => small_output_tiles(p, g, m, at, y_n),
            false => output_tiles_avx512(p, g, m, at, y_n),
        }
    }
    true
}

#[target_feature(enable = "avx512f")]
fn output_tiles_avx512(
    p: &Winograd,
    g: &ConvGeometry,
    m: &[f32],
    (stride, first): (usize, usize),
    y_n: &mut [f32],
) {
    let (o, oh, ow) = (g.out_channels, g.out_h, g.out_w);
    let (th, tw) = (p.th, p.tw);
    // Output column 2t takes lane t of the even columns, 2t + 1 lane t of
    // the odd ones (index 16 + t of the pair).
    let pairs: [__m512i; 2] = std::array::from_fn(|half| {
        let index: [i32; 16] = std::array::from_fn(|i| {
            let t = (8 * half + i / 2) as i32;
            if i % 2 == 0 {
                t
            } else {
                16 + t
            }
        });
        // SAFETY: an unaligned load of 16 `i32` from a local array.
        unsafe { _mm512_loadu_si512(index.as_ptr().cast()) }
    });
    let split = ow.min(16);
    // `Aᵀ M` for all the tile rows first, reading the rows of `M` four at
    // a time (see the input transform), staged here: [tile row][half][l].
    let mut sums = [[[_mm512_setzero_ps(); 4]; 2]; MAX_TILES];
    for (oi, y_o) in y_n.chunks_exact_mut(oh * ow).enumerate() {
        // The next channel's 16 rows of products, and its output plane
        // (to be written), while this one's are transformed.
        prefetch_next_products(p, m, (o, oi), (stride, first));
        prefetch_lines(y_o.as_ptr_range().end, oh * ow);
        // Aᵀ M: p[0][l] = m₀ₗ + m₁ₗ + m₂ₗ, p[1][l] = m₁ₗ − m₂ₗ − m₃ₗ.
        for l in 0..4 {
            let start = |k: usize| ((k * 4 + l) * o + oi) * stride + first;
            let (m0, m1, m2, m3) = (
                &m[start(0)..],
                &m[start(1)..],
                &m[start(2)..],
                &m[start(3)..],
            );
            for (a, tile_row) in sums[..th].iter_mut().enumerate() {
                let at = a * tw;
                let m0 = load_lanes(&m0[at..][..tw]);
                let m1 = load_lanes(&m1[at..][..tw]);
                let m2 = load_lanes(&m2[at..][..tw]);
                let m3 = load_lanes(&m3[at..][..tw]);
                tile_row[0][l] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                tile_row[1][l] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
            }
        }
        // (Aᵀ M) A, and each tile's two columns side by side.
        for (a, tile_row) in sums[..th].iter().enumerate() {
            for (half, &[q0, q1, q2, q3]) in tile_row.iter().enumerate() {
                let y_row = 2 * a + half;
                if y_row >= oh {
                    break;
                }
                let even = _mm512_add_ps(_mm512_add_ps(q0, q1), q2);
                let odd = _mm512_sub_ps(_mm512_sub_ps(q1, q2), q3);
                let (left, right) = y_o[y_row * ow..][..ow].split_at_mut(split);
                store_lanes(left, _mm512_permutex2var_ps(even, pairs[0], odd));
                store_lanes(right, _mm512_permutex2var_ps(even, pairs[1], odd));
            }
        }
    }
}

/// Whether a whole plane of these images fits in four registers (64
/// values), and all its tiles in one (16): images up to 8 × 8, such as the
/// 7 × 7 of the ResNet's last stage.
fn small(p: &Winograd, g: &ConvGeometry) -> bool {
    p.th * p.tw <= 16 && g.in_h * g.in_w <= 64 && g.out_h * g.out_w <= 64
}

/// One plane of at most 64 values as four registers (lanes past its end
/// are zero).
#[inline]
#[target_feature(enable = "avx512f")]
fn load_plane(plane: &[f32]) -> [__m512; 4] {
    std::array::from_fn(|q| {
        load_lanes(
            plane
                .get(16 * q..)
                .map_or(&[][..], |rest| &rest[..rest.len().min(16)]),
        )
    })
}

/// A gather of up to 16 values from a plane held in four registers: one
/// index per lane (0 to 63), a mask of the lanes that take a value, and
/// of those, the ones whose value is in the upper two registers.
#[derive(Clone, Copy)]
struct PlaneGather {
    index: __m512i,
    valid: __mmask16,
    upper: __mmask16,
}

impl PlaneGather {
    /// Lane `q` takes the plane's value `at(q)`, or zero where that is
    /// `None`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new(at: impl Fn(usize) -> Option<usize>) -> Self {
        let mut index = [0i32; 16];
        let (mut valid, mut upper) = (0u16, 0u16);
        for (q, slot) in index.iter_mut().enumerate() {
            if let Some(i) = at(q) {
                *slot = i as i32;
                valid |= 1 << q;
                if i >= 32 {
                    upper |= 1 << q;
                }
            }
        }
        // SAFETY: an unaligned load of 16 `i32` from a local array.
        let index = unsafe { _mm512_loadu_si512(index.as_ptr().cast()) };
        PlaneGather {
            index,
            valid,
            upper,
        }
    }

    /// Two two-register permutations (each reads the low five bits of the
    /// index, zeroing the lanes that take nothing) and a blend of the two.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn apply(self, [x0, x1, x2, x3]: &[__m512; 4]) -> __m512 {
        let low = _mm512_maskz_permutex2var_ps(self.valid, *x0, self.index, *x1);
        let high = _mm512_maskz_permutex2var_ps(self.valid, *x2, self.index, *x3);
        _mm512_mask_blend_ps(self.upper, low, high)
    }
}

// ANCHOR: small_registers
/// The input transform for images whose whole plane fits in four
/// registers and whose tiles fit in one (`small`): lane `a·tw + t` is tile
/// `(a, t)`, so each of the 16 rows of `V` is one register, gathered
/// straight from the plane. `d_i` of padded row `j` of every tile is one
/// gather (16 of them, prepared once per image), then the same additions
/// as ever: `d B` for each `j`, and `Bᵀ` down the four.
#[target_feature(enable = "avx512f")]
fn small_input_tiles(
    p: &Winograd,
    g: &ConvGeometry,
    x_n: &[f32],
    v: &mut [f32],
    (stride, first): (usize, usize),
) {
    let (c, h, w) = (g.in_channels, g.in_h, g.in_w);
    let (pt, pl) = g.pad_begin;
    let (th, tw) = (p.th, p.tw);
    let n = th * tw;
    // gathers[j][i]: lane a·tw + t takes input (2a + j − pt, 2t + i − pl).
    let gathers: [[PlaneGather; 4]; 4] = std::array::from_fn(|j| {
        std::array::from_fn(|i| {
            PlaneGather::new(|q| {
                let (a, t) = (q / tw, q % tw);
                let row = (2 * a + j).checked_sub(pt).filter(|&r| r < h && a < th)?;
                let col = (2 * t + i).checked_sub(pl).filter(|&k| k < w)?;
                Some(row * w + col)
            })
        })
    });
    for (ci, x_c) in x_n.chunks_exact(h * w).enumerate() {
        prefetch_next(x_c);
        let x = load_plane(x_c);
        // d B of padded rows 2a + j, every tile at once: rows[j][l].
        let mut rows = [[_mm512_setzero_ps(); 4]; 4];
        for (row, gather) in rows.iter_mut().zip(&gathers) {
            let (d0, d1, d2, d3) = (
                gather[0].apply(&x),
                gather[1].apply(&x),
                gather[2].apply(&x),
                gather[3].apply(&x),
            );
            *row = [
                _mm512_sub_ps(d0, d2),
                _mm512_add_ps(d1, d2),
                _mm512_sub_ps(d2, d1),
                _mm512_sub_ps(d1, d3),
            ];
        }
        let [r0, r1, r2, r3] = rows;
        for l in 0..4 {
            let tiles = [
                _mm512_sub_ps(r0[l], r2[l]),
                _mm512_add_ps(r1[l], r2[l]),
                _mm512_sub_ps(r2[l], r1[l]),
                _mm512_sub_ps(r1[l], r3[l]),
            ];
            for (k, value) in tiles.into_iter().enumerate() {
                let start = ((k * 4 + l) * c + ci) * stride + first;
                store_lanes(&mut v[start..][..n], value);
            }
        }
    }
}
// ANCHOR_END: small_registers

/// The output transform for the same small images: the 16 rows of `M`
/// are one register each, `Aᵀ` and `A` make the four registers of even
/// and odd columns of even and odd rows, and four permutations put the
/// plane's (at most 64) values in place.
// `l` picks a register of both halves' sums.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
fn small_output_tiles(
    p: &Winograd,
    g: &ConvGeometry,
    m: &[f32],
    (stride, first): (usize, usize),
    y_n: &mut [f32],
) {
    let (o, oh, ow) = (g.out_channels, g.out_h, g.out_w);
    let tw = p.tw;
    let n = p.th * tw;
    // Output value q of register k: pixel (r, col) = divmod(16k + q, ow),
    // from tile (r / 2, col / 2), column parity col % 2 (the second
    // register of the pair) and row parity r % 2 (which pair).
    let places: [(__m512i, __mmask16); 4] = std::array::from_fn(|k| {
        let mut index = [0i32; 16];
        let mut odd_rows = 0u16;
        for (q, slot) in index.iter_mut().enumerate() {
            let pixel = 16 * k + q;
            if pixel >= oh * ow {
                break;
            }
            let (r, col) = (pixel / ow, pixel % ow);
            *slot = (16 * (col % 2) + (r / 2) * tw + col / 2) as i32;
            if r % 2 == 1 {
                odd_rows |= 1 << q;
            }
        }
        // SAFETY: an unaligned load of 16 `i32` from a local array.
        (
            unsafe { _mm512_loadu_si512(index.as_ptr().cast()) },
            odd_rows,
        )
    });
    for (oi, y_o) in y_n.chunks_exact_mut(oh * ow).enumerate() {
        prefetch_next_products(p, m, (o, oi), (stride, first));
        prefetch_lines(y_o.as_ptr_range().end, oh * ow);
        // Aᵀ M: p[0][l] = m₀ₗ + m₁ₗ + m₂ₗ, p[1][l] = m₁ₗ − m₂ₗ − m₃ₗ.
        let mut sums = [[_mm512_setzero_ps(); 4]; 2];
        for l in 0..4 {
            let row = |k: usize| ((k * 4 + l) * o + oi) * stride + first;
            let m0 = load_lanes(&m[row(0)..][..n]);
            let m1 = load_lanes(&m[row(1)..][..n]);
            let m2 = load_lanes(&m[row(2)..][..n]);
            let m3 = load_lanes(&m[row(3)..][..n]);
            sums[0][l] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
            sums[1][l] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        // (Aᵀ M) A: the even and odd columns of the even and odd rows.
        let [[e0, o0], [e1, o1]] = sums.map(|[q0, q1, q2, q3]| {
            [
                _mm512_add_ps(_mm512_add_ps(q0, q1), q2),
                _mm512_sub_ps(_mm512_sub_ps(q1, q2), q3),
            ]
        });
        for (k, &(index, odd_rows)) in places.iter().enumerate() {
            let Some(dst) = y_o.get_mut(16 * k..) else {
                break;
            };
            let even_rows = _mm512_permutex2var_ps(e0, index, o0);
            let odd = _mm512_permutex2var_ps(e1, index, o1);
            let value = _mm512_mask_blend_ps(odd_rows, even_rows, odd);
            let len = dst.len().min(16);
            store_lanes(&mut dst[..len], value);
        }
    }
}

/// The gradient transform of every channel of image `dy_n`, like the
/// portable `grad_tiles`; `false` where it does not apply.
pub(super) fn grad_tiles(
    p: &Winograd,
    g: &ConvGeometry,
    dy_n: &[f32],
    dm: &mut [f32],
    at: (usize, usize),
) -> bool {
    if !applies(p, g) {
        return false;
    }
    // SAFETY: AVX-512 was detected above.
    unsafe { grad_tiles_avx512(p, g, dy_n, dm, at) };
    true
}

/// `A` along one row of `dY` (`None` past the last row): lane `t` of the
/// four results combines the block's columns `2t` and `2t + 1` into
/// `e`, `e + o`, `e − o` and `−o`. A block whose second column is past an
/// odd edge gives `e`, `e`, `e` and zero.
#[inline]
#[target_feature(enable = "avx512f")]
fn grad_row(row: Option<&[f32]>, [even, odd]: &[Gather; 2]) -> [__m512; 4] {
    let Some(row) = row else {
        return [_mm512_setzero_ps(); 4];
    };
    let x = load_row(row);
    let (e, o, pair) = (even.apply(x), odd.apply(x), odd.mask());
    [
        e,
        _mm512_mask_add_ps(e, pair, e, o),
        _mm512_mask_sub_ps(e, pair, e, o),
        _mm512_maskz_sub_ps(pair, _mm512_setzero_ps(), o),
    ]
}

// `l` picks the same register of rows at several offsets.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f")]
fn grad_tiles_avx512(
    p: &Winograd,
    g: &ConvGeometry,
    dy_n: &[f32],
    dm: &mut [f32],
    (stride, first): (usize, usize),
) {
    let (o, oh, ow) = (g.out_channels, g.out_h, g.out_w);
    let (th, tw) = (p.th, p.tw);
    let columns = [Gather::new(0, 2, ow, tw), Gather::new(1, 2, ow, tw)];
    // Staged like the input transform's rows.
    let mut rows = [[_mm512_setzero_ps(); 4]; MAX_ROWS];
    for (oi, dy_o) in dy_n.chunks_exact(oh * ow).enumerate() {
        prefetch_next(dy_o);
        for (r, row) in rows[..2 * th].iter_mut().enumerate() {
            *row = grad_row(padded_row(dy_o, (oh, ow), 0, r), &columns);
        }
        for l in 0..4 {
            let start = |k: usize| ((k * 4 + l) * o + oi) * stride + first;
            let (m0, rest) = dm[start(0)..].split_at_mut(start(1) - start(0));
            let (m1, rest) = rest.split_at_mut(start(2) - start(1));
            let (m2, m3) = rest.split_at_mut(start(3) - start(2));
            for a in 0..th {
                let (r0, r1) = (rows[2 * a][l], rows[2 * a + 1][l]);
                let at = a * tw;
                store_lanes(&mut m0[at..][..tw], r0);
                store_lanes(&mut m1[at..][..tw], _mm512_add_ps(r0, r1));
                store_lanes(&mut m2[at..][..tw], _mm512_sub_ps(r0, r1));
                store_lanes(&mut m3[at..][..tw], _mm512_sub_ps(_mm512_setzero_ps(), r1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        aligned, portable_grad_tiles, portable_input_tiles, portable_output_tiles, Winograd,
    };
    use super::ConvGeometry;
    use crate::conv::registers::testing::{bits, values};

    /// A 3 × 3 stride-1 convolution of 8 channels to 8 over `batch` images
    /// of `h × w`, padded `(top, left)` and `(bottom, right)`.
    fn geometry(
        batch: usize,
        (h, w): (usize, usize),
        pad_begin: (usize, usize),
        pad_end: (usize, usize),
    ) -> ConvGeometry {
        ConvGeometry {
            batch,
            in_channels: 8,
            in_h: h,
            in_w: w,
            out_channels: 8,
            kernel: (3, 3),
            stride: (1, 1),
            pad_begin,
            pad_end,
            dilation: (1, 1),
            groups: 1,
            out_h: h + pad_begin.0 + pad_end.0 - 2,
            out_w: w + pad_begin.1 + pad_end.1 - 2,
        }
    }

    /// Sizes and paddings the registers take (up to 32 × 32, odd and even,
    /// paddings 0 to 2 on each side, whole planes up to 8 × 8), and one
    /// they leave to the portable code.
    /// `(size, pad_begin, pad_end)`.
    type Case = ((usize, usize), (usize, usize), (usize, usize));

    const CASES: [Case; 12] = [
        // Whole planes in registers (`small`): 7 × 7, 8 × 8, a ragged one.
        ((7, 7), (1, 1), (1, 1)),
        ((8, 8), (1, 1), (1, 1)),
        ((6, 5), (2, 0), (1, 2)),
        ((8, 7), (0, 2), (2, 0)),
        ((14, 14), (1, 1), (1, 1)),
        ((28, 28), (1, 1), (1, 1)),
        ((32, 32), (1, 1), (1, 1)),
        ((5, 9), (0, 2), (2, 0)),
        ((9, 6), (2, 0), (1, 2)),
        ((3, 3), (0, 0), (0, 0)),
        ((30, 31), (2, 1), (0, 1)),
        ((4, 40), (1, 1), (1, 1)),
    ];

    #[test]
    fn the_registers_match_the_portable_transforms_bit_for_bit() {
        if !super::available() {
            println!("skipped: this CPU has no AVX-512; only the portable transforms run here");
            return;
        }
        for (case, &(size, pad_begin, pad_end)) in CASES.iter().enumerate() {
            let g = geometry(3, size, pad_begin, pad_end);
            let p = Winograd::new(&g).expect("a Winograd geometry");
            assert_eq!(super::fits(&p, &g), g.in_w <= 32, "{g:?}");
            let (c, o) = (g.in_channels, g.out_channels);
            let per_image = p.th * p.tw;
            let stride = aligned(g.batch * per_image);
            let x = values(g.batch * c * g.in_h * g.in_w, case as u64);
            let dy = values(g.batch * o * g.out_h * g.out_w, 100 + case as u64);
            let m = values(16 * o * stride, 200 + case as u64);
            // NaN where nothing should be written, to see stray writes.
            let (mut v_fast, mut v_portable) = (
                vec![f32::NAN; 16 * c * stride],
                vec![f32::NAN; 16 * c * stride],
            );
            let (mut dm_fast, mut dm_portable) = (
                vec![f32::NAN; 16 * o * stride],
                vec![f32::NAN; 16 * o * stride],
            );
            let mut scratch = vec![0.0f32; 16 * (p.th + 2) * (p.tw + 2)];
            for b in 0..g.batch {
                let at = (stride, b * per_image);
                let x_n = &x[b * c * g.in_h * g.in_w..][..c * g.in_h * g.in_w];
                let dy_n = &dy[b * o * g.out_h * g.out_w..][..o * g.out_h * g.out_w];
                let fast = super::input_tiles(&p, &g, x_n, &mut v_fast, at);
                assert_eq!(fast, super::fits(&p, &g));
                portable_input_tiles(&p, &g, x_n, &mut scratch, &mut v_portable, at);
                assert_eq!(fast, super::grad_tiles(&p, &g, dy_n, &mut dm_fast, at));
                portable_grad_tiles(&p, &g, dy_n, &mut scratch, &mut dm_portable, at);
                let mut y_fast = vec![f32::NAN; o * g.out_h * g.out_w];
                let mut y_portable = y_fast.clone();
                assert_eq!(fast, super::output_tiles(&p, &g, &m, at, &mut y_fast));
                portable_output_tiles(&p, &g, &m, at, &mut y_portable, &mut scratch);
                if fast {
                    assert_eq!(bits(&y_fast), bits(&y_portable), "output transform, {g:?}");
                }
            }
            if super::fits(&p, &g) {
                assert_eq!(bits(&v_fast), bits(&v_portable), "input transform, {g:?}");
                assert_eq!(
                    bits(&dm_fast),
                    bits(&dm_portable),
                    "gradient transform, {g:?}"
                );
            }
        }
    }
}
