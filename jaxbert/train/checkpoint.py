"""Orbax checkpoints of a training workdir: train state + data-iterator state + configs, atomically.

Layout: WORKDIR/checkpoints/<step>/{params, opt_state, data, config} (read back by
`jaxbert.formats.workdir`), local or on gs://. Orbax commits each step only when it is complete (a
rename locally, a commit marker written last on gs://), so a kill during a save leaves the previous
steps intact and `latest_step` only ever sees complete checkpoints (left-over temporary directories
are removed when the next run opens the manager).

What a run can rely on besides:
  * restore takes the newest step that reads back (a damaged one is named in a warning and set aside
    in WORKDIR/checkpoints-set-aside/, as are steps after an explicit `checkpoint.restore_step`, so a
    resumed run never saves over them or has keep-N rotate its own new steps out in their favour);
  * a checkpoint saved after non-finite steps were skipped is "suspect"; the newest clean one is never
    rotated out by keep-N (`_KeepNewestClean`);
  * a save that fails in the background is reported at the first step after it fails (`poll`), not at
    the next save;
  * every error is one line (`jaxbert.errors.reason`: no TensorStore internals).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import grain.python as grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from jaxbert import storage
from jaxbert.errors import reason
from jaxbert.formats.workdir import CHECKPOINT_DIR, SET_ASIDE_DIR, TOKENIZER_DIR, TRAIN_FORMAT, WorkdirError
from jaxbert.logs import route_storage_errors
from jaxbert.parallel.sharding import put_global
from jaxbert.train.state import TrainState

log = logging.getLogger(__name__)

FORMAT = TRAIN_FORMAT
PyTree = Any
CheckpointError = WorkdirError


class _SavedIteratorState:
    """A data-iterator state captured at save time, in the form grain's checkpoint handler writes.

    Capturing it before an async save returns keeps the saved position exactly at the saved step.
    """

    def __init__(self, state: Any) -> None:
        self._bytes = state if isinstance(state, bytes) else json.dumps(state, indent=2).encode()

    def get_state(self) -> bytes:
        return self._bytes


class _IteratorRestorer:
    """Feeds grain's checkpoint handler's restore into any iterator with get_state/set_state."""

    def __init__(self, iterator: Any) -> None:
        self.iterator = iterator
        self._wants_bytes = isinstance(iterator.get_state(), bytes)

    def set_state(self, state: bytes) -> None:
        self.iterator.set_state(state if self._wants_bytes else json.loads(state.decode()))

    def start_prefetch(self) -> None:
        start = getattr(self.iterator, "start_prefetch", None)
        if callable(start):
            start()


class _AnyHostCountIteratorHandler(grain.PyGrainCheckpointHandler):
    """grain's iterator checkpoint handler, restoring a state saved by any number of processes.

    grain writes one `process_<i>-of-<n>.json` per process and reads back only the file of the same i and
    n. jaxbert's iterators save the global position (the count of global batches served, the same on
    every process), so when the process count changed, any process's file resumes every process.
    """

    def restore(self, directory: epath.Path, item: Any = None, args: Any = None) -> Any:
        item = item or args.item
        directory = epath.Path(directory)
        own = directory / f"process_{jax.process_index()}-of-{jax.process_count()}.json"
        if not own.exists():
            saved = sorted(directory.glob("process_0-of-*.json")) or sorted(directory.glob("process_*-of-*.json"))
            if not saved:
                raise ValueError(f"{directory} holds no data-iterator state (process_*-of-*.json)")
            log.info("restoring the data position saved by %s (now %d processes)", saved[0].name,
                     jax.process_count())
            own = saved[0]
        item.set_state(own.read_text().encode())
        item.start_prefetch()
        return item


# Orbax binds an item to one handler for both directions, so saves go through it too (grain's format).
@ocp.args.register_with_handler(_AnyHostCountIteratorHandler, for_save=True)
@dataclasses.dataclass
class _IteratorSave(ocp.args.CheckpointArgs):
    item: Any


@ocp.args.register_with_handler(_AnyHostCountIteratorHandler, for_restore=True)
@dataclasses.dataclass
class _IteratorRestore(ocp.args.CheckpointArgs):
    item: Any


SUSPECT_KEY = "suspect"  # in a checkpoint's config item: non-finite steps were skipped since the previous save


class CheckpointSaveError(WorkdirError):
    """A checkpoint could not be written; the message names the step, the cause and the intact steps."""


class _KeepNewestClean:
    """Preservation policy: keep the newest checkpoint saved with no non-finite step skipped since the
    one before, so keep-N cannot rotate out the last good state while later checkpoints are suspect."""

    def __init__(self, suspect: set[int]) -> None:
        self.suspect = suspect  # shared with the Checkpointer, which adds each suspect save

    def should_preserve(self, checkpoints: list[Any], *, context: Any = None) -> list[bool]:
        clean = [i for i, info in enumerate(checkpoints) if info.step not in self.suspect]
        keep = clean[-1] if clean else None
        return [i == keep for i in range(len(checkpoints))]


def _manager(directory: storage.Path, keep: int = 3, keep_every: int = 0, async_save: bool = True,
             read_only: bool = False, suspect: set[int] | None = None) -> ocp.CheckpointManager:
    policies: list[Any] = [pp.LatestN(n=max(int(keep), 1))]
    if suspect is not None:
        policies.append(_KeepNewestClean(suspect))
    if keep_every > 0:
        policies.append(pp.EveryNSteps(interval_steps=int(keep_every)))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=pp.AnyPreservationPolicy(policies),
        enable_async_checkpointing=async_save,
        cleanup_tmp_directories=False,  # done synchronously by remove_unfinished_saves
        create=not read_only,
        read_only=read_only,
        save_root_metadata=not read_only,
        # The data iterator's state is written synchronously by every process into the step's temporary
        # directory; with directories created in the background, a non-primary process could write before
        # the directory existed (seen with two processes under load).
        async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
    )
    return ocp.CheckpointManager(directory, options=options)


def remove_unfinished_saves(directory: storage.Path) -> list[str]:
    """Delete the temporary step directories a killed save left behind (process 0); returns their names."""
    if jax.process_index() != 0 or not directory.is_dir():
        return []
    names = list(ocp.step.tmp_checkpoints(directory))
    for name in names:
        log.warning("removing the unfinished checkpoint %s left by an interrupted save", directory / name)
        storage.remove(directory / name)
    return names


class Checkpointer:
    """Save / restore the train state, the data iterator's position and the run's configs."""

    def __init__(self, workdir: str | os.PathLike, keep: int = 3, keep_every: int = 0,
                 async_save: bool = True) -> None:
        route_storage_errors()  # failures are reported by this class in one line, not by Orbax's tracebacks
        self.workdir = storage.path(workdir)
        self.directory = self.workdir / CHECKPOINT_DIR
        remove_unfinished_saves(self.directory)
        self.suspect = _suspect_steps(self.directory)
        self.manager = _manager(self.directory, keep, keep_every, async_save, suspect=self.suspect)
        self._in_flight: int | None = None  # the step an async save is writing
        self.failed = False

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def newest_clean_step(self) -> int | None:
        clean = [s for s in self.all_steps() if s not in self.suspect]
        return clean[-1] if clean else None

    # ---- saving
    def save(self, state: TrainState, meta: Mapping[str, Any], data_iterator: Any = None,
             suspect: bool = False) -> bool:
        """Save at `state.step` (async where enabled: returns once arrays are copied off the devices).

        `suspect`: non-finite steps were skipped since the previous save (see _KeepNewestClean)."""
        step = int(jax.device_get(state.step))
        self.poll()
        if suspect:
            self.suspect.add(step)
        items: dict[str, Any] = {"params": ocp.args.StandardSave(state.params),
                                 "config": ocp.args.JsonSave({**meta, SUSPECT_KEY: bool(suspect)})}
        if jax.tree_util.tree_leaves(state.opt_state):  # stateless optimizers have nothing to save
            items["opt_state"] = ocp.args.StandardSave(state.opt_state)
        if data_iterator is not None:
            items["data"] = _IteratorSave(_SavedIteratorState(data_iterator.get_state()))
        try:
            saved = self.manager.save(step, args=ocp.args.Composite(**items), force=True)
        except Exception as e:  # this save, or (waited for first) the one still in flight
            raise self._save_error(self._in_flight if self._in_flight is not None else step, e) from e
        if saved:
            log.info("saving checkpoint at step %d", step)
            self._in_flight = step
        return saved

    def poll(self) -> None:
        """Raise now (one line) if a save running in the background has failed; cheap when none has."""
        if self._in_flight is None or self.manager.is_saving_in_progress():
            return
        step, self._in_flight = self._in_flight, None
        try:
            self.manager.wait_until_finished()
        except Exception as e:
            raise self._save_error(step, e) from e

    def _save_error(self, step: int, e: BaseException) -> CheckpointSaveError:
        self.failed = True
        from jaxbert.train.workdir import intact_summary, write_failure

        return CheckpointSaveError(f"saving the checkpoint at step {step} in {storage.display(self.directory)} "
                                   f"failed: {write_failure(e) or reason(e)}; {intact_summary(self.workdir)}; free "
                                   "space (or fix the cause) and run the same command again")

    # ---- restoring
    def restore(self, step: int, abstract_state: TrainState, data_iterator: Any = None) -> TrainState:
        """The state saved at `step`, placed with `abstract_state`'s shardings (any mesh).

        `data_iterator`, when given, is moved to the saved position.
        """
        items: dict[str, Any] = {"params": ocp.args.StandardRestore(abstract_state.params)}
        if jax.tree_util.tree_leaves(abstract_state.opt_state):
            items["opt_state"] = ocp.args.StandardRestore(abstract_state.opt_state)
        if data_iterator is not None:
            items["data"] = _IteratorRestore(_IteratorRestorer(data_iterator))
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as e:  # orbax raises many types for damaged or mismatched checkpoints
            raise CheckpointError(f"cannot restore step {step} from {storage.display(self.directory)}: "
                                  f"{reason(e)}") from e
        sharding = abstract_state.step.sharding
        step_arr = put_global(np.asarray(step, np.int32), sharding) if sharding is not None else step
        return TrainState(step=step_arr, params=out["params"], opt_state=out.get("opt_state", abstract_state.opt_state))

    def restore_readable(self, abstract_state: TrainState, data_iterator: Any = None, wanted: int = 0
                         ) -> tuple[int, TrainState] | None:
        """(step, state) of checkpoint `wanted`, or (wanted=0) of the newest one that reads back; None when
        the workdir has no checkpoint. Damaged newer steps (named in a warning) and, for `wanted`, every
        later step are set aside, so this run neither saves over them nor keeps them in keep-N's count."""
        steps = self.all_steps()
        if wanted:
            if wanted not in steps:
                listed = ", ".join(map(str, steps)) or "none"
                raise CheckpointError(f"config.checkpoint.restore_step={wanted}: {storage.display(self.directory)} "
                                      f"holds no checkpoint at that step (it holds: {listed})")
            state = self.restore(wanted, abstract_state, data_iterator)
            self._set_aside([s for s in steps if s > wanted], f"after-restore-step-{wanted}")
            return wanted, state
        failures: list[tuple[int, str]] = []
        for step in reversed(steps):
            try:
                state, error = self.restore(step, abstract_state, data_iterator), None
            except CheckpointError as e:
                error = e
            if not _everywhere(error is None):  # a shard damaged on one host fails the step on all of them
                failures.append((step, reason(error.__cause__ or error) if error is not None
                                 else "another process could not read its part"))
                log.warning("checkpoint step %d in %s is damaged or unreadable (%s)%s", step,
                            storage.display(self.directory), failures[-1][1],
                            "; trying the step before it" if step != steps[0] else "")
                continue
            if failures:
                log.warning("resuming from step %d, the newest readable checkpoint", step)
                self._set_aside([s for s, _ in failures], "damaged")
            return step, state
        if not steps:
            return None
        causes = " / ".join(dict.fromkeys(why for _, why in failures))
        older = [str(s) for s, _ in failures[1:]]
        also = f" nor any older one ({', '.join(older)})" if older else ""
        raise CheckpointError(f"cannot restore step {failures[0][0]}{also} from {storage.display(self.directory)}: "
                              f"{causes}; damaged, or written by a different model: restore a copy of the workdir, "
                              "or choose a new --workdir")

    def _set_aside(self, steps: list[int], why: str) -> None:
        """Move `steps` out of checkpoints/ into checkpoints-set-aside/<step>-<why> (process 0), then reload."""
        if not steps:
            return
        if jax.process_index() == 0:
            target_root = self.workdir / SET_ASIDE_DIR
            for step in steps:
                target = target_root / f"{step}-{why}"
                n = 1
                while target.exists():
                    n += 1
                    target = target_root / f"{step}-{why}-{n}"
                _move_dir(self.directory / str(step), target)
            log.warning("set aside checkpoint step(s) %s (%s) in %s, so this run neither saves over them nor counts "
                        "them in checkpoint.keep", ", ".join(map(str, steps)), why, storage.display(target_root))
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("jaxbert-set-aside")
        self.manager.reload()
        for step in steps:
            self.suspect.discard(step)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Finish the last save (a failure is raised as one line, unless one was reported already)."""
        try:
            self.manager.wait_until_finished()
        except Exception as e:
            if not self.failed:
                step, self._in_flight = self._in_flight, None
                raise self._save_error(step if step is not None else -1, e) from e
        finally:
            with contextlib.suppress(Exception):
                self.manager.close()


def _everywhere(ok: bool) -> bool:
    """True when `ok` holds on every process (each process restores its own shards)."""
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    return bool(np.min(multihost_utils.process_allgather(np.asarray(int(ok), np.int32))))


def _suspect_steps(directory: storage.Path) -> set[int]:
    """The saved steps whose config item says non-finite steps were skipped before them."""
    out: set[int] = set()
    if not directory.is_dir():
        return out
    for meta in ocp.step.standard_name_format().find_all(directory):
        try:
            config = ocp.JsonCheckpointHandler().restore(directory / str(meta.step) / "config")
        except Exception:  # an unreadable record: restore will find out and say so
            continue
        if isinstance(config, Mapping) and config.get(SUSPECT_KEY):
            out.add(int(meta.step))
    return out


def _move_dir(source: storage.Path, target: storage.Path) -> None:
    """Rename locally; copy then delete on an object store (which has no rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if storage.is_url(source):
        storage.copy_tree(source, target)
        storage.remove(source)
    else:
        os.replace(os.fspath(source), os.fspath(target))


def checkpoint_meta(objective: Any, experiment: Mapping[str, Any], tokenizer_dir: str | None = None
                    ) -> dict[str, Any]:
    """The JSON a checkpoint carries: what to rebuild "the model" from, and the whole experiment config."""
    return {
        "format": FORMAT,
        "objective": objective.name,
        "model_config": objective.model_config.to_dict(),
        "export_path": list(getattr(objective, "export_path", ())),
        "parts": {name: part.to_json() for name, part in _parts(objective).items()},
        "experiment": _jsonable(experiment),
        "tokenizer_dir": TOKENIZER_DIR if tokenizer_dir else None,
        "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def _parts(objective: Any) -> dict[str, Any]:
    return objective.parts() if hasattr(objective, "parts") else {}


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        obj = obj.to_dict()
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


