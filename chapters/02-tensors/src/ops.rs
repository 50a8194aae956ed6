//! Operations that compute new elements: elementwise maps, reductions,
//! matrix products, indexing and concatenation. Each checks its inputs,
//! does the shape bookkeeping, and calls one backend primitive.

use crate::backend::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::{DType, Dim, Dims, Error, Layout, Result, Shape, Tensor};
use std::sync::Arc;

impl Tensor {
    fn check_same_device(&self, other: &Tensor, op: &'static str) -> Result<()> {
        if self.device() != other.device() {
            return Err(Error::DeviceMismatch {
                op,
                lhs: self.device().name(),
                rhs: other.device().name(),
            });
        }
        Ok(())
    }
    fn check_same_dtype(&self, other: &Tensor, op: &'static str) -> Result<()> {
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: self.dtype(),
                rhs: other.dtype(),
            });
        }
        Ok(())
    }
    fn check_float(&self, op: &'static str) -> Result<()> {
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op,
                dtype: self.dtype(),
            });
        }
        Ok(())
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Result<Tensor> {
                    self.unary(UnaryOp::$op, stringify!($name))
                }
            )*
        }
    };
}

unary_methods! {
    /// `-x`
    neg => Neg,
    /// `1 / x`
    recip => Recip,
    /// `x²`
    sqr => Sqr,
    /// `√x`
    sqrt => Sqrt,
    /// `eˣ`
    exp => Exp,
    /// Natural logarithm.
    log => Log,
    /// `|x|`
    abs => Abs,
    /// −1, 0 or 1.
    sign => Sign,
    sin => Sin,
    cos => Cos,
    tanh => Tanh,
    /// `1 / (1 + e⁻ˣ)`
    sigmoid => Sigmoid,
    /// `max(x, 0)`
    relu => Relu,
    /// The error function `erf(x) = 2/√π ∫₀ˣ e^(−t²) dt`.
    erf => Erf,
}

// ANCHOR: elementwise
impl Tensor {
    /// Applies a unary primitive elementwise.
    pub fn unary(&self, op: UnaryOp, name: &'static str) -> Result<Tensor> {
        let float_only = !matches!(
            op,
            UnaryOp::Neg
                | UnaryOp::Abs
                | UnaryOp::Sqr
                | UnaryOp::Sign
                | UnaryOp::Relu
                | UnaryOp::Clamp { .. }
        );
        if float_only {
            self.check_float(name)?;
        } else if self.dtype() == DType::U8 {
            return Err(Error::UnsupportedDType {
                op: name,
                dtype: DType::U8,
            });
        }
        let s = self
            .device()
            .backend()
            .unary(op, self.storage().as_ref(), self.layout())?;
        Ok(Tensor::from_result(s, self.shape().clone(), self.device()))
    }

    /// Broadcasts two tensors to their common shape (views, no copy).
    pub fn broadcast_pair(
        &self,
        rhs: &Tensor,
        op: &'static str,
    ) -> Result<(Layout, Layout, Shape)> {
        let shape = self.shape().broadcast_with(rhs.shape(), op)?;
        let l = self.layout().broadcast_as(&shape, op)?;
        let r = rhs.layout().broadcast_as(&shape, op)?;
        Ok((l, r, shape))
    }

    /// Applies a binary primitive with NumPy broadcasting.
    pub fn binary(&self, rhs: &Tensor, op: BinaryOp, name: &'static str) -> Result<Tensor> {
        self.check_same_device(rhs, name)?;
        self.check_same_dtype(rhs, name)?;
        // Masks are not numbers, and integer division has no single answer
        // (floor or truncate?): ask for a cast instead.
        let float_only = matches!(op, BinaryOp::Div | BinaryOp::Pow);
        if self.dtype() == DType::U8 || (float_only && !self.dtype().is_float()) {
            return Err(Error::UnsupportedDType {
                op: name,
                dtype: self.dtype(),
            });
        }
        let (l, r, shape) = self.broadcast_pair(rhs, name)?;
        let s = self.device().backend().binary(
            op,
            self.storage().as_ref(),
            &l,
            rhs.storage().as_ref(),
            &r,
        )?;
        Ok(Tensor::from_result(s, shape, self.device()))
    }
}
// ANCHOR_END: elementwise

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
                    self.binary(rhs, BinaryOp::$op, stringify!($name))
                }
            )*
        }
    };
}
binary_methods! {
    /// `a + b` with broadcasting.
    add => Add,
    /// `a - b` with broadcasting.
    sub => Sub,
    /// `a * b` (elementwise) with broadcasting.
    mul => Mul,
    /// `a / b` with broadcasting.
    div => Div,
    /// `a ^ b` elementwise with broadcasting.
    pow => Pow,
    /// Elementwise larger value (NaN wins).
    maximum => Maximum,
    /// Elementwise smaller value (NaN wins).
    minimum => Minimum,
}

