#!/usr/bin/env bash
# GPT-2 tokenizer speed: ours and tiktoken's, side by side, one thread each.
#
#   bench/tokenizer.sh [FILE]          # default data/shakespeare/shakespeare_small.txt
#   PYTHON=/work/venv-tok/bin/python bench/tokenizer.sh
#   REPEATS=10 bench/tokenizer.sh
#
# Prints MB/s (10^6 bytes of text per second, best of REPEATS runs) of both
# and their ratio. Without tiktoken (pip install tiktoken) it says so and
# times ours alone.
set -euo pipefail
# An absolute path: the bench binary runs in chapters/08-gpt, not here.
if [[ $# -ge 1 ]]; then file="$(realpath "$1")"; fi
cd "$(dirname "$0")/.."
file="${file:-$PWD/data/shakespeare/shakespeare_small.txt}"
repeats="${REPEATS:-5}"
python="${PYTHON:-python3}"

ours_out="$(cargo bench --quiet -p chapter-08 --bench tokenizer_speed -- "$file" --repeats "$repeats")"
echo "$ours_out" | grep -v '^encode_mb_per_s='
ours="$(echo "$ours_out" | sed -n 's/^encode_mb_per_s=//p')"

if "$python" -c 'import tiktoken' 2>/dev/null; then
  theirs_out="$(RAYON_NUM_THREADS=1 "$python" bench/tokenizer_tiktoken.py "$file" --repeats "$repeats")"
  echo "$theirs_out" | grep -v '^encode_mb_per_s='
  theirs="$(echo "$theirs_out" | sed -n 's/^encode_mb_per_s=//p')"
  awk -v o="$ours" -v t="$theirs" 'BEGIN { printf "ours / tiktoken: %.2fx\n", o / t }'
else
  echo "tiktoken is not installed for $python (pip install tiktoken, or set PYTHON=...): timed ours only"
fi
