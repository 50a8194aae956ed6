"""PyTorch side of bench/mnist_mlp.sh: the MLP 784-256-10 on MNIST, Adam at a
constant 1e-3, batch 128, on 2 threads, timed per epoch.

It reads the same gzipped IDX files as `candle train mnist` (data/mnist),
scales pixels the same way ((p/255 - 0.1307) / 0.3081), shuffles every epoch,
and times the training loop only (evaluation is timed apart), like the
`(N s)` that `candle train` prints per epoch. It prints one line per epoch,
`epoch E: S s, test accuracy A%`, then `peak memory: M MB`.

    python bench/pytorch_mnist_mlp.py [--epochs 3] [--data data/mnist]
"""

import argparse
import gzip
import resource
import struct
import time

import torch
import torch.nn.functional as F


def idx(path):
    """An IDX file (images or labels) as a uint8 tensor of its shape."""
    data = gzip.open(path).read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    def images(name):
        x = idx(f"{args.data}/{name}-images-idx3-ubyte.gz").reshape(-1, 784).float()
        return (x / 255.0 - 0.1307) / 0.3081

    xs, ys = images("train"), idx(f"{args.data}/train-labels-idx1-ubyte.gz").long()
    xt, yt = images("t10k"), idx(f"{args.data}/t10k-labels-idx1-ubyte.gz").long()
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n, batch = xs.shape[0], 128
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n)
        start = time.perf_counter()
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            loss = F.cross_entropy(model(xs[b]), ys[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            accuracy = (model(xt).argmax(1) == yt).float().mean().item()
        print(f"epoch {epoch + 1}: {seconds:.3f} s, test accuracy {100 * accuracy:.2f}%", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MB")


if __name__ == "__main__":
    main()
