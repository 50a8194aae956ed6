"""PyTorch's side of `bench/conv_layers.sh`: the forward pass, input gradient
and weight gradient of each distinct convolution of ResNet14 at batch 128,
timed alone, in the output format of chapter 09's `conv_layers` example.

    python bench/pytorch_conv_layers.py [REPS] [BATCH]

Each call is timed as the median of REPS calls after one warm-up call, on
two threads (as the rest of bench/ does).
"""
import sys
import time

import torch

# (in, out, kernel, stride, size, how many in ResNet14): the table of
# chapters/09-resnet/examples/conv_layers.rs.
LAYERS = [
    (1, 16, 3, 1, 28, 1),
    (16, 16, 3, 1, 28, 4),
    (16, 32, 3, 2, 28, 1),
    (16, 32, 1, 2, 28, 1),
    (32, 32, 3, 1, 14, 3),
    (32, 64, 3, 2, 14, 1),
    (32, 64, 1, 2, 14, 1),
    (64, 64, 3, 1, 7, 3),
]


def median_ms(reps, f):
    f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[reps // 2]


def main():
    args = sys.argv[1:]
    reps = int(args[0]) if args else 20
    batch = int(args[1]) if len(args) > 1 else 128
    if reps < 1 or batch < 1:
        sys.exit("REPS and BATCH must be at least 1")
    torch.set_num_threads(2)
    torch.manual_seed(0)
    total = 0.0
    print("layer (in,out,k,s,size) x count: forward / input grad / weight grad ms")
    for c, o, k, s, size, count in LAYERS:
        x = torch.randn(batch, c, size, size)
        w = torch.randn(o, c, k, k) * 0.1
        p = k // 2
        y = torch.nn.functional.conv2d(x, w, stride=s, padding=p)
        dy = torch.randn_like(y)
        # The call autograd makes for a convolution's backward pass, asking
        # for one gradient at a time.
        def backward(mask):
            return torch.ops.aten.convolution_backward(
                dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, mask
            )

        with torch.no_grad():
            fwd = median_ms(reps, lambda: torch.nn.functional.conv2d(x, w, stride=s, padding=p))
            if c == 1:
                dx = 0.0  # the stem's input needs no gradient
            else:
                dx = median_ms(reps, lambda: backward([True, False, False]))
            dw = median_ms(reps, lambda: backward([False, True, False]))
        total += (fwd + dx + dw) * count
        print(f"conv ({c},{o},{k},{s},{size}) x{count}: {fwd:.2f} / {dx:.2f} / {dw:.2f}")
    print(f"all convolutions of one step: {total:.1f} ms")


if __name__ == "__main__":
    main()
