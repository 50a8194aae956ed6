#!/usr/bin/env bash
# Installs what the notebooks in notebooks/ need to run in Jupyter:
#
#   1. evcxr_jupyter, the Rust kernel for Jupyter (cargo install; 12-18 min on
#      two cores the first time);
#   2. a Python virtual environment at .venv-notebooks/ holding Jupyter's
#      headless runner (nbclient, nbconvert) and the kernel machinery
#      (jupyter_client, ipykernel); add `jupyterlab` yourself for the browser UI:
#          .venv-notebooks/bin/pip install jupyterlab
#   3. the `rust` kernel spec (`evcxr_jupyter --install`), so Jupyter finds it.
#
# Safe to run again: each step checks first and skips what is already done, so
# a second run takes a few seconds (CI calls it every time).
# Needs network access to crates.io and PyPI only.
#
# Environment:
#   PYTHON           the interpreter that makes the venv (default: python3)
#   NOTEBOOK_VENV    where the venv goes (default: <repo>/.venv-notebooks)
#   EVCXR_VERSION    pin evcxr_jupyter (default: newest release)
set -euo pipefail

say() { echo "install-notebook-tools: $*"; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NOTEBOOK_VENV:-$repo_root/.venv-notebooks}"
python="${PYTHON:-python3}"
EVCXR_VERSION="${EVCXR_VERSION:-}"

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in
  *":$cargo_bin:"*) ;;
  *) export PATH="$cargo_bin:$PATH" ;;
esac

# --- 1. evcxr_jupyter -------------------------------------------------------
if command -v evcxr_jupyter >/dev/null 2>&1; then
  say "evcxr_jupyter already installed at $(command -v evcxr_jupyter)"
else
  if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found; install Rust from https://rustup.rs first" >&2
    exit 1
  fi
  version_args=()
  if [[ -n "$EVCXR_VERSION" ]]; then
    version_args=(--version "$EVCXR_VERSION")
  fi
  say "installing evcxr_jupyter with cargo install --locked (12-18 min on two cores;"
  say "this compile is most of the time the notebook tools cost, and happens once per machine)"
  evcxr_started=$SECONDS
  cargo install evcxr_jupyter --locked "${version_args[@]}"
  say "installed evcxr_jupyter at $(command -v evcxr_jupyter) in $((SECONDS - evcxr_started)) s"
fi

# evcxr compiles each cell with the active toolchain; rust-src lets it offer
# completions. Optional, so only a hint.
if command -v rustup >/dev/null 2>&1 \
  && ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  say "hint: 'rustup component add rust-src' enables tab completion in the rust kernel"
fi

# --- 2. Python venv with the Jupyter runner ---------------------------------
if [[ -x "$venv/bin/python" ]]; then
  say "venv already exists at $venv"
else
  if ! command -v "$python" >/dev/null 2>&1; then
    say "$python not found; install Python 3.9 or newer (or set PYTHON=...)" >&2
    exit 1
  fi
  say "creating venv at $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi

packages=(nbclient nbformat jupyter_client nbconvert ipykernel)
if "$venv/bin/python" -c 'import nbclient, nbformat, jupyter_client, nbconvert, ipykernel' \
  >/dev/null 2>&1; then
  say "python packages already installed: ${packages[*]}"
else
  say "pip install ${packages[*]} into $venv (about 30 s)"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "${packages[@]}"
fi

# --- 3. the `rust` kernel spec ----------------------------------------------
# evcxr_jupyter --install writes kernel.json into the user's Jupyter data
# folder (~/.local/share/jupyter/kernels/rust on Linux), which the venv's
# jupyter_client searches. Rewriting it is cheap and keeps the path to the
# evcxr_jupyter binary current, so it runs every time.
say "registering the rust kernel: evcxr_jupyter --install"
evcxr_jupyter --install

if "$venv/bin/jupyter" kernelspec list 2>/dev/null | grep -qE '^\s*rust\s'; then
  say "jupyter sees the kernel: $("$venv/bin/jupyter" kernelspec list | grep -E '^\s*rust\s' | xargs)"
else
  say "jupyter does not list a 'rust' kernel; see 'evcxr_jupyter --help'" >&2
  exit 1
fi

say "done in $SECONDS s. Run the notebooks headless with scripts/run-notebooks.sh, or open them with"
say "  $venv/bin/pip install jupyterlab && $venv/bin/jupyter lab notebooks/"
