//! Prints, as Graphviz DOT, the graph autograd records for one layer
//! `tanh(x W + b)` and a mean-squared-error loss. This is the chapter's
//! figure; regenerate it with
//!
//! ```text
//! cargo run -p chapter-03 --example graph_dot > book/src/figures/03-graph.dot
//! dot -Tsvg book/src/figures/03-graph.dot -o book/src/figures/03-graph.svg
//! ```
//!
//! (`tests/dot.rs` checks that the committed `.dot` file is up to date.)

use chapter_03::{DType, Device, Result, Tensor};

// ANCHOR: figure_graph
/// The loss of one layer on a batch of 4 inputs with 3 features each.
pub fn figure_graph() -> Result<Tensor> {
    let cpu = Device::cpu();
    let x = Tensor::ones((4, 3), DType::F64, &cpu)?; // inputs: a constant
    let target = Tensor::zeros((4, 2), DType::F64, &cpu)?; // a constant
    let w = Tensor::full(0.1, (3, 2), DType::F64, &cpu)?.requires_grad_()?; // a parameter
    let b = Tensor::zeros(2, DType::F64, &cpu)?.requires_grad_()?; // a parameter
    let h = x.matmul(&w)?.add(&b)?.tanh()?;
    h.sub(&target)?.powf(2.0)?.mean_all()
}
// ANCHOR_END: figure_graph

fn main() -> Result<()> {
    print!("{}", figure_graph()?.to_dot());
    Ok(())
}