macro_rules! cmp_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Tensor {
            $(
                $(#[$doc])*
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> {
                    self.cmp(rhs, CmpOp::$op, stringify!($name))
                }
            )*
        }
    };
}
cmp_methods! {
    /// `a == b` as a `u8` mask.
    eq => Eq,
    /// `a != b` as a `u8` mask.
    ne => Ne,
    /// `a < b` as a `u8` mask.
    lt => Lt,
    /// `a <= b` as a `u8` mask.
    le => Le,
    /// `a > b` as a `u8` mask.
    gt => Gt,
    /// `a >= b` as a `u8` mask.
    ge => Ge,
}

impl Tensor {
    /// A comparison with broadcasting; the result is a `u8` tensor of 0/1.
    pub fn cmp(&self, rhs: &Tensor, op: CmpOp, name: &'static str) -> Result<Tensor> {
        self.check_same_device(rhs, name)?;
        self.check_same_dtype(rhs, name)?;
        let (l, r, shape) = self.broadcast_pair(rhs, name)?;
        let s = self.device().backend().cmp(
            op,
            self.storage().as_ref(),
            &l,
            rhs.storage().as_ref(),
            &r,
        )?;
        Ok(Tensor::from_result(s, shape, self.device()))
    }

    /// Compares with a scalar: `x.cmp_scalar(CmpOp::Gt, 0.0)` is `x > 0`.
    pub fn cmp_scalar(&self, op: CmpOp, value: f64) -> Result<Tensor> {
        let v = Tensor::full(value, (), self.dtype(), self.device())?;
        self.cmp(&v, op, "cmp_scalar")
    }

    /// `x * mul + add` in one pass.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Affine { mul, add }, "affine")
    }
    // The scalar forms are `affine` under their own names, so that an
    // error from `&x + 1.0` says `add_scalar`.
    pub fn add_scalar(&self, v: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Affine { mul: 1.0, add: v }, "add_scalar")
    }
    pub fn sub_scalar(&self, v: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Affine { mul: 1.0, add: -v }, "sub_scalar")
    }
    pub fn mul_scalar(&self, v: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Affine { mul: v, add: 0.0 }, "mul_scalar")
    }
    pub fn div_scalar(&self, v: f64) -> Result<Tensor> {
        self.unary(
            UnaryOp::Affine {
                mul: 1.0 / v,
                add: 0.0,
            },
            "div_scalar",
        )
    }
    /// `x ^ e` for a scalar exponent.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Powf(e), "powf")
    }
    /// Limits every element to `[min, max]`.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max {
            return Err(Error::invalid(
                "clamp",
                format!("min {min} is greater than max {max}"),
            ));
        }
        self.unary(UnaryOp::Clamp { min, max }, "clamp")
    }
    /// `x` for positive `x`, `slope * x` otherwise.
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(slope), "leaky_relu")
    }

    // ANCHOR: where_cond
    /// `cond ? on_true : on_false` elementwise, all three broadcast together.
    /// `self` is the condition (a `u8` mask).
    pub fn where_cond(&self, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        if self.dtype() != DType::U8 {
            return Err(Error::UnsupportedDType {
                op: "where_cond (condition must be u8)",
                dtype: self.dtype(),
            });
        }
        on_true.check_same_dtype(on_false, "where_cond")?;
        self.check_same_device(on_true, "where_cond")?;
        self.check_same_device(on_false, "where_cond")?;
        let shape = self.shape().broadcast_with(on_true.shape(), "where_cond")?;
        let shape = shape.broadcast_with(on_false.shape(), "where_cond")?;
        let lc = self.layout().broadcast_as(&shape, "where_cond")?;
        let lt = on_true.layout().broadcast_as(&shape, "where_cond")?;
        let lf = on_false.layout().broadcast_as(&shape, "where_cond")?;
        let s = self.device().backend().where_cond(
            self.storage().as_ref(),
            &lc,
            on_true.storage().as_ref(),
            &lt,
            on_false.storage().as_ref(),
            &lf,
        )?;
        Ok(Tensor::from_result(s, shape, self.device()))
    }
    // ANCHOR_END: where_cond
}

