"""Google's original TensorFlow checkpoints (BERT, ALBERT, ELECTRA) as a ModelConfig, params and tokenizer.

    model = load_tf_checkpoint("uncased_L-12_H-768_A-12")              # dir, prefix, .index or .data-* file
    model = load_tf_checkpoint("electra_small", config="electra-small", part="generator")

The family comes from the variable names (tables in `jaxbert.interop.tf_names`), the architecture from
the config file beside the checkpoint (Google's bert_config.json / albert_config.json, or a
transformers config.json) or the `config` argument (ELECTRA's releases ship none), and the heads and
pooler from the variables present. Every variable of the model is mapped and shape-checked; optimizer
slots (adam_m, adam_v, ...) and global_step are skipped; a missing variable, or an unmatched one inside
the model's scopes, is a one-line error naming it; variables of a task head jaxbert does not hold are
skipped with a warning naming them. Reading needs no TensorFlow (`jaxbert.interop.tf_bundle`).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import PRESETS, ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.interop.hf import _flatten, _unflatten
from jaxbert.interop.hf_config import model_config_from_hf
from jaxbert.interop.tf_bundle import Bundle, TFCheckpointError, find_prefix
from jaxbert.interop.tf_names import BOOKKEEPING, HUB_PREFIX, LEAVES, MODELS, OPTIMIZER_SLOTS, PARTS, TFModelNames
from jaxbert.model import check_params, param_shapes

__all__ = ["TFCheckpointError", "TFModel", "find_prefix", "is_tf_checkpoint", "load_tf_checkpoint"]

Params = Any
# Config files looked for beside a checkpoint, in order: transformers' form, then Google's.
CONFIG_FILES = ("config.json", "bert_config.json", "albert_config.json")
# google-research/bert tokenization.validate_case_matches_checkpoint: released models lowercased or not.
_LOWERCASED_RELEASES = ("chinese_", "multilingual_")
_SKIPPED = frozenset(OPTIMIZER_SLOTS + BOOKKEEPING)


@dataclass
class TFModel:
    """What a TF checkpoint gives: the model's config and params (scan layout) and its tokenizer (or None)."""

    config: ModelConfig
    params: Params
    tokenizer: Any
    source: Path


def is_tf_checkpoint(path: str | os.PathLike) -> bool:
    """True for a TF checkpoint prefix, its .index / .data-* file, or a directory holding checkpoints."""
    try:
        return find_prefix(path) is not None
    except TFCheckpointError:  # several checkpoints and no pointer: still a TF checkpoint, load says which
        return True


# ---- the variables ------------------------------------------------------------------------------

class _Variables:
    """The checkpoint's variables by name (TF-Hub's "module/" prefix removed), read on demand and marked used."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.source = str(bundle.prefix)
        self.original = {n[len(HUB_PREFIX):] if n.startswith(HUB_PREFIX) else n: n for n in bundle.names()}
        self.used: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self.original

    def names(self) -> list[str]:
        return sorted(self.original)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.bundle.shape(self.original[name])

    def read(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        got = self.shape(name)
        if tuple(got) != tuple(shape):
            raise TFCheckpointError(f"{self.source}: variable {name} has shape {tuple(got)} but the config implies "
                                    f"{tuple(shape)}; use the config the checkpoint was trained with")
        self.used.add(name)
        value = self.bundle.read(self.original[name])
        return value.astype(np.float32) if value.dtype != np.float32 else value


def _tf_shape(kind: str, leaf: str, ours: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of the TF variable that holds our leaf of shape `ours`."""
    if kind == "qkv":  # kernel [H, heads, head_dim] <- [H, heads*head_dim]; bias [heads, head_dim] <- [heads*head_dim]
        return (ours[0], ours[1] * ours[2]) if leaf == "kernel" else (ours[0] * ours[1],)
    if kind == "attn_out" and leaf == "kernel":  # [heads, head_dim, H] <- [heads*head_dim, H]
        return (ours[0] * ours[1], ours[2])
    if kind == "output_layer" and leaf == "kernel":  # [in, out] <- output_weights [out, in]
        return (ours[1], ours[0])
    return tuple(ours)


