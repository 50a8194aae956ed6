//! The arithmetic of a 2-D convolution: options, output sizes and the
//! checks that turn a bad call into an error naming the layer and shapes.
//!
//! Every convolution of this chapter (forward, its two gradients, the
//! transposed convolution) is described by one [`ConvGeometry`]: the shapes
//! of the *convolution's* input and output and how a kernel window walks
//! over the input. A transposed convolution is the same geometry read
//! backwards, which is why it needs no geometry of its own.

use chapter_02::{Error, Result, Shape};

// ANCHOR: options
/// How much zero padding a convolution adds around its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// `(rows, columns)` of zeros on *each* side: top and bottom get
    /// `rows`, left and right get `columns` (PyTorch's `padding=(h, w)`).
    Explicit(usize, usize),
    /// Enough padding that the output has the input's size (PyTorch's
    /// `padding='same'`, stride 1 only). The total `d·(k − 1)` is split with
    /// the odd one out at the end (bottom, right), as PyTorch does.
    Same,
}

/// The options of [`conv2d`](crate::conv2d()), PyTorch's defaults by
/// [`Default`]: stride 1, no padding, no dilation, one group. Pairs are
/// `(height, width)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step of the window: output pixel `o` reads input rows from `o·s`.
    pub stride: (usize, usize),
    pub padding: Padding,
    /// Spacing of the kernel taps: tap `i` reads input row `o·s + i·d`.
    pub dilation: (usize, usize),
    /// Input and output channels are cut into `groups` independent slices;
    /// `groups = C_in` is a depthwise convolution.
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: (1, 1),
            padding: Padding::Explicit(0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl Conv2dOptions {
    /// The same stride in both directions.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = (s, s);
        self
    }
    /// The same padding on all four sides.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = Padding::Explicit(p, p);
        self
    }
    /// The same dilation in both directions.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = (d, d);
        self
    }
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
}

/// The options of [`conv_transpose2d`](crate::conv_transpose2d): those of
/// the convolution it transposes, plus `output_padding`, the rows and
/// columns added at the bottom and right of the output. A stride-`s`
/// convolution maps `s` input sizes to one output size; output padding
/// says which one the transposed convolution gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2dOptions {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub output_padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for ConvTranspose2dOptions {
    fn default() -> Self {
        ConvTranspose2dOptions {
            stride: (1, 1),
            padding: (0, 0),
            output_padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}
// ANCHOR_END: options

// ANCHOR: geometry
/// One convolution, fully sized. `input` is `[N, C, H, W]`, the weight
/// `[O, C/groups, kh, kw]`, the output `[N, O, out_h, out_w]`, and output
/// pixel `(oh, ow)` of tap `(i, j)` reads input pixel
///
/// `(oh·stride_h + i·dilation_h − pad_top, ow·stride_w + j·dilation_w − pad_left)`
///
/// (zero where that falls in the padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_channels: usize,
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    /// Zeros before the first row and column: `(top, left)`.
    pub pad_begin: (usize, usize),
    /// Zeros after the last row and column: `(bottom, right)`.
    pub pad_end: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
    pub out_h: usize,
    pub out_w: usize,
}

/// `⌊(n + pads − d·(k − 1) − 1)/s⌋ + 1`: how many windows of `k` taps spaced
/// `d` apart fit, at stride `s`, into `n` padded by `pads`. `None` when not
/// even one does.
pub fn windows(n: usize, pads: usize, k: usize, s: usize, d: usize) -> Option<usize> {
    let span = d * (k - 1) + 1;
    (n + pads).checked_sub(span).map(|r| r / s + 1)
}

