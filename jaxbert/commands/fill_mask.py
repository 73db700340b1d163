"""`jaxbert fill-mask`: the most likely tokens at each mask token of a text.

    jaxbert fill-mask --model PATH [--top-k 5] "Paris is the [MASK] of France." ...

Write the model's own mask token ([MASK] for BERT / ALBERT / DistilBERT / ELECTRA, <mask> for RoBERTa).
Prints one JSON line per text: {"text": ..., "masks": [[[token, probability], ...], ...]}, one list per
mask token (left to right), best first.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="a model with an MLM head: jaxbert bundle, pretraining workdir or HF *ForMaskedLM dir")
    parser.add_argument("--top-k", type=int, default=5, help="tokens to print per mask (default 5)")
    parser.add_argument("--max-length", type=int, default=512,
                        help="tokens per text, special tokens included (default 512); longer texts are truncated")
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="texts with one or more mask tokens")


def run(args: argparse.Namespace) -> int:
    import jaxbert

    model = jaxbert.load(args.model)
    results = model.fill_mask(args.texts, top_k=args.top_k, max_length=args.max_length)
    for text, masks in zip(args.texts, results, strict=True):
        print(json.dumps({"text": text, "masks": [[[token, round(p, 6)] for token, p in mask] for mask in masks]},
                         ensure_ascii=False))
    return 0
