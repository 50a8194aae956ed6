//! `+ - * /` operators.
//!
//! The methods (`a.add(&b)?`) return `Result`, the idiomatic Rust way to
//! report a shape mismatch. Operators cannot return `Result` in a way that
//! reads naturally, so `&a + &b` panics with the same message instead, just
//! as indexing a `Vec` out of bounds panics. Use operators where the shapes
//! are known to agree (tests, notebooks, formulas), methods elsewhere.

use crate::Tensor;
use std::ops::{Add, Div, Mul, Neg, Sub};

// ANCHOR: operators
macro_rules! operator {
    ($trait:ident, $fn:ident, $method:ident, $scalar:expr) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Tensor;
            /// # Panics
            ///
            /// When the shapes do not broadcast, the dtypes or devices
            /// differ, or the dtype does not support the operation, with the
            /// message of the error that
            #[doc = concat!("[`Tensor::", stringify!($method), "`]")]
            /// (the `Result`-returning twin) would return.
            fn $fn(self, rhs: &Tensor) -> Tensor {
                self.$method(rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        // ANCHOR_END: operators
        impl $trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: Tensor) -> Tensor {
                <&Tensor as $trait<&Tensor>>::$fn(&self, &rhs)
            }
        }
        impl $trait<&Tensor> for Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: &Tensor) -> Tensor {
                <&Tensor as $trait<&Tensor>>::$fn(&self, rhs)
            }
        }
        impl $trait<Tensor> for &Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: Tensor) -> Tensor {
                <&Tensor as $trait<&Tensor>>::$fn(self, &rhs)
            }
        }
        impl $trait<f64> for &Tensor {
            type Output = Tensor;
            /// # Panics
            ///
            #[doc = concat!("As [`Tensor::", stringify!($method), "_scalar`] would return an error")]
            /// (for a dtype without that operation, such as `u8`).
            fn $fn(self, rhs: f64) -> Tensor {
                #[allow(clippy::redundant_closure_call)]
                ($scalar)(self, rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl $trait<f64> for Tensor {
            type Output = Tensor;
            fn $fn(self, rhs: f64) -> Tensor {
                <&Tensor as $trait<f64>>::$fn(&self, rhs)
            }
        }
    };
}

operator!(Add, add, add, |t: &Tensor, v| t.add_scalar(v));
operator!(Sub, sub, sub, |t: &Tensor, v| t.sub_scalar(v));
operator!(Mul, mul, mul, |t: &Tensor, v| t.mul_scalar(v));
operator!(Div, div, div, |t: &Tensor, v| t.div_scalar(v));

impl Neg for &Tensor {
    type Output = Tensor;
    /// # Panics
    ///
    /// For a dtype without negation (`u8` masks), with the message of the
    /// error [`Tensor::neg`] (the `Result`-returning twin) would return.
    fn neg(self) -> Tensor {
        Tensor::neg(self).unwrap_or_else(|e| panic!("{e}"))
    }
}
impl Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        -&self
    }
}
