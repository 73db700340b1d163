"""The writer side of a training workdir: whose it is, who writes it now, and what a failed write left intact.

`open_workdir(DIR, kind)` is entered by every run before it writes anything:
  * the directory must be empty (or absent), or be recognised as jaxbert's by its marker
    (WORKDIR/.jaxbert-workdir, written when the run claims it) or, for workdirs older than the marker,
    by holding nothing but what a run writes; anything else (a Hugging Face model directory, a bundle,
    someone's files) is refused in one line and never written to;
  * the run holds the directory's lock (`jaxbert.lock`) until it ends; a second run is refused in one
    line naming the holder (host, pid, start time);
  * a write that fails (disk full, quota, read-only file system) ends the run with one line naming the
    path, the cause and what is intact (the complete checkpoints, the step a rerun resumes from).

In a multi-process run, process 0 claims and locks; the others follow its verdict.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import jax

from jaxbert import storage
from jaxbert.errors import JaxbertError
from jaxbert.formats.workdir import BEST_DIR, CHECKPOINT_DIR, SET_ASIDE_DIR, TOKENIZER_DIR
from jaxbert.lock import LOCK_FILE, DirectoryLock

log = logging.getLogger(__name__)

MARKER = ".jaxbert-workdir"
WORKDIR_FORMAT = "jaxbert-workdir"
# Everything a pretraining, distillation or fine-tuning run writes at the top of its workdir.
RUN_FILES = frozenset({MARKER, LOCK_FILE, CHECKPOINT_DIR, TOKENIZER_DIR, BEST_DIR, SET_ASIDE_DIR, "corpus", "data",
                       "metrics.jsonl", "config.json", "tensorboard", "student-init"})
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}
WRITE_MESSAGES = ("No space left on device", "Disk quota exceeded", "File too large", "Read-only file system",
                  "Input/output error")


class WorkdirRefused(JaxbertError):
    """The directory is not one a run may write: someone else's files, or another kind of run's workdir."""


class WriteFailedError(JaxbertError):
    """A write into the workdir failed; the message names the cause and what is intact."""


# ---- claiming --------------------------------------------------------------------------------
def _entries(directory: storage.Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def _read_marker(directory: storage.Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / MARKER).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # a marker is there, unreadable: still ours


def check_claimable(workdir: storage.PathLike, kind: str) -> None:
    """Refuse, before anything is written, a directory a run of `kind` must not write into."""
    directory = storage.path(workdir)
    if directory.exists() and not directory.is_dir():
        raise WorkdirRefused(f"--workdir {storage.display(directory)} is a file, not a directory; choose a "
                             "directory (a new or empty one, or a jaxbert workdir)")
    marker = _read_marker(directory)
    if marker is not None:
        recorded = marker.get("kind")
        if recorded and recorded != kind and kind != "train" and recorded != "train":
            raise WorkdirRefused(f"--workdir {storage.display(directory)} is a {recorded} workdir; a {kind} run "
                                 "writes its own: choose a new --workdir")
        return
    names = _entries(directory)
    foreign = [n for n in names if n not in RUN_FILES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise WorkdirRefused(f"--workdir {storage.display(directory)} is not empty and is not a jaxbert workdir "
                             f"(it holds {shown}; no {MARKER}); a run writes only into a new or empty directory or "
                             "its own workdir, so nothing was written: choose another --workdir")
    if "config.json" in names and not _is_run_config(directory / "config.json"):
        raise WorkdirRefused(f"--workdir {storage.display(directory)}: its config.json is not a jaxbert run config "
                             "(no train and checkpoint sections), so this is not a jaxbert workdir; nothing was "
                             "written: choose another --workdir")


def _is_run_config(p: storage.Path) -> bool:
    try:
        config = json.loads(p.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "train" in config and "checkpoint" in config


def _mark(directory: storage.Path, kind: str) -> None:
    if _read_marker(directory) is None:
        storage.write_json(directory / MARKER, {
            "format": WORKDIR_FORMAT, "version": 1, "kind": kind,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})


# ---- write failures --------------------------------------------------------------------------
def write_failure(e: BaseException) -> str | None:
    """The cause, when `e` (or an exception it wraps) is a failed write: disk full, quota, read-only..."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
            return f"{os.strerror(e.errno)}{f' ({e.filename})' if e.filename else ''}"
        text = str(e)
        for message in WRITE_MESSAGES:
            if message in text:
                return message
        e = e.__cause__ or e.__context__
    return None