def _to_ours(kind: str, leaf: str, value: np.ndarray, ours: tuple[int, ...]) -> np.ndarray:
    if kind == "output_layer" and leaf == "kernel":
        return np.ascontiguousarray(value.T)
    return value.reshape(ours)


def _variable(scope: str, suffix: str) -> str:
    return f"{scope}/{suffix}" if suffix else scope


@dataclass(frozen=True)
class _Item:
    """One of our modules and the TF scope(s) holding it: one per layer when stacked on the L axis."""

    ours: str
    theirs: tuple[str, ...]
    kind: str
    stacked: bool = False
    fallback: str | None = None  # the scope to read when `theirs` is absent (ELECTRA's shared embeddings)


def _plan(config: ModelConfig, names: TFModelNames) -> list[_Item]:
    fallback = names.embeddings_fallback
    items = [_Item(o, (t,), k, fallback=f"{fallback}/{t.rsplit('/', 1)[1]}" if fallback else None)
             for o, t, k in names.embeddings if o != "embeddings/token_type" or config.type_vocab_size > 0]
    if config.has_projection and names.projection is not None:
        items.append(_single(names.projection))
    shared = config.sharing == "all"
    scopes = [names.layer_scope.format(i=i) for i in range(1 if shared else config.num_layers)]
    items += [_Item(f"encoder/layers/{o}", tuple(f"{s}/{t}" for s in scopes), k, stacked=not shared)
              for o, t, k in names.layer]
    if config.pooler and names.pooler is not None:
        items.append(_single(names.pooler))
    for head in config.heads:
        items += [_single(entry) for entry in names.heads[head]]
    return items


def _single(entry: tuple[str, str, str]) -> _Item:
    ours, theirs, kind = entry
    return _Item(ours, (theirs,), kind)


def _resolve(variables: _Variables, item: _Item, scope: str, suffix: str) -> str:
    name = _variable(scope, suffix)
    if name not in variables and item.fallback is not None:
        return _variable(item.fallback, suffix)
    return name


def _check_shapes(config: ModelConfig, names: TFModelNames, variables: _Variables,
                  expected: dict[str, Any]) -> list[str]:
    """Names of the model's variables that are absent; raises on the first shape mismatch.

    `expected`: the model's flattened param shapes."""
    missing = []
    for item in _plan(config, names):
        for leaf, suffix in LEAVES[item.kind]:
            shape = tuple(expected[f"{item.ours}/{leaf}" if leaf else item.ours].shape)
            per_layer = shape[1:] if item.stacked else shape
            for scope in item.theirs:
                name = _resolve(variables, item, scope, suffix)
                if name not in variables:
                    missing.append(name)
                elif variables.shape(name) != _tf_shape(item.kind, leaf, per_layer):
                    raise TFCheckpointError(
                        f"{variables.source}: variable {name} has shape {variables.shape(name)} but the config "
                        f"implies {_tf_shape(item.kind, leaf, per_layer)}; use the config the checkpoint was "
                        "trained with")
    return missing


def _read_params(config: ModelConfig, names: TFModelNames, variables: _Variables, expected: dict[str, Any]
                 ) -> Params:
    flat: dict[str, np.ndarray] = {}
    for item in _plan(config, names):
        for leaf, suffix in LEAVES[item.kind]:
            ours = f"{item.ours}/{leaf}" if leaf else item.ours
            shape = tuple(expected[ours].shape)
            per_layer = shape[1:] if item.stacked else shape
            arrays = [_to_ours(item.kind, leaf, variables.read(_resolve(variables, item, scope, suffix),
                                                              _tf_shape(item.kind, leaf, per_layer)), per_layer)
                      for scope in item.theirs]
            flat[ours] = np.stack(arrays) if item.stacked else arrays[0]
    return _unflatten(flat)


