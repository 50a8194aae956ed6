#!/usr/bin/env bash
# Installs the tools that build the book: mdbook and the mdbook-katex
# preprocessor, at the versions below (they are tested together).
#
# mdbook-katex renders every formula to HTML while the book is built, so the
# pages need no script and no network to show math; KaTeX's stylesheet and
# fonts are committed in book/src/katex/ (see book.toml). Safe to run again: a
# tool already installed at the pinned version is left alone. Needs network
# access to crates.io only, and a C compiler (mdbook-katex embeds QuickJS).
set -euo pipefail

MDBOOK_VERSION="0.5.3"   # the mdbook that mdbook-katex 0.10.0 is built against (--locked)
MDBOOK_KATEX_VERSION="0.10.0"

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in
  *":$cargo_bin:"*) ;;
  *) export PATH="$cargo_bin:$PATH" ;;
esac

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-book-tools: cargo not found; install Rust from https://rustup.rs first" >&2
  exit 1
fi

# install TOOL CRATE VERSION: installs CRATE at VERSION unless `TOOL --version`
# already reports it.
install() {
  local tool="$1" crate="$2" version="$3"
  if command -v "$tool" >/dev/null 2>&1 && "$tool" --version 2>/dev/null | grep -qF "$version"; then
    echo "install-book-tools: $tool $version already installed at $(command -v "$tool")"
    return
  fi
  echo "install-book-tools: installing $crate $version with cargo install (takes a few minutes)"
  cargo install "$crate" --locked --version "$version"
  echo "install-book-tools: installed $("$tool" --version) at $(command -v "$tool")"
}

install mdbook mdbook "$MDBOOK_VERSION"
install mdbook-katex mdbook-katex "$MDBOOK_KATEX_VERSION"
