"""Orbax checkpoints of a training workdir: train state + data-iterator state + configs, atomically.

Layout: WORKDIR/checkpoints/<step>/{params, opt_state, data, config}. Orbax writes each step
into a temporary directory and renames it when complete, so a kill during a save leaves the
previous steps intact and `latest_step` only ever sees complete checkpoints (left-over
temporary directories are removed when the next run opens the manager).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grain.python as grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.parallel.sharding import put_global
from jaxbert.train.state import TrainState

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
TOKENIZER_DIR = "tokenizer"
FORMAT = "jaxbert-train"
PyTree = Any


class CheckpointError(JaxbertError):
    """A workdir has no readable checkpoint; the message names the path and the fix."""


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


def _manager(directory: Path, keep: int = 3, keep_every: int = 0, async_save: bool = True,
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


def remove_unfinished_saves(directory: Path) -> list[str]:
    """Delete the temporary step directories a killed save left behind (process 0); returns their names."""
    if jax.process_index() != 0 or not directory.is_dir():
        return []
    names = list(ocp.step.tmp_checkpoints(directory))
    for name in names:
        log.warning("removing the unfinished checkpoint %s left by an interrupted save", directory / name)
        shutil.rmtree(directory / name, ignore_errors=True)
    return names


class Checkpointer:
    """Save / restore the train state, the data iterator's position and the run's configs."""

    def __init__(self, workdir: str | os.PathLike, keep: int = 3, keep_every: int = 0,
                 async_save: bool = True) -> None:
        self.directory = Path(workdir).absolute() / CHECKPOINT_DIR
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
        "experiment": _jsonable(experiment),
        "tokenizer_dir": TOKENIZER_DIR if tokenizer_dir else None,
        "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


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


def is_workdir(path: str | os.PathLike) -> bool:
    """True for a directory a training run writes (it holds checkpoints/)."""
    return (Path(path) / CHECKPOINT_DIR).is_dir()


def latest_complete_step(workdir: str | os.PathLike) -> int | None:
    """The newest step whose save finished (orbax renames a step's directory only once it is complete)."""
    directory = Path(workdir).absolute() / CHECKPOINT_DIR
    if not directory.is_dir():
        raise CheckpointError(f"{workdir} has no {CHECKPOINT_DIR}/ directory; pass a training workdir")
    latest = ocp.step.latest_step_metadata(directory, ocp.step.standard_name_format())
    return None if latest is None else int(latest.step)


def _step_dir(workdir: str | os.PathLike, step: int | None) -> tuple[int, Path]:
    step = latest_complete_step(workdir) if step is None else step
    if step is None:
        raise CheckpointError(f"{Path(workdir) / CHECKPOINT_DIR} holds no complete checkpoint yet; train for "
                              "more than checkpoint.every steps or pick another workdir")
    path = Path(workdir).absolute() / CHECKPOINT_DIR / str(step)
    if not path.is_dir():
        raise CheckpointError(f"no checkpoint at step {step} in {path.parent}")
    return step, path


def read_checkpoint_meta(workdir: str | os.PathLike, step: int | None = None) -> tuple[int, dict[str, Any]]:
    """(step, meta JSON) of the latest complete checkpoint (or `step`)."""
    step, path = _step_dir(workdir, step)
    try:
        meta = ocp.JsonCheckpointHandler().restore(path / "config")
    except Exception as e:
        raise CheckpointError(f"cannot read {path / 'config'}: {_first_line(e)}; the checkpoint is damaged") from e
    return step, dict(meta)


def load_training_params(workdir: str | os.PathLike, step: int | None = None) -> tuple[dict[str, Any], PyTree]:
    """(meta JSON, every trained param of the objective) of a workdir's latest complete checkpoint (or `step`),
    restored onto this host's first device whatever mesh saved them."""
    step, meta = read_checkpoint_meta(workdir, step)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{workdir}: checkpoint step {step} is not a jaxbert training checkpoint")
    path = Path(workdir).absolute() / CHECKPOINT_DIR / str(step) / "params"
    handler = ocp.StandardCheckpointHandler()
    try:
        abstract = _abstract_from_metadata(handler.metadata(path))
        params = handler.restore(path, args=ocp.args.StandardRestore(abstract))
    except Exception as e:
        raise CheckpointError(f"cannot read the params in {path}: {_first_line(e)}; the checkpoint is damaged") from e
    finally:
        handler.close()
    return meta, params


def load_model_from_workdir(workdir: str | os.PathLike, step: int | None = None
                            ) -> tuple[ModelConfig, PyTree, str | None]:
    """(model config, params, tokenizer dir or None) of a workdir's latest complete checkpoint.

    "The model" is the subtree the objective exports (e.g. ELECTRA's discriminator, a distilled
    student).
    """
    from jaxbert.model import check_params

    meta, params = load_training_params(workdir, step)
    config = ModelConfig.from_dict(meta["model_config"])
    for key in meta.get("export_path") or []:
        params = params[key]
    check_params(config, params, source=str(workdir))
    tok = Path(workdir).absolute() / TOKENIZER_DIR
    return config, params, str(tok) if tok.is_dir() else None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _abstract_from_metadata(tree: PyTree) -> PyTree:
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def leaf(m: Any) -> Any:
        return jax.ShapeDtypeStruct(tuple(m.shape), m.dtype, sharding=device)

    return jax.tree_util.tree_map(leaf, tree, is_leaf=lambda x: hasattr(x, "shape") and hasattr(x, "dtype"))
