//! Products of tensors: `einsum`, and `tensordot` and `bmm` on top of it
//! (or next to it). The general broadcasting `matmul` is chapter 03's.
//!
//! `einsum` names every axis with a letter and says which letters survive:
//! `"bij,bjk->bik"` is a batched matrix product, `"ij->ji"` a transpose,
//! `"ii->"` a trace. The rule is always the same: multiply the operands'
//! elements for every assignment of values to the letters, and sum over
//! the letters missing from the output:
//!
//! $$ Y[\text{out}] = \sum_{\text{letters} \notin \text{out}} \prod_k X_k[\text{sub}_k]. $$
//!
//! We compute it in two stages. First each operand is *prepared* with
//! ordinary differentiable ops: a letter repeated within one operand
//! (`"ii"`) becomes a diagonal (a strided view), and a letter that appears
//! in no other operand and not in the output is summed away at once. What
//! is left is a *clean* contraction, in which every letter of an operand
//! also appears in the output or in another operand. That one is a single
//! [`CustomOp`] whose forward contracts the operands pairwise with batched
//! matrix products, and whose backward is again a clean contraction (see
//! [`Contraction`]), so gradients of gradients work too.

use chapter_02::{Error, Layout, Result, Shape};
use chapter_03::{BackwardCtx, CustomOp, RawTensor, Tensor};
use std::collections::BTreeMap;

// ANCHOR: parse
/// An einsum equation after parsing: the subscripts of each operand and of
/// the output, one letter per dimension.
#[derive(Debug, Clone, PartialEq)]
struct Equation {
    inputs: Vec<Vec<char>>,
    output: Vec<char>,
}

fn parse(equation: &str, n_operands: usize) -> Result<Equation> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    if eq.contains("...") {
        return Err(Error::invalid(
            "einsum",
            "ellipsis (...) is not supported; name every dimension with a letter",
        ));
    }
    let (lhs, rhs) = match eq.split_once("->") {
        Some((_, r)) if r.contains("->") => {
            return Err(Error::invalid(
                "einsum",
                format!("more than one \"->\" in \"{equation}\""),
            ))
        }
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let letters = |term: &str| -> Result<Vec<char>> {
        term.chars()
            .map(|c| match c.is_ascii_alphabetic() {
                true => Ok(c),
                false => Err(Error::invalid(
                    "einsum",
                    format!("invalid subscript '{c}' in \"{equation}\" (use letters a-z and A-Z)"),
                )),
            })
            .collect()
    };
    let inputs = lhs.split(',').map(letters).collect::<Result<Vec<_>>>()?;
    if inputs.len() != n_operands {
        return Err(Error::invalid(
            "einsum",
            format!(
                "the equation \"{equation}\" has {} operands but {n_operands} tensors were given",
                inputs.len()
            ),
        ));
    }
    let output = match rhs {
        Some(r) => letters(r)?,
        // Implicit mode (NumPy's rule): the letters that appear exactly
        // once, in alphabetical order. `"ij,jk"` means `"ij,jk->ik"`.
        None => {
            let mut count: BTreeMap<char, usize> = BTreeMap::new();
            for &c in inputs.iter().flatten() {
                *count.entry(c).or_default() += 1;
            }
            count
                .into_iter()
                .filter(|&(_, n)| n == 1)
                .map(|(c, _)| c)
                .collect()
        }
    };
    for (i, &c) in output.iter().enumerate() {
        if output[..i].contains(&c) {
            return Err(Error::invalid(
                "einsum",
                format!("output subscript {c} appears more than once in \"{equation}\""),
            ));
        }
        if !inputs.iter().flatten().any(|&d| d == c) {
            return Err(Error::invalid(
                "einsum",
                format!("output subscript {c} does not appear in any operand of \"{equation}\""),
            ));
        }
    }
    Ok(Equation { inputs, output })
}
// ANCHOR_END: parse