def _is_training_state(name: str) -> bool:
    return any(part in _SKIPPED for part in name.split("/"))


def _check_leftovers(names: TFModelNames, variables: _Variables) -> None:
    """Unmatched variables in the model's scopes are an error; those of unknown task heads are skipped."""
    left = [n for n in variables.names() if n not in variables.used and not _is_training_state(n)
            and not n.startswith(names.siblings)]
    inside = [n for n in left if n.startswith(names.scopes)]
    if inside:
        shown = ", ".join(f"{n} {variables.shape(n)}" for n in inside[:3])
        raise TFCheckpointError(f"{variables.source}: {len(inside)} variable(s) the config has no place for: {shown}"
                                f"{', ...' if len(inside) > 3 else ''}; the checkpoint does not match its config "
                                "(e.g. more layers than num_hidden_layers)")
    if left:
        warnings.warn(f"{variables.source}: skipped {len(left)} variable(s) of a head jaxbert does not hold "
                      f"({', '.join(left[:4])}{', ...' if len(left) > 4 else ''})", stacklevel=3)


# ---- family, part, heads -------------------------------------------------------------------------

def _family(variables: _Variables) -> str:
    names = variables.names()
    if any(n.startswith(("electra/", "generator/")) for n in names):
        return "electra"
    if any(n.startswith(("bert/encoder/transformer/", "bert/encoder/embedding_hidden_mapping_in/")) for n in names):
        return "albert"
    if any(n.startswith("bert/encoder/layer_") for n in names):
        return "bert"
    hint = ("it is a TF2 object-based checkpoint (tf.train.Checkpoint of a Keras model), whose names jaxbert does "
            "not map" if any(".ATTRIBUTES/" in n for n in names) else f"found e.g. {', '.join(names[:3]) or 'nothing'}")
    raise TFCheckpointError(f"{variables.source} holds no BERT, ALBERT or ELECTRA variables (bert/encoder/layer_N, "
                            f"bert/encoder/transformer/group_N, electra/encoder): {hint}")


def _model_names(family: str, part: str | None, variables: _Variables) -> TFModelNames:
    if family != "electra":
        if part is not None:
            raise TFCheckpointError(f"{variables.source} is a {family} checkpoint, which holds one model; part= "
                                    f"applies to ELECTRA checkpoints ({', '.join(PARTS)})")
        return MODELS[family]
    part = part or "discriminator"
    if part not in PARTS:
        raise TFCheckpointError(f"unknown part {part!r}; an ELECTRA checkpoint holds {' and '.join(PARTS)}")
    names = MODELS[PARTS[part]]
    if names.layer_scope.format(i=0) + "/attention/self/query/kernel" not in variables:
        raise TFCheckpointError(f"{variables.source} holds no ELECTRA {part} (no {names.layer_scope.format(i=0)}/ "
                                "variables); pick the other part")
    return names


def _present(names: TFModelNames, variables: _Variables) -> tuple[tuple[str, ...], bool]:
    """(heads, pooler) whose variables the checkpoint holds."""
    def has(entry: tuple[str, str, str]) -> bool:
        return _variable(entry[1], LEAVES[entry[2]][0][1]) in variables

    heads = tuple(h for h, entries in names.heads.items() if has(entries[0]))
    return heads, names.pooler is not None and has(names.pooler)


def _num_layers(names: TFModelNames, variables: _Variables) -> int:
    pattern = re.compile(re.escape(names.layer_scope).replace(r"\{i\}", r"(\d+)") + "/")
    found = {int(m.group(1)) for n in variables.names() if (m := pattern.match(n))}
    return max(found) + 1 if found else 0


