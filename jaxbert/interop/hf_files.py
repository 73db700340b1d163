"""Reading and writing the files of a Hugging Face model directory: config.json and the weight files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from jaxbert.errors import JaxbertError

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
TORCH_FILE = "pytorch_model.bin"
# Single files first; sharded checkpoints name their shards in an index.
WEIGHT_FILES = (SAFETENSORS_FILE, SAFETENSORS_FILE + ".index.json", TORCH_FILE, TORCH_FILE + ".index.json")


def read_config(directory: Path) -> dict[str, Any]:
    """config.json as a dict; a one-line error when absent, unparsable or without a model_type."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise JaxbertError(f"{directory} has no {CONFIG_FILE}; it is not a Hugging Face model directory")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise JaxbertError(f"{path} is not valid JSON ({e}); re-save the model with save_pretrained") from e
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise JaxbertError(f"{path} has no model_type; re-save the model with save_pretrained")
    return config


def weights_file(directory: Path) -> Path | None:
    return next((directory / n for n in WEIGHT_FILES if (directory / n).is_file()), None)


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    import ml_dtypes  # noqa: F401  registers bfloat16 with numpy so bf16 checkpoints read
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118  safe_open is not a Mapping
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise JaxbertError(f"cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                           "the file is corrupt or truncated, re-download or re-save it") from e


# torch.load(weights_only=True) can be made to run code before torch 2.6 (CVE-2025-32434); transformers
# refuses .bin files below it too.
SAFE_TORCH = (2, 6)


def _torch_version(text: str) -> tuple[int, int]:
    parts = (text.split("+")[0].split(".") + ["0"])[:2]
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except ValueError:
        return (0, 0)


def _read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise JaxbertError(f"{path} is a PyTorch pickle and reading it needs torch; pip install torch, or "
                           "re-save the model as model.safetensors") from e
    if _torch_version(torch.__version__) < SAFE_TORCH:
        raise JaxbertError(f"{path} is a PyTorch pickle, and torch {torch.__version__} cannot read one safely "
                           "(torch.load runs code from such files before torch 2.6, CVE-2025-32434); upgrade torch "
                           "to 2.6 or later, or use the model's model.safetensors")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged or unsafe pickles; all mean the same here
        raise JaxbertError(f"cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                           "the file is corrupt or not a plain state dict") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise JaxbertError(f"{path} does not hold a state dict of tensors; re-save it with save_pretrained")
    return {key: value.detach().to(torch.float32).numpy() for key, value in state.items()}


def _read_one(path: Path) -> dict[str, np.ndarray]:
    return _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch(path)


def read_weights(directory: Path) -> dict[str, np.ndarray]:
    """Every tensor of the directory's weights (single or sharded), as float32 numpy arrays."""
    path = weights_file(directory)
    if path is None:
        raise JaxbertError(f"{directory} has no weights ({' or '.join(WEIGHT_FILES[::2])}); "
                           "save the model with save_pretrained")
    if path.name.endswith(".index.json"):
        try:
            shards = sorted(set(json.loads(path.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError) as e:
            raise JaxbertError(f"{path} is not a valid weight index ({e}); re-save the model") from e
        tensors: dict[str, np.ndarray] = {}
        for shard in shards:
            if not isinstance(shard, str) or Path(shard).is_absolute() or Path(shard).name != shard:
                raise JaxbertError(f"{path} names shard {shard!r}, which is not a file name inside {directory}; "
                                   "shards must lie beside the index: re-download or re-save the model")
            if not (directory / shard).is_file():
                raise JaxbertError(f"{path} names shard {shard}, which is missing; re-download the model")
            tensors.update(_read_one(directory / shard))
    else:
        tensors = _read_one(path)
    return {key: np.asarray(value, dtype=np.float32) for key, value in tensors.items()}


def write_safetensors(tensors: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    # transformers refuses safetensors files whose metadata lacks format=pt.
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path),
              metadata={"format": "pt"})


@contextlib.contextmanager
def _temporary_sibling(target: Path) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_directory_atomically(target: Path, fill: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Run `fill(tmp_dir)` in a temporary sibling of `target`, then rename it into place.

    A failure inside `fill` leaves `target` untouched and no temporary files behind. An existing
    non-empty `target` is an error unless `overwrite`, which swaps it out only after `fill` succeeded.
    """
    target = Path(target).absolute()
    if target.exists() and not target.is_dir():
        raise JaxbertError(f"{target} exists and is not a directory; choose another output path")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise JaxbertError(f"{target} already exists and is not empty; remove it or choose another output path")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_sibling(target) as tmp:
        fill(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a model directory is shared like any other
        if target.is_dir():
            with _temporary_sibling(target) as old:
                os.replace(target, old / "old")
                try:
                    os.replace(tmp, target)
                except OSError:
                    os.replace(old / "old", target)
                    raise
        else:
            os.replace(tmp, target)
    return target
