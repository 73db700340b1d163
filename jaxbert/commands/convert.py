"""`jaxbert convert`: between jaxbert bundles / training workdirs / Google TF checkpoints and Hugging Face dirs."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True,
                        help="jaxbert bundle, training workdir, HF dir (local or gs://), Hub name hf://org/name"
                             "[@revision], or Google TF checkpoint (dir or prefix)")
    parser.add_argument("--to", dest="target", default=None,
                        help="output directory (local or gs://); must not exist yet or be empty (optional with "
                             "--push-to-hub: a temporary directory)")
    parser.add_argument("--push-to-hub", default=None, metavar="ORG/NAME",
                        help="then upload the converted directory to this Hub repo (created if needed; needs a "
                             "token: `hf auth login` or HF_TOKEN)")
    parser.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    parser.add_argument("--format", default="jaxbert", choices=("jaxbert", "hf"),
                        help="jaxbert: a bundle jaxbert.load opens; hf: a dir transformers loads")
    parser.add_argument("--part", default=None, choices=("discriminator", "generator"),
                        help="ELECTRA (workdir or TF checkpoint): which model to convert (default: discriminator); "
                             "the generator exports as ElectraForMaskedLM")
    parser.add_argument("--model-config", default=None,
                        help="a TF checkpoint's architecture when no config file lies beside it (ELECTRA's "
                             "releases): a preset name (e.g. electra-small) or a config.json path")


def run(args: argparse.Namespace) -> int:
    import tempfile

    import jaxbert
    from jaxbert import formats, storage
    from jaxbert.errors import JaxbertError

    if args.target is None and not args.push_to_hub:
        raise JaxbertError("--to: give the output directory (or --push-to-hub ORG/NAME to upload it)")
    if args.push_to_hub and args.target is not None and storage.is_url(args.target):
        raise JaxbertError("--push-to-hub uploads a local directory; give a local --to (or none)")
    model = jaxbert.load(args.source, part=args.part, config=args.model_config)
    with tempfile.TemporaryDirectory() as tmp:
        target = args.target or f"{tmp}/model"
        if args.format == "hf":
            out = jaxbert.export_hf(model, target)
        else:  # unlike p.save in a notebook, the command never replaces an existing bundle
            out = formats.write_bundle(target, model.config, model.params, tokenizer_dir=model._tokenizer_dir,
                                       tokenizer=model.tokenizer, replace=False)
        where = out if args.target else "a temporary directory"
        print(f"wrote {args.format} checkpoint ({model.config.family}, {model.config.num_layers} layers) to {where}")
        if args.push_to_hub:
            from jaxbert.formats import hub

            url = hub.push(out, args.push_to_hub, private=args.private,
                           message=f"Upload {model.config.family} converted by jaxbert from {args.source}")
            print(f"pushed to the Hub repo {args.push_to_hub}: {url}")
    return 0
