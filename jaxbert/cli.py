"""`jaxbert` command line: one sub-command per module in jaxbert.commands."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command name -> module in jaxbert.commands exposing `add_arguments(parser)` and `run(args) -> int`.
COMMANDS = {
    "pretrain": "Pretrain a model (MLM+NSP / MLM / MLM+SOP ...) from an ml_collections config.",
    "distill": "Distil a student from a teacher (DistilBERT, Patient KD) from a config.",
    "finetune": "Fine-tune on a task (GLUE, SQuAD, CoNLL-2003) from a config.",
    "embed": "Write sentence embeddings of a text file (one text a line) to .npy.",
    "convert": "Convert a checkpoint (bundle, workdir, HF dir, Google TF checkpoint) to a bundle or HF dir.",
    "eval": "Evaluate a checkpoint on a task's data; prints one JSON line of metrics.",
    "bench": "Benchmark a train step; prints one JSON line.",
    "vocab": "Train a WordPiece, byte-level BPE or SentencePiece vocabulary on a corpus.",
    "compile": "Compile a config's train step for a TPU topology (libtpu, no TPU needed); prints one JSON line.",
}


def _load(name: str):
    return importlib.import_module(f"jaxbert.commands.{name}")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxbert", description="BERT-family models in JAX/Flax.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None
    if argv:
        wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # Import only the module of the command being run: start-up stays fast.
        if wanted == name:
            _load(name).add_arguments(p)
            # The flag each argument was given by (a dest may differ from it: --from -> source).
            parser.set_defaults(flags={a.dest: a.option_strings[0] for a in p._actions if a.option_strings})
    return parser


# Path-valued config overrides: checked like path flags before a command runs.
PATH_OVERRIDES = ("init", "data.corpus", "data.eval_corpus", "data.train", "data.eval", "data.tokenizer",
                  "data.data_dir", "objective.teacher")


def _named_paths(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(flag, value) of every string flag and path override of the command line (lists split at commas)."""
    flags = getattr(args, "flags", {})
    named: list[tuple[str, str]] = []
    for dest, value in vars(args).items():
        if dest in ("command", "flags", "overrides"):
            continue
        values = value if isinstance(value, list) else [value]
        named += [(flags.get(dest, f"--{dest}"), v) for v in values if isinstance(v, str)]
    for override in args.overrides:
        key, _, value = override[len("--config."):].partition("=")
        if key in PATH_OVERRIDES:
            named += [(f"--config.{key}", v.strip("()[]'\" ")) for v in value.split(",") if v.strip("()[]'\" ")]
    return named


def path_error(args: argparse.Namespace) -> str | None:
    """A one-line error for a path the command cannot use, found before anything is written: a URL of a scheme
    jaxbert does not read, or a gs:// bucket that does not exist or refuses this account."""
    from jaxbert import storage

    for flag, value in _named_paths(args):
        if "://" in value and not storage.is_url(value):
            return f"{flag}={value}: unsupported URL scheme; jaxbert reads local paths and gs://bucket/... URLs"
    for flag, value in _named_paths(args):
        if storage.is_url(value):
            try:
                storage.check_access(value, what=flag)
            except storage.StorageError as e:
                return str(e)
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    # ml_collections-style `--config.key=value` overrides are passed through to the command.
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    unknown = [a for a in extra if not a.startswith("--config.")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [a for a in extra if a.startswith("--config.")]
    if (problem := path_error(args)) is not None:
        print(f"jaxbert {args.command}: error: {problem}", file=sys.stderr)
        return 1
    from jaxbert.errors import JaxbertError

    try:
        return int(_load(args.command).run(args) or 0)
    except JaxbertError as e:
        print(f"jaxbert {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
