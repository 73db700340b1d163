"""The one-line answer for a path jaxbert cannot open: what it found there and what it reads."""

from __future__ import annotations

import json
from pathlib import Path

from jaxbert.errors import JaxbertError
from jaxbert.interop.hf_names import FAMILIES

SUPPORTED = ("jaxbert reads a jaxbert bundle (jaxbert.json + params/), a training workdir (checkpoints/), a Hugging "
             f"Face directory (config.json + model.safetensors or pytorch_model.bin; model_type {', '.join(FAMILIES)})"
             " or a Google TensorFlow checkpoint (PREFIX.index + PREFIX.data-*; BERT, ALBERT, ELECTRA)")
_RESAVE = "load it in transformers and save_pretrained it as PyTorch/safetensors"

# Weight files of formats jaxbert does not read, by the file name (or suffix) they go by.
_KNOWN_FILES: tuple[tuple[str, str, str], ...] = (
    ("tf_model.h5", "Keras/TensorFlow 2 weights (tf_model.h5)", f"{_RESAVE} (from_pretrained(..., from_tf=True))"),
    ("flax_model.msgpack", "Flax weights (flax_model.msgpack)", f"{_RESAVE} (from_pretrained(..., from_flax=True))"),
    ("saved_model.pb", "a TensorFlow SavedModel (saved_model.pb)", "use the TF checkpoint it was exported from"),
    (".onnx", "an ONNX model", "use the checkpoint it was exported from"),
    (".gguf", "GGUF weights", "use the checkpoint they were converted from"),
    (".ckpt", "a TensorFlow V1 checkpoint (a single .ckpt file, before TF 0.12)",
     "re-save it with a later TensorFlow (tf.train.Saver writes PREFIX.index + PREFIX.data-*)"),
)


def _model_type(config: Path) -> str | None:
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _found(path: Path) -> tuple[str, str | None]:
    """(what is at `path`, how to make it readable or None)."""
    files = sorted(q.name for q in path.iterdir()) if path.is_dir() else [path.name]
    if path.is_dir() and not files:
        return "an empty directory", None
    seen: list[str] = []
    fix = None
    for name, what, how in _KNOWN_FILES:
        if any(f == name or (name.startswith(".") and f.endswith(name)) for f in files):
            if what not in seen:
                seen.append(what)
            fix = fix or how
    if path.is_dir() and (path / "config.json").is_file():
        model_type = _model_type(path / "config.json")
        if model_type is not None and model_type not in FAMILIES:
            seen.insert(0, f"config.json of model_type {model_type!r}")
            fix = None  # no conversion makes an unsupported architecture readable
        elif not seen:
            seen.append("config.json without weights (no model.safetensors or pytorch_model.bin)")
    if not seen:
        listing = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
        seen.append(f"{'files' if path.is_dir() else 'a file'} ({listing}) of no model format jaxbert knows")
    return " and ".join(seen), fix


def unsupported_format(path: str | Path) -> JaxbertError:
    """The error for a path that is none of the formats jaxbert reads, naming what it holds."""
    p = Path(path)
    found, fix = _found(p)
    return JaxbertError(f"{p} holds {found}{f'; {fix}' if fix else ''}; {SUPPORTED}")