// ANCHOR: reductions
impl Tensor {
    /// Runs a reduction primitive and drops the reduced axes unless `keepdim`.
    pub fn reduce(
        &self,
        op: ReduceOp,
        axes: &[usize],
        keepdim: bool,
        name: &'static str,
    ) -> Result<Tensor> {
        if self.dtype() == DType::U8 && op == ReduceOp::Sum {
            return Err(Error::UnsupportedDType {
                op: name,
                dtype: DType::U8,
            });
        }
        let empty = axes.iter().any(|&a| self.dims()[a] == 0);
        if empty && op != ReduceOp::Sum {
            return Err(Error::invalid(
                name,
                format!("cannot reduce an empty dimension (shape {})", self.shape()),
            ));
        }
        let s = self
            .device()
            .backend()
            .reduce(op, self.storage().as_ref(), self.layout(), axes)?;
        let kept: Vec<usize> = self
            .dims()
            .iter()
            .enumerate()
            .map(|(d, &n)| if axes.contains(&d) { 1 } else { n })
            .collect();
        let out = Tensor::from_result(s, kept.clone().into(), self.device());
        if keepdim {
            return Ok(out);
        }
        let dropped: Vec<usize> = kept
            .iter()
            .enumerate()
            .filter(|(d, _)| !axes.contains(d))
            .map(|(_, &n)| n)
            .collect();
        out.reshape(dropped)
    }

    /// Sum over `dims` (e.g. `[0]` or `[-2, -1]`).
    pub fn sum(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        let axes = dims.to_indexes(self.shape(), "sum")?;
        self.reduce(ReduceOp::Sum, &axes, keepdim, "sum")
    }
    /// Sum of all elements, as a 0-d tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.reduce(ReduceOp::Sum, &axes, false, "sum_all")
    }
    /// Mean over `dims`.
    pub fn mean(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        self.check_float("mean")?;
        let axes = dims.to_indexes(self.shape(), "mean")?;
        let n: usize = axes.iter().map(|&d| self.dims()[d]).product();
        self.reduce(ReduceOp::Sum, &axes, keepdim, "mean")?
            .affine(1.0 / n as f64, 0.0)
    }
    /// Mean of all elements, as a 0-d tensor.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.check_float("mean_all")?;
        self.sum_all()?.affine(1.0 / self.elem_count() as f64, 0.0)
    }
    /// Largest value over `dims`.
    pub fn max(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        let axes = dims.to_indexes(self.shape(), "max")?;
        self.reduce(ReduceOp::Max, &axes, keepdim, "max")
    }
    /// Smallest value over `dims`.
    pub fn min(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        let axes = dims.to_indexes(self.shape(), "min")?;
        self.reduce(ReduceOp::Min, &axes, keepdim, "min")
    }
    /// Largest element of the whole tensor, as a 0-d tensor.
    pub fn max_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.reduce(ReduceOp::Max, &axes, false, "max_all")
    }
    /// Smallest element of the whole tensor, as a 0-d tensor.
    pub fn min_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.rank()).collect();
        self.reduce(ReduceOp::Min, &axes, false, "min_all")
    }
    /// Index (`i64`) of the first largest element along `dim`.
    pub fn argmax(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "argmax")?;
        self.reduce(ReduceOp::ArgMax, &[d], keepdim, "argmax")
    }
    /// Index (`i64`) of the first smallest element along `dim`.
    pub fn argmin(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "argmin")?;
        self.reduce(ReduceOp::ArgMin, &[d], keepdim, "argmin")
    }
}
// ANCHOR_END: reductions

