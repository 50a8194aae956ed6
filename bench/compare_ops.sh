#!/usr/bin/env bash
# Runs the chapter-04 benchmarks in Candle (`cargo bench -p chapter-04`) and
# in PyTorch (`bench/pytorch_ops.py`), then prints the results side by side
# with the ratio ours/pytorch. See bench/README.md.
#
#   bench/compare_ops.sh                          # both, then the table
#   PYTHON=/path/to/python bench/compare_ops.sh   # another Python with torch
#   OMP_WAIT_POLICY=PASSIVE bench/compare_ops.sh  # on a busy machine
#
# Needs PyTorch in a venv at .venv (or PYTHON pointing at a Python with torch).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-$root/.venv/bin/python}"
if ! "$python" -c "import torch" 2>/dev/null; then
  echo "compare_ops: no PyTorch at $python; see bench/README.md (python3 -m venv .venv && .venv/bin/pip install torch)" >&2
  exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "==> cargo bench -p chapter-04 --bench operations" >&2
cargo bench -p chapter-04 --bench operations >"$out/ours.txt"
echo "==> $python bench/pytorch_ops.py" >&2
"$python" bench/pytorch_ops.py >"$out/pytorch.txt"

# The plain result lines: `name: value unit`, after each program's header line.
python3 - "$out/ours.txt" "$out/pytorch.txt" <<'PY'
import re
import sys

LINE = re.compile(r"^(?P<name>[^:]+): (?P<value>[0-9.]+) (?P<unit>\S+)$")
LOWER_IS_BETTER = {"µs/op", "ms/step"}


def results(path):
    found = {}
    for line in open(path, encoding="utf-8"):
        m = LINE.match(line.strip())
        if m:
            found[m["name"]] = (float(m["value"]), m["unit"])
    return found


ours, torch = results(sys.argv[1]), results(sys.argv[2])
rows = [("workload", "ours", "pytorch", "unit", "ours/pytorch", "faster")]
for name, (v, unit) in ours.items():
    if name not in torch:
        continue
    p, punit = torch[name]
    assert unit == punit, f"{name}: units differ ({unit} vs {punit})"
    ratio = v / p if p else float("inf")
    lower = unit in LOWER_IS_BETTER
    faster = "ours" if (v < p) == lower else "pytorch"
    speedup = max(v, p) / min(v, p) if min(v, p) > 0 else float("inf")
    rows.append((name, f"{v:g}", f"{p:g}", unit, f"{ratio:.2f}", f"{faster} ({speedup:.2f}x)"))
missing = sorted(set(ours) ^ set(torch))
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for i, r in enumerate(rows):
    print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if i == 0:
        print("  ".join("-" * w for w in widths))
if missing:
    print(f"(only one side reported: {', '.join(missing)})")
print("ours/pytorch: above 1 means more time (µs/op, ms/step) or more throughput (GB/s, GFLOP/s) for ours")
PY
