#!/usr/bin/env python3
"""The chapter-04 benchmark workloads in PyTorch, for comparison.

Runs the workloads of `chapters/04-operations/benches/operations.rs` and of
`chapters/05-layers/benches/norm.rs` (layer norm) on 2 CPU threads and prints
one plain line per result, in the same format:

    autograd overhead: 0.85 µs/op
    broadcast add [1024,1024]+[1024]: 12.34 GB/s
    ...

Usage: .venv/bin/python bench/pytorch_ops.py   (see bench/README.md)
"""

import time
import warnings

# torch warns when NumPy is absent; these workloads do not need it.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402

CHAIN_OPS = 1000
SIDE = 1024
BMM = (64, 128, 64, 128)  # batch, m, k, n
MLP = (128, 784, 256, 10)  # batch, in, hidden, classes


def measure(fn, min_time=2.0, samples=10, warmup=0.5):
    """Best seconds per call over `samples` batches, like the Rust bench: on a
    shared machine the minimum is the least disturbed estimate."""
    end = time.perf_counter() + warmup
    calls = 0
    while time.perf_counter() < end:
        fn()
        calls += 1
    per_call = warmup / max(calls, 1)
    iters = max(1, int(min_time / samples / per_call))
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - start) / iters)
    return min(times)


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    lines = []

    # (1) Autograd overhead: forward + backward of 1 000 tiny ops.
    x = torch.ones(4, requires_grad=True)
    c = torch.full((4,), 1.0001)
    d = torch.full((4,), 1e-4)

    def chain():
        y = x
        for _ in range(CHAIN_OPS // 2):
            y = (y * c) + d
        y.sum().backward()
        x.grad = None

    t = measure(chain)
    lines.append(f"autograd overhead: {t / CHAIN_OPS * 1e6:.2f} µs/op")

    # (2) Memory-bound kernels on 1M floats (bytes read + written).
    a = torch.randn(SIDE, SIDE)
    row = torch.randn(SIDE)
    nbytes = (2 * SIDE * SIDE + SIDE) * 4
    t = measure(lambda: a + row)
    lines.append(f"broadcast add [1024,1024]+[1024]: {nbytes / t / 1e9:.2f} GB/s")
    nbytes = 2 * SIDE * SIDE * 4
    t = measure(lambda: torch.softmax(a, dim=-1))
    lines.append(f"softmax [1024,1024] last dim: {nbytes / t / 1e9:.2f} GB/s")

    # (2b) Softmax on 1M floats in rows of 1000 and of 10, forward and
    # forward + backward (the loss Σ softmax(x) ⊙ w).
    for rows, n in ((1000, 1000), (100_000, 10)):
        xs = torch.randn(rows, n)
        xg = xs.clone().requires_grad_()
        ws = torch.randn(rows, n)
        t = measure(lambda: torch.softmax(xs, dim=-1))
        lines.append(f"softmax [{rows},{n}] forward: {t * 1e3:.3f} ms")

        def softmax_step():
            (torch.softmax(xg, dim=-1) * ws).sum().backward()
            xg.grad = None

        t = measure(softmax_step)
        lines.append(f"softmax [{rows},{n}] forward+backward: {t * 1e3:.3f} ms")

    # (2c) Layer norm over the last dim of [64·64, 128] with weight and bias
    # (the chapter-05 bench, `chapters/05-layers/benches/norm.rs`).
    xl = torch.randn(64 * 64, 128, requires_grad=True)
    wl = torch.randn(128, requires_grad=True)
    bl = torch.randn(128, requires_grad=True)
    vl = torch.randn(64 * 64, 128)

    def layer_norm_forward():
        with torch.no_grad():
            torch.nn.functional.layer_norm(xl, (128,), wl, bl, 1e-5)

    def layer_norm_step():
        (torch.nn.functional.layer_norm(xl, (128,), wl, bl, 1e-5) * vl).sum().backward()
        for p in (xl, wl, bl):
            p.grad = None

    t = measure(layer_norm_forward)
    lines.append(f"layer norm [4096,128] forward: {t * 1e3:.3f} ms")
    t = measure(layer_norm_step)
    lines.append(f"layer norm [4096,128] forward+backward: {t * 1e3:.3f} ms")

    # (3) Batched matmul.
    batch, m, k, n = BMM
    lhs = torch.randn(batch, m, k)
    rhs = torch.randn(batch, k, n)
    flops = 2 * batch * m * k * n
    t = measure(lambda: torch.bmm(lhs, rhs))
    lines.append(f"bmm 64x(128x64 @ 64x128): {flops / t / 1e9:.2f} GFLOP/s")

    # (4) MLP 784-256-10 training step (forward + backward), the same
    # decomposition as the Rust bench: cross-entropy = -mean(log_softmax[target]).
    batch, inp, hidden, classes = MLP
    w1 = (torch.randn(inp, hidden) * (1.0 / inp) ** 0.5).requires_grad_()
    b1 = torch.zeros(hidden, requires_grad=True)
    w2 = (torch.randn(hidden, classes) * (1.0 / hidden) ** 0.5).requires_grad_()
    b2 = torch.zeros(classes, requires_grad=True)
    xb = torch.randn(batch, inp)
    targets = torch.tensor([(i * 7) % classes for i in range(batch)]).reshape(batch, 1)

    def step():
        h = torch.relu(xb @ w1 + b1)
        logits = h @ w2 + b2
        loss = -torch.log_softmax(logits, dim=-1).gather(1, targets).mean()
        loss.backward()
        for p in (w1, b1, w2, b2):
            p.grad = None
        return loss.item()

    t = measure(step)
    lines.append(f"mlp 784-256-10 batch 128 fwd+bwd: {t * 1e3:.3f} ms/step")

    print(f"pytorch {torch.__version__} operations ({torch.get_num_threads()} threads, best of 10 samples):")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
