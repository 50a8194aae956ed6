//! The stride-1 lowering: rows of the patch matrix as runs of the padded
//! image.
//!
//! im2col builds row `(c, i, j)` of the patch matrix from `out_h` pieces,
//! one per output row, each `out_w` values long, with zeros at the ends
//! where the tap falls into the padding. For a 3 × 3 convolution of a
//! 28 × 28 image that is 4,032 copies of 28 floats per image, and at that
//! size the cost of starting each copy is most of the cost of the copy:
//! profiling the ResNet step put a sixth of all its time in them.
//!
//! With stride 1 there is a better way to see the same matrix. Pad the
//! image once (`C` planes of `Hp × Wp`, zeros around), and compute the
//! output *as if it were `Wp` wide*: output pixel `(oh, ow)` becomes column
//! `q = oh·Wp + ow`, and tap `(i, j)` of channel `c` reads
//!
//! ```text
//! padded[c, oh + i·dh, ow + j·dw] = padded_flat[c·Hp·Wp + i·dh·Wp + j·dw + q]
//! ```
//!
//! — the same offset for every column. Row `(c, i, j)` of this wider patch
//! matrix is therefore *one* contiguous run of `out_h·Wp` values of the
//! padded image, copied in one go. The price is the `Wp − out_w` extra
//! columns per output row (`pads` of them: 2 for a 3 × 3 kernel with
//! padding 1), whose results are computed and thrown away: 7% more
//! arithmetic at 28 × 28, 29% at 7 × 7. The gradients use the same trick
//! backwards: the output gradient is widened with zeros in the extra
//! columns, and the input gradient is gathered by adding each row of
//! `Wᵀ · dY` back onto the padded image at its offset, one long run per
//! row, before the padding is cut away.
//!
//! Small images make small matrix products (a 7 × 7 output is 63 columns),
//! so several images are lowered side by side into one wider matrix: a
//! *chunk* of images shares one GEMM.

use super::geometry::ConvGeometry;
use super::im2col::ConvFloat;

/// Columns a chunk of images aims for: enough for a GEMM to run near its
/// peak, few enough for the patch matrix to stay near the core. Measured
/// with `cargo run --release -p chapter-09 --example conv_layers` on the
/// ResNet14 layers: 512 columns 137 ms for a step's convolutions, 1024
/// columns 127 ms, 1536 131 ms, 3000 140 ms.
pub(crate) const CHUNK_COLUMNS: usize = 1024;

/// The wide layout of one convolution, or `None` where it does not apply
/// (a stride other than 1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PaddedRows {
    /// Width of the padded image.
    wp: usize,
    /// Values per padded plane, and per padded image (with the slack the
    /// last row's overhanging reads need).
    plane: usize,
    image: usize,
    /// Columns per image of the wide patch matrix: `out_h·Wp`.
    pub(crate) cols_per_image: usize,
    /// Images lowered side by side into one matrix.
    pub(crate) chunk: usize,
}

impl PaddedRows {
    pub(crate) fn new(g: &ConvGeometry) -> Option<Self> {
        if g.stride != (1, 1) {
            return None;
        }
        let hp = g.in_h + g.pad_begin.0 + g.pad_end.0;
        let wp = g.in_w + g.pad_begin.1 + g.pad_end.1;
        let (kh, kw) = g.kernel;
        let (dh, dw) = g.dilation;
        // With stride 1 the output is exactly the padded size minus the
        // kernel's span; anything else is not a geometry this layout knows.
        if g.out_h + dh * (kh - 1) != hp || g.out_w + dw * (kw - 1) != wp || g.out_h == 0 {
            return None;
        }
        let plane = hp * wp;
        // The last output row's extra columns read up to (kw − 1)·dw values
        // past the last plane.
        let image = g.in_channels * plane + (kw - 1) * dw;
        let cols_per_image = g.out_h * wp;
        let chunk = CHUNK_COLUMNS
            .div_ceil(cols_per_image)
            .clamp(1, g.batch.max(1));
        Some(PaddedRows {
            wp,
            plane,
            image,
            cols_per_image,
            chunk,
        })
    }

    /// Values of one padded image (the scratch buffer `pad` fills).
    pub(crate) fn padded_len(&self) -> usize {
        self.image
    }

    /// Writes image `x_n` (`[C, H, W]`) into `padded`, zeros around it.
    pub(crate) fn pad<T: ConvFloat>(&self, g: &ConvGeometry, x_n: &[T], padded: &mut [T]) {
        let (h, w) = (g.in_h, g.in_w);
        let (pt, pl) = g.pad_begin;
        padded.fill(T::default());
        for (c, src) in x_n.chunks_exact(h * w).enumerate() {
            let dst = &mut padded[c * self.plane + pt * self.wp + pl..];
            for (r, row) in src.chunks_exact(w).enumerate() {
                dst[r * self.wp..][..w].copy_from_slice(row);
            }
        }
    }

