#!/usr/bin/env bash
# Speculative sampling on Shakespeare characters: trains a small draft model
# and a larger target model with `candle train shakespeare` (once; the run
# folders are reused), then measures the acceptance rate and the speed-up
# over plain sampling for draft lengths 1..8
# (candle-lib/examples/speculative_speed.rs), writing the table and the
# figure into book/src/figures/.
#
# The models (context 128, nanoGPT's recipe otherwise: AdamW 1e-3 with
# warm-up and cosine, batch 12):
#   draft:  1 layer,  4 heads, width 64,  DRAFT_ITERS steps (default 300)
#   target: 4 layers, 4 heads, width 256, TARGET_ITERS steps (default 300)
#
#   bench/speculative.sh
#   DRAFT_ITERS=500 TARGET_ITERS=1000 RUNS=runs bench/speculative.sh
#   FORCE=1 bench/speculative.sh     # retrain both
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
draft_iters="${DRAFT_ITERS:-300}"
target_iters="${TARGET_ITERS:-300}"
runs="${RUNS:-runs}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
echo "==> cargo build --release -p candle-lib --bin candle --example speculative_speed" >&2
cargo build --release -q -p candle-lib --bin candle --example speculative_speed
candle="$target_dir/release/candle"

train() { # name layers width iters
  local dir="$runs/speculative-$1"
  if [[ -f "$dir/checkpoint.safetensors" && -z "${FORCE:-}" ]]; then
    echo "==> $dir exists: reusing it (FORCE=1 retrains)" >&2
    return
  fi
  echo "==> training $dir: $2 layers, width $3, $4 steps" >&2
  RAYON_NUM_THREADS=2 "$candle" train shakespeare --layers "$2" --heads 4 --width "$3" \
    --context 128 --iters "$4" --warmup-iters 50 --eval-interval "$4" --eval-iters 20 \
    --samples 0 --quiet --force --out "$dir"
}
train draft 1 64 "$draft_iters"
train target 4 256 "$target_iters"

RAYON_NUM_THREADS=2 "$target_dir/release/examples/speculative_speed" \
  --draft "$runs/speculative-draft" --target "$runs/speculative-target" "$@"