/// The size of every letter, checked to agree across (and within) operands.
fn letter_sizes(eq: &Equation, operands: &[&Tensor]) -> Result<BTreeMap<char, usize>> {
    let mut sizes: BTreeMap<char, (usize, usize)> = BTreeMap::new(); // letter -> (size, operand)
    for (i, (subs, t)) in eq.inputs.iter().zip(operands).enumerate() {
        let dims = t.dims();
        if dims.len() != subs.len() {
            let s: String = subs.iter().collect();
            return Err(Error::invalid(
                "einsum",
                format!(
                    "operand {i} has {} dimensions but the equation gives it {} subscripts (\"{s}\")",
                    dims.len(),
                    subs.len()
                ),
            ));
        }
        for (&c, &n) in subs.iter().zip(&dims) {
            match sizes.get(&c) {
                Some(&(m, j)) if m != n && j == i => {
                    let s: String = subs.iter().collect();
                    return Err(Error::invalid(
                        "einsum",
                        format!("subscript {c} is repeated in operand {i} (\"{s}\") with sizes {m} and {n} (shape {})", t.shape()),
                    ));
                }
                Some(&(m, j)) if m != n => {
                    return Err(Error::invalid(
                        "einsum",
                        format!(
                            "subscript {c} has size {m} in operand {j} but size {n} in operand {i} (shapes {} and {})",
                            operands[j].shape(),
                            t.shape()
                        ),
                    ))
                }
                Some(_) => {}
                None => {
                    sizes.insert(c, (n, i));
                }
            }
        }
    }
    Ok(sizes.into_iter().map(|(c, (n, _))| (c, n)).collect())
}

// ANCHOR: einsum
/// Einstein summation: `einsum("ij,jk->ik", &[&a, &b])` is `a.matmul(&b)`.
///
/// - one letter per dimension of each operand (`a-z`, `A-Z`); sizes of a
///   letter must agree exactly (no broadcasting of size-1 dimensions);
/// - explicit output after `->`, or implicit: the letters that appear
///   exactly once, sorted (`"ij,jk"` is `"ij,jk->ik"`, `"ii"` is a trace);
/// - a letter repeated within one operand takes its diagonal (`"ii->i"`);
/// - letters missing from the output are summed over;
/// - any number of operands (contracted left to right).
///
/// Differentiable in every operand.
pub fn einsum(equation: &str, operands: &[&Tensor]) -> Result<Tensor> {
    if operands.is_empty() {
        return Err(Error::invalid("einsum", "needs at least one operand"));
    }
    let eq = parse(equation, operands.len())?;
    letter_sizes(&eq, operands)?;
    let dtype = operands[0].dtype();
    if let Some(other) = operands.iter().find(|t| t.dtype() != dtype) {
        return Err(Error::DTypeMismatch {
            op: "einsum",
            lhs: dtype,
            rhs: other.dtype(),
        });
    }
    let mut prepared = Vec::with_capacity(operands.len());
    let mut subscripts = Vec::with_capacity(operands.len());
    for (i, (&t, subs)) in operands.iter().zip(&eq.inputs).enumerate() {
        // "ii" -> "i": the diagonal, a strided view of the operand.
        let (t, subs) = take_diagonal(t, subs)?;
        // A letter only this operand has, and the output lacks, can be
        // summed right away: Σ_j a_ij b_i = (Σ_j a_ij) b_i.
        let needed = |c: &char| {
            eq.output.contains(c)
                || eq
                    .inputs
                    .iter()
                    .enumerate()
                    .any(|(k, s)| k != i && s.contains(c))
        };
        let private: Vec<usize> = (0..subs.len()).filter(|&d| !needed(&subs[d])).collect();
        let t = if private.is_empty() {
            t
        } else {
            t.sum(private, false)?
        };
        let subs: Vec<char> = subs.into_iter().filter(|c| needed(c)).collect();
        prepared.push(t);
        subscripts.push(subs);
    }
    let refs: Vec<&Tensor> = prepared.iter().collect();
    Tensor::apply(
        Contraction {
            inputs: subscripts,
            output: eq.output,
        },
        &refs,
    )
}
// ANCHOR_END: einsum

