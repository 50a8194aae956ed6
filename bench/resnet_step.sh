#!/usr/bin/env bash
# One ResNet14 training step (batch 128, MNIST-shaped random input, AdamW),
# ours and PyTorch's, alternating ROUNDS times (default 3) on 2 threads: the
# median forward, backward and update times of each round, then the fastest
# total of each side and their ratio. Quicker and steadier than a whole epoch
# (bench/resnet_mnist.sh) for seeing what a change to the kernels is worth.
#
#   bench/resnet_step.sh                          # ours and PyTorch
#   ROUNDS=5 STEPS=20 bench/resnet_step.sh
#   PYTHON=/path/to/python bench/resnet_step.sh   # a Python with torch
#
# Without PyTorch it times our side alone and says so.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${ROUNDS:-3}"
steps="${STEPS:-12}"
python="${PYTHON:-$root/.venv/bin/python}"
for v in "$rounds" "$steps"; do
  if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
    echo "resnet_step: ROUNDS and STEPS must be positive integers, got '$v'" >&2
    exit 2
  fi
done
echo "==> cargo build --release -p chapter-09 --example resnet_step" >&2
cargo build --release -q -p chapter-09 --example resnet_step
ours="$root/target/release/examples/resnet_step"
have_torch=1
if ! "$python" -c "import torch" 2>/dev/null; then
  have_torch=0
  echo "resnet_step: no PyTorch at $python: timing our side only (see bench/README.md)" >&2
fi

best() { awk '{ for (i = 1; i <= NF; i++) if ($i == "total") print $(i + 1) }' | sort -g | head -1; }
ours_totals=() torch_totals=()
for round in $(seq 1 "$rounds"); do
  line="$(RAYON_NUM_THREADS=2 "$ours" "$steps" 128 2>/dev/null | head -1)"
  echo "round $round: candle  $line"
  ours_totals+=("$(echo "$line" | best)")
  if ((have_torch)); then
    line="$(OMP_NUM_THREADS=2 "$python" bench/pytorch_resnet_step.py "$steps" 128 2 2>/dev/null)"
    echo "round $round: pytorch $line"
    torch_totals+=("$(echo "$line" | best)")
  fi
done
o="$(printf '%s\n' "${ours_totals[@]}" | sort -g | head -1)"
echo
echo "fastest step: candle $o ms"
if ((have_torch)); then
  t="$(printf '%s\n' "${torch_totals[@]}" | sort -g | head -1)"
  echo "fastest step: pytorch $t ms"
  awk -v o="$o" -v t="$t" 'BEGIN { printf "ratio candle / pytorch: %.2f\n", o / t }'
fi
