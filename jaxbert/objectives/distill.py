"""Knowledge distillation with a frozen teacher: DistilBERT (Sanh et al. 2019) and Patient KD (Sun et al. 2019).

Params are the student's alone (so a checkpoint exports exactly the student); the teacher lives in
the frozen tree `{"teacher": ...}` and runs in inference mode on the same masked input.

DistilBERT: loss = alpha_ce · KL(teacher_T || student_T) · T² over the MLM logits of every real token
  (the authors' distiller.py; `ce_positions="masked"` is its --restrict_ce_to_mask) + alpha_mlm · MLM
  cross-entropy at the masked slots + alpha_cos · (1 − cos(student, teacher)) over real tokens' last
  hidden states. The paper's weights: 5, 2, 1 at T = 2. Options as in the authors' train.py: masking
  probabilities smoothed by token frequency (count^-0.7, `selection_probs`) and frozen position
  embeddings (--freeze_pos_embs).
Patient KD: loss = (1 − alpha) · task loss + alpha · KL · T² + beta · PT, PT the mean squared error of
  L2-normalised [CLS] hidden states of the student's intermediate layers against teacher layers chosen
  by PKD-Skip (every k-th) or PKD-Last (the last ones). The task is MLM (task-agnostic distillation on
  a corpus) or sequence classification (batch field `labels`, as the fine-tuning batches name it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ConfigError, ModelConfig, resolve_model_config
from jaxbert.data.masking import MaskingConfig, packed_slots
from jaxbert.model import EncoderModel, logical_axes
from jaxbert.model.heads import first_tokens
from jaxbert.model.params import init_boxed
from jaxbert.objectives.base import Metrics, Objective, PyTree, encoder_fields, register_objective
from jaxbert.objectives.masking_setup import (
    draw_mask,
    masking_from_options,
    packed_examples,
    packed_fields,
    token_selection_probs,
    word_fields,
)
from jaxbert.objectives.mlm import (
    attention_mask_of,
    encoder_flops_per_token,
    masked_lm_metrics,
    packed_inputs,
    pair_metrics,
)
from jaxbert.objectives.teacher import Teacher, check_compatible, init_layer_indices, student_from_teacher

PKD_STRATEGIES = ("skip", "last")
PKD_TASKS = ("mlm", "classification")
CE_POSITIONS = ("all", "masked")
# What the DistilBERT extraction script leaves out of the student's init unless run with --vocab_transform.
MLM_TRANSFORM = ("mlm_head/transform", "mlm_head/norm")
POSITION_TABLE = "embeddings/position/embedding"


# ---- losses (pure functions) ----------------------------------------------------------------
def soft_target_loss(student_logits: jax.Array, teacher_logits: jax.Array, temperature: float,
                     weights: jax.Array | None = None) -> jax.Array:
    """Mean over (weighted) rows of KL(softmax(t/T) || softmax(s/T)) · T² (Hinton et al.'s scaling)."""
    t = jax.nn.log_softmax(teacher_logits.astype(jnp.float32) / temperature, axis=-1)
    s = jax.nn.log_softmax(student_logits.astype(jnp.float32) / temperature, axis=-1)
    kl = jnp.sum(jnp.exp(t) * (t - s), axis=-1)
    w = jnp.ones(kl.shape, jnp.float32) if weights is None else weights.astype(jnp.float32)
    return (kl * w).sum() / jnp.maximum(w.sum(), 1.0) * temperature ** 2


def cosine_embedding_loss(student: jax.Array, teacher: jax.Array, weights: jax.Array) -> jax.Array:
    """Mean over weighted tokens of 1 − cos(student, teacher) (torch's CosineEmbeddingLoss, target 1)."""
    s, t = student.astype(jnp.float32), teacher.astype(jnp.float32)
    eps = 1e-8
    cos = (s * t).sum(-1) / (jnp.maximum(jnp.linalg.norm(s, axis=-1), eps) * jnp.maximum(jnp.linalg.norm(t, axis=-1),
                                                                                          eps))
    w = weights.astype(jnp.float32)
    return ((1.0 - cos) * w).sum() / jnp.maximum(w.sum(), 1.0)


def normalized_mse(student: jax.Array, teacher: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """PKD's patience loss: mean squared difference of the L2-normalised vectors (last axis), averaged
    over every element as the authors' code does (F.mse_loss on normalised [K, B, H]).

    Packed rows: student/teacher [K, B, S, H] (one [CLS] per packed example) and `weights` [B, S] count
    only the examples present."""
    def unit(x: jax.Array) -> jax.Array:
        x = x.astype(jnp.float32)
        return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    squared = (unit(student) - unit(teacher)) ** 2
    if weights is None:
        return jnp.mean(squared)
    w = jnp.broadcast_to(weights.astype(jnp.float32)[None, ..., None], squared.shape)
    return (squared * w).sum() / jnp.maximum(w.sum(), 1.0)


def pkd_layer_pairs(strategy: str, student_layers: int, teacher_layers: int) -> tuple[tuple[int, int], ...]:
    """(student layer, teacher layer) pairs, 1-based hidden-state indices, for the student's intermediate layers.

    PKD-Skip: teacher layers k, 2k, ... with k = L_t // L_s (12 → 6: 2, 4, 6, 8, 10);
    PKD-Last: the last L_s − 1 layers before the top (12 → 6: 7, 8, 9, 10, 11). The top layer is left to
    the soft-target loss, as in the paper.
    """
    if strategy not in PKD_STRATEGIES:
        raise ConfigError(f"config.objective.strategy: unknown PKD strategy {strategy!r}; use one of "
                          f"{', '.join(PKD_STRATEGIES)}")
    if student_layers > teacher_layers:
        raise ConfigError(f"config.model.num_layers: the student's {student_layers} layers exceed the teacher's "
                          f"{teacher_layers}; Patient KD needs a shallower student")
    k = teacher_layers // student_layers
    if strategy == "skip":
        return tuple((j, j * k) for j in range(1, student_layers))
    return tuple((j, teacher_layers - student_layers + j) for j in range(1, student_layers))


# ---- the objectives -------------------------------------------------------------------------
class _Distillation(Objective):
    """What DistilBERT and Patient KD share: the teacher, the student's init from it, shapes and cost."""

    def __init__(self, student: ModelConfig, teacher: Teacher, masking: MaskingConfig | None,
                 temperature: float, init_layers: str | Sequence[int],
                 word_tables: tuple[np.ndarray, np.ndarray] | None = None, packed: int = 0) -> None:
        if temperature <= 0:
            raise ConfigError(f"config.objective.temperature: must be > 0, got {temperature}")
        self.model_config = student
        self.teacher = teacher
        # The frozen teacher computes like the student (one --config.model.compute_dtype sets both).
        self.teacher_config = teacher.config.replace(compute_dtype=student.compute_dtype,
                                                     attention_kernel=student.attention_kernel)
        self.init_layers = init_layer_indices(init_layers, student.num_layers, self.teacher_config.num_layers)
        check_compatible(student, self.teacher_config, copy_layers=bool(self.init_layers))
        self.masking = masking
        self.temperature = float(temperature)
        self.word_tables = word_tables
        self.init_skip: tuple[str, ...] = ()  # param path prefixes the student does not take from the teacher
        self.fold_token_type = True
        self.packed = int(packed)  # the most examples a packed row holds (segment_ids); 0: unpacked

    # ---- params ---------------------------------------------------------------------
    def init(self, rng: jax.Array) -> PyTree:
        return nn.unbox(init_boxed(self.model_config, rng))

    def init_student(self, rng: jax.Array, teacher_params: PyTree) -> PyTree:
        """The student's starting params: fresh, with the chosen teacher layers (and shared parts) copied in."""
        def build(key: jax.Array, teacher: PyTree) -> PyTree:
            params = self.init(key)
            if not self.init_layers:
                return params
            return student_from_teacher(self.model_config, params, self.teacher_config, teacher, self.init_layers,
                                        fold_token_type=self.fold_token_type, skip=self.init_skip)

        return jax.jit(build)(rng, teacher_params)

    def param_axes(self) -> PyTree:
        return logical_axes(self.model_config)

    def init_frozen(self) -> PyTree:
        return {"teacher": self.teacher.params}

    def frozen_axes(self) -> PyTree:
        return {"teacher": logical_axes(self.teacher_config)}

    # ---- forward passes -------------------------------------------------------------
    def _inputs(self, batch: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        ids = batch["input_ids"].astype(jnp.int32)
        return ids, attention_mask_of(batch, self.model_config.pad_token_id), batch.get("token_type_ids")

    def _teacher(self, frozen: PyTree, ids: jax.Array, attention: jax.Array, types: jax.Array | None,
                 **kw: Any) -> Any:
        # A student without segment embeddings was initialised for segment 0: show the teacher the same.
        types = types if self.model_config.type_vocab_size > 0 else None
        out = EncoderModel(self.teacher_config).apply({"params": frozen["teacher"]}, ids, attention, types,
                                                      deterministic=True, **kw)
        return jax.lax.stop_gradient(out)

    # ---- shapes & cost --------------------------------------------------------------
    def batch_fields(self, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
        fields = encoder_fields(self.model_config, batch_size, seq_len)
        return {**fields, **word_fields(self.word_tables, batch_size, seq_len),
                **packed_fields(self.packed, batch_size, seq_len)}

    def _head_flops(self, cfg: ModelConfig, seq_len: int) -> float:
        m = self.masking
        if m is None:
            return 0.0
        predictions = packed_slots(seq_len, m.mask_prob, m.max_predictions, self.packed) if self.packed else \
            min(m.max_predictions, seq_len)
        return predictions * (2 * cfg.hidden_size * cfg.embed_dim + 2 * cfg.embed_dim * cfg.vocab_size)

    def flops_per_step(self, batch_size: int, seq_len: int) -> float:
        """Student forward + backward (3× its forward matmuls) plus one teacher forward."""
        def forward(cfg: ModelConfig) -> float:
            return seq_len * encoder_flops_per_token(cfg, seq_len) + self._head_flops(cfg, seq_len)

        return batch_size * (3.0 * forward(self.model_config) + forward(self.teacher_config))


class DistilBert(_Distillation):
    """Soft-target CE at temperature T + MLM + cosine loss on the last hidden states (Sanh et al. 2019).

    `ce_positions`: "all" real tokens (the authors' default) or the "masked" slots only.
    `selection_probs` [V]: masking probability per token id (frequency-smoothed), None for uniform.
    `freeze_positions`: the position table is not trained. `fold_token_type`, `init_mlm_transform`:
    what the student's init takes from the teacher beyond the layers, embeddings and MLM bias.
    """

    name = "distill"

    def __init__(self, student: ModelConfig, teacher: Teacher, masking: MaskingConfig, temperature: float = 2.0,
                 alpha_ce: float = 5.0, alpha_mlm: float = 2.0, alpha_cos: float = 1.0,
                 init_layers: str | Sequence[int] = "spread",
                 word_tables: tuple[np.ndarray, np.ndarray] | None = None, ce_positions: str = "all",
                 selection_probs: np.ndarray | None = None, freeze_positions: bool = False,
                 fold_token_type: bool = False, init_mlm_transform: bool = False, packed: int = 0) -> None:
        student = student.replace(heads=("mlm",), task="", num_labels=0)
        super().__init__(student, teacher, masking, temperature, init_layers, word_tables, packed)
        if alpha_ce > 0 and "mlm" not in self.teacher_config.heads:
            raise ConfigError("config.objective.teacher: the teacher has no MLM head, so it gives no soft targets; "
                              "use a *ForMaskedLM / *ForPreTraining checkpoint or set alpha_ce=0")
        if min(alpha_ce, alpha_mlm, alpha_cos) < 0:
            raise ConfigError("config.objective.alpha_ce / alpha_mlm / alpha_cos: loss weights must be >= 0")
        if ce_positions not in CE_POSITIONS:
            raise ConfigError(f"config.objective.ce_positions: unknown choice {ce_positions!r}; use 'all' (every real "
                              "token, the authors' default) or 'masked' (their --restrict_ce_to_mask)")
        if selection_probs is not None and np.shape(selection_probs) != (student.vocab_size,):
            raise ConfigError(f"config.objective.token_counts: {np.shape(selection_probs)} selection probabilities "
                              f"for a {student.vocab_size}-id vocabulary; count with the run's tokenizer")
        self.alpha_ce, self.alpha_mlm, self.alpha_cos = float(alpha_ce), float(alpha_mlm), float(alpha_cos)
        self.ce_positions = ce_positions
        self.selection_probs = selection_probs
        self.freeze_positions = bool(freeze_positions)
        self.fold_token_type = bool(fold_token_type)
        self.init_skip = () if init_mlm_transform else MLM_TRANSFORM

    def trainable_mask(self, params: PyTree) -> PyTree | None:
        if not self.freeze_positions:
            return None
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "/".join(str(getattr(k, "key", k)) for k in path) != POSITION_TABLE, params)

    def _head_flops(self, cfg: ModelConfig, seq_len: int) -> float:
        if self.ce_positions == "all" and self.alpha_ce > 0:  # both models' MLM heads read every position
            return seq_len * (2 * cfg.hidden_size * cfg.embed_dim + 2 * cfg.embed_dim * cfg.vocab_size)
        return super()._head_flops(cfg, seq_len)

    def loss(self, params: PyTree, frozen: PyTree, batch: Mapping[str, jax.Array], rng: jax.Array,
             deterministic: bool = False) -> tuple[jax.Array, Metrics]:
        k_mask, k_dropout = jax.random.split(rng)
        ids, attention, types = self._inputs(batch)
        segments, _, _ = packed_inputs(batch, self.packed)
        masked = draw_mask(k_mask, ids, attention, self.masking, self.word_tables, batch, self.selection_probs,
                           max_segments=self.packed)
        positions, weights = masked.masked_positions, masked.masked_weights
        every_token = self.ce_positions == "all" and self.alpha_ce > 0
        # Logits at every position when the soft targets cover every token, else only at the masked slots.
        at = None if every_token else positions
        teacher = self._teacher(frozen, masked.inputs, attention, types, masked_positions=at,
                                heads=("mlm",) if self.alpha_ce > 0 else (), segment_ids=segments)
        student = EncoderModel(self.model_config).apply(
            {"params": params}, masked.inputs, attention, types, deterministic=deterministic,
            masked_positions=at, segment_ids=segments, rngs=None if deterministic else {"dropout": k_dropout})
        gather = (lambda x: jnp.take_along_axis(x, positions[..., None], axis=1)) if every_token else (lambda x: x)
        s_logits = student.logits["mlm"]
        mlm_loss, mlm_acc = masked_lm_metrics(gather(s_logits), masked.masked_ids, weights)
        cos_loss = cosine_embedding_loss(student.last_hidden_state, teacher.last_hidden_state, attention)
        metrics = {"mlm_loss": mlm_loss, "mlm_accuracy": mlm_acc, "cos_loss": cos_loss}
        loss = self.alpha_mlm * mlm_loss + self.alpha_cos * cos_loss
        if self.alpha_ce > 0:
            t_logits = teacher.logits["mlm"]
            ce_loss = soft_target_loss(s_logits, t_logits, self.temperature, attention if every_token else weights)
            s_masked, t_masked = gather(s_logits), gather(t_logits)
            agree = (jnp.argmax(s_masked, -1) == jnp.argmax(t_masked, -1)).astype(jnp.float32)
            _, teacher_acc = masked_lm_metrics(t_masked, masked.masked_ids, weights)
            metrics.update(ce_loss=ce_loss, teacher_mlm_accuracy=teacher_acc,
                           teacher_agreement=(agree * weights).sum() / jnp.maximum(weights.sum(), 1.0))
            loss = loss + self.alpha_ce * ce_loss
        metrics["loss"] = loss
        return loss, metrics


class PatientKD(_Distillation):
    """(1 − α) · task + α · soft targets + β · normalised [CLS] MSE on PKD-Skip / PKD-Last layers."""

    name = "pkd"

    def __init__(self, student: ModelConfig, teacher: Teacher, masking: MaskingConfig | None, task: str = "mlm",
                 strategy: str = "skip", temperature: float = 10.0, alpha: float = 0.5, beta: float = 100.0,
                 init_layers: str | Sequence[int] = "first", label_field: str = "labels",
                 word_tables: tuple[np.ndarray, np.ndarray] | None = None, packed: int = 0) -> None:
        if task not in PKD_TASKS:
            raise ConfigError(f"config.objective.task: unknown PKD task {task!r}; use one of {', '.join(PKD_TASKS)}")
        if task == "mlm":
            if masking is None:
                raise ConfigError("config.objective.task: PKD on MLM needs a masking config")
            student = student.replace(heads=("mlm",), task="", num_labels=0)
        else:
            if student.task != "classification" or student.num_labels < 2:
                raise ConfigError("config.model.task: PKD classification needs a student with task='classification' "
                                  "and num_labels >= 2 (soft targets are undefined for regression)")
            student = student.replace(heads=())
            masking = None
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"config.objective.alpha: must be in [0, 1], got {alpha}")
        if beta < 0:
            raise ConfigError(f"config.objective.beta: must be >= 0, got {beta}")
        if packed and task != "mlm":
            raise ConfigError("config.data.pack_examples: Patient KD packs only its MLM task; set "
                              "pack_examples=False for task='classification'")
        super().__init__(student, teacher, masking, temperature, init_layers, word_tables, packed)
        if task == "classification" and (self.teacher_config.task != "classification"
                                         or self.teacher_config.num_labels != student.num_labels):
            raise ConfigError(f"config.objective.teacher: PKD classification needs a teacher fine-tuned for the same "
                              f"{student.num_labels} classes (it has task={self.teacher_config.task!r}, "
                              f"num_labels={self.teacher_config.num_labels})")
        if task == "mlm" and "mlm" not in self.teacher_config.heads:
            raise ConfigError("config.objective.teacher: the teacher has no MLM head; use a *ForMaskedLM / "
                              "*ForPreTraining checkpoint or task='classification'")
        self.task, self.strategy = task, strategy
        self.alpha, self.beta = float(alpha), float(beta)
        self.label_field = label_field
        self.layer_pairs = pkd_layer_pairs(strategy, student.num_layers, self.teacher_config.num_layers)

    def loss(self, params: PyTree, frozen: PyTree, batch: Mapping[str, jax.Array], rng: jax.Array,
             deterministic: bool = False) -> tuple[jax.Array, Metrics]:
        k_mask, k_dropout = jax.random.split(rng)
        ids, attention, types = self._inputs(batch)
        segments, starts, present = packed_inputs(batch, self.packed)
        kw: dict[str, Any] = {"output_hidden_states": True, "segment_ids": segments}
        weights = None
        if self.task == "mlm":
            masked = draw_mask(k_mask, ids, attention, self.masking, self.word_tables, batch,
                           max_segments=self.packed)
            ids, weights = masked.inputs, masked.masked_weights
            kw.update(masked_positions=masked.masked_positions)
        teacher = self._teacher(frozen, ids, attention, types, heads=("mlm",) if self.task == "mlm" else (), **kw)
        student = EncoderModel(self.model_config).apply(
            {"params": params}, ids, attention, types, deterministic=deterministic,
            rngs=None if deterministic else {"dropout": k_dropout}, **kw)
        s_logits, t_logits = student.logits[self.task], teacher.logits[self.task]
        if self.task == "mlm":
            task_loss, accuracy = masked_lm_metrics(s_logits, masked.masked_ids, weights)
        else:
            task_loss, accuracy = pair_metrics(s_logits, batch[self.label_field])
        kd_loss = soft_target_loss(s_logits, t_logits, self.temperature, weights)
        metrics = {"task_loss": task_loss, "accuracy": accuracy, "kd_loss": kd_loss}
        loss = (1.0 - self.alpha) * task_loss + self.alpha * kd_loss
        if self.layer_pairs:
            # Each (packed) example's [CLS]: [pairs, B, H], or [pairs, B, K, H] with the slots present.
            s_cls = jnp.stack([first_tokens(student.hidden_states[i], starts) for i, _ in self.layer_pairs])
            t_cls = jnp.stack([first_tokens(teacher.hidden_states[j], starts) for _, j in self.layer_pairs])
            pt_loss = normalized_mse(s_cls, t_cls, present)
            metrics["pt_loss"] = pt_loss
            loss = loss + self.beta * pt_loss
        metrics["loss"] = loss
        return loss, metrics

    def batch_fields(self, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
        fields = super().batch_fields(batch_size, seq_len)
        if self.task == "classification":
            fields[self.label_field] = ((batch_size,), np.int32)
        return fields


# ---- factories --------------------------------------------------------------------------------
def _spec(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else value


def teacher_from_options(opts: Any, student: ModelConfig) -> Teacher:
    """`objective.teacher` (a checkpoint path) or, when empty, a random `objective.teacher_model`
    (its vocabulary and padding id taken from the student's, which the run fits to its tokenizer)."""
    source = str(opts.get("teacher", "") or "")
    if source:
        return Teacher(source)
    spec = opts.get("teacher_model", None)
    if not spec:
        raise ConfigError("config.objective.teacher: give a teacher checkpoint path, or objective.teacher_model "
                          "(a preset or dict) for a random teacher")
    config = resolve_model_config(_spec(spec)).replace(vocab_size=student.vocab_size,
                                                       pad_token_id=student.pad_token_id)
    return Teacher(random_config=config, seed=int(opts.get("teacher_seed", 0)))


def _init_layers(opts: Any, default: str) -> str | tuple[int, ...]:
    value = opts.get("init_layers", default)
    return value if isinstance(value, str) else tuple(int(i) for i in value)


def distils_on_a_task(config: Any) -> bool:
    """True when the config distils on labelled task data (Patient KD with objective.task="classification")
    rather than on an unlabelled corpus: the fine-tuning pipeline's run, not the pretraining one's."""
    objective = config.get("objective", {}) if hasattr(config, "get") else {}
    return str(objective.get("name", "")) == "pkd" and str(objective.get("task", "")) == "classification"


@register_objective("distill")
def make_distill(config: Any, tokenizer: Any = None) -> DistilBert:
    """DistilBert from an experiment config: `model` (the student), `objective.{teacher | teacher_model,
    teacher_seed, temperature, alpha_ce, alpha_mlm, alpha_cos, init_layers, ce_positions, mask_smoothing,
    token_counts, freeze_position_embeddings, fold_token_type, init_mlm_transform, mask_prob, ...}`."""
    opts = config.objective
    student = resolve_model_config(_spec(config.model))
    masking, tables = masking_from_options(opts, student, tokenizer, data=config.get("data"))
    return DistilBert(student, teacher_from_options(opts, student), masking,
                      temperature=float(opts.get("temperature", 2.0)), alpha_ce=float(opts.get("alpha_ce", 5.0)),
                      alpha_mlm=float(opts.get("alpha_mlm", 2.0)), alpha_cos=float(opts.get("alpha_cos", 1.0)),
                      init_layers=_init_layers(opts, "spread"), word_tables=tables,
                      ce_positions=str(opts.get("ce_positions", "all")),
                      selection_probs=token_selection_probs(opts, masking),
                      freeze_positions=bool(opts.get("freeze_position_embeddings", False)),
                      fold_token_type=bool(opts.get("fold_token_type", False)),
                      init_mlm_transform=bool(opts.get("init_mlm_transform", False)),
                      packed=packed_examples(config))


@register_objective("pkd")
def make_pkd(config: Any, tokenizer: Any = None) -> PatientKD:
    """PatientKD from an experiment config: `model` (the student), `objective.{teacher | teacher_model, task,
    strategy, temperature, alpha, beta, init_layers, label_field, mask_prob, ...}`."""
    opts = config.objective
    student = resolve_model_config(_spec(config.model))
    task = str(opts.get("task", "mlm"))
    masking, tables = (masking_from_options(opts, student, tokenizer, data=config.get("data")) if task == "mlm"
                       else (None, None))
    return PatientKD(student, teacher_from_options(opts, student), masking, task=task,
                     strategy=str(opts.get("strategy", "skip")), temperature=float(opts.get("temperature", 10.0)),
                     alpha=float(opts.get("alpha", 0.5)), beta=float(opts.get("beta", 100.0)),
                     init_layers=_init_layers(opts, "first"), label_field=str(opts.get("label_field", "labels")),
                     word_tables=tables, packed=packed_examples(config) if task == "mlm" else 0)
