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
    "export": "Export a model or fine-tuned task model for serving (StableHLO, ONNX) with its tokenizer.",
    "compile": "Compile a config's train step for a TPU topology (libtpu, no TPU needed); prints one JSON line.",
    "fill-mask": "Print the most likely tokens for each mask token of a text (models with an MLM head).",
}
# Module names of commands whose name is not a Python identifier.
MODULES = {"fill-mask": "fill_mask"}

# An example of `--config.key=value` overrides in the help of each command that reads a config file.
OVERRIDE_EXAMPLES = {
    "pretrain": "--config.train.steps=1000 --config.train.lr=2e-4 --config.model.num_layers=4",
    "distill": "--config.objective.teacher=TEACHER_DIR --config.train.steps=500",
    "finetune": "--config.init=PRETRAINED_DIR --config.train.lr=3e-5 --config.train.epochs=2",
    "compile": "--config.train.batch_size=1024 --config.model.remat=full",
}
OVERRIDE_HELP = """config overrides:
  --config.KEY=VALUE    set any key of the config file (nested keys joined by dots), typed as the value
  --config.KEY VALUE    it replaces; the space form works too. Example:
                        {example}"""


def _load(name: str):
    return importlib.import_module(f"jaxbert.commands.{MODULES.get(name, name)}")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    from jaxbert import __version__

    parser = argparse.ArgumentParser(prog="jaxbert", description="BERT-family models in JAX/Flax.")
    parser.add_argument("--version", action="version", version=f"jaxbert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None
    if argv:
        wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        # Import only the module of the command being run: start-up stays fast.
        if wanted == name:
            _load(name).add_arguments(p)
            takes_config = any("--config" in a.option_strings for a in p._actions)
            if takes_config:
                p.epilog = OVERRIDE_HELP.format(example=OVERRIDE_EXAMPLES.get(name, "--config.train.steps=1000"))
            # The flag each argument was given by (a dest may differ from it: --from -> source).
            parser.set_defaults(flags={a.dest: a.option_strings[0] for a in p._actions if a.option_strings},
                                takes_config=takes_config)
    return parser


def config_overrides(extra: list[str]) -> tuple[list[str], list[str]]:
    """(overrides as "--config.key=value", everything else) from the arguments argparse did not know.

    `--config.key value` (space form) becomes `--config.key=value`; a key with no value is kept as
    given, so the config loader names it in its error.
    """
    overrides, unknown = [], []
    i = 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--config."):
            unknown.append(arg)
        elif "=" not in arg and i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            overrides.append(f"{arg}={extra[i + 1]}")
            i += 1
        else:
            overrides.append(arg)
        i += 1
    return overrides, unknown


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
    from jaxbert.formats.hub import is_hub_name

    for flag, value in _named_paths(args):
        if "://" in value and not storage.is_url(value) and not is_hub_name(value):
            return (f"{flag}={value}: unsupported URL scheme; jaxbert reads local paths, gs://bucket/... URLs and "
                    "Hub names hf://org/name")
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
    args.overrides, unknown = config_overrides(extra)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.overrides and not getattr(args, "takes_config", False):
        takers = ", ".join(OVERRIDE_EXAMPLES)
        print(f"jaxbert {args.command}: error: {args.overrides[0]}: `jaxbert {args.command}` reads no config file, "
              f"so there is nothing to override; drop the --config.* flags (they belong to {takers})",
              file=sys.stderr)
        return 2
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
