#!/usr/bin/env bash
# Chapter 09's ResNet14 on MNIST, ours and PyTorch's, side by side in one run:
# every epoch's training time, the test accuracy after each epoch, the median
# epoch time of each side and their ratio, and the fastest epoch of each side
# and theirs.
#
# Both train the same network (a 3x3 stem and six basic blocks, 175k
# parameters) with the same recipe: AdamW 3e-3, weight decay 1e-4, one-cycle
# over EPOCHS epochs (default 4), batch 128, random shifts of up to 2 pixels,
# on 2 threads, timing the training loop of each epoch (evaluation excluded).
# The two programs alternate ROUNDS times (default 1).
#
#   bench/resnet_mnist.sh                          # ours and PyTorch, 4 epochs each
#   EPOCHS=1 bench/resnet_mnist.sh                 # a quicker look at the speed
#   PYTHON=/path/to/python bench/resnet_mnist.sh   # a Python with torch
#   CANDLE=target/release/candle bench/resnet_mnist.sh
#
# Without PyTorch it runs our side alone and says so (see bench/README.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${ROUNDS:-1}"
epochs="${EPOCHS:-4}"
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
  echo "resnet_mnist: no PyTorch at $python: timing our side only (see bench/README.md)" >&2
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for round in $(seq 1 "$rounds"); do
  echo "==> round $round/$rounds: candle" >&2
  RAYON_NUM_THREADS=2 /usr/bin/time -f "peak memory: %M KB" -o "$out/ours-$round.mem" \
    "$candle" train mnist --model resnet14 --epochs "$epochs" --out "$out/run-$round" \
    2>"$out/ours-$round.txt" >/dev/null || {
    cat "$out/ours-$round.txt" >&2
    exit 1
  }
  if ((have_torch)); then
    echo "==> round $round/$rounds: pytorch" >&2
    OMP_NUM_THREADS=2 "$python" bench/pytorch_resnet_mnist.py --epochs "$epochs" \
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
    # Each epoch's training time from the cumulative `seconds` of the run's
    # eval records, and the test accuracy after it.
    seconds, acc = [0.0], []
    with open(f"{out}/run-{r}/metrics.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == "eval":
                seconds.append(record["seconds"])
                acc.append(100 * record["test_accuracy"])
    times = [b - a for a, b in zip(seconds, seconds[1:])]
    kb = int(re.search(r"peak memory: (\d+) KB", open(f"{out}/ours-{r}.mem").read()).group(1))
    return times, acc, kb / 1024


def torch(r):
    text = open(f"{out}/torch-{r}.txt", encoding="utf-8").read()
    epochs = re.findall(r"^epoch \d+: ([0-9.]+) s, test accuracy ([0-9.]+)%", text, re.M)
    mb = float(re.search(r"peak memory: ([0-9.]+) MB", text).group(1))
    return [float(t) for t, _ in epochs], [float(a) for _, a in epochs], mb


ours_all, torch_all = [], []
for r in range(1, rounds + 1):
    t, a, m = ours(r)
    ours_all += t
    print(f"round {r}: candle  epochs " + " ".join(f"{x:.1f} s" for x in t)
          + "  test " + " ".join(f"{x:.2f}%" for x in a) + f"  peak {m:.0f} MB")
    if have_torch:
        t2, a2, m2 = torch(r)
        torch_all += t2
        print(f"round {r}: pytorch epochs " + " ".join(f"{x:.1f} s" for x in t2)
              + "  test " + " ".join(f"{x:.2f}%" for x in a2) + f"  peak {m2:.0f} MB")
mo = statistics.median(ours_all)
print(f"\nepoch time (median of {len(ours_all)}): candle {mo:.1f} s")
if have_torch:
    mt = statistics.median(torch_all)
    print(f"epoch time (median of {len(torch_all)}): pytorch {mt:.1f} s")
    print(f"ratio candle / pytorch: {mo / mt:.2f}")
    # On a shared machine a round can run a fifth slower than the next; the
    # fastest epoch of each side is the least disturbed one.
    fo, ft = min(ours_all), min(torch_all)
    print(f"fastest epoch: candle {fo:.1f} s, pytorch {ft:.1f} s, ratio {fo / ft:.2f}")
PY
