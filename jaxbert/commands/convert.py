"""`jaxbert convert`: between jaxbert bundles / training workdirs / Google TF checkpoints and Hugging Face dirs."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True,
                        help="jaxbert bundle, training workdir, HF dir (local or gs://), or Google TF checkpoint "
                             "(dir or prefix)")
    parser.add_argument("--to", dest="target", required=True,
                        help="output directory (local or gs://); must not exist yet or be empty")
    parser.add_argument("--format", default="jaxbert", choices=("jaxbert", "hf"),
                        help="jaxbert: a bundle jaxbert.load opens; hf: a dir transformers loads")
    parser.add_argument("--part", default=None, choices=("discriminator", "generator"),
                        help="ELECTRA (workdir or TF checkpoint): which model to convert (default: discriminator); "
                             "the generator exports as ElectraForMaskedLM")
    parser.add_argument("--model-config", default=None,
                        help="a TF checkpoint's architecture when no config file lies beside it (ELECTRA's "
                             "releases): a preset name (e.g. electra-small) or a config.json path")


def run(args: argparse.Namespace) -> int:
    import jaxbert
    from jaxbert import formats

    model = jaxbert.load(args.source, part=args.part, config=args.model_config)
    if args.format == "hf":
        out = jaxbert.export_hf(model, args.target)
    else:  # unlike p.save in a notebook, the command never replaces an existing bundle
        out = formats.write_bundle(args.target, model.config, model.params, tokenizer_dir=model._tokenizer_dir,
                                   tokenizer=model.tokenizer, replace=False)
    print(f"wrote {args.format} checkpoint ({model.config.family}, {model.config.num_layers} layers) to {out}")
    return 0
