"""PyTorch side of bench/gpt_gemms.sh: the matrix products of one training
step of nanoGPT's Shakespeare recipe, and nothing else.

The same list as `cargo run --release -p chapter-08 --example gpt_gemms`
(see that file for where each product comes from): for each of the 4
blocks, the three products of each linear layer (forward, input gradient,
weight gradient) and the six of attention over 48 heads, then the tied
output layer's three; operands laid out as in the step (a weight read
transposed is a transposed view). Prints the fastest of REPS runs of the
whole list as

    N products, G GFLOP per step: fastest of R: T ms (X GFLOP/s)
    by layer, ms: qkv ..., attention ..., proj ..., fc ..., fc2 ..., lm_head ...

    python bench/pytorch_gpt_gemms.py [REPS] [THREADS] [TOKENS]

TOKENS (default 768, the batch of 12 windows of 64) is the number of token
rows of the linear layers, a multiple of 64.
"""

import sys
import time

import torch


def products(tokens):
    width, heads, context, vocab, layers = 128, 4, 64, 65, 4
    head = width // heads
    batch_heads = tokens // context * heads
    out = []

    def linear(what, fan_in, fan_out):
        out.append((what, 1, tokens, fan_in, fan_out, False, True))
        out.append((what, 1, tokens, fan_out, fan_in, False, False))
        out.append((what, 1, fan_out, tokens, fan_in, True, False))

    for _ in range(layers):
        linear("qkv", width, 3 * width)
        out.append(("attention", batch_heads, context, head, context, False, True))
        out.append(("attention", batch_heads, context, context, head, False, False))
        out.append(("attention", batch_heads, context, head, context, False, True))
        out.append(("attention", batch_heads, context, context, head, True, False))
        out.append(("attention", batch_heads, context, context, head, False, False))
        out.append(("attention", batch_heads, context, context, head, True, False))
        linear("proj", width, width)
        linear("fc", width, 4 * width)
        linear("fc2", 4 * width, width)
    linear("lm_head", width, vocab)
    return out


def operand(batch, rows, cols, transposed):
    if transposed:
        t = torch.randn(batch, cols, rows).transpose(-2, -1)
    else:
        t = torch.randn(batch, rows, cols)
    return t[0] if batch == 1 else t


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 768
    if reps < 1 or threads < 1:
        sys.exit("pytorch_gpt_gemms: REPS and THREADS must be positive")
    if tokens < 64 or tokens % 64 or tokens > 65536:
        sys.exit("pytorch_gpt_gemms: TOKENS must be a multiple of the context, 64, up to 65536")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    plist = products(tokens)
    ops = [(operand(b, m, k, at), operand(b, k, n, bt)) for (_, b, m, k, n, at, bt) in plist]
    flops = sum(2.0 * b * m * k * n for (_, b, m, k, n, _, _) in plist)
    best, by_what = float("inf"), {}
    with torch.no_grad():
        for rep in range(reps + 1):
            times = []
            started = time.perf_counter()
            for a, b in ops:
                t = time.perf_counter()
                c = torch.matmul(a, b)
                del c
                times.append(time.perf_counter() - t)
            total = time.perf_counter() - started
            if rep > 0 and total < best:
                best, by_what = total, {}
                for p, t in zip(plist, times):
                    by_what[p[0]] = by_what.get(p[0], 0.0) + t
    print(
        f"{len(plist)} products, {flops / 1e9:.3f} GFLOP per step: "
        f"fastest of {reps}: {best * 1e3:.2f} ms ({flops / best / 1e9:.1f} GFLOP/s)"
    )
    print("by layer, ms: " + ", ".join(f"{w} {t * 1e3:.2f}" for w, t in by_what.items()))


if __name__ == "__main__":
    main()