// ANCHOR: contraction
/// A clean einsum: every letter of an operand appears in the output or in
/// another operand, no letter repeats within an operand.
///
/// Forward: `Y[out] = Σ Π_k X_k[sub_k]`. Backward: `Y` is linear in each
/// `X_i`, and the coefficient of `X_i[sub_i]` in `Y[out]` is the product of
/// the other operands, summed over the letters in neither `out` nor `sub_i`.
/// So for the loss `L`,
///
/// `∂L/∂X_i[sub_i] = Σ_{letters ∉ sub_i} ∂L/∂Y[out] · Π_{k≠i} X_k[sub_k]`,
///
/// which is the einsum with the output gradient in place of `X_i` and
/// `sub_i` as the output: `"out,sub_0,..(without i)..->sub_i"`.
/// Every letter of `sub_i` is in `out` or in another operand (cleanness),
/// so its size is known, and the new contraction is clean again.
struct Contraction {
    inputs: Vec<Vec<char>>,
    output: Vec<char>,
}
impl CustomOp for Contraction {
    fn name(&self) -> &'static str {
        "einsum"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        contract(x, &self.inputs, &self.output)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut grads = Vec::with_capacity(self.inputs.len());
        for i in 0..self.inputs.len() {
            if !ctx.needs_grad(i) {
                grads.push(None);
                continue;
            }
            // Swap the roles of the output and operand i.
            let mut subs = vec![self.output.clone()];
            let mut operands = vec![g];
            for (k, x) in ctx.inputs.iter().enumerate().filter(|&(k, _)| k != i) {
                subs.push(self.inputs[k].clone());
                operands.push(x);
            }
            let op = Contraction {
                inputs: subs,
                output: self.inputs[i].clone(),
            };
            grads.push(Some(Tensor::apply(op, &operands)?));
        }
        Ok(grads)
    }
}
// ANCHOR_END: contraction

// ANCHOR: contract
/// Contracts the operands left to right, two at a time, then puts the
/// output letters in order.
fn contract(xs: &[&RawTensor], subs: &[Vec<char>], output: &[char]) -> Result<RawTensor> {
    let mut acc = xs[0].clone();
    let mut letters = subs[0].clone();
    for k in 1..xs.len() {
        // Letters still needed after this step: the output's and those of
        // the operands not yet multiplied in.
        let keep: Vec<char> = output
            .iter()
            .chain(subs[k + 1..].iter().flatten())
            .copied()
            .collect();
        (acc, letters) = contract_pair(&acc, &letters, xs[k], &subs[k], &keep)?;
    }
    let (acc, letters) = sum_letters(&acc, &letters, |c| output.contains(c))?;
    let perm: Vec<usize> = output
        .iter()
        .map(|c| position(&letters, *c))
        .collect::<Result<_>>()?;
    acc.permute(&perm)
}
// ANCHOR_END: contract

// ANCHOR: contract_pair
/// One pairwise step as a batched matrix product. The letters fall into
/// four groups:
///
/// | group      | in `a` | in `b` | kept | becomes            |
/// |------------|--------|--------|------|--------------------|
/// | batch      | yes    | yes    | yes  | the batch dim `B`  |
/// | contracted | yes    | yes    | no   | the inner dim `C`  |
/// | left       | yes    | no     | yes  | the rows `L`       |
/// | right      | no     | yes    | yes  | the columns `R`    |
///
/// `a` is permuted and reshaped to `[B, L, C]`, `b` to `[B, C, R]`, one
/// `matmul` gives `[B, L, R]`, and a reshape splits the groups back into
/// letters. (Letters of one side that are not kept are summed first.)
fn contract_pair(
    a: &RawTensor,
    la: &[char],
    b: &RawTensor,
    lb: &[char],
    keep: &[char],
) -> Result<(RawTensor, Vec<char>)> {
    let (a, la) = sum_letters(a, la, |c| lb.contains(c) || keep.contains(c))?;
    let (b, lb) = sum_letters(b, lb, |c| la.contains(c) || keep.contains(c))?;
    let batch: Vec<char> = la
        .iter()
        .filter(|c| lb.contains(c) && keep.contains(c))
        .copied()
        .collect();
    let contracted: Vec<char> = la
        .iter()
        .filter(|c| lb.contains(c) && !keep.contains(c))
        .copied()
        .collect();
    let left: Vec<char> = la.iter().filter(|c| !lb.contains(c)).copied().collect();
    let right: Vec<char> = lb.iter().filter(|c| !la.contains(c)).copied().collect();
    let size = |t: &RawTensor, l: &[char], group: &[char]| -> Result<Vec<usize>> {
        group
            .iter()
            .map(|&c| Ok(t.dims()[position(l, c)?]))
            .collect()
    };
    let (bs, ls) = (size(&a, &la, &batch)?, size(&a, &la, &left)?);
    let (cs, rs) = (size(&a, &la, &contracted)?, size(&b, &lb, &right)?);
    let prod = |v: &[usize]| v.iter().product::<usize>();
    let a = a.permute(&order(&la, &[&batch, &left, &contracted])?)?;
    let b = b.permute(&order(&lb, &[&batch, &contracted, &right])?)?;
    let y = if contracted.is_empty() {
        // Nothing to sum: an elementwise product with broadcasting,
        // [batch, left, 1..] * [batch, 1.., right].
        let a = a.reshape([bs.clone(), ls.clone(), vec![1; rs.len()]].concat())?;
        let b = b.reshape([bs.clone(), vec![1; ls.len()], rs.clone()].concat())?;
        a.mul(&b)?
    } else {
        let a = a.reshape((prod(&bs), prod(&ls), prod(&cs)))?;
        let b = b.reshape((prod(&bs), prod(&cs), prod(&rs)))?;
        a.matmul(&b)?.reshape([bs, ls, rs].concat())?
    };
    Ok((y, [batch, left, right].concat()))
}
// ANCHOR_END: contract_pair

