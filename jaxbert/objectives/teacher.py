"""A distillation teacher (a loaded checkpoint or a fresh random model) and a student initialised from it.

DistilBERT (Sanh et al. 2019) starts the student from the teacher "by taking one layer out of
two"; the authors' extraction script (transformers examples/research_projects/distillation/scripts/
extract_distilbert.py) takes layers [0, 2, 4, 7, 9, 11] of 12, first and last included ("spread").
Patient KD (Sun et al. 2019) starts from the teacher's first k layers. By default everything else the two
models have in common (embeddings, MLM head, pooler) is copied too; `student_from_teacher`'s `skip`
leaves chosen parts at their fresh init, as the extraction script does with the MLM transform.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ConfigError, ModelConfig
from jaxbert.model import init_params, scan_to_unrolled, unrolled_to_scan

PyTree = Any
INIT_LAYER_CHOICES = ("spread", "skip", "first", "none")


# Teachers already read, by path, while a `reuse_loaded_teachers()` block is open.
_LOADED: dict[str, tuple[ModelConfig, PyTree]] | None = None


@contextlib.contextmanager
def reuse_loaded_teachers() -> Iterator[None]:
    """Within this block a teacher checkpoint is read from disk once however many objectives load it
    (the distill command builds the objective for the student's init and again for the run)."""
    global _LOADED
    outer, _LOADED = _LOADED, ({} if _LOADED is None else _LOADED)
    try:
        yield
    finally:
        _LOADED = outer


def _load_checkpoint(source: str) -> tuple[ModelConfig, PyTree]:
    from jaxbert import formats, storage

    if _LOADED is not None and source in _LOADED:
        return _LOADED[source]
    storage.check_access(source, what="config.objective.teacher")
    if not formats.is_hub_name(source) and not storage.path(source).exists():
        raise ConfigError(f"config.objective.teacher: no such checkpoint path {source}; "
                          "point it at a jaxbert bundle, training workdir or Hugging Face dir")
    loaded = formats.open_model(source)
    if _LOADED is not None:
        _LOADED[source] = (loaded.config, loaded.params)
    return loaded.config, loaded.params


class Teacher:
    """The frozen model: `source` is a path `jaxbert.load` opens (bundle, workdir, HF dir), or "" for a fresh
    random model of `random_config` (smoke tests). Loaded once, on first use; params in scan layout."""

    def __init__(self, source: str | os.PathLike = "", random_config: ModelConfig | None = None,
                 seed: int = 0) -> None:
        if not source and random_config is None:
            raise ConfigError("config.objective.teacher: give a teacher checkpoint path (jaxbert bundle, training "
                              "workdir or Hugging Face dir) or set objective.teacher_model for a random teacher")
        self.source = str(source or "")
        self._random_config = random_config
        self.seed = int(seed)
        self._config: ModelConfig | None = None
        self._params: PyTree | None = None

    def _load(self) -> None:
        if self._params is not None:
            return
        if self.source:
            config, params = _load_checkpoint(self.source)
        else:
            config = self._random_config
            params = jax.jit(lambda key: init_params(config, key))(jax.random.key(self.seed))
        if not config.scan_layers and config.sharing != "all":
            params = unrolled_to_scan(params, config)
        self._config = config.replace(scan_layers=True)
        self._params = params

    @property
    def config(self) -> ModelConfig:
        """The teacher's config (scan layout); a random teacher's is known without creating its params."""
        if self._params is None and not self.source:
            return self._random_config.replace(scan_layers=True)
        self._load()
        return self._config

    @property
    def params(self) -> PyTree:
        self._load()
        return self._params

    def tokenizer_dir(self) -> str | None:
        """The directory holding the teacher checkpoint's tokenizer files, when it has one."""
        if not self.source:
            return None
        from jaxbert import formats, storage
        from jaxbert.tokenize import find_tokenizer

        path = storage.path(self.source)
        directory = path / formats.TOKENIZER_DIR if formats.is_workdir(path) else path
        return str(directory) if directory.is_dir() and find_tokenizer(directory) is not None else None


def init_layer_indices(spec: str | Sequence[int], student_layers: int, teacher_layers: int) -> tuple[int, ...]:
    """Which teacher layers (0-based) initialise the student's: "spread" L_s layers evenly from the first to
    the last, round(linspace(0, L_t - 1, L_s)) (12 → 6: 0, 2, 4, 7, 9, 11, the DistilBERT extraction
    script's list), "skip" every (L_t // L_s)-th from 0 (0, 2, ..., 10: the paper's "one layer out of two"),
    "first" 0..L_s-1 (PKD), or an explicit list; () for "none"."""
    if isinstance(spec, str):
        if spec not in INIT_LAYER_CHOICES:
            raise ConfigError(f"config.objective.init_layers: unknown choice {spec!r}; use one of "
                              f"{', '.join(INIT_LAYER_CHOICES)} or a list of teacher layer indices")
        if spec == "none":
            return ()
        if student_layers > teacher_layers:
            raise ConfigError(f"config.objective.init_layers: the student has {student_layers} layers, more than the "
                              f"teacher's {teacher_layers}; use init_layers='none' or a list of indices")
        if spec == "spread":
            # numpy rounds half to even; the listed 12 → 6 case has no halves (0, 2.2, 4.4, 6.6, 8.8, 11).
            return tuple(int(i) for i in np.round(np.linspace(0, teacher_layers - 1, student_layers)))
        stride = teacher_layers // student_layers if spec == "skip" else 1
        return tuple(i * stride for i in range(student_layers))
    indices = tuple(int(i) for i in spec)
    if len(indices) != student_layers or not all(0 <= i < teacher_layers for i in indices):
        raise ConfigError(f"config.objective.init_layers: {list(indices)} must list {student_layers} teacher layer "
                          f"indices in 0..{teacher_layers - 1}, one per student layer")
    return indices


def _flat(tree: PyTree) -> dict[str, jax.Array]:
    return {"/".join(str(getattr(k, "key", k)) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _unflat(flat: dict[str, Any], like: PyTree) -> PyTree:
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(like)[0]]
    keys = ["/".join(str(getattr(k, "key", k)) for k in path) for path in paths]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), [flat[k] for k in keys])


