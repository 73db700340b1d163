"""Open any supported model path: a jaxbert bundle, a Hugging Face directory, or a training workdir."""

from __future__ import annotations

from jaxbert.errors import JaxbertError
from jaxbert.formats.bundle import BUNDLE_FILE, is_bundle, read_bundle
from jaxbert.formats.hf import is_hf_dir, read_hf
from jaxbert.formats.model import LoadedModel
from jaxbert.formats.workdir import BEST_DIR, is_workdir, read_best, read_workdir
from jaxbert.storage import PathLike, check_access, display, path


def open_model(p: PathLike) -> LoadedModel:
    """The model at `p` (local or gs://): a bundle, an HF save_pretrained dir, a fine-tuning workdir (its best
    model) or a training workdir (the exported model of its latest complete checkpoint)."""
    check_access(p, what="model path")
    directory = path(p)
    if not directory.exists():
        raise JaxbertError(f"no such checkpoint path: {display(p)}")
    if is_bundle(directory):
        return read_bundle(directory)
    if is_hf_dir(directory):
        return read_hf(directory)
    if is_bundle(directory / BEST_DIR):  # a fine-tuning workdir: its best model, not its last step
        return read_best(directory)
    if is_workdir(directory):
        return read_workdir(directory)
    raise JaxbertError(f"{display(p)} is neither a jaxbert bundle ({BUNDLE_FILE}), a Hugging Face directory "
                       "(config.json + model.safetensors) nor a training workdir")
