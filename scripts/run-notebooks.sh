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
# and exits non-zero after running the rest. It prints the time each notebook
# took as it finishes, and a table of them at the end.
#
# Executed copies (with outputs) go to $NOTEBOOK_OUT (default: a new temporary
# folder, printed at the end); the notebooks in notebooks/ are not modified.
#
# Environment:
#   NOTEBOOK_VENV     the venv made by the install script (default: <repo>/.venv-notebooks)
#   NOTEBOOK_OUT      where the executed notebooks go
#   NOTEBOOK_TIMEOUT  seconds one cell may run (default: 1800; the first cell
#                     with :dep compiles candle-lib, a few minutes on two cores)
#   EVCXR_TMPDIR      the folder evcxr compiles in, shared by the notebooks
#                     (default: <repo>/target/evcxr/notebooks; see below)
set -euo pipefail

say() { echo "run-notebooks: $*"; }

# evcxr compiles each cell as a crate loaded with dlopen, and needs cargo's
# incremental compilation for it: with CARGO_INCREMENTAL=0 (which .ci/run
# exports to keep target/ small) every cell after the first `:dep` fails with
# "dlsym failed". So the notebooks never inherit that setting.
unset CARGO_INCREMENTAL

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# evcxr compiles each kernel's cells in a temporary folder of its own, so each
# notebook would compile candle-lib from scratch (`:cache` keeps registry
# crates, not path dependencies like candle-lib): about 3 minutes per notebook
# on two cores. One folder shared by every kernel (evcxr's EVCXR_TMPDIR) lets
# cargo reuse the build of the notebook before: 06-mlp-mnist's `:dep` cell
# took 188 s on its own and 20 s after another notebook. The notebooks run one
# after another, so they never build in the folder at the same time.
evcxr_root="$repo_root/target/evcxr"
export EVCXR_TMPDIR="${EVCXR_TMPDIR:-$evcxr_root/notebooks}"
mkdir -p "$EVCXR_TMPDIR" "$evcxr_root/.cargo"

# evcxr builds everything at opt-level 2 with debug assertions and overflow
# checks: right for the code in the cells, which should panic on an overflow,
# but several times slower for the library under them (08-gpt-shakespeare's
# training cell took 261 s). Cargo merges the .cargo/config.toml of the folder
# it builds in (evcxr writes that one) with those of the folders above it, so
# this one, a folder up, builds the dependencies (not the cells) as a release
# build would. (In JupyterLab, see notebooks/README.md.)
cat >"$evcxr_root/.cargo/config.toml" <<'TOML'
# Written by scripts/run-notebooks.sh for the evcxr builds below this folder:
# the notebooks' dependencies at full speed, the cells as evcxr builds them.
[profile.dev.package."*"]
opt-level = 3
debug-assertions = false
overflow-checks = false
TOML

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
import re, sys, time, traceback
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError, CellTimeoutError

path, out_dir, timeout = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
ansi = re.compile(r"\x1b\[[0-9;]*m")

def say(message, file=sys.stdout):
    print(f"run-notebooks: {message}", file=file, flush=True)

def where(index):
    lines = nb.cells[index].source.strip().splitlines()
    return f"{path.name}, cell {index + 1} ({lines[0] if lines else ''!r})"

nb = nbformat.read(path, as_version=4)
nbformat.validate(nb)
client = NotebookClient(
    nb,
    timeout=timeout,
    kernel_name="rust",
    resources={"metadata": {"path": str(path.parent.resolve())}},
)

problems = []
started = time.monotonic()
try:
    client.execute()
except CellExecutionError:
    pass  # the cell's error output is reported below
except (DeadKernelError, CellTimeoutError) as error:
    problems.append(f"{path.name}: {type(error).__name__}: {error}")
except Exception:
    problems.append(f"{path.name}: the run failed:\n{traceback.format_exc()}")
elapsed = time.monotonic() - started

for index, cell in enumerate(nb.cells):
    if cell.cell_type != "code":
        continue
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            text = "\n".join(output.get("traceback") or []) or output.get("evalue", "")
            problems.append(f"{where(index)} failed:\n{ansi.sub('', text).rstrip()}")
    if "allow-stderr" in cell.metadata.get("tags", []):
        continue
    stderr = "".join(o.get("text", "") for o in cell.get("outputs", [])
                     if o.get("output_type") == "stream" and o.get("name") == "stderr")
    if stderr.strip():
        kind = "panicked" if "panicked at" in stderr else "wrote to stderr (an error from `?`, or a panic)"
        problems.append(f"{where(index)} {kind}:\n{ansi.sub('', stderr).rstrip()}")

nbformat.write(nb, out_dir / path.name)
if problems:
    for problem in problems:
        say(f"error: {problem}", file=sys.stderr)
    say(f"FAILED  {path.name} after {elapsed:.1f} s", file=sys.stderr)
    sys.exit(1)
say(f"ok      {path.name} in {elapsed:.1f} s")
PY

failed=()
times=()
total_start=$SECONDS
for notebook in "${notebooks[@]}"; do
  name="$(basename "$notebook")"
  say "running $name (cell timeout ${timeout} s)"
  started=$SECONDS
  status=ok
  if ! "$venv/bin/python" -c "$runner" "$notebook" "$out" "$timeout"; then
    failed+=("$name")
    status=FAILED
  fi
  times+=("$(printf '%5d s  %-6s  %s' $((SECONDS - started)) "$status" "$name")")
done

say "executed notebooks (with outputs) are in $out"
# Wall time per notebook, kernel start and evcxr's compilation included (the
# first notebook also compiles candle-lib into evcxr's cache, unless a
# previous run left it there; see :cache 500).
say "time per notebook (wall clock, kernel start and compilation included):"
printf '    %s\n' "${times[@]}"
say "total $((SECONDS - total_start)) s for ${#notebooks[@]} notebook(s)"
if [[ ${#failed[@]} -gt 0 ]]; then
  say "${#failed[@]} notebook(s) failed: ${failed[*]}" >&2
  exit 1
fi
say "all notebooks passed"
