"""Hugging Face interop: open a save_pretrained directory as (ModelConfig, params), and write one back.

Supported model_type: bert, roberta, albert, electra, distilbert, xlnet. Weights are read with the
safetensors numpy API; a pytorch_model.bin only through torch.load(weights_only=True).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.interop.hf_config import architecture, exportable, hf_config_dict, model_config_from_hf, to_hf_config
from jaxbert.interop.hf_convert import LEAVES, hf_key, hf_shape, to_hf, to_ours
from jaxbert.interop.hf_files import (
    CONFIG_FILE,
    SAFETENSORS_FILE,
    read_config,
    read_weights,
    weights_file,
    write_directory_atomically,
    write_safetensors,
)
from jaxbert.interop.hf_names import BUFFER_SUFFIXES, FAMILIES, LEGACY_RENAMES, FamilyNames
from jaxbert.model import check_params, param_shapes, unrolled_to_scan

__all__ = ["architecture", "export_hf", "hf_state_dict", "is_hf_dir", "load_hf", "to_hf_config"]

Params = Any


@dataclass(frozen=True)
class _Item:
    """One of our modules and the HF module(s) holding it: one per layer when stacked on the L axis."""

    ours: str
    theirs: tuple[str, ...]
    kind: str
    stacked: bool = False


def _plan(config: ModelConfig, names: FamilyNames, prefix: str) -> list[_Item]:
    """Every module of `config`'s param tree (scan layout) with its HF key prefix."""
    items = [_Item(o, (prefix + t,), k) for o, t, k in names.embeddings
             if o != "embeddings/token_type" or config.type_vocab_size > 0]
    if config.has_projection and names.projection is not None:
        o, t, k = names.projection
        items.append(_Item(o, (prefix + t,), k))
    if config.sharing == "all":
        layer_prefixes = (prefix + names.layer_prefix.format(i=0),)
    else:
        layer_prefixes = tuple(prefix + names.layer_prefix.format(i=i) for i in range(config.num_layers))
    for o, t, k in names.layer:
        items.append(_Item(f"encoder/layers/{o}", tuple(f"{p}.{t}" for p in layer_prefixes), k,
                           stacked=config.sharing != "all"))
    if config.pooler and names.pooler is not None:
        o, t, k = names.pooler
        items.append(_Item(o, (prefix + t,), k))
    for head in config.heads:
        items.extend(_Item(o, (t,), k) for o, t, k in names.heads[head])
    return items


def _flatten(tree: Params, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}/{key}" if prefix else str(key)))
    return out


def _unflatten(flat: dict[str, Any]) -> Params:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


# ---- import ---------------------------------------------------------------------------------------

def is_hf_dir(path: str | os.PathLike) -> bool:
    """True for a directory with a config.json naming a model_type and a weights file (safetensors or .bin)."""
    p = Path(path)
    if not (p / CONFIG_FILE).is_file() or weights_file(p) is None:
        return False
    try:
        return isinstance(json.loads((p / CONFIG_FILE).read_text(encoding="utf-8")).get("model_type"), str)
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


class _Tensors:
    """The checkpoint's tensors, handed out shape-checked; remembers which were used."""

    def __init__(self, tensors: dict[str, np.ndarray], source: str):
        self.tensors, self.source, self.used = tensors, source, set()

    def take(self, key: str, shape: tuple[int, ...], fallback: str | None = None) -> np.ndarray:
        if key not in self.tensors and fallback in self.tensors:
            key = fallback
        if key not in self.tensors:
            raise JaxbertError(f"{self.source}: weight {key} is missing (expected shape {shape}); "
                               "the weights do not match config.json")
        got = self.tensors[key].shape
        if tuple(got) != tuple(shape):
            raise JaxbertError(f"{self.source}: weight {key} has shape {tuple(got)} but config.json implies "
                               f"{tuple(shape)}; fix config.json or use the matching weights")
        self.used.add(key)
        return self.tensors[key]