def intact_summary(workdir: storage.PathLike) -> str:
    """What a rerun finds: the complete checkpoints (newest first) and where it resumes, or that none exist."""
    import orbax.checkpoint as ocp

    directory = storage.path(workdir) / CHECKPOINT_DIR
    try:
        steps = sorted((int(m.step) for m in ocp.step.standard_name_format().find_all(directory)),
                       reverse=True) if directory.is_dir() else []
    except Exception:  # listing failed too: say so rather than guess
        return "could not list the checkpoints to say which are intact"
    if not steps:
        return ("no checkpoint was saved yet (the tokenizer and dataset caches are written whole or not at all), "
                "so the rerun starts from step 0")
    shown = ", ".join(str(s) for s in steps[:5]) + (", ..." if len(steps) > 5 else "")
    return f"the complete checkpoints are intact (steps {shown}) and the rerun resumes from step {steps[0]}"


# ---- the one entry point ---------------------------------------------------------------------
_OPEN: set[str] = set()  # workdirs this process has open (a nested open only re-enters)


def _agree(ok: bool, what: str) -> None:
    """Every process learns whether process 0 claimed the workdir; the others raise if it did not."""
    if jax.process_count() == 1:
        return
    import numpy as np
    from jax.experimental import multihost_utils

    verdict = int(multihost_utils.broadcast_one_to_all(np.asarray(int(ok), np.int32)))
    if not verdict and jax.process_index() != 0:
        raise WorkdirRefused(f"process 0 could not open the workdir {what} (its log says why)")


@contextlib.contextmanager
def open_workdir(workdir: storage.PathLike, kind: str) -> Iterator[DirectoryLock | None]:
    """Claim, lock and mark `workdir` for a run of `kind` ("pretrain", "distill", "finetune", "train")
    for the block; a nested open of the same workdir in this process only re-enters (see module docstring).

    Yields the lock (None on processes other than 0)."""
    directory = storage.path(workdir)
    key = os.fspath(directory)
    primary = jax.process_index() == 0
    if key in _OPEN:  # the pipeline around this block opened it already (on every process alike)
        yield DirectoryLock.held(directory)
        return
    with contextlib.ExitStack() as stack:
        stack.callback(_OPEN.discard, key)
        _OPEN.add(key)
        lock = None
        ok = False
        failed = [False]
        if primary and not directory.exists():
            # A run refused before it wrote anything (bad data, a bad config) leaves no workdir behind; this runs
            # after the lock is released (the stack unwinds last in, first out).
            stack.callback(lambda: failed[0] and _remove_if_only_claimed(directory))
        try:
            if primary:
                check_claimable(directory, kind)
                lock = stack.enter_context(DirectoryLock.hold(directory))
                _mark(directory, kind)
            ok = True
        finally:
            _agree(ok, storage.display(directory))
        try:
            yield lock
        except JaxbertError:
            failed[0] = True
            raise
        except Exception as e:
            failed[0] = True
            cause = write_failure(e)
            if cause is None:
                raise
            raise WriteFailedError(f"writing to {storage.display(directory)} failed: {cause}; "
                                   f"{intact_summary(directory)}; free space (or fix the cause) and run the same "
                                   "command again") from e


def _remove_if_only_claimed(directory: storage.Path) -> None:
    """Remove a workdir this run created when it holds nothing but the claim (marker and lock file)."""
    try:
        names = {p.name for p in directory.iterdir()}
        if names <= {MARKER, LOCK_FILE}:
            for name in names:
                (directory / name).unlink()
            directory.rmdir()
    except Exception as e:  # noqa: BLE001 -- leaving an empty claimed workdir behind is harmless; go on
        log.debug("could not remove the unused workdir %s: %s", storage.display(directory), e)


def check_lock(workdir: storage.PathLike) -> None:
    """Raise if this process's lease on `workdir` was lost (a local lock cannot be); no-op when not held here."""
    lock = DirectoryLock.held(workdir)
    if lock is not None:
        lock.check()
