"""Open any supported model path: a jaxbert bundle, a Hugging Face directory, a Google TF checkpoint, or a
training workdir."""

from __future__ import annotations

import os
from typing import Any

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.formats.bundle import is_bundle, read_bundle
from jaxbert.formats.hf import is_hf_dir, read_hf
from jaxbert.formats.model import LoadedModel
from jaxbert.formats.workdir import BEST_DIR, is_workdir, read_best, read_workdir
from jaxbert.storage import PathLike, check_access, display, is_url, path


def _no_options(p: PathLike, kind: str, part: str | None, config: Any, part_ok: bool = False) -> None:
    """part= and config= choose inside ELECTRA workdirs and TF checkpoints; elsewhere they are a mistake."""
    if (part is not None and not part_ok) or config is not None:
        given = "config=" if config is not None else "part="
        raise JaxbertError(f"{display(p)} is {kind}, which knows its own model; {given} applies to "
                           f"{'TensorFlow checkpoints' if part_ok else 'ELECTRA workdirs and TensorFlow checkpoints'}")


def open_model(p: PathLike, part: str | None = None, config: str | os.PathLike | ModelConfig | None = None
               ) -> LoadedModel:
    """The model at `p` (local or gs://): a bundle, an HF save_pretrained dir, a Google TF checkpoint (its
    directory, prefix or .index file), a fine-tuning workdir (its best model) or a training workdir (the
    exported model of its latest complete checkpoint).

    part: which model of a checkpoint that holds two: ELECTRA's "discriminator" (the default) or "generator".
    config: the architecture of a TF checkpoint with no config file beside it (a preset name, a ModelConfig
    or a config.json path).
    """
    from jaxbert.interop import tf_checkpoint
    from jaxbert.interop.unsupported import unsupported_format

    check_access(p, what="model path")
    directory = path(p)
    local_tf = not is_url(directory) and tf_checkpoint.is_tf_checkpoint(directory)
    if not directory.exists() and not local_tf:  # a TF prefix names no file of its own
        raise JaxbertError(f"no such checkpoint path: {display(p)}")
    if is_bundle(directory):
        _no_options(p, "a jaxbert bundle", part, config)
        return read_bundle(directory)
    if is_hf_dir(directory):
        _no_options(p, "a Hugging Face directory", part, config)
        return read_hf(directory)
    if local_tf:  # Google's original releases; the tokenizer's settings travel with it
        tf = tf_checkpoint.load_tf_checkpoint(directory, part=part, config=config)
        return LoadedModel(tf.config, tf.params, None, display(p), "tf", tokenizer=tf.tokenizer)
    if is_bundle(directory / BEST_DIR):  # a fine-tuning workdir: its best model, not its last step
        _no_options(p, "a fine-tuning workdir", part, config)
        return read_best(directory)
    if is_workdir(directory):
        _no_options(p, "a training workdir", part, config, part_ok=True)
        return read_workdir(directory, part=part)
    if is_url(directory):
        raise JaxbertError(f"{display(p)} is neither a jaxbert bundle, a Hugging Face directory nor a training "
                           "workdir (Google TF checkpoints are read from local disk: copy it there first)")
    raise unsupported_format(directory)
