"""Console logging for the command line and the scripts: one format, third-party chatter at WARNING."""

from __future__ import annotations

import logging
import sys

NOISY = ("absl", "orbax", "jax._src", "tensorflow_datasets", "grain", "google", "gcsfs", "fsspec", "urllib3")


def setup_logging() -> None:
    """INFO lines `HH:MM:SS L name: message` on stderr; libraries that narrate every call kept to warnings."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
