"""Console logging for the command line and the scripts: one format, third-party chatter at WARNING."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

NOISY = ("absl", "orbax", "jax._src", "tensorflow_datasets", "grain", "google", "gcsfs", "fsspec", "urllib3")


def setup_logging() -> None:
    """INFO lines `HH:MM:SS L name: message` on stderr; libraries that narrate every call kept to warnings."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _QuietFileHandler(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:  # a full disk must not print a logging traceback
        pass


_ROUTED: dict[str, Any] = {}


def library_log() -> Path:
    """Where route_storage_errors sends what it keeps off the console."""
    return Path(tempfile.gettempdir()) / f"jaxbert-{os.getpid()}-storage-errors.log"


def route_storage_errors() -> Path:
    """Keep the storage libraries' own failure reports off the console, in `library_log()` instead: Orbax's
    error records (whole tracebacks from its background threads), asyncio's "exception was never retrieved"
    for Orbax's tasks, and the "Event loop is closed" tracebacks TensorStore prints when a failed save's
    callbacks find Orbax's event loop gone. jaxbert reports each failure itself, in one line. Idempotent."""
    target = library_log()
    if _ROUTED.get("file") == target:
        return target
    handler = _QuietFileHandler(target, delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    class _Route(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.levelno < logging.ERROR:
                return True
            text = f"{record.pathname} {record.getMessage()}"
            if "orbax" in text or "tensorstore" in text.lower():
                handler.handle(record)
                return False
            return True

    for name in ("absl", "asyncio", "orbax"):
        logging.getLogger(name).addFilter(_Route())
    previous = sys.unraisablehook

    def unraisablehook(unraisable: Any) -> None:  # how TensorStore reports a callback that raised
        kind, value, tb = unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback
        if kind is RuntimeError and str(value) == "Event loop is closed" and _ends_in_asyncio(tb):
            with contextlib.suppress(OSError), open(target, "a", encoding="utf-8") as f:
                traceback.print_exception(kind, value, tb, file=f)
            return
        previous(unraisable)

    sys.unraisablehook = unraisablehook
    _ROUTED["file"] = target
    return target


def _ends_in_asyncio(tb: Any) -> bool:
    frames = traceback.extract_tb(tb)
    return bool(frames) and "asyncio" in frames[-1].filename
