//! The core differentiable operations: enough to build and train an MLP and
//! to write every backward formula. Chapter 04 adds the rest through the
//! same [`CustomOp`](crate::CustomOp) API.

mod elementwise;
mod matmul;
mod reduce;
mod shape;