impl ConvGeometry {
    /// Rows of one group's im2col matrix: `(C/groups)·kh·kw`, one per
    /// (input channel, tap) of a group.
    pub fn col_rows(&self) -> usize {
        self.in_channels / self.groups * self.kernel.0 * self.kernel.1
    }
    /// Columns of the im2col matrix: one per output pixel of every image,
    /// `N·out_h·out_w`.
    pub fn col_cols(&self) -> usize {
        self.batch * self.out_h * self.out_w
    }
    /// The shape of the im2col matrix, `[groups, (C/groups)·kh·kw, N·out_h·out_w]`.
    pub fn cols_shape(&self) -> Shape {
        Shape::from(vec![self.groups, self.col_rows(), self.col_cols()])
    }
    pub fn input_shape(&self) -> Shape {
        Shape::from(vec![self.batch, self.in_channels, self.in_h, self.in_w])
    }
    pub fn output_shape(&self) -> Shape {
        Shape::from(vec![self.batch, self.out_channels, self.out_h, self.out_w])
    }
    /// Checks that the numbers fit together, so that a kernel can index
    /// without bounds failures: positive kernel, stride and dilation,
    /// `groups` dividing both channel counts, and every window of the
    /// `out_h × out_w` grid inside the padded input. The constructors below
    /// only make valid geometries; this guards the ones built by hand.
    pub fn validate(&self, op: &'static str) -> Result<()> {
        let positive = [self.kernel, self.stride, self.dilation]
            .iter()
            .all(|&(a, b)| a > 0 && b > 0);
        let grouped = self.groups > 0
            && self.in_channels.is_multiple_of(self.groups)
            && self.out_channels.is_multiple_of(self.groups);
        let fits = |out: usize, s: usize, d: usize, k: usize, n: usize, pads: usize| {
            out == 0 || (out - 1) * s + d * (k.max(1) - 1) < n + pads
        };
        let inside = fits(
            self.out_h,
            self.stride.0,
            self.dilation.0,
            self.kernel.0,
            self.in_h,
            self.pad_begin.0 + self.pad_end.0,
        ) && fits(
            self.out_w,
            self.stride.1,
            self.dilation.1,
            self.kernel.1,
            self.in_w,
            self.pad_begin.1 + self.pad_end.1,
        );
        if positive && grouped && inside {
            Ok(())
        } else {
            Err(Error::invalid(
                op,
                format!("inconsistent geometry {self:?}"),
            ))
        }
    }

    pub fn weight_shape(&self) -> Shape {
        Shape::from(vec![
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel.0,
            self.kernel.1,
        ])
    }
}
// ANCHOR_END: geometry

/// `[N, C, H, W]` or an error naming `op` and the shape.
fn nchw(op: &'static str, what: &str, dims: &[usize]) -> Result<[usize; 4]> {
    match *dims {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::invalid(
            op,
            format!(
                "expected a 4-D {what} [N, C, H, W], got shape {}",
                Shape::from(dims.to_vec())
            ),
        )),
    }
}

/// `[O, I, kh, kw]` or an error.
fn weight4(op: &'static str, dims: &[usize]) -> Result<[usize; 4]> {
    match *dims {
        [o, i, kh, kw] => Ok([o, i, kh, kw]),
        _ => Err(Error::invalid(
            op,
            format!(
                "expected a 4-D weight, got shape {}",
                Shape::from(dims.to_vec())
            ),
        )),
    }
}

fn check_positive(op: &'static str, name: &str, (a, b): (usize, usize)) -> Result<()> {
    if a == 0 || b == 0 {
        return Err(Error::invalid(
            op,
            format!("{name} must be positive, got ({a}, {b})"),
        ));
    }
    Ok(())
}

fn check_bias(op: &'static str, bias: Option<&[usize]>, channels: usize) -> Result<()> {
    match bias {
        Some(b) if b != [channels] => Err(Error::ShapeMismatch {
            op,
            lhs: Shape::from(b.to_vec()),
            rhs: Shape::from(vec![channels]),
            detail: " (bias must have one value per output channel)".into(),
        }),
        _ => Ok(()),
    }
}

