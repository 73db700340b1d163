"""ELECTRA pretraining (Clark et al. 2020): a small MLM generator and a replaced-token discriminator.

Params are `{"discriminator": <a full ELECTRA discriminator>, "generator": <encoder + MLM head>}`.
The two models tie their embeddings as in the paper's code: the word, position and segment tables
and the embedding LayerNorm exist once, inside the discriminator's tree, and are merged into the
generator's tree at apply time, so both losses' gradients reach the one copy. Where the
generator's hidden size differs from the embedding width, its own E→H projection stays in
`params["generator"]["embeddings"]`.

One step: 15% dynamic masking → generator MLM logits at the masked slots → a token sampled from
the generator's softmax (Gumbel-max, no gradient through the sample) replaces each masked token →
the discriminator labels every real token replaced (sampled != original) or not.
loss = gen_weight · mlm_loss + disc_weight · rtd_loss (the paper: 1 and 50).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ConfigError, ModelConfig, resolve_model_config
from jaxbert.data.masking import MaskedTokens, MaskingConfig, packed_slots
from jaxbert.model import EncoderModel, logical_axes
from jaxbert.model.params import init_boxed
from jaxbert.objectives.base import Metrics, ModelPart, Objective, PyTree, encoder_fields, register_objective
from jaxbert.objectives.masking_setup import (
    draw_mask,
    masking_from_options,
    packed_examples,
    packed_fields,
    word_fields,
)
from jaxbert.objectives.mlm import attention_mask_of, encoder_flops_per_token, masked_lm_metrics, packed_inputs

# The embedding sub-modules generator and discriminator share (the paper ties them); the E→H
# "projection" is per model.
SHARED_EMBEDDINGS = ("word", "position", "token_type", "norm")
# Fields of the generator's config that must equal the discriminator's because their tables are shared.
SHARED_FIELDS = ("vocab_size", "max_position_embeddings", "type_vocab_size", "pad_token_id", "position_offset",
                 "layer_norm_eps", "param_dtype")
# How the run computes (set once on the discriminator, e.g. --config.model.compute_dtype=bfloat16).
COMPUTE_FIELDS = ("compute_dtype", "attention_kernel", "remat", "scan_layers")


def generator_config(discriminator: ModelConfig, generator: ModelConfig) -> ModelConfig:
    """The generator's config with the shared-embedding fields and the compute choices taken from the
    discriminator.

    Its embedding width is the discriminator's (a projection E→H is added when its hidden size differs),
    and it carries exactly one head, the MLM head.
    """
    e = discriminator.embed_dim
    return generator.replace(
        family="electra", embedding_size=0 if e == generator.hidden_size else e, heads=("mlm",), pooler=False,
        task="", num_labels=0, **{f: getattr(discriminator, f) for f in SHARED_FIELDS + COMPUTE_FIELDS})


def generator_from_fraction(discriminator: ModelConfig, hidden_fraction: float, layer_fraction: float = 1.0
                            ) -> ModelConfig:
    """The generator the original code builds from the discriminator (run_pretraining.get_generator_config):
    hidden = round(H · generator_hidden_size), layers = round(L · generator_layers), intermediate 4 · hidden,
    heads max(1, hidden // 64). ELECTRA-Small at 0.25: hidden 64, 1 head; Base at 1/3: hidden 256, 4 heads."""
    if not 0.0 < hidden_fraction <= 1.0:
        raise ConfigError(f"config.objective.generator_size: a fraction of the discriminator's hidden size in "
                          f"(0, 1], got {hidden_fraction} (the paper: 1/4 for Small and Large, 1/3 for Base)")
    if not 0.0 < layer_fraction <= 1.0:
        raise ConfigError(f"config.objective.generator_layers: a fraction of the discriminator's layers in (0, 1], "
                          f"got {layer_fraction}")
    hidden = max(1, int(round(discriminator.hidden_size * hidden_fraction)))
    heads = max(1, hidden // 64)
    if hidden % heads:
        raise ConfigError(f"config.objective.generator_size: {hidden_fraction} gives a hidden size of {hidden}, not "
                          f"divisible by its {heads} heads; pick a fraction giving a multiple of 64")
    return discriminator.replace(hidden_size=hidden, num_layers=max(1, int(round(discriminator.num_layers
                                                                                 * layer_fraction))),
                                 intermediate_size=4 * hidden, num_heads=heads)


def _without_shared(tree: PyTree) -> PyTree:
    """A generator tree minus the embedding tables it borrows from the discriminator."""
    own = {k: v for k, v in tree["embeddings"].items() if k not in SHARED_EMBEDDINGS}
    out = {k: v for k, v in tree.items() if k != "embeddings"}
    if own:
        out["embeddings"] = own
    return out


def generator_params(params: PyTree) -> PyTree:
    """The generator's full param tree: its own params plus the discriminator's shared embedding tables."""
    shared = {k: v for k, v in params["discriminator"]["embeddings"].items() if k in SHARED_EMBEDDINGS}
    gen = params["generator"]
    return {**gen, "embeddings": {**gen.get("embeddings", {}), **shared}}


def gumbel_sample(rng: jax.Array, logits: jax.Array, temperature: float = 1.0) -> jax.Array:
    """int32 ids drawn from softmax(logits / temperature) by the Gumbel-max trick; no gradient flows."""
    logits = jax.lax.stop_gradient(logits.astype(jnp.float32)) / temperature
    return jnp.argmax(logits + jax.random.gumbel(rng, logits.shape, jnp.float32), axis=-1).astype(jnp.int32)


def replace_at(ids: jax.Array, positions: jax.Array, values: jax.Array, weights: jax.Array) -> jax.Array:
    """`ids` [B, T] with `values` [B, P] written at `positions` [B, P] where `weights` > 0.

    Unused slots (weight 0, position 0) are sent out of bounds and dropped, so they never overwrite
    a real token at position 0.
    """
    t = ids.shape[-1]
    target = jnp.where(weights > 0, positions, t)
    rows = jnp.arange(ids.shape[0])[:, None]
    return ids.at[rows, target].set(values.astype(ids.dtype), mode="drop")


def replaced_token_metrics(logits: jax.Array, labels: jax.Array, weights: jax.Array) -> dict[str, jax.Array]:
    """Sigmoid BCE (mean over weighted tokens) and accuracy / precision / recall of "replaced" (logit > 0)."""
    logits = logits.astype(jnp.float32)
    labels = labels.astype(jnp.float32)
    w = weights.astype(jnp.float32)
    # log(1 + exp(-|x|)) form: stable for large logits of either sign.
    bce = jnp.maximum(logits, 0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    predicted = (logits > 0).astype(jnp.float32)
    tp = (predicted * labels * w).sum()
    return {
        "rtd_loss": (bce * w).sum() / jnp.maximum(w.sum(), 1.0),
        "disc_accuracy": ((predicted == labels) * w).sum() / jnp.maximum(w.sum(), 1.0),
        "disc_precision": tp / jnp.maximum((predicted * w).sum(), 1.0),
        "disc_recall": tp / jnp.maximum((labels * w).sum(), 1.0),
        "replaced_fraction": (labels * w).sum() / jnp.maximum(w.sum(), 1.0),
    }


class Corruption(NamedTuple):
    """One step's discriminator input: the masking draw, the generator's MLM logits at the masked slots
    [B, P, V], its samples [B, P], the corrupted ids [B, T] and their labels (1 = replaced) [B, T]."""

    masked: MaskedTokens
    generator_logits: jax.Array
    sampled: jax.Array
    fake_ids: jax.Array
    labels: jax.Array
    attention: jax.Array


class Electra(Objective):
    """Generator MLM + discriminator replaced-token detection with tied embeddings."""

    name = "electra"
    export_path = ("discriminator",)

    def __init__(self, discriminator: ModelConfig, generator: ModelConfig, masking: MaskingConfig,
                 disc_weight: float = 50.0, gen_weight: float = 1.0, temperature: float = 1.0,
                 word_tables: tuple[np.ndarray, np.ndarray] | None = None, packed: int = 0) -> None:
        if temperature <= 0:
            raise ConfigError(f"config.objective.temperature: must be > 0, got {temperature}")
        if disc_weight < 0 or gen_weight < 0:
            raise ConfigError("config.objective.disc_weight / gen_weight: loss weights must be >= 0")
        self.model_config = discriminator.replace(family="electra", heads=("rtd",), pooler=False, task="",
                                                  num_labels=0)
        self.generator_config = generator_config(self.model_config, generator)
        self.masking = masking
        self.disc_weight = float(disc_weight)
        self.gen_weight = float(gen_weight)
        self.temperature = float(temperature)
        self.word_tables = word_tables
        self.packed = int(packed)  # the most examples a packed row holds (segment_ids); 0: unpacked

    # ---- params ---------------------------------------------------------------------
    def init(self, rng: jax.Array) -> PyTree:
        k_disc, k_gen = jax.random.split(rng)
        disc = nn.unbox(init_boxed(self.model_config, k_disc))
        gen = nn.unbox(init_boxed(self.generator_config, k_gen))
        return {"discriminator": disc, "generator": _without_shared(gen)}

    def param_axes(self) -> PyTree:
        return {"discriminator": logical_axes(self.model_config),
                "generator": _without_shared(logical_axes(self.generator_config))}

    def export(self, params: PyTree) -> PyTree:
        return params["discriminator"]

    def parts(self) -> dict[str, ModelPart]:
        """The discriminator (the default export) and the generator on the discriminator's embedding tables."""
        shared = tuple((("embeddings", k), ("discriminator", "embeddings", k)) for k in SHARED_EMBEDDINGS)
        return {"discriminator": ModelPart(self.model_config, ("discriminator",)),
                "generator": ModelPart(self.generator_config, ("generator",), shared)}

    def params_from_model(self, model_params: PyTree, rng: jax.Array) -> PyTree:
        """A trained discriminator (e.g. an imported ElectraForPreTraining) with a fresh generator on its
        embeddings; a run resumed from an ELECTRA workdir keeps its generator instead (see load_init_params)."""
        fresh = jax.jit(lambda key: _without_shared(nn.unbox(init_boxed(self.generator_config, key))))(rng)
        return {"discriminator": model_params, "generator": fresh}

    # ---- loss -----------------------------------------------------------------------
    def corrupt(self, params: PyTree, batch: Mapping[str, jax.Array], rng: jax.Array,
                deterministic: bool = False) -> Corruption:
        """Mask, run the generator, sample replacements and label the discriminator's input."""
        k_mask, k_sample, k_gen = jax.random.split(rng, 3)
        ids = batch["input_ids"].astype(jnp.int32)
        attention = attention_mask_of(batch, self.model_config.pad_token_id)
        segments, _, _ = packed_inputs(batch, self.packed)
        masked = draw_mask(k_mask, ids, attention, self.masking, self.word_tables, batch,
                           max_segments=self.packed)
        gen_out = EncoderModel(self.generator_config).apply(
            {"params": generator_params(params)}, masked.inputs, attention, batch.get("token_type_ids"),
            deterministic=deterministic, masked_positions=masked.masked_positions, segment_ids=segments,
            rngs=None if deterministic else {"dropout": k_gen})
        sampled = gumbel_sample(k_sample, gen_out.logits["mlm"], self.temperature)
        fake = replace_at(ids, masked.masked_positions, sampled, masked.masked_weights)
        return Corruption(masked, gen_out.logits["mlm"], sampled, fake, (fake != ids) & (attention > 0), attention)

    def loss(self, params: PyTree, frozen: PyTree, batch: Mapping[str, jax.Array], rng: jax.Array,
             deterministic: bool = False) -> tuple[jax.Array, Metrics]:
        del frozen
        k_corrupt, k_disc = jax.random.split(rng)
        c = self.corrupt(params, batch, k_corrupt, deterministic)
        w = c.masked.masked_weights
        mlm_loss, mlm_acc = masked_lm_metrics(c.generator_logits, c.masked.masked_ids, w)
        segments, _, _ = packed_inputs(batch, self.packed)
        disc_out = EncoderModel(self.model_config).apply(
            {"params": params["discriminator"]}, c.fake_ids, c.attention, batch.get("token_type_ids"),
            deterministic=deterministic, segment_ids=segments, rngs=None if deterministic else {"dropout": k_disc})
        metrics = replaced_token_metrics(disc_out.logits["rtd"], c.labels, c.attention)
        loss = self.gen_weight * mlm_loss + self.disc_weight * metrics["rtd_loss"]
        metrics.update(
            mlm_loss=mlm_loss, mlm_accuracy=mlm_acc, loss=loss,
            sampled_accuracy=((c.sampled == c.masked.masked_ids) * w).sum() / jnp.maximum(w.sum(), 1.0))
        return loss, metrics

    # ---- shapes & cost --------------------------------------------------------------
    def batch_fields(self, batch_size: int, seq_len: int) -> dict[str, tuple[tuple[int, ...], Any]]:
        return {**encoder_fields(self.model_config, batch_size, seq_len),
                **word_fields(self.word_tables, batch_size, seq_len), **packed_fields(self.packed, batch_size, seq_len)}

    def flops_per_step(self, batch_size: int, seq_len: int) -> float:
        """6 × forward matmul FLOPs: both encoders on every token, the MLM head on the masked slots,
        the RTD head on every token."""
        gen, disc = self.generator_config, self.model_config
        m = self.masking
        predictions = packed_slots(seq_len, m.mask_prob, m.max_predictions, self.packed) if self.packed else \
            min(m.max_predictions, seq_len)
        mlm_head = 2 * gen.hidden_size * gen.embed_dim + 2 * gen.embed_dim * gen.vocab_size
        rtd_head = 2 * disc.hidden_size * disc.hidden_size + 2 * disc.hidden_size
        per_seq = (seq_len * (encoder_flops_per_token(gen, seq_len) + encoder_flops_per_token(disc, seq_len)
                              + rtd_head) + predictions * mlm_head)
        return 3.0 * batch_size * per_seq

    def progress_metrics(self) -> tuple[str, ...]:
        return ("loss", "mlm_accuracy", "disc_accuracy")


@register_objective("electra")
def make_electra(config: Any, tokenizer: Any = None) -> Electra:
    """Electra from an experiment config: `model` (the discriminator), `objective.{generator_size,
    generator_layers | generator, disc_weight, gen_weight, temperature, mask_prob, max_predictions,
    mask_replace_prob, random_replace_prob, whole_word}`.

    The generator is `generator_size` (a fraction of the discriminator's hidden size, the original code's
    generator_hidden_size) and `generator_layers` (a fraction of its layers, default 1), or an explicit
    `generator` model (a preset such as 'electra-small-generator' or a dict of ModelConfig fields).
    Masking defaults follow the paper's code: 15% of tokens, 85% of them [MASK] and 15% kept, none random.
    """
    opts = config.objective
    disc = resolve_model_config(config.model.to_dict() if hasattr(config.model, "to_dict") else config.model)
    gen_spec = opts.get("generator", None)
    size = float(opts.get("generator_size", 0.0) or 0.0)
    if size and gen_spec not in (None, ""):
        raise ConfigError("config.objective.generator_size: give the generator as a fraction (generator_size) or "
                          "as a model (generator), not both; set the other to '' / 0")
    if size:
        gen = generator_from_fraction(disc, size, float(opts.get("generator_layers", 1.0) or 1.0))
    elif gen_spec in (None, ""):
        raise ConfigError("config.objective.generator_size: ELECTRA needs a generator: a fraction of the "
                          "discriminator's hidden size (generator_size=0.25, the original code's default) or a "
                          "model in objective.generator (a preset such as 'electra-small-generator' or a dict)")
    else:
        gen = resolve_model_config(gen_spec.to_dict() if hasattr(gen_spec, "to_dict") else gen_spec)
    masking, tables = masking_from_options(opts, disc, tokenizer, data=config.get("data"), mask_replace_prob=0.85,
                                           random_replace_prob=0.0)
    return Electra(disc, gen, masking, disc_weight=float(opts.get("disc_weight", 50.0)),
                   gen_weight=float(opts.get("gen_weight", 1.0)), temperature=float(opts.get("temperature", 1.0)),
                   word_tables=tables, packed=packed_examples(config))
