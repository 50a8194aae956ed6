#!/usr/bin/env bash
# The matrix products of one training step of nanoGPT's Shakespeare recipe
# (bench/gpt_shakespeare.sh's workload), and nothing else: ours (chapter 08's
# `gpt_gemms` example) and PyTorch's (bench/pytorch_gpt_gemms.py), the same
# 75 products on the same shapes, alternating ROUNDS times (default 3) on 2
# threads. Prints each round, then the fastest of each side and their ratio.
# Their time is a floor under each side's step time: what is left above it is
# everything else (attention's softmax, layer norms, GELU, AdamW, ...).
#
#   bench/gpt_gemms.sh
#   ROUNDS=5 REPS=50 bench/gpt_gemms.sh
#   THREADS=1 TOKENS=384 bench/gpt_gemms.sh     # what one of two replicas runs
#   PYTHON=/path/to/python bench/gpt_gemms.sh   # a Python with torch
#
# THREADS (default 2) is the number of threads of each side; TOKENS (default
# 768, the batch's 12 windows of 64) the rows of the linear layers' products,
# a multiple of 64. With two replicas of the step (chapter 06's data
# parallelism, the default of `candle train shakespeare` on 2 cores) each core
# runs the products of half the batch alone: THREADS=1 TOKENS=384.
#
# Without PyTorch it times our side alone and says so.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${ROUNDS:-3}"
reps="${REPS:-20}"
threads="${THREADS:-2}"
tokens="${TOKENS:-768}"
python="${PYTHON:-$root/.venv/bin/python}"
for v in "$rounds" "$reps" "$threads" "$tokens"; do
  if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
    echo "gpt_gemms: ROUNDS, REPS, THREADS and TOKENS must be positive integers, got '$v'" >&2
    exit 2
  fi
done
if ((tokens % 64 != 0 || tokens > 65536)); then
  echo "gpt_gemms: TOKENS must be a multiple of the context, 64, up to 65536, got $tokens" >&2
  exit 2
fi
echo "==> cargo build --release -p chapter-08 --example gpt_gemms" >&2
cargo build --release -q -p chapter-08 --example gpt_gemms
ours="$root/target/release/examples/gpt_gemms"
have_torch=1
if ! "$python" -c "import torch" 2>/dev/null; then
  have_torch=0
  echo "gpt_gemms: no PyTorch at $python: timing our side only (see bench/README.md)" >&2
fi

ms() { sed -n 's/.*fastest of [0-9]*: \([0-9.]*\) ms.*/\1/p'; }
ours_ms=() torch_ms=()
for round in $(seq 1 "$rounds"); do
  out="$(RAYON_NUM_THREADS=$threads "$ours" "$reps" "$tokens")"
  echo "round $round: candle  $(echo "$out" | paste -sd ' ' | sed 's/ by layer/; by layer/')"
  ours_ms+=("$(echo "$out" | ms)")
  if ((have_torch)); then
    out="$(OMP_NUM_THREADS=$threads "$python" bench/pytorch_gpt_gemms.py "$reps" "$threads" "$tokens")"
    echo "round $round: pytorch $(echo "$out" | paste -sd ' ' | sed 's/ by layer/; by layer/')"
    torch_ms+=("$(echo "$out" | ms)")
  fi
done
o="$(printf '%s\n' "${ours_ms[@]}" | sort -g | head -1)"
echo
echo "fastest: candle $o ms"
if ((have_torch)); then
  t="$(printf '%s\n' "${torch_ms[@]}" | sort -g | head -1)"
  echo "fastest: pytorch $t ms"
  awk -v o="$o" -v t="$t" 'BEGIN { printf "ratio candle / pytorch: %.2f\n", o / t }'
fi
