#!/usr/bin/env bash
# GPT-2 small's generation speed on the CPU, ours and PyTorch's, side by
# side in one run: both decode speeds (tokens/s), both prefill times and
# the ratio.
#
# Both sides build GPT-2 small's real configuration (12 layers, 12 heads,
# width 768, vocabulary 50257, context 1024) with random weights (the cost
# of a forward pass does not depend on the weights), feed a prompt of
# PROMPT_TOKENS seeded random ids (default 20) in one call, then write
# NEW_TOKENS tokens (default 200) greedily through a KV cache, one token
# per forward pass. Ours is the example
# candle-lib/examples/gpt2_generate_speed.rs, PyTorch's
# bench/pytorch_gpt2_generate.py. The two programs alternate ROUNDS times
# (default 3), each on 2 threads, and the medians are compared.
#
#   bench/gpt2_generate.sh                                 # ours and PyTorch
#   ROUNDS=5 NEW_TOKENS=100 bench/gpt2_generate.sh
#   PYTHON=/path/to/python bench/gpt2_generate.sh          # a Python with torch
#   OMP_WAIT_POLICY=PASSIVE bench/gpt2_generate.sh         # on a busy machine
#
# Without PyTorch it runs our side alone and says so.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
rounds="${ROUNDS:-3}"
prompt_tokens="${PROMPT_TOKENS:-20}"
new_tokens="${NEW_TOKENS:-200}"
python="${PYTHON:-$root/.venv/bin/python}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
echo "==> cargo build --release -p candle-lib --example gpt2_generate_speed" >&2
cargo build --release -q -p candle-lib --example gpt2_generate_speed
ours="$target_dir/release/examples/gpt2_generate_speed"
have_torch=1
if ! "$python" -c "import torch" 2>/dev/null; then
  have_torch=0
  echo "gpt2_generate: no PyTorch at $python: timing our side only (see bench/README.md)" >&2
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
args=(--prompt-tokens "$prompt_tokens" --new-tokens "$new_tokens")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
for round in $(seq 1 "$rounds"); do
  echo "==> round $round/$rounds: candle" >&2
  RAYON_NUM_THREADS=2 "$ours" "${args[@]}" >"$out/ours-$round.txt" 2>&1 || {
    cat "$out/ours-$round.txt" >&2
    exit 1
  }
  if ((have_torch)); then
    echo "==> round $round/$rounds: pytorch" >&2
    OMP_NUM_THREADS=2 "$python" bench/pytorch_gpt2_generate.py "${args[@]}" \
      >"$out/torch-$round.txt" 2>&1 || {
      cat "$out/torch-$round.txt" >&2
      exit 1
    }
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

python3 - "$out" "$rounds" "$have_torch" <<'PY'
import re
import statistics
import sys

out, rounds, have_torch = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"


def read(path):
    text = open(path, encoding="utf-8").read()
    prefill = float(re.search(r"prefill: \d+ tokens in ([0-9.]+) ms", text).group(1))
    decode = float(re.search(r"decode: \d+ tokens in [0-9.]+ s \(([0-9.]+) tokens/s\)", text).group(1))
    return decode, prefill


ours, torch = [], []
for r in range(1, rounds + 1):
    o = read(f"{out}/ours-{r}.txt")
    ours.append(o)
    line = f"round {r}: candle {o[0]:.1f} tokens/s (prefill {o[1]:.0f} ms)"
    if have_torch:
        t = read(f"{out}/torch-{r}.txt")
        torch.append(t)
        line += f"   pytorch {t[0]:.1f} tokens/s (prefill {t[1]:.0f} ms)"
    print(line)
mo = statistics.median(o[0] for o in ours)
po = statistics.median(o[1] for o in ours)
print(f"\ndecode (median of rounds): candle {mo:.1f} tokens/s", end="")
if have_torch:
    mt = statistics.median(t[0] for t in torch)
    pt = statistics.median(t[1] for t in torch)
    print(f", pytorch {mt:.1f} tokens/s, ratio candle / pytorch {mo / mt:.2f}x")
    print(f"prefill (median): candle {po:.0f} ms, pytorch {pt:.0f} ms")
else:
    print(f"\nprefill (median): candle {po:.0f} ms")
PY