def check_compatible(student: ModelConfig, teacher: ModelConfig, copy_layers: bool) -> None:
    """Teacher and student must share the vocabulary (KD logits) and width (hidden-state losses, copies)."""
    if student.vocab_size != teacher.vocab_size:
        raise ConfigError(f"config.model.vocab_size: the student has {student.vocab_size} ids but the teacher "
                          f"{teacher.vocab_size}; distil with the teacher's tokenizer and vocabulary")
    if student.hidden_size != teacher.hidden_size:
        raise ConfigError(f"config.model.hidden_size: the student's {student.hidden_size} differs from the teacher's "
                          f"{teacher.hidden_size}; hidden-state losses compare them directly, use the same width")
    if copy_layers:
        for field in ("intermediate_size", "num_heads", "embed_dim"):
            if getattr(student, field) != getattr(teacher, field):
                raise ConfigError(f"config.model.{field}: the student's {getattr(student, field)} differs from the "
                                  f"teacher's {getattr(teacher, field)}, so its layers cannot be copied; match it "
                                  "or set objective.init_layers='none'")
        if student.sharing != "none" or teacher.sharing != "none":
            raise ConfigError("config.objective.init_layers: copying layers needs unshared layers (sharing='none') "
                              "in teacher and student; set init_layers='none'")


def student_from_teacher(student: ModelConfig, student_params: PyTree, teacher: ModelConfig,
                         teacher_params: PyTree, layers: Sequence[int], fold_token_type: bool = True,
                         skip: Sequence[str] = ()) -> PyTree:
    """`student_params` with every part the teacher also has replaced by the teacher's copy; encoder layer i
    comes from teacher layer `layers[i]`; params whose path starts with one of `skip` (e.g.
    "mlm_head/transform") keep their fresh init. Pure jnp, so it also runs under jit.

    With `fold_token_type`, a student without segment embeddings (DistilBERT) gets the teacher's segment-0
    vector folded into its position table: its embedding output then equals the teacher's for
    token_type_ids = 0. The DistilBERT extraction script copies the position table as it is (no fold).
    """
    check_compatible(student, teacher, copy_layers=True)
    if not student.scan_layers:
        student_params = unrolled_to_scan(student_params, student)
    source = dict(_flat(teacher_params))
    index = jnp.asarray(list(layers), jnp.int32)
    for key in [k for k in source if k.startswith("encoder/layers/")]:
        source[key] = jnp.take(source[key], index, axis=0)
    if fold_token_type and student.type_vocab_size == 0 and "embeddings/token_type/embedding" in source:
        source["embeddings/position/embedding"] = (source["embeddings/position/embedding"]
                                                   + source["embeddings/token_type/embedding"][0][None, :])
    out = {}
    for key, value in _flat(student_params).items():
        if key not in source or any(key.startswith(prefix) for prefix in skip):
            out[key] = value  # a part the teacher lacks (e.g. a new task head) keeps its fresh init
            continue
        if tuple(source[key].shape) != tuple(value.shape):
            raise ConfigError(f"config.model: the student's {key} has shape {tuple(value.shape)} but the teacher's "
                              f"{tuple(source[key].shape)}; match the sizes or set objective.init_layers='none'")
        out[key] = jnp.asarray(source[key], value.dtype)
    params = _unflat(out, student_params)
    return params if student.scan_layers else scan_to_unrolled(params, student)
