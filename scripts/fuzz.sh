#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a fixed number of executions and prints
# the executions run per target.
#
#   scripts/fuzz.sh               # 100000 executions per target
#   FUZZ_RUNS=1000000 scripts/fuzz.sh
#   FUZZ_ENGINE=driver scripts/fuzz.sh   # force the stable driver
#
# With a nightly toolchain and cargo-fuzz installed (`rustup toolchain install
# nightly`, `cargo install cargo-fuzz --locked`), the targets run under
# libFuzzer with coverage guidance and AddressSanitizer. Otherwise they run
# under fuzz/'s own driver on stable Rust: seeded mutations of valid files,
# the same inputs for the same seed. Either way a finding (a panic, or an
# error that does not name the file) makes the script exit non-zero and is
# saved under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs="${FUZZ_RUNS:-100000}"
seed="${FUZZ_SEED:-1}"
targets=(idx idx_gzip safetensors checkpoint metrics tokenizer_files)

engine="${FUZZ_ENGINE:-}"
if [[ -z "$engine" ]]; then
  if cargo +nightly fuzz --version >/dev/null 2>&1; then engine=libfuzzer; else engine=driver; fi
fi

status=0
if [[ "$engine" == libfuzzer ]]; then
  echo "engine: libFuzzer (cargo +nightly fuzz), $runs executions per target"
  cargo run --quiet --release --bin seed-corpus >/dev/null
  for t in "${targets[@]}"; do
    log="$(mktemp)"
    if cargo +nightly fuzz run --features libfuzzer "$t" "corpus/$t" -- \
         -runs="$runs" -seed="$seed" -max_len=65536 -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
      done_line="$(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
      echo "$t: ${done_line:-finished (no summary line)}"
    else
      echo "$t: FAILED; the end of libFuzzer's output:"
      tail -30 "$log"
      status=1
    fi
    rm -f "$log"
  done
else
  echo "engine: fuzz-driver (stable Rust, seeded mutations), $runs executions per target"
  cargo run --quiet --release --bin fuzz-driver -- all --runs "$runs" --seed "$seed" || status=1
fi
exit "$status"
