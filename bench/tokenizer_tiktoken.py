#!/usr/bin/env python3
"""tiktoken's `gpt2` encoding on a text file, one thread: prints MB/s.

    python3 bench/tokenizer_tiktoken.py [FILE] [--repeats N]

The encoding is built from data/gpt2 (tiktoken would otherwise download the
same two files); `encode_ordinary` on the whole text runs on one thread.
Last line: `encode_mb_per_s=...`.
"""
import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")
import tiktoken  # noqa: E402
import tiktoken.load  # noqa: E402
from tiktoken_ext.openai_public import r50k_pat_str  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file", nargs="?", default=str(ROOT / "data/shakespeare/shakespeare_small.txt"))
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    gpt2 = ROOT / "data" / "gpt2"
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        str(gpt2 / "vocab.bpe"), str(gpt2 / "encoder.json")
    )
    enc = tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=50257,
        pat_str=r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )
    text = Path(a.file).read_text(encoding="utf-8")
    mb = len(text.encode("utf-8")) / 1e6
    enc.encode_ordinary(text)  # warm up
    best = min(timed(lambda: enc.encode_ordinary(text)) for _ in range(a.repeats))
    print(f"tiktoken {tiktoken.__version__} encode_ordinary: {mb / best:8.1f} MB/s")
    print(f"encode_mb_per_s={mb / best:.3f}")


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
