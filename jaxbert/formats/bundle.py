"""The jaxbert bundle: `jaxbert.json` (format + ModelConfig) + `params/` (Orbax) + tokenizer files.

`jaxbert.json` is the marker: it is written last, so a directory without it is never read as a bundle
(see `jaxbert.storage.staged_dir`: a local bundle is renamed into place, one on gs:// is committed by it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jax

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.formats.model import LoadedModel
from jaxbert.storage import Path, PathLike, display, path, staged_dir
from jaxbert.tokenize.files import copy_tokenizer_files

BUNDLE_FILE = "jaxbert.json"
BUNDLE_FORMAT = "jaxbert-bundle"
PARAMS_DIR = "params"
PyTree = Any


def is_bundle(p: PathLike) -> bool:
    return (path(p) / BUNDLE_FILE).is_file()


def _single_process_checkpointer() -> Any:
    import orbax.checkpoint as ocp

    # A bundle is written and read by one process (process 0 of a multi-host run saves the best model
    # alone): Orbax must not wait at barriers for processes that take no part.
    me = jax.process_index()
    return ocp.StandardCheckpointer(multiprocessing_options=ocp.options.MultiprocessingOptions(
        primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"jaxbert-bundle-{me}"))


def write_bundle(target: PathLike, config: ModelConfig, params: PyTree, tokenizer_dir: PathLike | None = None,
                 tokenizer: Any = None, extra_files: Mapping[str, Any] | None = None, replace: bool = True) -> Path:
    """Write a bundle at `target` (local or gs://): all of it or, after a failure, nothing that reads as one.

    Tokenizer files are copied from `tokenizer_dir`, else written by `tokenizer.save`. `extra_files` are
    JSON files written beside (e.g. a fine-tuned model's task.json). An existing bundle is replaced only
    with `replace`; any other non-empty directory is refused.
    """
    with staged_dir(target, BUNDLE_FILE, replace=replace) as d:
        ckpt = _single_process_checkpointer()
        ckpt.save(d / PARAMS_DIR, jax.device_get(params))
        ckpt.wait_until_finished()
        ckpt.close()
        if tokenizer_dir is not None:
            copy_tokenizer_files(tokenizer_dir, d)
        elif tokenizer is not None:
            _save_tokenizer(tokenizer, d)
        for name, obj in (extra_files or {}).items():
            (d / name).write_text(json.dumps(obj, indent=2))
        (d / BUNDLE_FILE).write_text(json.dumps(
            {"format": BUNDLE_FORMAT, "version": 1, "model_config": config.to_dict()}, indent=2))
    return path(target)


def _save_tokenizer(tokenizer: Any, directory: Path) -> None:
    """A tokenizer object's files into `directory` (tokenizers write local files only)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save(tmp)
        copy_tokenizer_files(tmp, directory)


def read_bundle(p: PathLike) -> LoadedModel:
    """Open a bundle: its config, params (on this host's first device) and tokenizer directory."""
    from jaxbert.model import check_params, param_shapes

    directory = path(p)
    try:
        meta = json.loads((directory / BUNDLE_FILE).read_text())
        config = ModelConfig.from_dict(meta["model_config"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise JaxbertError(f"{display(directory / BUNDLE_FILE)} is unreadable or corrupt ({_first_line(e)}); "
                           "re-save the bundle") from e
    if not (directory / PARAMS_DIR).is_dir():
        raise JaxbertError(f"{display(directory)} has no {PARAMS_DIR}/ directory; the bundle is incomplete, "
                           "re-save it")
    try:
        abstract = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), param_shapes(config))
        ckpt = _single_process_checkpointer()
        params = ckpt.restore(directory / PARAMS_DIR, abstract)
        ckpt.close()
    except Exception as e:  # orbax raises many types for damaged files; all mean the same to a user
        raise JaxbertError(f"cannot read the params of bundle {display(directory)}: {_first_line(e)}; "
                           "the bundle is corrupt or does not match its config") from e
    check_params(config, params, source=display(directory))
    return LoadedModel(config, params, directory, display(p), "bundle")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
