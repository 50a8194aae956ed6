#!/usr/bin/env bash
# Each distinct convolution of ResNet14 (batch 128, MNIST-shaped), timed
# alone, ours and PyTorch's, alternating ROUNDS times (default 3) on 2
# threads: the forward pass, the input gradient and the weight gradient of
# each layer, the fastest of the rounds on each side, and their ratio.
#
#   bench/conv_layers.sh                          # ours and PyTorch
#   ROUNDS=5 REPS=9 bench/conv_layers.sh
#   PYTHON=/path/to/python bench/conv_layers.sh   # a Python with torch
#
# Ours is chapter 09's `conv_layers` example, PyTorch's
# bench/pytorch_conv_layers.py, which makes the call autograd makes for a
# convolution's backward pass (aten::convolution_backward) one gradient at a
# time. Each layer alone is not the network: PyTorch's oneDNN keeps blocked
# layouts between layers, so the step (bench/resnet_step.sh) and the epoch
# (bench/resnet_mnist.sh) are the comparisons that count; this one shows
# which layers to look at. Without PyTorch it times our side alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${ROUNDS:-3}"
reps="${REPS:-7}"
python="${PYTHON:-$root/.venv/bin/python}"
for v in "$rounds" "$reps"; do
  if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
    echo "conv_layers: ROUNDS and REPS must be positive integers, got '$v'" >&2
    exit 2
  fi
done
echo "==> cargo build --release -p chapter-09 --example conv_layers" >&2
cargo build --release -q -p chapter-09 --example conv_layers
ours="$root/target/release/examples/conv_layers"
have_torch=1
if ! "$python" -c "import torch" 2>/dev/null; then
  have_torch=0
  echo "conv_layers: no PyTorch at $python: timing our side only (see bench/README.md)" >&2
fi

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for round in $(seq 1 "$rounds"); do
  echo "round $round of $rounds" >&2
  RAYON_NUM_THREADS=2 "$ours" "$reps" 128 | sed 's/^/candle /' >>"$out"
  if ((have_torch)); then
    OMP_NUM_THREADS=2 "$python" bench/pytorch_conv_layers.py "$reps" 128 2>/dev/null \
      | sed 's/^/pytorch /' >>"$out"
  fi
done

# The fastest of the rounds for each side, layer and call, then the table.
awk '
  $2 == "conv" {
    side = $1; layer = $3 " " $4
    split($0, parts, ": "); split(parts[2], t, " / ")
    for (i = 1; i <= 3; i++) {
      key = side SUBSEP layer SUBSEP i
      if (!(key in best) || t[i] + 0 < best[key]) best[key] = t[i] + 0
    }
    if (!(layer in seen)) { seen[layer] = 1; order[++n] = layer }
    sides[side] = 1
  }
  END {
    torch = ("pytorch" in sides)
    printf "%-22s %-26s %s\n", "layer (in,out,k,s,size)", "candle ms (fwd / dx / dw)", (torch ? "pytorch ms (fwd / dx / dw)   ratio" : "")
    for (j = 1; j <= n; j++) {
      l = order[j]; ours = 0; theirs = 0; line = ""
      count = l; sub(/.*x/, "", count); sub(/:/, "", count)
      for (i = 1; i <= 3; i++) {
        ours += best["candle", l, i]
        line = line sprintf("%6.2f", best["candle", l, i])
      }
      if (torch) {
        tl = ""
        for (i = 1; i <= 3; i++) { theirs += best["pytorch", l, i]; tl = tl sprintf("%6.2f", best["pytorch", l, i]) }
        printf "%-22s %-26s %-28s %.2f\n", l, line, tl, ours / theirs
      } else {
        printf "%-22s %s\n", l, line
      }
      step_ours += count * ours; step_theirs += count * theirs
    }
    printf "all convolutions of one step: candle %.1f ms", step_ours
    if (torch) printf ", pytorch %.1f ms, ratio %.2f", step_theirs, step_ours / step_theirs
    printf "\n"
  }
' "$out"