def _legacy_renamed(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in tensors.items():
        for old, new in LEGACY_RENAMES:
            if key.endswith(old):
                key = key[: -len(old)] + new
        out[key] = value
    return out


def _check_leftovers(tensors: _Tensors, names: FamilyNames, prefix: str) -> None:
    """Unknown keys inside the encoder are an error; unknown task heads (e.g. a classifier) are skipped."""
    skipped = []
    for key in sorted(set(tensors.tensors) - tensors.used):
        if key in names.tied or key.rsplit(".", 1)[-1] in BUFFER_SUFFIXES:
            continue
        if not prefix or key.startswith(prefix):
            raise JaxbertError(f"{tensors.source}: unexpected weight {key} with shape "
                               f"{tuple(tensors.tensors[key].shape)}; the weights do not match config.json")
        skipped.append(key)
    if skipped:
        warnings.warn(f"{tensors.source}: ignored {len(skipped)} weight(s) of a task head jaxbert does not hold "
                      f"({', '.join(skipped[:4])}{', ...' if len(skipped) > 4 else ''})", stacklevel=3)


def load_hf(path: str | os.PathLike) -> tuple[ModelConfig, Params]:
    """Open a Hugging Face save_pretrained directory: its ModelConfig and params (jax arrays, scan layout).

    The heads and pooler follow the weights present (a bare *Model checkpoint gives heads=()).
    """
    directory = Path(path)
    source = str(directory)
    hf = read_config(directory)
    model_type = hf["model_type"]
    if model_type not in FAMILIES:
        raise JaxbertError(f"{directory / CONFIG_FILE}: model_type {model_type!r} is not supported; "
                           f"jaxbert reads {', '.join(FAMILIES)}")
    names = FAMILIES[model_type]
    tensors = _Tensors(_legacy_renamed(read_weights(directory)), source)
    prefix = names.base_prefix + "."
    if not any(k.startswith(prefix) for k in tensors.tensors):
        prefix = ""  # a bare *Model checkpoint
    heads = tuple(h for h, entries in names.heads.items()
                  if f"{entries[0][1]}.weight" in tensors.tensors or entries[0][1] in tensors.tensors)
    has_pooler = names.pooler is not None and f"{prefix}{names.pooler[1]}.weight" in tensors.tensors
    config = model_config_from_hf(hf, heads, has_pooler, source)

    expected = _flatten(param_shapes(config))
    bias_fallback = next((t for t in names.tied if t.endswith(".bias")), None)
    flat: dict[str, np.ndarray] = {}
    for item in _plan(config, names, prefix):
        for leaf, suffix in LEAVES[item.kind]:
            ours = f"{item.ours}/{leaf}" if leaf else item.ours
            if ours not in expected:
                raise JaxbertError(f"{source}: jaxbert's {model_type} model has no parameter {ours}; "
                                   "this checkpoint layout is not supported")
            shape = tuple(expected[ours].shape)
            per_layer = shape[1:] if item.stacked else shape
            arrays = [to_ours(item.kind, leaf, tensors.take(hf_key(m, suffix), hf_shape(item.kind, leaf, per_layer),
                                                            fallback=bias_fallback if item.kind == "vector" else None),
                              per_layer)
                      for m in item.theirs]
            flat[ours] = np.stack(arrays) if item.stacked else arrays[0]
    _check_leftovers(tensors, names, prefix)
    params = _unflatten(flat)
    check_params(config, params, source=source)
    return config, jax.tree_util.tree_map(jnp.asarray, params)


# ---- export ---------------------------------------------------------------------------------------

def hf_state_dict(config: ModelConfig, params: Params) -> dict[str, np.ndarray]:
    """Our params as the HF state dict of `architecture(config)` (float32, [out, in] Linear layout, untied keys)."""
    check_params(config, params, source="params to export")
    target = exportable(config)
    fields = hf_config_dict(target)  # raises for configs transformers cannot hold
    if not target.scan_layers:
        params = unrolled_to_scan(params, target)
        target = target.replace(scan_layers=True)
    flat = _flatten(jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float32), params))
    if config.pooler and not target.pooler:
        flat = {k: v for k, v in flat.items() if not k.startswith("pooler/")}
    names = FAMILIES[target.family]
    prefix = "" if fields["architectures"][0].endswith("Model") else names.base_prefix + "."
    out: dict[str, np.ndarray] = {}
    for item in _plan(target, names, prefix):
        for leaf, suffix in LEAVES[item.kind]:
            value = flat.pop(f"{item.ours}/{leaf}" if leaf else item.ours)
            for i, module in enumerate(item.theirs):
                out[hf_key(module, suffix)] = to_hf(item.kind, leaf, value[i] if item.stacked else value)
    if flat:  # every param must have a home, or the export would silently drop weights
        raise JaxbertError(f"cannot export parameter {sorted(flat)[0]}: transformers' {target.family} has no place "
                           "for it")
    return out


def export_hf(config: ModelConfig, params: Params, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write config.json + model.safetensors that transformers' `architecture(config)` class loads exactly.

    Atomic: written in a temporary sibling directory and renamed into place; an existing non-empty
    `out_dir` is an error unless `overwrite`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hf_state_dict below warns once about anything not exported
        fields = hf_config_dict(exportable(config))
    tensors = hf_state_dict(config, params)

    def fill(tmp: Path) -> None:
        (tmp / CONFIG_FILE).write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        write_safetensors(tensors, tmp / SAFETENSORS_FILE)

    return write_directory_atomically(Path(out_dir), fill, overwrite=overwrite)

