#!/usr/bin/env bash
# Runs the chapter-04 and chapter-05 benchmarks in Candle (`cargo bench -p
# chapter-04`, `cargo bench -p chapter-05 --bench norm`) and in PyTorch
# (`bench/pytorch_ops.py`), then prints the results side by side with the
# ratio ours/pytorch. See bench/README.md.
#
#   bench/compare_ops.sh                          # both, then the table
#   PYTHON=/path/to/python bench/compare_ops.sh   # another Python with torch
#   OMP_WAIT_POLICY=PASSIVE bench/compare_ops.sh  # on a busy machine
#   ROUNDS=3 FILTER=softmax bench/compare_ops.sh   # alternate 3 times, softmax only
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

# ROUNDS=N alternates the two sides N times (ours, pytorch, ours, ...) and
# keeps each side's best result: on a shared machine, load that comes and
# goes then falls on both sides alike. FILTER restricts our benchmarks to
# the criterion ids that contain it (PyTorch always runs all of its own).
rounds="${ROUNDS:-1}"
filter=(${FILTER:+"$FILTER"})
for round in $(seq 1 "$rounds"); do
  echo "==> round $round/$rounds: cargo bench -p chapter-04 --bench operations ${filter[*]}" >&2
  cargo bench -p chapter-04 --bench operations -- "${filter[@]}" >"$out/ours.$round.txt"
  echo "==> round $round/$rounds: cargo bench -p chapter-05 --bench norm ${filter[*]}" >&2
  cargo bench -p chapter-05 --bench norm -- "${filter[@]}" >>"$out/ours.$round.txt"
  echo "==> round $round/$rounds: $python bench/pytorch_ops.py" >&2
  "$python" bench/pytorch_ops.py >"$out/pytorch.$round.txt"
done

# The plain result lines: `name: value unit`, after each program's header line.
python3 - "$out" "$rounds" <<'PY'
import re
import sys

LINE = re.compile(r"^(?P<name>[^:]+): (?P<value>[0-9.]+) (?P<unit>\S+)$")
LOWER_IS_BETTER = {"µs/op", "ms/step", "ms", "µs"}


def results(side):
    """The best value of each result over the rounds."""
    found = {}
    for r in range(1, int(sys.argv[2]) + 1):
        for line in open(f"{sys.argv[1]}/{side}.{r}.txt", encoding="utf-8"):
            m = LINE.match(line.strip())
            if not m:
                continue
            value, unit = float(m["value"]), m["unit"]
            best = min if unit in LOWER_IS_BETTER else max
            old = found.get(m["name"])
            found[m["name"]] = (value if old is None else best(old[0], value), unit)
    return found


ours, torch = results("ours"), results("pytorch")
# Our workloads that also ran through the composite (the kernel withdrawn)
# report it as "<name> (composite)": it goes in a column of its own.
COMPOSITE = " (composite)"
composite = {n[: -len(COMPOSITE)]: v for n, (v, _) in ours.items() if n.endswith(COMPOSITE)}
rows = [("workload", "composite", "ours", "pytorch", "unit", "ours/pytorch", "faster")]
for name, (v, unit) in ours.items():
    if name not in torch:
        continue
    p, punit = torch[name]
    assert unit == punit, f"{name}: units differ ({unit} vs {punit})"
    ratio = v / p if p else float("inf")
    lower = unit in LOWER_IS_BETTER
    faster = "ours" if (v < p) == lower else "pytorch"
    speedup = max(v, p) / min(v, p) if min(v, p) > 0 else float("inf")
    before = f"{composite[name]:g}" if name in composite else "-"
    rows.append(
        (name, before, f"{v:g}", f"{p:g}", unit, f"{ratio:.2f}", f"{faster} ({speedup:.2f}x)")
    )
missing = sorted(n for n in set(ours) ^ set(torch) if not n.endswith(COMPOSITE))
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for i, r in enumerate(rows):
    print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if i == 0:
        print("  ".join("-" * w for w in widths))
if missing:
    print(f"(only one side reported: {', '.join(missing)})")
print("ours/pytorch: above 1 means more time (µs/op, ms/step, ms) or more throughput (GB/s, GFLOP/s) for ours")
print("composite: ours with the fused kernel withdrawn (the ops it replaces), where measured")
PY
