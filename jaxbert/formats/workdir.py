"""Reading a training workdir: its layout, the latest complete checkpoint, every trained tree, the exported
model, and a fine-tuning run's best model.

Layout: WORKDIR/checkpoints/<step>/{params, opt_state, data, config} (Orbax; written by
`jaxbert.train.checkpoint`), WORKDIR/tokenizer/ (the run's tokenizer files), WORKDIR/best/ (fine-tuning:
the best model as a bundle, with task.json), WORKDIR/config.json and metrics.jsonl.
"""

from __future__ import annotations

import json
from typing import Any

import jax

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.formats.bundle import read_bundle
from jaxbert.formats.model import LoadedModel
from jaxbert.storage import Path, PathLike, display, path

CHECKPOINT_DIR = "checkpoints"
TOKENIZER_DIR = "tokenizer"
TRAIN_FORMAT = "jaxbert-train"
BEST_DIR = "best"
TASK_FILE = "task.json"
PyTree = Any


class WorkdirError(JaxbertError):
    """A workdir has no readable checkpoint; the message names the path and the fix."""


def is_workdir(p: PathLike) -> bool:
    """True for a directory a training run writes (it holds checkpoints/)."""
    return (path(p) / CHECKPOINT_DIR).is_dir()


def checkpoint_dir(workdir: PathLike) -> Path:
    return path(workdir) / CHECKPOINT_DIR


def latest_complete_step(workdir: PathLike) -> int | None:
    """The newest step whose save finished (Orbax commits a step only once it is complete)."""
    import orbax.checkpoint as ocp

    directory = checkpoint_dir(workdir)
    if not directory.is_dir():
        raise WorkdirError(f"{display(workdir)} has no {CHECKPOINT_DIR}/ directory; pass a training workdir")
    latest = ocp.step.latest_step_metadata(directory, ocp.step.standard_name_format())
    return None if latest is None else int(latest.step)


def _step_dir(workdir: PathLike, step: int | None) -> tuple[int, Path]:
    step = latest_complete_step(workdir) if step is None else step
    if step is None:
        raise WorkdirError(f"{display(checkpoint_dir(workdir))} holds no complete checkpoint yet; train for "
                           "more than checkpoint.every steps or pick another workdir")
    directory = checkpoint_dir(workdir) / str(step)
    if not directory.is_dir():
        raise WorkdirError(f"no checkpoint at step {step} in {display(directory.parent)}")
    return step, directory


def read_checkpoint_meta(workdir: PathLike, step: int | None = None) -> tuple[int, dict[str, Any]]:
    """(step, meta JSON) of the latest complete checkpoint (or `step`)."""
    import orbax.checkpoint as ocp

    step, directory = _step_dir(workdir, step)
    try:
        meta = ocp.JsonCheckpointHandler().restore(directory / "config")
    except Exception as e:
        raise WorkdirError(f"cannot read {display(directory / 'config')}: {_first_line(e)}; the checkpoint is "
                           "damaged") from e
    return step, dict(meta)


def load_training_params(workdir: PathLike, step: int | None = None) -> tuple[dict[str, Any], PyTree]:
    """(meta JSON, every trained param of the objective) of a workdir's latest complete checkpoint (or `step`),
    restored onto this host's first device whatever mesh saved them."""
    import orbax.checkpoint as ocp

    step, meta = read_checkpoint_meta(workdir, step)
    if meta.get("format") != TRAIN_FORMAT:
        raise WorkdirError(f"{display(workdir)}: checkpoint step {step} is not a jaxbert training checkpoint")
    directory = checkpoint_dir(workdir) / str(step) / "params"
    handler = ocp.StandardCheckpointHandler()
    try:
        abstract = _abstract_from_metadata(handler.metadata(directory))
        params = handler.restore(directory, args=ocp.args.StandardRestore(abstract))
    except Exception as e:
        raise WorkdirError(f"cannot read the params in {display(directory)}: {_first_line(e)}; the checkpoint is "
                           "damaged") from e
    finally:
        handler.close()
    meta["step"] = step
    return meta, params


def _subtree(tree: PyTree, keys: list[str]) -> PyTree:
    for key in keys:
        tree = tree[key]
    return tree


def _part(workdir: PathLike, meta: dict[str, Any], params: PyTree, name: str) -> tuple[ModelConfig, PyTree]:
    """A named model of the checkpoint (as the objective's `parts()` recorded it) with its borrowed tables."""
    parts = meta.get("parts") or {}
    if name not in parts:
        if parts:
            raise WorkdirError(f"{display(workdir)} holds no model part {name!r}; its parts are {', '.join(parts)}")
        raise WorkdirError(f"{display(workdir)}: objective {meta.get('objective')!r} recorded one model, no named "
                           "parts; drop part= (ELECTRA checkpoints saved before jaxbert recorded parts have none "
                           "either)")
    spec = parts[name]
    tree = {**_subtree(params, spec["path"])}
    for dest, source in spec.get("borrowed", []):
        try:
            value = _subtree(params, source)
        except KeyError:  # e.g. no token_type table when type_vocab_size=0
            continue
        node = tree
        for key in dest[:-1]:
            node[key] = {**node.get(key, {})}  # a copy: the part's own subtree stays as saved
            node = node[key]
        node[dest[-1]] = value
    return ModelConfig.from_dict(spec["model_config"]), tree


def read_workdir(workdir: PathLike, step: int | None = None, part: str | None = None) -> LoadedModel:
    """The model of a workdir's latest complete checkpoint (or `step`): the subtree the objective exports
    (ELECTRA's discriminator, a distilled student), or the named `part` of an objective that trains several
    (ELECTRA's "generator")."""
    from jaxbert.model import check_params

    meta, params = load_training_params(workdir, step)
    if part is None:
        config = ModelConfig.from_dict(meta["model_config"])
        params = _subtree(params, list(meta.get("export_path") or []))
    else:
        config, params = _part(workdir, meta, params, part)
    check_params(config, params, source=display(workdir))
    tok = path(workdir) / TOKENIZER_DIR
    return LoadedModel(config, params, tok if tok.is_dir() else None, display(workdir), "workdir",
                       objective=meta.get("objective"), step=int(meta["step"]))


def read_task_info(bundle: PathLike) -> dict[str, Any]:
    """task.json of a best-model bundle ({} when absent)."""
    p = path(bundle) / TASK_FILE
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise JaxbertError(f"{display(p)} is unreadable ({e}); delete it or re-run the fine-tuning") from e


def read_best(workdir: PathLike) -> LoadedModel:
    """The best model of a fine-tuning workdir, with its label names and task.json."""
    bundle = path(workdir) / BEST_DIR
    model = read_bundle(bundle)
    info = read_task_info(bundle)
    model.kind, model.source = "finetune-workdir", display(workdir)
    model.label_names, model.task_info = info.get("labels"), info
    return model


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _abstract_from_metadata(tree: PyTree) -> PyTree:
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def leaf(m: Any) -> Any:
        return jax.ShapeDtypeStruct(tuple(m.shape), m.dtype, sharding=device)

    return jax.tree_util.tree_map(leaf, tree, is_leaf=lambda x: hasattr(x, "shape") and hasattr(x, "dtype"))
