"""Tokenizer throughput: `benchmark_encode(tokenizer, lines)`, or from a shell

    python -m jaxbert.tokenize.bench --tokenizer DIR [DIR ...] --corpus FILE [FILE ...]

which prints one JSON line per tokenizer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from jaxbert.tokenize.base import Tokenizer


@contextlib.contextmanager
def one_core() -> Iterator[bool]:
    """Pins this process to one CPU (Linux) and turns off `tokenizers`' thread pool; yields whether pinned."""
    previous_env = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    previous = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        if previous:
            os.sched_setaffinity(0, {min(previous)})
        yield previous is not None
    finally:
        if previous:
            os.sched_setaffinity(0, previous)
        if previous_env is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous_env


def _best_time(fn, repeats: int) -> tuple[float, float, Any]:
    """(best wall seconds, best CPU seconds of this process, fn's result) over `repeats` runs."""
    best, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return best, best_cpu, result


def benchmark_encode(
    tokenizer: Tokenizer,
    lines: Sequence[str],
    *,
    batch_size: int = 1000,
    max_length: int = 128,
    repeats: int = 3,
    single_core: bool = True,
) -> dict[str, Any]:
    """Throughput of batch encoding `lines` in chunks of `batch_size` (best of `repeats`).

    `tokens_per_s`: `encode_batch` (ragged ids, no special tokens: what corpus preparation runs).
    `call_tokens_per_s`: `tokenizer(chunk, max_length, padding="longest")`, counting real (unpadded)
    tokens: what fine-tuning and embedding run. With `single_core` the process is pinned to one CPU.
    The `*_per_cpu_s` figures divide by this process's CPU time instead of wall time: the honest
    one-core figure on a machine shared with other work, where wall time also counts waiting.
    """
    texts = [t for t in lines if t.strip()]
    chunks = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]

    def raw() -> int:
        return sum(len(ids) for chunk in chunks for ids in tokenizer.encode_batch(chunk))

    def call() -> int:
        total = 0
        for chunk in chunks:
            total += int(tokenizer(chunk, max_length=max_length, padding="longest")["attention_mask"].sum())
        return total

    with one_core() if single_core else contextlib.nullcontext(False) as pinned:
        raw_s, raw_cpu, tokens = _best_time(raw, repeats)
        call_s, call_cpu, call_tokens = _best_time(call, repeats)
    chars = sum(len(t) for t in texts)
    return {
        "kind": tokenizer.kind,
        "vocab_size": tokenizer.vocab_size,
        "lines": len(texts),
        "chars": chars,
        "tokens": tokens,
        "encode_batch_s": round(raw_s, 4),
        "encode_batch_cpu_s": round(raw_cpu, 4),
        "tokens_per_s": round(tokens / raw_s),
        "tokens_per_cpu_s": round(tokens / raw_cpu),
        "chars_per_s": round(chars / raw_s),
        "call_tokens": call_tokens,
        "call_s": round(call_s, 4),
        "call_tokens_per_s": round(call_tokens / call_s),
        "call_tokens_per_cpu_s": round(call_tokens / call_cpu),
        "batch_size": batch_size,
        "max_length": max_length,
        "single_core": bool(pinned),
    }


def main(argv: list[str] | None = None) -> int:
    from jaxbert.errors import JaxbertError
    from jaxbert.tokenize.corpus import iter_corpus
    from jaxbert.tokenize.load import load_tokenizer

    parser = argparse.ArgumentParser(prog="python -m jaxbert.tokenize.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", nargs="+", required=True, help="folders with tokenizer files")
    parser.add_argument("--corpus", nargs="+", required=True, help="text files (.txt, .txt.gz, .jsonl)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--all-cores", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args(argv)
    try:
        lines = list(iter_corpus(args.corpus))
        for path in args.tokenizer:
            result = benchmark_encode(
                load_tokenizer(path),
                lines,
                batch_size=args.batch_size,
                max_length=args.max_length,
                repeats=args.repeats,
                single_core=not args.all_cores,
            )
            print(json.dumps({"tokenizer": str(path), **result}), flush=True)
    except JaxbertError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