    /// The offset in a padded image of row `r = (c, i, j)` of the patch
    /// matrix: `c·Hp·Wp + i·dh·Wp + j·dw`.
    fn row_offset(&self, g: &ConvGeometry, r: usize) -> usize {
        let (kh, kw) = g.kernel;
        let (c, i, j) = (r / (kh * kw), r / kw % kh, r % kw);
        c * self.plane + i * g.dilation.0 * self.wp + j * g.dilation.1
    }

    // ANCHOR: lower
    /// Writes image `b` of a chunk into the wide patch matrix `cols`
    /// (rows of `stride` values, image `b`'s columns from `b·out_h·Wp` on):
    /// every row is one copy from the padded image.
    pub(crate) fn lower<T: ConvFloat>(
        &self,
        g: &ConvGeometry,
        padded: &[T],
        cols: &mut [T],
        stride: usize,
        b: usize,
    ) {
        let n = self.cols_per_image;
        for (r, row) in cols.chunks_exact_mut(stride).enumerate() {
            let from = self.row_offset(g, r);
            row[b * n..][..n].copy_from_slice(&padded[from..][..n]);
        }
    }
    // ANCHOR_END: lower

    /// The adjoint of [`lower`](Self::lower): adds every row of the wide
    /// matrix `dcols` (image `b`'s columns) onto the padded image `dpadded`
    /// at the offset it was copied from.
    pub(crate) fn raise<T: ConvFloat>(
        &self,
        g: &ConvGeometry,
        dcols: &[T],
        stride: usize,
        b: usize,
        dpadded: &mut [T],
    ) {
        let n = self.cols_per_image;
        for (r, row) in dcols.chunks_exact(stride).enumerate() {
            let to = self.row_offset(g, r);
            for (d, &s) in dpadded[to..][..n].iter_mut().zip(&row[b * n..][..n]) {
                *d += s;
            }
        }
    }

    /// Cuts the padding away from a padded image: `x_n[c, h, w] =
    /// padded[c, h + pad_top, w + pad_left]`.
    pub(crate) fn crop_input<T: ConvFloat>(&self, g: &ConvGeometry, padded: &[T], x_n: &mut [T]) {
        let (h, w) = (g.in_h, g.in_w);
        let (pt, pl) = g.pad_begin;
        for (c, dst) in x_n.chunks_exact_mut(h * w).enumerate() {
            let src = &padded[c * self.plane + pt * self.wp + pl..];
            for (r, row) in dst.chunks_exact_mut(w).enumerate() {
                row.copy_from_slice(&src[r * self.wp..][..w]);
            }
        }
    }

    /// Copies image `b`'s wide output (`[O, out_h·Wp]` inside rows of
    /// `stride` values) to `y_n` (`[O, out_h, out_w]`), leaving the extra
    /// columns behind.
    pub(crate) fn narrow<T: ConvFloat>(
        &self,
        g: &ConvGeometry,
        wide: &[T],
        stride: usize,
        b: usize,
        y_n: &mut [T],
    ) {
        let ow = g.out_w;
        for (o, dst) in y_n.chunks_exact_mut(g.out_h * ow).enumerate() {
            let src = &wide[o * stride + b * self.cols_per_image..];
            for (r, row) in dst.chunks_exact_mut(ow).enumerate() {
                row.copy_from_slice(&src[r * self.wp..][..ow]);
            }
        }
    }

    /// The reverse of [`narrow`](Self::narrow): writes `dy_n` (`[O, out_h,
    /// out_w]`) into image `b`'s columns of the wide matrix `wide`, with
    /// zeros in the extra columns (so that they add nothing to a gradient).
    pub(crate) fn widen<T: ConvFloat>(
        &self,
        g: &ConvGeometry,
        dy_n: &[T],
        wide: &mut [T],
        stride: usize,
        b: usize,
    ) {
        let ow = g.out_w;
        for (o, src) in dy_n.chunks_exact(g.out_h * ow).enumerate() {
            let dst = &mut wide[o * stride + b * self.cols_per_image..][..self.cols_per_image];
            for (r, row) in dst.chunks_exact_mut(self.wp).enumerate() {
                row[..ow].copy_from_slice(&src[r * ow..][..ow]);
                row[ow..].fill(T::default());
            }
        }
    }
}
