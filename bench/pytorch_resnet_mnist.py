"""PyTorch side of bench/resnet_mnist.sh: chapter 09's ResNet14 on MNIST.

The same network as `candle train mnist --model resnet14`: a 3x3 stem of 16
channels (conv, batch norm, ReLU), six torchvision-style basic blocks
(16,16,1) (16,16,1) (16,32,2) (32,32,1) (32,64,2) (64,64,1) given as
(in, out, stride), global average pooling and a linear layer to 10 classes
(175k parameters). Trained with AdamW at 3e-3 (weight decay 1e-4) under a
one-cycle schedule over all epochs, batch 128, each training image shifted at
random by up to 2 pixels each way (padding with black), on 2 threads.

It reads the same gzipped IDX files as `candle train mnist` (data/mnist),
scales pixels the same way ((p/255 - 0.1307) / 0.3081), and times the
training loop of each epoch only (evaluation apart), like the seconds
`candle train` records per epoch. It prints `parameters: N`, one line per
epoch, `epoch E: S s, test accuracy A%`, then `peak memory: M MB`.

    python bench/pytorch_resnet_mnist.py [--epochs 4] [--data data/mnist] [--limit N]
"""

import argparse
import gzip
import resource
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BLOCKS = [(16, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1)]
MEAN, STD = 0.1307, 0.3081


def idx(path):
    """An IDX file (images or labels) as a uint8 tensor of its shape."""
    data = gzip.open(path).read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class ResNet14(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()
        )
        self.blocks = nn.Sequential(*[BasicBlock(*b) for b in BLOCKS])
        self.fc = nn.Linear(64, 10)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(x.mean(dim=(2, 3)))


def random_shift(x, pad, black):
    """Each image of `x` [B, 1, H, W] moved by up to `pad` pixels each way."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), value=black)
    dy = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    dx = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    rows = (torch.arange(h).view(1, h, 1) + dy).expand(b, h, w)
    cols = (torch.arange(w).view(1, 1, w) + dx).expand(b, h, w)
    batch = torch.arange(b).view(b, 1, 1).expand(b, h, w)
    return padded[batch, 0, rows, cols].unsqueeze(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    def images(name):
        x = idx(f"{args.data}/{name}-images-idx3-ubyte.gz").reshape(-1, 1, 28, 28).float()
        return (x / 255.0 - MEAN) / STD

    xs, ys = images("train"), idx(f"{args.data}/train-labels-idx1-ubyte.gz").long()
    xt, yt = images("t10k"), idx(f"{args.data}/t10k-labels-idx1-ubyte.gz").long()
    if args.limit:
        xs, ys = xs[: args.limit], ys[: args.limit]
    model = ResNet14()
    print(f"parameters: {sum(p.numel() for p in model.parameters())}", flush=True)
    n, batch = xs.shape[0], 128
    steps = args.epochs * ((n + batch - 1) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    black = -MEAN / STD
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n)
        start = time.perf_counter()
        for i in range(0, n, batch):
            b = perm[i : i + batch]
            x = random_shift(xs[b], 2, black)
            loss = F.cross_entropy(model(x), ys[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            correct = sum(
                (model(xt[i : i + 1000]).argmax(1) == yt[i : i + 1000]).sum().item()
                for i in range(0, xt.shape[0], 1000)
            )
        accuracy = correct / xt.shape[0]
        print(f"epoch {epoch + 1}: {seconds:.3f} s, test accuracy {100 * accuracy:.2f}%", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MB")


if __name__ == "__main__":
    main()
