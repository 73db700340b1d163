"""`jaxbert vocab`: train a WordPiece, byte-level BPE or SentencePiece vocabulary on text files."""

from __future__ import annotations

import argparse
import dataclasses
import json

from jaxbert.errors import JaxbertError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", nargs="+", required=True, help="text files or folders (.txt, .txt.gz, .jsonl)")
    parser.add_argument("--kind", required=True, choices=("wordpiece", "bpe", "sentencepiece"))
    parser.add_argument("--size", type=int, required=True, help="vocabulary size (ids), special tokens included")
    parser.add_argument("--out", required=True, help="folder to write the tokenizer files to")
    parser.add_argument("--cased", action="store_true", help="keep case and accents (byte-level BPE always does)")
    parser.add_argument("--min-frequency", type=int, default=2, help="WordPiece/BPE: rarest pair count to merge")
    parser.add_argument("--limit-alphabet", type=int, default=1000,
                        help="WordPiece: most distinct characters kept (raise it for Chinese, e.g. 5000)")
    parser.add_argument("--word-segmenter", default="", choices=("", "pku", "spaces"),
                        help="a pre-segmented corpus (PKU word/tag items, or words between spaces): train on "
                             "the running text its words make, as pretraining with data.word_segmenter reads it")
    parser.add_argument(
        "--encoding-errors",
        choices=("strict", "replace"),
        default="strict",
        help="bytes that are not UTF-8: stop with an error naming the line (strict) or use U+FFFD (replace)",
    )


def run(args: argparse.Namespace) -> int:
    """Trains, writes the files to --out and prints one JSON line describing the result."""
    from jaxbert.tokenize import train_vocab

    if getattr(args, "overrides", None):
        raise JaxbertError(f"jaxbert vocab takes no --config overrides, got {' '.join(args.overrides)}")
    tokenizer = train_vocab(
        args.corpus,
        args.kind,
        args.size,
        args.out,
        lowercase=not (args.cased or args.kind == "bpe"),
        min_frequency=args.min_frequency,
        limit_alphabet=args.limit_alphabet,
        errors=args.encoding_errors,
        segmenter=args.word_segmenter,
    )
    print(
        json.dumps(
            {
                "kind": tokenizer.kind,
                "vocab_size": tokenizer.vocab_size,
                "special": dataclasses.asdict(tokenizer.special),
                "out": str(args.out),
            }
        )
    )
    return 0