// ANCHOR: conv2d_geometry
impl ConvGeometry {
    /// Sizes `conv2d(x, weight)` and checks every argument: `x` is
    /// `[N, C, H, W]`, `weight` `[O, C/groups, kh, kw]`, `bias` `[O]`.
    pub fn conv2d(
        x: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        opts: &Conv2dOptions,
    ) -> Result<ConvGeometry> {
        const OP: &str = "conv2d";
        let [n, c, h, w] = nchw(OP, "input", x)?;
        let [o, cg, kh, kw] = weight4(OP, weight)?;
        check_positive(OP, "stride", opts.stride)?;
        check_positive(OP, "dilation", opts.dilation)?;
        check_positive(OP, "kernel size", (kh, kw))?;
        let g = opts.groups;
        if g == 0 || c % g != 0 || o % g != 0 {
            return Err(Error::invalid(
                OP,
                format!(
                    "groups = {g} must divide both the input channels ({c}, input shape {}) \
                     and the output channels ({o}, weight shape {})",
                    Shape::from(x.to_vec()),
                    Shape::from(weight.to_vec())
                ),
            ));
        }
        if cg * g != c {
            return Err(Error::invalid(
                OP,
                format!(
                    "expected input with {} channels (weight {} has {cg} per group × {g} groups), \
                     got input shape {}",
                    cg * g,
                    Shape::from(weight.to_vec()),
                    Shape::from(x.to_vec())
                ),
            ));
        }
        check_bias(OP, bias, o)?;
        let (sh, sw) = opts.stride;
        let (dh, dw) = opts.dilation;
        let (pad_begin, pad_end) = match opts.padding {
            Padding::Explicit(ph, pw) => ((ph, pw), (ph, pw)),
            Padding::Same => {
                if opts.stride != (1, 1) {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "padding 'same' needs stride 1 (as in PyTorch), got stride {:?}",
                            opts.stride
                        ),
                    ));
                }
                let (th, tw) = (dh * (kh - 1), dw * (kw - 1));
                ((th / 2, tw / 2), (th - th / 2, tw - tw / 2))
            }
        };
        let out_h = windows(h, pad_begin.0 + pad_end.0, kh, sh, dh);
        let out_w = windows(w, pad_begin.1 + pad_end.1, kw, sw, dw);
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(Error::invalid(
                OP,
                format!(
                    "kernel {kh}×{kw} (dilation {dh}×{dw}, so it spans {}×{}) is larger than the \
                     padded input {}×{} (input shape {}, padding {:?} + {:?})",
                    dh * (kh - 1) + 1,
                    dw * (kw - 1) + 1,
                    h + pad_begin.0 + pad_end.0,
                    w + pad_begin.1 + pad_end.1,
                    Shape::from(x.to_vec()),
                    pad_begin,
                    pad_end
                ),
            ));
        };
        Ok(ConvGeometry {
            batch: n,
            in_channels: c,
            in_h: h,
            in_w: w,
            out_channels: o,
            kernel: (kh, kw),
            stride: opts.stride,
            pad_begin,
            pad_end,
            dilation: opts.dilation,
            groups: g,
            out_h,
            out_w,
        })
    }
    // ANCHOR_END: conv2d_geometry

    // ANCHOR: conv_transpose2d_geometry
    /// Sizes `conv_transpose2d(x, weight)`: `x` is `[N, C_in, H, W]`,
    /// `weight` `[C_in, C_out/groups, kh, kw]`, `bias` `[C_out]`. The result
    /// is the geometry of the convolution being transposed, whose *output*
    /// is `x` and whose *input* has the size the transposed convolution
    /// produces:
    ///
    /// `H_out = (H − 1)·s − 2p + d·(k − 1) + output_padding + 1`.
    pub fn conv_transpose2d(
        x: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        opts: &ConvTranspose2dOptions,
    ) -> Result<ConvGeometry> {
        const OP: &str = "conv_transpose2d";
        let [n, c_in, h, w] = nchw(OP, "input", x)?;
        let [wi, cog, kh, kw] = weight4(OP, weight)?;
        check_positive(OP, "stride", opts.stride)?;
        check_positive(OP, "dilation", opts.dilation)?;
        check_positive(OP, "kernel size", (kh, kw))?;
        let g = opts.groups;
        if g == 0 || c_in % g != 0 {
            return Err(Error::invalid(
                OP,
                format!(
                    "groups = {g} must divide the input channels ({c_in}, input shape {})",
                    Shape::from(x.to_vec())
                ),
            ));
        }
        if wi != c_in {
            return Err(Error::invalid(
                OP,
                format!(
                    "expected input with {wi} channels (weight shape {}), got input shape {}",
                    Shape::from(weight.to_vec()),
                    Shape::from(x.to_vec())
                ),
            ));
        }
        let c_out = cog * g;
        check_bias(OP, bias, c_out)?;
        let (sh, sw) = opts.stride;
        let (dh, dw) = opts.dilation;
        let (ph, pw) = opts.padding;
        let (oph, opw) = opts.output_padding;
        if (oph >= sh && oph >= dh) || (opw >= sw && opw >= dw) {
            return Err(Error::invalid(
                OP,
                format!(
                    "output padding {:?} must be smaller than the stride {:?} or the dilation {:?}",
                    opts.output_padding, opts.stride, opts.dilation
                ),
            ));
        }
        let size = |i: usize, s: usize, p: usize, d: usize, k: usize, op: usize| {
            ((i.max(1) - 1) * s + d * (k - 1) + op + 1).checked_sub(2 * p)
        };
        let out_h = size(h, sh, ph, dh, kh, oph).filter(|&v| v > 0);
        let out_w = size(w, sw, pw, dw, kw, opw).filter(|&v| v > 0);
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(Error::invalid(
                OP,
                format!(
                    "padding {:?} removes the whole output (input shape {}, weight shape {})",
                    opts.padding,
                    Shape::from(x.to_vec()),
                    Shape::from(weight.to_vec())
                ),
            ));
        };
        Ok(ConvGeometry {
            batch: n,
            in_channels: c_out,
            in_h: out_h,
            in_w: out_w,
            out_channels: c_in,
            kernel: (kh, kw),
            stride: opts.stride,
            pad_begin: (ph, pw),
            pad_end: (ph, pw),
            dilation: opts.dilation,
            groups: g,
            out_h: h,
            out_w: w,
        })
    }
    // ANCHOR_END: conv_transpose2d_geometry
}
