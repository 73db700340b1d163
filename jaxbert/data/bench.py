"""Throughput of the pretraining data path; prints one JSON line.

    python -m jaxbert.data.bench --corpus FILE [FILE ...] --tokenizer DIR [--format nsp] [--seq 128]
        [--batch 256] [--repeat 1] [--loader-batches 200]

Example creation (read + batch tokenization + cutting examples) and the full build (plus TFDS array_record
writing) run pinned to one CPU core with the Rust tokenizer limited to one thread. The loader then runs on
all cores of this process's affinity and reports tokens/s of whole batches (`batch * seq` a batch) and of
real (non-padding) tokens. Rates per CPU-second (process time) are given too: on a shared machine they
are the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _pin_to_one_core() -> set[int]:
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    return cores


def bench_creation(corpus: list[str], tokenizer, fmt: str, seq: int, repeat: int) -> dict[str, float]:
    """Tokens/s of reading + tokenizing + cutting examples (nothing written)."""
    from jaxbert.data.corpus import read_documents
    from jaxbert.data.pretraining import ExampleConfig, ExampleStats, create_examples

    documents = list(read_documents(corpus)) * repeat
    stats = ExampleStats()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in create_examples(documents, tokenizer, ExampleConfig(format=fmt, max_seq_len=seq), stats):
        pass
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # Tokens per CPU-second is the one-core rate even when other processes share the core.
    return {"creation_s": seconds, "creation_cpu_s": cpu, "creation_corpus_tokens": stats.corpus_tokens,
            "creation_examples": stats.examples, "creation_tokens_per_s": stats.corpus_tokens / seconds,
            "creation_tokens_per_cpu_s": stats.corpus_tokens / cpu}


def bench_build(corpus: list[str], tokenizer, fmt: str, seq: int, out_dir: Path) -> dict[str, float]:
    """Tokens/s of the whole build, array_record writing included."""
    from jaxbert.data.tfds_builder import build_pretraining_dataset

    start, cpu_start = time.perf_counter(), time.process_time()
    summary = build_pretraining_dataset(corpus, tokenizer, out_dir, format=fmt, max_seq_len=seq)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"build_s": seconds, "build_cpu_s": cpu, "build_examples": summary.examples.examples,
            "build_tokens_per_s": summary.examples.corpus_tokens / seconds,
            "build_tokens_per_cpu_s": summary.examples.corpus_tokens / cpu}


def bench_loader(data_dir: Path, batch: int, batches: int) -> dict[str, float]:
    """Batches/s of the grain loader after a short warm-up."""
    from jaxbert.data.loader import make_pretraining_loader

    loader = make_pretraining_loader(data_dir, global_batch_size=batch, seed=0, shard_index=0, shard_count=1)
    for _ in range(5):
        next(loader)
    real = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(batches):
        b = next(loader)
        real += int(b["attention_mask"].sum())
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    seq = b["input_ids"].shape[1]
    loader.close()
    return {"loader_batches_per_s": batches / seconds, "loader_tokens_per_s": batches * batch * seq / seconds,
            "loader_real_tokens_per_s": real / seconds, "loader_tokens_per_cpu_s": batches * batch * seq / cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxbert.data.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", nargs="+", required=True, help="corpus files (.txt/.jsonl, optionally .gz)")
    parser.add_argument("--tokenizer", required=True, help="a directory with tokenizer files")
    parser.add_argument("--format", default="nsp", choices=("nsp", "sop", "full_sentences"))
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1, help="cut examples from the corpus this many times over")
    parser.add_argument("--loader-batches", type=int, default=200)
    args = parser.parse_args(argv)

    # One Rust thread: the figure is per core. Set before the tokenizer's thread pool starts.
    os.environ["RAYON_NUM_THREADS"] = "1"
    from jaxbert.tokenize import load_tokenizer

    cores = _pin_to_one_core()
    tokenizer = load_tokenizer(args.tokenizer)
    result = {"format": args.format, "seq": args.seq, "batch": args.batch, "tokenizer": tokenizer.kind,
              "creation_cores": 1}
    result.update(bench_creation(args.corpus, tokenizer, args.format, args.seq, args.repeat))
    with tempfile.TemporaryDirectory() as tmp:
        result.update(bench_build(args.corpus, tokenizer, args.format, args.seq, Path(tmp) / "ds"))
        os.sched_setaffinity(0, cores)
        result["loader_cores"] = len(cores)
        result.update(bench_loader(Path(tmp) / "ds", args.batch, args.loader_batches))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