# ---- the config ---------------------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TFCheckpointError(f"{path} is not valid JSON ({e}); fix the config file") from e
    if not isinstance(fields, dict):
        raise TFCheckpointError(f"{path} does not hold a JSON object; it is not a model config")
    return fields


def _config_input(directory: Path, config: str | os.PathLike | ModelConfig | None) -> tuple[Any, str] | None:
    """(a ModelConfig or a config.json-style dict, where it came from), or None when there is none."""
    if isinstance(config, ModelConfig):
        return config, "the given ModelConfig"
    if config is not None:
        path = Path(config)
        if path.is_file():
            return _read_json(path), str(path)
        if str(config) in PRESETS:
            return PRESETS[str(config)], f"preset {config}"
        raise TFCheckpointError(f"config={str(config)!r} is neither a config file nor a preset; pass a path to a "
                                f"config.json or one of {', '.join(PRESETS)}")
    for name in CONFIG_FILES:
        if (directory / name).is_file():
            return _read_json(directory / name), str(directory / name)
    return None


def _from_input(given: Any, source: str, family: str, heads: tuple[str, ...], pooler: bool) -> ModelConfig:
    if isinstance(given, ModelConfig):
        if given.family != family:
            raise TFCheckpointError(f"{source} is a {given.family} config but the checkpoint holds {family} "
                                    "variables; pass a config of the checkpoint's family")
        head_act = "gelu" if family == "electra" and "mlm" in heads else given.head_act
        return given.replace(heads=heads, pooler=pooler, head_act=head_act, task="", num_labels=0)
    declared = given.get("model_type")
    if declared not in (None, family):
        raise TFCheckpointError(f"{source} says model_type {declared!r} but the checkpoint holds {family} variables; "
                                "pass the checkpoint's own config")
    return model_config_from_hf({**given, "model_type": family}, heads, pooler, source)


def _width(variables: _Variables, names: TFModelNames) -> int | None:
    name = names.layer_scope.format(i=0) + "/attention/self/query/kernel"
    return variables.shape(name)[-1] if name in variables else None


