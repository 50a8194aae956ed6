#!/usr/bin/env bash
# The MNIST MLP's epoch time, ours and PyTorch's, side by side in one run.
#
# Both train the MLP 784-256-10 with Adam at a constant 1e-3, batch 128, for
# EPOCHS epochs (default 3) on 2 threads, timing the training loop of each
# epoch (evaluation excluded). The two programs alternate ROUNDS times
# (default 3), so a busy moment of a shared machine hits both; the table gives
# every epoch time (ours read from the run's metrics at full precision), the
# median of each side, the ratio ours / PyTorch, the fastest epoch of each side
# and their ratio, and each program's peak resident memory.
#
#   bench/mnist_mlp.sh                          # ours and PyTorch
#   ROUNDS=5 EPOCHS=2 bench/mnist_mlp.sh
#   PYTHON=/path/to/python bench/mnist_mlp.sh   # a Python with torch
#   CANDLE=target/release/candle bench/mnist_mlp.sh   # a given binary
#
# Without PyTorch it runs our side alone and says so. PyTorch installs with
# `python3 -m venv .venv && .venv/bin/pip install torch` (see bench/README.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${ROUNDS:-3}"
epochs="${EPOCHS:-3}"
python="${PYTHON:-$root/.venv/bin/python}"
candle="${CANDLE:-}"
if [[ -z "$candle" ]]; then
  echo "==> cargo build --release -p candle-lib" >&2
  cargo build --release -q -p candle-lib
  candle="$root/target/release/candle"
fi
have_torch=1
if ! "$python" -c "import torch" 2>/dev/null; then
  have_torch=0
  echo "mnist_mlp: no PyTorch at $python: timing our side only (see bench/README.md)" >&2
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for round in $(seq 1 "$rounds"); do
  echo "==> round $round/$rounds: candle" >&2
  /usr/bin/time -f "peak memory: %M KB" -o "$out/ours-$round.mem" \
    "$candle" train mnist --epochs "$epochs" --optimizer adam --lr 1e-3 \
    --schedule constant --weight-decay 0 --out "$out/run-$round" \
    2>"$out/ours-$round.txt" >/dev/null || {
    cat "$out/ours-$round.txt" >&2
    exit 1
  }
  if ((have_torch)); then
    echo "==> round $round/$rounds: pytorch" >&2
    OMP_NUM_THREADS=2 "$python" bench/pytorch_mnist_mlp.py --epochs "$epochs" \
      >"$out/torch-$round.txt" 2>/dev/null
  fi
done

python3 - "$out" "$rounds" "$have_torch" <<'PY'
import json
import re
import statistics
import sys

out, rounds, have_torch = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"


def ours(r):
    # Each epoch's training time at full precision: the differences of the
    # cumulative `seconds` of the run's eval records (the progress lines
    # round to 10 ms).
    seconds = [0.0]
    with open(f"{out}/run-{r}/metrics.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == "eval":
                seconds.append(record["seconds"])
    times = [b - a for a, b in zip(seconds, seconds[1:])]
    kb = int(re.search(r"peak memory: (\d+) KB", open(f"{out}/ours-{r}.mem").read()).group(1))
    return times, kb / 1024


def torch(r):
    text = open(f"{out}/torch-{r}.txt", encoding="utf-8").read()
    times = [float(t) for t in re.findall(r"^epoch \d+: ([0-9.]+) s", text, re.M)]
    mb = float(re.search(r"peak memory: ([0-9.]+) MB", text).group(1))
    return times, mb


rows, ours_all, torch_all, mem_ours, mem_torch = [], [], [], [], []
for r in range(1, rounds + 1):
    t, m = ours(r)
    ours_all += t
    mem_ours.append(m)
    line = f"round {r}: candle " + " ".join(f"{x:.3f}" for x in t)
    if have_torch:
        t2, m2 = torch(r)
        torch_all += t2
        mem_torch.append(m2)
        line += "   pytorch " + " ".join(f"{x:.3f}" for x in t2)
    rows.append(line)
print("\n".join(rows))
mo = statistics.median(ours_all)
print(f"\nepoch time (median of {len(ours_all)}): candle {mo:.3f} s, peak memory {max(mem_ours):.0f} MB")
if have_torch:
    mt = statistics.median(torch_all)
    print(f"epoch time (median of {len(torch_all)}): pytorch {mt:.3f} s, peak memory {max(mem_torch):.0f} MB")
    print(f"ratio candle / pytorch: {mo / mt:.2f}")
    # On a shared machine the fastest epochs are the least disturbed ones.
    print(
        f"fastest epochs: candle {min(ours_all):.3f} s, pytorch {min(torch_all):.3f} s, "
        f"ratio {min(ours_all) / min(torch_all):.2f}"
    )
PY