// ANCHOR: matmul
impl Tensor {
    /// Matrix product with NumPy semantics: 2-D @ 2-D is the usual product;
    /// higher ranks are stacks of matrices whose batch dimensions broadcast
    /// (`[3, 1, 2, 4] @ [1, 5, 4, 6] -> [3, 5, 2, 6]`); a 1-D operand gets a
    /// dimension prepended (left) or appended (right) that is then removed.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.check_same_device(rhs, "matmul")?;
        self.check_same_dtype(rhs, "matmul")?;
        self.check_float("matmul")?;
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(Error::invalid(
                "matmul",
                format!(
                    "both arguments need at least 1 dimension, got {} and {}",
                    self.shape(),
                    rhs.shape()
                ),
            ));
        }
        let a = if self.rank() == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rhs.rank() == 1 {
            rhs.unsqueeze(1)?
        } else {
            rhs.clone()
        };
        let (ar, br) = (a.rank(), b.rank());
        let (m, k) = (a.dims()[ar - 2], a.dims()[ar - 1]);
        let (k2, n) = (b.dims()[br - 2], b.dims()[br - 1]);
        if k != k2 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
                detail: format!(" (inner dimensions {k} and {k2} differ)"),
            });
        }
        let batch_a: Shape = a.dims()[..ar - 2].to_vec().into();
        let batch_b: Shape = b.dims()[..br - 2].to_vec().into();
        let batch = batch_a
            .broadcast_with(&batch_b, "matmul")
            .map_err(|_| Error::Broadcast {
                op: "matmul",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
            })?;
        let mut a_shape = batch.dims().to_vec();
        a_shape.extend([m, k]);
        let mut b_shape = batch.dims().to_vec();
        b_shape.extend([k, n]);
        let la = a.layout().broadcast_as(&a_shape.into(), "matmul")?;
        let lb = b.layout().broadcast_as(&b_shape.into(), "matmul")?;
        let s =
            self.device()
                .backend()
                .matmul(a.storage().as_ref(), &la, b.storage().as_ref(), &lb)?;
        let mut out_shape = batch.dims().to_vec();
        out_shape.extend([m, n]);
        let mut out = Tensor::from_result(s, out_shape.into(), self.device());
        if rhs.rank() == 1 {
            out = out.squeeze(-1)?;
        }
        if self.rank() == 1 {
            out = out.squeeze(if rhs.rank() == 1 { -1 } else { -2 })?;
        }
        Ok(out)
    }
}
// ANCHOR_END: matmul

// ANCHOR: index_checks
impl Tensor {
    fn check_index_tensor(ids: &Tensor, op: &'static str) -> Result<()> {
        if ids.dtype() != DType::I64 {
            return Err(Error::UnsupportedDType {
                op,
                dtype: ids.dtype(),
            });
        }
        Ok(())
    }

    /// Checks that every index lies in `0..size`, where that costs nothing:
    /// indices in host memory are read right here, so a bad one is reported
    /// by value before any kernel runs. Indices on another device are not
    /// read back (that would be a transfer and a stall); the device's
    /// kernel checks each index as it reads it and reports an
    /// [`Error::Device`].
    pub fn check_ids_in_range(ids: &Tensor, size: usize, op: &'static str) -> Result<()> {
        match ids.first_id_outside(size)? {
            None => Ok(()),
            Some(i) => Err(Error::invalid(
                op,
                format!("index {i} is out of range for a dimension of size {size}"),
            )),
        }
    }

    /// The first `i64` element outside `0..size`, if the tensor is in host
    /// memory (where looking is free); `None` when all are inside, or when
    /// the tensor lives on a device that would have to send it back.
    pub fn first_id_outside(&self, size: usize) -> Result<Option<i64>> {
        self.first_id_outside_except(size, None)
    }

    /// [`first_id_outside`](Self::first_id_outside), not counting elements
    /// equal to `except` (a loss's `ignore_index`).
    pub fn first_id_outside_except(&self, size: usize, except: Option<i64>) -> Result<Option<i64>> {
        let Some(host) = self
            .device()
            .backend()
            .host_storage(self.storage().as_ref())
        else {
            return Ok(None);
        };
        let values = host.as_slice::<i64>()?;
        Ok(self
            .layout()
            .offsets()
            .map(|o| values[o])
            .find(|&i| Some(i) != except && (i < 0 || i as usize >= size)))
    }

    /// `gather` and `scatter_add` index every dimension but `dim` by
    /// position, so `ids` must have `self`'s rank and fit inside it there.
    fn check_gather_shapes(&self, ids: &Tensor, dim: usize, op: &'static str) -> Result<()> {
        let (src, idx) = (self.dims(), ids.dims());
        let fits = src.len() == idx.len()
            && src
                .iter()
                .zip(idx)
                .enumerate()
                .all(|(d, (&s, &i))| d == dim || i <= s);
        if fits {
            return Ok(());
        }
        Err(Error::ShapeMismatch {
            op,
            lhs: self.shape().clone(),
            rhs: ids.shape().clone(),
            detail: format!(
                " (index must have the same rank and be no larger outside dimension {dim})"
            ),
        })
    }
}
// ANCHOR_END: index_checks

