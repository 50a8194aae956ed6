#!/usr/bin/env bash
# nanoGPT's CPU recipe for Shakespeare characters, ours and PyTorch's, side
# by side in one run: both losses, both median step times and their ratio.
#
# The recipe (4 layers, 4 heads, width 128, context 64, batch 12, AdamW 1e-3
# with 100 warm-up steps and a cosine to 1e-4, weight decay 0.1 on matrices,
# clipping at 1.0, tied embeddings, no biases, dropout 0) trains ITERS steps
# (default 2000) on data/shakespeare/shakespeare_small.txt (90% train, 10%
# validation); losses are estimated on EVAL_ITERS batches (default 200) of
# each part. The two programs alternate ROUNDS times (default 1), on 2 threads.
#
#   bench/gpt_shakespeare.sh                           # ours and PyTorch
#   ITERS=300 EVAL_ITERS=20 ROUNDS=2 bench/gpt_shakespeare.sh   # a quick look
#   PYTHON=/path/to/python bench/gpt_shakespeare.sh    # a Python with torch
#   CANDLE=target/release/candle bench/gpt_shakespeare.sh
#   CANDLE_ARGS="--replicas 1" bench/gpt_shakespeare.sh   # more options for ours
#
# Ours runs with its defaults on 2 threads: two replicas of the step, each on
# one core with half of the batch (chapter 06's data parallelism);
# CANDLE_ARGS="--replicas 1" times the step with its threads inside each
# operation instead.
#
# Without PyTorch it runs our side alone and says so.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${ROUNDS:-1}"
iters="${ITERS:-2000}"
eval_iters="${EVAL_ITERS:-200}"
seed="${SEED:-1337}"
python="${PYTHON:-$root/.venv/bin/python}"
candle="${CANDLE:-}"
read -r -a candle_args <<<"${CANDLE_ARGS:-}"
if [[ -z "$candle" ]]; then
  echo "==> cargo build --release -p candle-lib" >&2
  cargo build --release -q -p candle-lib
  candle="$root/target/release/candle"
fi
have_torch=1
if ! "$python" -c "import torch" 2>/dev/null; then
  have_torch=0
  echo "gpt_shakespeare: no PyTorch at $python: timing our side only (see bench/README.md)" >&2
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for round in $(seq 1 "$rounds"); do
  echo "==> round $round/$rounds: candle" >&2
  RAYON_NUM_THREADS=2 "$candle" train shakespeare --iters "$iters" --eval-iters "$eval_iters" \
    --seed "$seed" --samples 0 --out "$out/run-$round" "${candle_args[@]}" >"$out/ours-$round.txt" 2>&1 || {
    cat "$out/ours-$round.txt" >&2
    exit 1
  }
  if ((have_torch)); then
    echo "==> round $round/$rounds: pytorch" >&2
    OMP_NUM_THREADS=2 "$python" bench/pytorch_gpt_shakespeare.py --iters "$iters" \
      --eval-iters "$eval_iters" --seed "$seed" >"$out/torch-$round.txt" 2>&1 || {
      cat "$out/torch-$round.txt" >&2
      exit 1
    }
  fi
done

python3 - "$out" "$rounds" "$have_torch" <<'PY'
import re
import statistics
import sys

out, rounds, have_torch = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"


def read(path):
    text = open(path, encoding="utf-8").read()
    ms = float(re.search(r"step time: ([0-9.]+) ms", text).group(1))
    train, val = map(float, re.search(r"final: train ([0-9.]+), val ([0-9.]+)", text).groups())
    return ms, train, val


ours, torch = [], []
for r in range(1, rounds + 1):
    o = read(f"{out}/ours-{r}.txt")
    ours.append(o)
    line = f"round {r}: candle {o[0]:.1f} ms/step, train {o[1]:.4f}, val {o[2]:.4f}"
    if have_torch:
        t = read(f"{out}/torch-{r}.txt")
        torch.append(t)
        line += f"   pytorch {t[0]:.1f} ms/step, train {t[1]:.4f}, val {t[2]:.4f}"
    print(line)
mo = statistics.median(o[0] for o in ours)
print(f"\nstep time (median of rounds): candle {mo:.1f} ms", end="")
if have_torch:
    mt = statistics.median(t[0] for t in torch)
    print(f", pytorch {mt:.1f} ms, ratio candle / pytorch {mo / mt:.2f}")
    dv = statistics.median(o[2] for o in ours) - statistics.median(t[2] for t in torch)
    print(f"validation loss difference (candle - pytorch): {dv:+.4f}")
else:
    print()
PY
