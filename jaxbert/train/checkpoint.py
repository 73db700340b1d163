"""Orbax checkpoints of a training workdir: train state + data-iterator state + configs, atomically.

Layout: WORKDIR/checkpoints/<step>/{params, opt_state, data, config} (read back by
`jaxbert.formats.workdir`), local or on gs://. Orbax commits each step only when it is complete (a
rename locally, a commit marker written last on gs://), so a kill during a save leaves the previous
steps intact and `latest_step` only ever sees complete checkpoints (left-over temporary directories
are removed when the next run opens the manager).
"""

from __future__ import annotations

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
from jaxbert.formats.workdir import CHECKPOINT_DIR, TOKENIZER_DIR, TRAIN_FORMAT, WorkdirError
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


def _manager(directory: storage.Path, keep: int = 3, keep_every: int = 0, async_save: bool = True,
             read_only: bool = False) -> ocp.CheckpointManager:
    policies: list[Any] = [pp.LatestN(n=max(int(keep), 1))]
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
        self.directory = storage.path(workdir) / CHECKPOINT_DIR
        remove_unfinished_saves(self.directory)
        self.manager = _manager(self.directory, keep, keep_every, async_save)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, state: TrainState, meta: Mapping[str, Any], data_iterator: Any = None) -> bool:
        """Save at `state.step` (async where enabled: returns once arrays are copied off the devices)."""
        step = int(jax.device_get(state.step))
        items: dict[str, Any] = {"params": ocp.args.StandardSave(state.params),
                                 "config": ocp.args.JsonSave(dict(meta))}
        if jax.tree_util.tree_leaves(state.opt_state):  # stateless optimizers have nothing to save
            items["opt_state"] = ocp.args.StandardSave(state.opt_state)
        if data_iterator is not None:
            items["data"] = _IteratorSave(_SavedIteratorState(data_iterator.get_state()))
        saved = self.manager.save(step, args=ocp.args.Composite(**items), force=True)
        if saved:
            log.info("saving checkpoint at step %d", step)
        return saved

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
            raise CheckpointError(f"cannot restore step {step} from {self.directory}: {_first_line(e)}; "
                                  "the checkpoint is damaged or was written by a different config") from e
        sharding = abstract_state.step.sharding
        step_arr = put_global(np.asarray(step, np.int32), sharding) if sharding is not None else step
        return TrainState(step=step_arr, params=out["params"], opt_state=out.get("opt_state", abstract_state.opt_state))

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


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


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