/// The position of letter `c` in `letters` (every caller looks up letters
/// taken from the same subscripts; a miss would be a bug here, reported as
/// an error rather than a panic).
fn position(letters: &[char], c: char) -> Result<usize> {
    letters.iter().position(|&d| d == c).ok_or_else(|| {
        Error::invalid(
            "einsum",
            format!("internal: letter {c} is not among {letters:?}"),
        )
    })
}

/// The permutation that lists the dimensions of `groups`, in that order.
fn order(letters: &[char], groups: &[&Vec<char>]) -> Result<Vec<usize>> {
    groups
        .iter()
        .flat_map(|g| g.iter())
        .map(|&c| position(letters, c))
        .collect()
}

/// Sums away the dimensions whose letter is not `wanted`.
fn sum_letters(
    t: &RawTensor,
    letters: &[char],
    wanted: impl Fn(&char) -> bool,
) -> Result<(RawTensor, Vec<char>)> {
    let axes: Vec<usize> = (0..letters.len())
        .filter(|&d| !wanted(&letters[d]))
        .collect();
    if axes.is_empty() {
        return Ok((t.clone(), letters.to_vec()));
    }
    let kept = letters.iter().filter(|c| wanted(c)).copied().collect();
    Ok((t.sum(axes, false)?, kept))
}

// ANCHOR: diagonal
/// `"iji" -> "ij"`: the elements whose repeated indices are equal. In a
/// contiguous `[n, m, n]` tensor with strides `[s0, s1, s2]`, element
/// `[i, j, i]` sits at `i·(s0 + s2) + j·s1`: the diagonal is a strided view
/// whose stride for each letter is the sum of the strides it occupies.
struct Diagonal {
    /// The strided layout of the diagonal inside a contiguous input.
    diagonal: Layout,
    input_dims: Vec<usize>,
}
impl CustomOp for Diagonal {
    fn name(&self) -> &'static str {
        "diagonal"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let x = x[0].contiguous()?;
        let offset = x.layout().offset();
        x.as_strided(self.diagonal.shape(), self.diagonal.strides(), offset)
    }
    /// The adjoint writes the gradient back onto the diagonal of zeros.
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let op = DiagonalEmbed {
            diagonal: self.diagonal.clone(),
            input_dims: self.input_dims.clone(),
        };
        Ok(vec![Some(Tensor::apply(op, &[g])?)])
    }
}

/// The adjoint of [`Diagonal`]: zeros everywhere except the diagonal,
/// which holds the input. Its own adjoint is [`Diagonal`] again.
struct DiagonalEmbed {
    diagonal: Layout,
    input_dims: Vec<usize>,
}
impl CustomOp for DiagonalEmbed {
    fn name(&self) -> &'static str {
        "diagonal_embed"
    }
    /// A buffer of zeros whose diagonal (the same strided view `Diagonal`
    /// reads) is overwritten with `x`: one in-place write through the
    /// diagonal's layout, on the device.
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let x = x[0];
        let mut out = RawTensor::zeros(self.input_dims.clone(), x.dtype(), x.device())?;
        out.write_view_(&self.diagonal, x)?;
        Ok(out)
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let op = Diagonal {
            diagonal: self.diagonal.clone(),
            input_dims: self.input_dims.clone(),
        };
        Ok(vec![Some(Tensor::apply(op, &[g])?)])
    }
}