// ANCHOR: indexing
impl Tensor {
    /// Picks slices along `dim` by index: `out[.., i, ..] = self[.., ids[i], ..]`.
    pub fn index_select(&self, ids: &Tensor, dim: impl Dim) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "index_select")?;
        Tensor::check_index_tensor(ids, "index_select")?;
        self.check_same_device(ids, "index_select")?;
        if ids.rank() == 0 {
            // One index given as a 0-d tensor: as PyTorch does, a slice of
            // size 1 along `dim`.
            return self.index_select(&ids.reshape(1)?, d);
        }
        if ids.rank() != 1 {
            return Err(Error::invalid(
                "index_select",
                format!("index must be 1-D, got shape {}", ids.shape()),
            ));
        }
        Tensor::check_ids_in_range(ids, self.dims()[d], "index_select")?;
        let s = self.device().backend().index_select(
            self.storage().as_ref(),
            self.layout(),
            ids.storage().as_ref(),
            ids.layout(),
            d,
        )?;
        let mut shape = self.dims().to_vec();
        shape[d] = ids.elem_count();
        Ok(Tensor::from_result(s, shape.into(), self.device()))
    }

    /// `out[i][j] = self[ids[i][j]][j]` for `dim = 0`, and likewise for
    /// other dims (`torch.gather`). `out` has the shape of `ids`.
    pub fn gather(&self, ids: &Tensor, dim: impl Dim) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "gather")?;
        Tensor::check_index_tensor(ids, "gather")?;
        self.check_same_device(ids, "gather")?;
        self.check_gather_shapes(ids, d, "gather")?;
        Tensor::check_ids_in_range(ids, self.dims()[d], "gather")?;
        let s = self.device().backend().gather(
            self.storage().as_ref(),
            self.layout(),
            ids.storage().as_ref(),
            ids.layout(),
            d,
        )?;
        Ok(Tensor::from_result(s, ids.shape().clone(), self.device()))
    }

    /// A copy of `self` with `src` added at the positions `ids` name along
    /// `dim` (`torch.scatter_add`); the adjoint of [`gather`](Self::gather).
    pub fn scatter_add(&self, ids: &Tensor, src: &Tensor, dim: impl Dim) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "scatter_add")?;
        Tensor::check_index_tensor(ids, "scatter_add")?;
        self.check_same_dtype(src, "scatter_add")?;
        self.check_same_device(ids, "scatter_add")?;
        self.check_same_device(src, "scatter_add")?;
        self.check_addable("scatter_add")?;
        self.check_gather_shapes(ids, d, "scatter_add")?;
        if src.shape() != ids.shape() {
            return Err(Error::ShapeMismatch {
                op: "scatter_add",
                lhs: src.shape().clone(),
                rhs: ids.shape().clone(),
                detail: " (src and index must have the same shape)".into(),
            });
        }
        Tensor::check_ids_in_range(ids, self.dims()[d], "scatter_add")?;
        let s = self.device().backend().scatter_add(
            self.storage().as_ref(),
            self.layout(),
            ids.storage().as_ref(),
            ids.layout(),
            src.storage().as_ref(),
            src.layout(),
            d,
        )?;
        Ok(Tensor::from_result(s, self.shape().clone(), self.device()))
    }

    /// A copy of `self` with slice `i` of `src` added to slice `ids[i]`
    /// along `dim` (`torch.index_add`); the adjoint of `index_select`.
    pub fn index_add(&self, ids: &Tensor, src: &Tensor, dim: impl Dim) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "index_add")?;
        Tensor::check_index_tensor(ids, "index_add")?;
        self.check_same_dtype(src, "index_add")?;
        self.check_same_device(ids, "index_add")?;
        self.check_same_device(src, "index_add")?;
        self.check_addable("index_add")?;
        if ids.rank() == 0 {
            return self.index_add(&ids.reshape(1)?, src, d);
        }
        if ids.rank() != 1 {
            return Err(Error::invalid(
                "index_add",
                format!("index must be 1-D, got shape {}", ids.shape()),
            ));
        }
        let mut expected = self.dims().to_vec();
        expected[d] = ids.elem_count();
        if src.dims() != expected.as_slice() {
            return Err(Error::ShapeMismatch {
                op: "index_add",
                lhs: src.shape().clone(),
                rhs: expected.into(),
                detail:
                    " (src must match base with the indexed dimension replaced by the index length)"
                        .into(),
            });
        }
        Tensor::check_ids_in_range(ids, self.dims()[d], "index_add")?;
        let s = self.device().backend().index_add(
            self.storage().as_ref(),
            self.layout(),
            ids.storage().as_ref(),
            ids.layout(),
            src.storage().as_ref(),
            src.layout(),
            d,
        )?;
        Ok(Tensor::from_result(s, self.shape().clone(), self.device()))
    }

    /// Scatters add numbers: not masks.
    fn check_addable(&self, op: &'static str) -> Result<()> {
        if self.dtype() == DType::U8 {
            return Err(Error::UnsupportedDType {
                op,
                dtype: DType::U8,
            });
        }
        Ok(())
    }

    /// The positions that sort each slice along `dim` (`i64`, stable; NaN
    /// sorts above every number), like `torch.argsort(stable=True)`.
    pub fn argsort(&self, dim: impl Dim, descending: bool) -> Result<Tensor> {
        let d = dim.to_index(self.shape(), "argsort")?;
        if self.rank() == 0 {
            return Tensor::zeros((), DType::I64, self.device());
        }
        let last = self.rank() - 1;
        let moved = self.transpose(d, last)?;
        let s = self.device().backend().argsort(
            moved.storage().as_ref(),
            moved.layout(),
            descending,
        )?;
        let ids = Tensor::from_result(s, moved.shape().clone(), self.device());
        ids.transpose(d, last)?.contiguous()
    }

    /// `(values, indices)` sorted along `dim` (stable), like `torch.sort`.
    pub fn sort(&self, dim: impl Dim, descending: bool) -> Result<(Tensor, Tensor)> {
        let d = dim.to_index(self.shape(), "sort")?;
        let ids = self.argsort(d, descending)?;
        if self.rank() == 0 {
            return Ok((self.clone(), ids));
        }
        Ok((self.gather(&ids, d)?, ids))
    }
}
// ANCHOR_END: indexing

