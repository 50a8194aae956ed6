"""PyTorch side of bench/resnet_step.sh: one ResNet14 training step, timed.

The same network as chapter 09's ResNet14 (from pytorch_resnet_mnist.py) and
the same workload as `cargo run --release -p chapter-09 --example
resnet_step`: a random MNIST-shaped batch (128 x 1 x 28 x 28, labels i % 10),
AdamW 3e-3, one step after another. The first step warms up; the median of
the forward pass, the backward pass and the update over STEPS more steps is
printed as

    batch 128, 12 steps, median ms: forward F, backward B, update U, total T

on the number of threads given (default 2).

    python bench/pytorch_resnet_step.py [STEPS] [BATCH] [THREADS]
"""

import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_resnet_mnist import ResNet14  # noqa: E402


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    if steps < 1 or batch < 1 or threads < 1:
        sys.exit("pytorch_resnet_step: STEPS, BATCH and THREADS must be positive")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ResNet14()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.arange(batch) % 10
    fwd, bwd, upd = [], [], []
    for step in range(steps + 1):
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        loss.item()
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if step > 0:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
            upd.append(t3 - t2)

    def median(v):
        return sorted(v)[len(v) // 2] * 1e3

    f, b, u = median(fwd), median(bwd), median(upd)
    print(
        f"batch {batch}, {steps} steps, median ms: forward {f:.1f}, "
        f"backward {b:.1f}, update {u:.1f}, total {f + b + u:.1f}"
    )


if __name__ == "__main__":
    main()
