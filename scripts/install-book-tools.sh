#!/usr/bin/env bash
# Installs the tools that build the book: mdbook, nothing else.
#
# The book uses only mdbook's built-in features ({{#include}}, MathJax), so no
# preprocessor plugins are needed. Safe to run again: a tool that is already on
# PATH is left alone. Needs network access to crates.io only.
set -euo pipefail

MDBOOK_VERSION="${MDBOOK_VERSION:-}"   # empty = newest release

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in
  *":$cargo_bin:"*) ;;
  *) export PATH="$cargo_bin:$PATH" ;;
esac

if command -v mdbook >/dev/null 2>&1; then
  echo "install-book-tools: mdbook already installed: $(mdbook --version) at $(command -v mdbook)"
  exit 0
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-book-tools: cargo not found; install Rust from https://rustup.rs first" >&2
  exit 1
fi

if [[ -n "$MDBOOK_VERSION" ]]; then
  echo "install-book-tools: installing mdbook $MDBOOK_VERSION with cargo install (takes a few minutes)"
  cargo install mdbook --locked --version "$MDBOOK_VERSION"
else
  echo "install-book-tools: installing mdbook with cargo install (takes a few minutes)"
  cargo install mdbook --locked
fi
echo "install-book-tools: installed $(mdbook --version) at $(command -v mdbook)"