// ANCHOR: cat
impl Tensor {
    /// Joins tensors along an existing dimension. All other dimensions must
    /// agree. One output buffer is allocated and each input is copied into
    /// its slice of it with the `copy_into` primitive.
    pub fn cat(tensors: &[&Tensor], dim: impl Dim) -> Result<Tensor> {
        let first = *tensors
            .first()
            .ok_or_else(|| Error::invalid("cat", "needs at least one tensor"))?;
        let d = dim.to_index(first.shape(), "cat")?;
        let mut out_dims = first.dims().to_vec();
        out_dims[d] = 0;
        for t in tensors {
            first.check_same_dtype(t, "cat")?;
            first.check_same_device(t, "cat")?;
            let same_rank = t.rank() == first.rank();
            let agree = same_rank
                && t.dims()
                    .iter()
                    .zip(first.dims())
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !agree {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().clone(),
                    rhs: t.shape().clone(),
                    detail: format!(" (all dimensions except {d} must match)"),
                });
            }
            out_dims[d] += t.dims()[d];
        }
        // ANCHOR: cat_copy_into
        let shape: Shape = out_dims.into();
        let backend = first.device().backend();
        let mut storage = backend.full(&shape, 0.0, first.dtype())?;
        let out_layout = Layout::contiguous(shape.clone());
        let mut start = 0;
        {
            let dst = unique(&mut storage, "cat", first.device())?;
            for t in tensors {
                let len = t.dims()[d];
                let region = out_layout.slice(d, start, start + len, 1);
                backend.copy_into(dst, &region, t.storage().as_ref(), t.layout())?;
                start += len;
            }
        }
        Ok(Tensor::from_result(storage, shape, first.device()))
        // ANCHOR_END: cat_copy_into
    }

    /// Joins tensors of equal shape along a new dimension.
    pub fn stack(tensors: &[&Tensor], dim: impl Dim) -> Result<Tensor> {
        let first = *tensors
            .first()
            .ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
        let d = dim.to_index_plus_one(first.shape(), "stack")?;
        let mut views = Vec::with_capacity(tensors.len());
        for t in tensors {
            if t.shape() != first.shape() {
                return Err(Error::ShapeMismatch {
                    op: "stack",
                    lhs: first.shape().clone(),
                    rhs: t.shape().clone(),
                    detail: " (all shapes must be equal)".into(),
                });
            }
            views.push(t.unsqueeze(d)?);
        }
        Tensor::cat(&views.iter().collect::<Vec<_>>(), d)
    }

    /// The region of `layout` that `ranges` (one `start..end` per leading
    /// dimension) selects, checked against `self`'s shape and `src`'s.
    fn assign_region(
        &self,
        layout: &Layout,
        ranges: &[std::ops::Range<usize>],
        src: &Tensor,
        op: &'static str,
    ) -> Result<Layout> {
        self.check_same_dtype(src, op)?;
        self.check_same_device(src, op)?;
        let mut region = layout.clone();
        for (d, r) in ranges.iter().enumerate() {
            if d >= self.rank() || r.end > self.dims()[d] || r.start > r.end {
                return Err(Error::invalid(
                    op,
                    format!(
                        "range {r:?} is out of bounds for dimension {d} of shape {}",
                        self.shape()
                    ),
                ));
            }
            region = region.slice(d, r.start, r.end, 1);
        }
        if region.shape() != src.shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: region.shape().clone(),
                rhs: src.shape().clone(),
                detail: " (region and source differ)".into(),
            });
        }
        Ok(region)
    }

    /// A copy of `self` whose region selected by `ranges` (one `start..end`
    /// per leading dimension) is replaced by `src`.
    pub fn slice_assign(&self, ranges: &[std::ops::Range<usize>], src: &Tensor) -> Result<Tensor> {
        let contiguous = Layout::contiguous(self.shape().clone());
        let region = self.assign_region(&contiguous, ranges, src, "slice_assign")?;
        let backend = self.device().backend();
        let mut storage = backend.copy(self.storage().as_ref(), self.layout())?;
        let dst = unique(&mut storage, "slice_assign", self.device())?;
        backend.copy_into(dst, &region, src.storage().as_ref(), src.layout())?;
        Ok(Tensor::from_result(
            storage,
            self.shape().clone(),
            self.device(),
        ))
    }

    // ANCHOR: slice_assign_in_place
    /// Writes `src` into the region of `self` that `ranges` selects, in
    /// place: no new buffer, no copy of the rest. This is how a KV cache
    /// (chapter 08) appends one token's keys to a preallocated buffer.
    ///
    /// Tensors have value semantics, so when the storage is shared (with a
    /// view or a clone of `self` that is still alive), `self` first gets a
    /// copy of its own (copy-on-write) and the other tensors keep the old
    /// values. [`is_storage_unique`](Self::is_storage_unique) tells
    /// beforehand whether the write will happen in place.
    pub fn slice_assign_(&mut self, ranges: &[std::ops::Range<usize>], src: &Tensor) -> Result<()> {
        self.assign_region(self.layout(), ranges, src, "slice_assign_")?;
        if !self.is_storage_unique() {
            *self = self.copy()?;
        }
        let device = self.device().clone();
        let inner = Arc::get_mut(&mut self.0).ok_or_else(|| {
            Error::invalid("slice_assign_", "the tensor is shared after copy-on-write")
        })?;
        let region = {
            let mut region = inner.layout.clone();
            for (d, r) in ranges.iter().enumerate() {
                region = region.slice(d, r.start, r.end, 1);
            }
            region
        };
        let dst = unique(&mut inner.storage, "slice_assign_", &device)?;
        device
            .backend()
            .copy_into(dst, &region, src.storage().as_ref(), src.layout())
    }
    // ANCHOR_END: slice_assign_in_place

    /// Writes `src` into the elements of `self` that `view` selects, in
    /// place: `view` is a layout over `self`'s elements in row-major order
    /// (any strides, e.g. the diagonal of a matrix, whose stride is `n + 1`),
    /// and `self` must be contiguous. Copy-on-write as in
    /// [`slice_assign_`](Self::slice_assign_).
    pub fn write_view_(&mut self, view: &Layout, src: &Tensor) -> Result<()> {
        self.check_same_dtype(src, "write_view_")?;
        self.check_same_device(src, "write_view_")?;
        if !self.is_contiguous() {
            return Err(Error::invalid(
                "write_view_",
                format!(
                    "needs a contiguous tensor, got a view of shape {}",
                    self.shape()
                ),
            ));
        }
        if view.shape() != src.shape() || view.max_storage_index() > self.elem_count() {
            return Err(Error::ShapeMismatch {
                op: "write_view_",
                lhs: view.shape().clone(),
                rhs: src.shape().clone(),
                detail: format!(
                    " (the view must have the source's shape and lie within the {} elements)",
                    self.elem_count()
                ),
            });
        }
        if !self.is_storage_unique() {
            *self = self.copy()?;
        }
        let device = self.device().clone();
        let inner = Arc::get_mut(&mut self.0).ok_or_else(|| {
            Error::invalid("write_view_", "the tensor is shared after copy-on-write")
        })?;
        let region = Layout::new(
            view.shape().clone(),
            view.strides().to_vec(),
            view.offset() + inner.layout.offset(),
        );
        let dst = unique(&mut inner.storage, "write_view_", &device)?;
        device
            .backend()
            .copy_into(dst, &region, src.storage().as_ref(), src.layout())
    }
}

