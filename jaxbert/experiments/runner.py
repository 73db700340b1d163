"""The command line every experiment module shares: `python -m jaxbert.experiments.NAME --config F --workdir D`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from jaxbert.errors import JaxbertError


def experiment_main(name: str, doc: str | None, run: Callable[[Any, str], Any],
                    argv: list[str] | None = None) -> int:
    """Parses `--config`, `--workdir` and `--config.key=value` overrides, then calls `run(config, workdir)`."""
    from jaxbert.logs import setup_logging
    from jaxbert.train.experiment import apply_overrides, load_config

    parser = argparse.ArgumentParser(prog=f"python -m jaxbert.experiments.{name}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--workdir", required=True)
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if not a.startswith("--config.")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    setup_logging()
    config = load_config(args.config)
    apply_overrides(config, extra)
    run(config, args.workdir)
    return 0


def run_as_script(name: str, main: Callable[[], int]) -> None:
    """Exits with `main()`'s code; a JaxbertError is one line on stderr and exit code 1."""
    try:
        sys.exit(main())
    except JaxbertError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(1)
