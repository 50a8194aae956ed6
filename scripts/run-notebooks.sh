#!/usr/bin/env bash
# Runs the notebooks headless, top to bottom, in the evcxr `rust` kernel.
#
#   scripts/run-notebooks.sh                         # every notebooks/*.ipynb
#   scripts/run-notebooks.sh notebooks/06-mlp-mnist.ipynb
#
# Needs scripts/install-notebook-tools.sh to have run once (evcxr_jupyter, the
# .venv-notebooks/ venv with nbclient, the `rust` kernel spec).
#
# A notebook fails when a cell fails: a compile error, a dead kernel, or
# output on stderr. evcxr catches a panic and an error returned by `?` in a
# cell and only prints them to stderr, so stderr is how the runner sees them;
# a cell that is meant to write there can carry the cell tag `allow-stderr`.
# On failure the script names the notebook and the cell and prints the error,
# and exits non-zero after running the rest.
#
# Executed copies (with outputs) go to $NOTEBOOK_OUT (default: a new temporary
# folder, printed at the end); the notebooks in notebooks/ are not modified.
#
# Environment:
#   NOTEBOOK_VENV     the venv made by the install script (default: <repo>/.venv-notebooks)
#   NOTEBOOK_OUT      where the executed notebooks go
#   NOTEBOOK_TIMEOUT  seconds one cell may run (default: 1800; the first cell
#                     with :dep compiles candle-lib, a few minutes on two cores)
set -euo pipefail

say() { echo "run-notebooks: $*"; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NOTEBOOK_VENV:-$repo_root/.venv-notebooks}"
timeout="${NOTEBOOK_TIMEOUT:-1800}"

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in
  *":$cargo_bin:"*) ;;
  *) export PATH="$cargo_bin:$PATH" ;;
esac

if [[ ! -x "$venv/bin/python" ]] || ! command -v evcxr_jupyter >/dev/null 2>&1; then
  say "the notebook tools are not installed; run scripts/install-notebook-tools.sh first" >&2
  exit 2
fi
if ! "$venv/bin/jupyter" kernelspec list 2>/dev/null | grep -qE '^\s*rust\s'; then
  say "Jupyter has no 'rust' kernel; run scripts/install-notebook-tools.sh (it runs evcxr_jupyter --install)" >&2
  exit 2
fi

if [[ $# -gt 0 ]]; then
  notebooks=("$@")
else
  shopt -s nullglob
  notebooks=("$repo_root"/notebooks/*.ipynb)
  shopt -u nullglob
fi
if [[ ${#notebooks[@]} -eq 0 ]]; then
  say "no notebooks found in $repo_root/notebooks" >&2
  exit 2
fi

out="${NOTEBOOK_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/candle-notebooks.XXXXXX")}"
mkdir -p "$out"

# The runner: nbclient executes the notebook with its own folder as the
# working directory (so `:dep candle-lib = { path = "../candle-lib" }` and
# data/ are found), then checks every code cell's outputs.
read -r -d '' runner <<'PY' || true
import sys, time, traceback
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError, CellTimeoutError

path, out_dir, timeout = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
nb = nbformat.read(path, as_version=4)
nbformat.validate(nb)
client = NotebookClient(
    nb,
    timeout=timeout,
    kernel_name="rust",
    resources={"metadata": {"path": str(path.parent.resolve())}},
)

def cell_label(index):
    return f"{path.name}, cell {index + 1}"

def first_line(cell):
    text = cell.source.strip().splitlines()
    return text[0] if text else ""

problems = []
started = time.monotonic()
try:
    client.execute()
except CellExecutionError as error:
    index = next((i for i, c in enumerate(nb.cells)
                  if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
    where = cell_label(index) + f" ({first_line(nb.cells[index])!r})" if index is not None else path.name
    problems.append(f"{where}: the cell failed:\n{error}")
except (DeadKernelError, CellTimeoutError) as error:
    problems.append(f"{path.name}: {type(error).__name__}: {error}")
except Exception:
    problems.append(f"{path.name}: the run failed:\n{traceback.format_exc()}")
elapsed = time.monotonic() - started

for index, cell in enumerate(nb.cells):
    if cell.cell_type != "code" or "allow-stderr" in cell.metadata.get("tags", []):
        continue
    stderr = "".join(o.get("text", "") for o in cell.get("outputs", [])
                     if o.get("output_type") == "stream" and o.get("name") == "stderr")
    if stderr.strip():
        kind = "panicked" if "panicked at" in stderr else "wrote to stderr (a `?` error or a panic)"
        problems.append(f"{cell_label(index)} ({first_line(cell)!r}) {kind}:\n{stderr.rstrip()}")

nbformat.write(nb, out_dir / path.name)
print(f"{elapsed:.1f}")
if problems:
    for p in problems:
        print(f"FAILED {p}", file=sys.stderr)
    sys.exit(1)
PY

failed=()
total_start=$SECONDS
for notebook in "${notebooks[@]}"; do
  name="$(basename "$notebook")"
  say "running $name (cell timeout ${timeout} s)"
  if seconds="$("$venv/bin/python" -c "$runner" "$notebook" "$out" "$timeout")"; then
    say "ok      $name in ${seconds} s"
  else
    say "FAILED  $name${seconds:+ after ${seconds} s}" >&2
    failed+=("$name")
  fi
done

say "executed notebooks (with outputs) are in $out"
say "total $((SECONDS - total_start)) s for ${#notebooks[@]} notebook(s)"
if [[ ${#failed[@]} -gt 0 ]]; then
  say "${#failed[@]} notebook(s) failed: ${failed[*]}" >&2
  exit 1
fi
say "all notebooks passed"