/// Mutable access to storage that a backend just made (or that copy-on-write
/// made unique). Shared storage here would be a backend bug, reported as such.
fn unique<'a>(
    storage: &'a mut crate::Storage,
    op: &'static str,
    device: &crate::Device,
) -> Result<&'a mut dyn crate::BackendStorage> {
    Arc::get_mut(storage).ok_or_else(|| {
        Error::device(
            op,
            device,
            "the backend returned shared storage for a fresh result",
        )
    })
}
// ANCHOR_END: cat

// ANCHOR: fused
impl Tensor {
    /// Runs a fused elementwise [`Program`](crate::Program) on tensors of
    /// one shape, float dtype and device, with the runtime `scalars` its
    /// [`Instr::Scalar`](crate::Instr::Scalar)s read; returns one tensor per
    /// program output.
    pub fn fused(
        program: &crate::Program,
        inputs: &[&Tensor],
        scalars: &[f64],
    ) -> Result<Vec<Tensor>> {
        let first = *inputs
            .first()
            .ok_or_else(|| Error::invalid("fused", "needs at least one input"))?;
        first.check_float("fused")?;
        for t in inputs {
            first.check_same_device(t, "fused")?;
            first.check_same_dtype(t, "fused")?;
            if t.shape() != first.shape() {
                return Err(Error::ShapeMismatch {
                    op: "fused",
                    lhs: first.shape().clone(),
                    rhs: t.shape().clone(),
                    detail: " (all inputs must have one shape)".into(),
                });
            }
        }
        let args: Vec<(&dyn crate::BackendStorage, &Layout)> = inputs
            .iter()
            .map(|t| (t.storage().as_ref(), t.layout()))
            .collect();
        program.validate(inputs.len(), scalars.len())?;
        let outs = first.device().backend().fused(program, &args, scalars)?;
        Ok(outs
            .into_iter()
            .map(|s| Tensor::from_result(s, first.shape().clone(), first.device()))
            .collect())
    }