/// Takes the diagonal of every repeated letter of `subs`, keeping the first
/// occurrence's position: `"iji"` becomes `"ij"`.
fn take_diagonal(t: &Tensor, subs: &[char]) -> Result<(Tensor, Vec<char>)> {
    let mut letters: Vec<char> = Vec::new();
    for &c in subs {
        if !letters.contains(&c) {
            letters.push(c);
        }
    }
    if letters.len() == subs.len() {
        return Ok((t.clone(), letters));
    }
    let dims = t.dims();
    let strides = Shape::from(&dims).contiguous_strides();
    let mut out_dims = vec![0; letters.len()];
    let mut out_strides = vec![0; letters.len()];
    for (d, &c) in subs.iter().enumerate() {
        // (`letter_sizes` has checked that repeated letters agree in size.)
        let k = position(&letters, c)?;
        out_dims[k] = dims[d];
        out_strides[k] += strides[d];
    }
    let diagonal = Layout::new(out_dims.into(), out_strides, 0);
    Ok((
        Tensor::apply(
            Diagonal {
                diagonal,
                input_dims: dims,
            },
            &[t],
        )?,
        letters,
    ))
}
// ANCHOR_END: diagonal

// ANCHOR: tensordot
/// Contracts `a_axes` of `a` with `b_axes` of `b` (`np.tensordot`). The
/// result has the remaining axes of `a`, then those of `b`:
/// `[2, 3, 4]` and `[4, 3, 5]` over `a_axes = [1, 2]`, `b_axes = [1, 0]`
/// give `[2, 5]`. Written as an einsum with generated letters.
pub fn tensordot(a: &Tensor, b: &Tensor, a_axes: &[usize], b_axes: &[usize]) -> Result<Tensor> {
    let (da, db) = (a.dims(), b.dims());
    let err = |msg: String| Error::invalid("tensordot", msg);
    if a_axes.len() != b_axes.len() {
        return Err(err(format!(
            "{} axes of a but {} axes of b",
            a_axes.len(),
            b_axes.len()
        )));
    }
    if da.len() + db.len() > 52 {
        return Err(err(format!(
            "at most 52 dimensions in all, got {} and {}",
            a.shape(),
            b.shape()
        )));
    }
    let letter = |i: usize| {
        (if i < 26 {
            b'a' + i as u8
        } else {
            b'A' + (i - 26) as u8
        }) as char
    };
    let sa: Vec<char> = (0..da.len()).map(letter).collect();
    let mut sb: Vec<char> = (0..db.len()).map(|i| letter(da.len() + i)).collect();
    for (k, (&i, &j)) in a_axes.iter().zip(b_axes).enumerate() {
        if i >= da.len() || j >= db.len() || a_axes[..k].contains(&i) || b_axes[..k].contains(&j) {
            return Err(err(format!(
                "axes {a_axes:?} and {b_axes:?} must be distinct and in range for shapes {} and {}",
                a.shape(),
                b.shape()
            )));
        }
        if da[i] != db[j] {
            return Err(Error::ShapeMismatch {
                op: "tensordot",
                lhs: a.shape(),
                rhs: b.shape(),
                detail: format!(
                    " (axis {i} of size {} vs axis {j} of size {})",
                    da[i], db[j]
                ),
            });
        }
        sb[j] = sa[i];
    }
    let free_a = (0..da.len()).filter(|i| !a_axes.contains(i)).map(|i| sa[i]);
    let free_b = (0..db.len()).filter(|j| !b_axes.contains(j)).map(|j| sb[j]);
    let out: String = free_a.chain(free_b).collect();
    let eq = format!(
        "{},{}->{out}",
        String::from_iter(&sa),
        String::from_iter(&sb)
    );
    einsum(&eq, &[a, b])
}
// ANCHOR_END: tensordot

// ANCHOR: bmm
/// Strict batched matrix product: `[B, m, k] @ [B, k, n] -> [B, m, n]`, with
/// no broadcasting (`torch.bmm`). Use `matmul` for the general case.
pub fn bmm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (da, db) = (a.dims(), b.dims());
    if da.len() != 3 || db.len() != 3 {
        return Err(Error::invalid(
            "bmm",
            format!(
                "expected two 3-D tensors [batch, m, k] and [batch, k, n], got {} and {}",
                a.shape(),
                b.shape()
            ),
        ));
    }
    let detail = if da[0] != db[0] {
        format!(" (batch sizes {} and {} differ)", da[0], db[0])
    } else if da[2] != db[1] {
        format!(" (inner dimensions {} and {} differ)", da[2], db[1])
    } else {
        return a.matmul(b);
    };
    Err(Error::ShapeMismatch {
        op: "bmm",
        lhs: a.shape(),
        rhs: b.shape(),
        detail,
    })
}
// ANCHOR_END: bmm
