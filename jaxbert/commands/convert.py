"""`jaxbert convert`: between jaxbert bundles / training workdirs and Hugging Face directories."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, help="jaxbert bundle, training workdir or HF dir")
    parser.add_argument("--to", dest="target", required=True, help="output directory")
    parser.add_argument("--format", default="jaxbert", choices=("jaxbert", "hf"),
                        help="jaxbert: a bundle jaxbert.load opens; hf: a dir transformers loads")


def run(args: argparse.Namespace) -> int:
    import jaxbert

    model = jaxbert.load(args.source)
    out = jaxbert.export_hf(model, args.target) if args.format == "hf" else model.save(args.target)
    print(f"wrote {args.format} checkpoint ({model.config.family}, {model.config.num_layers} layers) to {out}")
    return 0