    // ANCHOR: fused_in_place
    /// Runs `program` over the inputs `state ++ inputs` and writes output
    /// `i` over `state[i]`, in place: an optimiser's `(p, m, v) ← update(p,
    /// m, v, g)` without a fresh buffer per output. All tensors share one
    /// shape, float dtype and device, and the program has exactly one
    /// output per state tensor.
    ///
    /// Tensors keep value semantics: a state tensor whose storage is shared
    /// (with a clone or a view that is still alive), or that is a strided
    /// view, first gets a contiguous copy of its own (copy-on-write), and
    /// the other tensors keep the old values.
    pub fn fused_in_place(
        program: &crate::Program,
        state: &mut [&mut Tensor],
        inputs: &[&Tensor],
        scalars: &[f64],
    ) -> Result<()> {
        let op = "fused_in_place";
        let (shape, dtype, device) = match state.first() {
            Some(t) => (t.shape().clone(), t.dtype(), t.device().clone()),
            None => return Err(Error::invalid(op, "needs at least one state tensor")),
        };
        if program.outputs.len() != state.len() {
            return Err(Error::invalid(
                op,
                format!(
                    "the program has {} outputs for {} state tensors (one each)",
                    program.outputs.len(),
                    state.len()
                ),
            ));
        }
        let all = state.iter().map(|t| &**t).chain(inputs.iter().copied());
        for t in all {
            t.check_float(op)?;
            if t.device() != &device {
                return Err(Error::DeviceMismatch {
                    op,
                    lhs: device.name(),
                    rhs: t.device().name(),
                });
            }
            if t.dtype() != dtype {
                return Err(Error::DTypeMismatch {
                    op,
                    lhs: dtype,
                    rhs: t.dtype(),
                });
            }
            if t.shape() != &shape {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: shape.clone(),
                    rhs: t.shape().clone(),
                    detail: " (all inputs must have one shape)".into(),
                });
            }
        }
        program.validate(state.len() + inputs.len(), scalars.len())?;
        // Copy-on-write: each state tensor must own exactly its elements.
        for t in state.iter_mut() {
            let whole = t.is_contiguous()
                && t.layout().offset() == 0
                && t.storage().len() == t.elem_count();
            if !whole || !t.is_storage_unique() {
                **t = t.copy()?;
            }
        }
        let layout = Layout::contiguous(shape);
        let args: Vec<(&dyn crate::BackendStorage, &Layout)> = inputs
            .iter()
            .map(|t| (t.storage().as_ref(), t.layout()))
            .collect();
        let mut dsts: Vec<&mut dyn crate::BackendStorage> = Vec::with_capacity(state.len());
        for t in state.iter_mut() {
            let inner = Arc::get_mut(&mut t.0)
                .ok_or_else(|| Error::invalid(op, "the tensor is shared after copy-on-write"))?;
            dsts.push(unique(&mut inner.storage, op, &device)?);
        }
        device
            .backend()
            .fused_in_place(program, &mut dsts, &layout, &args, scalars)
    }
    // ANCHOR_END: fused_in_place
}
// ANCHOR_END: fused