def _electra_generator(config: ModelConfig, variables: _Variables) -> ModelConfig:
    """The generator's config from a discriminator config, by ELECTRA's rule (google-research/electra,
    pretrain/pretrain_helpers.get_generator_config): width and depth from the generator's variables,
    intermediate size likewise, num_attention_heads = max(1, hidden_size // 64)."""
    gen = MODELS[PARTS["generator"]]
    hidden = _width(variables, gen)
    if hidden is None or hidden == config.hidden_size or _width(variables, MODELS["electra"]) != config.hidden_size:
        return config  # the config is the generator's own (or fits neither: the shape check says so)
    intermediate = variables.shape(gen.layer_scope.format(i=0) + "/intermediate/dense/kernel")[-1]
    return config.replace(hidden_size=hidden, num_heads=max(1, hidden // 64), intermediate_size=intermediate,
                          num_layers=_num_layers(gen, variables),
                          embedding_size=0 if config.embed_dim == hidden else config.embed_dim)


def _fit(config: ModelConfig, names: TFModelNames, variables: _Variables) -> ModelConfig:
    return _electra_generator(config, variables) if names is MODELS[PARTS["generator"]] else config


def _matching_presets(family: str, names: TFModelNames, variables: _Variables, heads: tuple[str, ...],
                      pooler: bool) -> list[str]:
    matches = []
    width = _width(variables, names)
    for name, preset in PRESETS.items():
        if preset.family != family:
            continue
        try:
            config = _fit(_from_input(preset, name, family, heads, pooler), names, variables)
            if config.hidden_size == width and not _check_shapes(config, names, variables,
                                                                 _flatten(param_shapes(config))):
                matches.append(name)
        except JaxbertError:
            continue
    return matches


def _model_config(directory: Path, family: str, names: TFModelNames, variables: _Variables,
                  config: str | os.PathLike | ModelConfig | None) -> tuple[ModelConfig, dict[str, Any]]:
    """The checkpoint's ModelConfig and the raw config fields (for tokenizer settings such as do_lower_case)."""
    heads, pooler = _present(names, variables)
    found = _config_input(directory, config)
    if found is None:
        presets = _matching_presets(family, names, variables, heads, pooler)
        fix = f"pass config={presets[0]!r} (the preset whose shapes match)" if presets else "pass config=PATH"
        raise TFCheckpointError(f"{variables.source}: no config file beside the checkpoint (one of "
                                f"{', '.join(CONFIG_FILES)}), as ELECTRA's releases ship none; {fix} or put the "
                                "model's transformers config.json beside it")
    given, source = found
    model_config = _fit(_from_input(given, source, family, heads, pooler), names, variables)
    return model_config, given if isinstance(given, dict) else {}


# ---- the tokenizer ------------------------------------------------------------------------------

def _lowercase_from_name(name: str) -> bool | None:
    """Whether Google's release `name` (e.g. "uncased_L-12_H-768_A-12") was lowercased, as BERT's
    tokenization.validate_case_matches_checkpoint decides; None when the name does not say."""
    lowered = name.lower()
    if "uncased" in lowered or lowered.startswith(_LOWERCASED_RELEASES):
        return True
    if "cased" in lowered:
        return False
    return None


def _vocab_has_capitals(path: Path) -> bool:
    """True when a vocab.txt holds capital letters outside [BRACKETED] specials: a cased vocabulary."""
    with path.open(encoding="utf-8", errors="replace") as f:
        return any(token != token.lower() for line in f
                   if (token := line.rstrip("\r\n")) and not (token.startswith("[") and token.endswith("]")))


def _tokenizer(prefix: Path, fields: dict[str, Any]) -> Any:
    from jaxbert.tokenize import find_tokenizer

    directory = prefix.parent
    lowercase = fields.get("do_lower_case")
    if lowercase is None:
        lowercase = _lowercase_from_name(directory.name)
        if lowercase is None:
            lowercase = _lowercase_from_name(prefix.name)
    if lowercase is None and (directory / "vocab.txt").is_file():
        lowercase = not _vocab_has_capitals(directory / "vocab.txt")
    return find_tokenizer(directory, defaults={} if lowercase is None else {"do_lower_case": bool(lowercase)})


# ---- the entry point ----------------------------------------------------------------------------

def load_tf_checkpoint(path: str | os.PathLike, part: str | None = None,
                       config: str | os.PathLike | ModelConfig | None = None) -> TFModel:
    """Open a Google TF checkpoint (prefix, .index/.data-* file, or its directory).

    `part`: for ELECTRA, "discriminator" (default) or "generator". `config`: a preset name, a ModelConfig or a
    config file, for checkpoints without bert_config.json / albert_config.json / config.json beside them.
    """
    prefix = find_prefix(path)
    if prefix is None:
        raise TFCheckpointError(f"{path} is not a TensorFlow checkpoint (no PREFIX.index beside PREFIX.data-* "
                                "files); pass the checkpoint prefix, e.g. .../bert_model.ckpt, or its directory")
    variables = _Variables(Bundle(prefix))
    family = _family(variables)
    names = _model_names(family, part, variables)
    model_config, fields = _model_config(prefix.parent, family, names, variables, config)
    expected = _flatten(param_shapes(model_config))
    missing = _check_shapes(model_config, names, variables, expected)
    if missing:
        raise TFCheckpointError(f"{variables.source}: {len(missing)} variable(s) of the {family} model are missing: "
                                f"{', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}; the checkpoint does "
                                "not match its config (e.g. fewer layers than num_hidden_layers)")
    params = _read_params(model_config, names, variables, expected)
    _check_leftovers(names, variables)
    check_params(model_config, params, source=variables.source)
    return TFModel(model_config, jax.tree_util.tree_map(jnp.asarray, params), _tokenizer(prefix, fields), prefix)
