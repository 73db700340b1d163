"""Pretraining heads: pooler, MLM (tied decoder), NSP/SOP pair classifier, ELECTRA replaced-token detection."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbert.config import CLASSIFIER_INPUT, ModelConfig
from jaxbert.model.layers import ACTIVATIONS, LayerNorm, dense, dtype_of, zeros_init
from jaxbert.model.packing import gather_positions


def first_tokens(x: jax.Array, starts: jax.Array | None = None) -> jax.Array:
    """h[CLS] of each row, [B, H]; of each packed example, [B, K, H], given its first positions `starts` [B, K]."""
    return x[:, 0] if starts is None else gather_positions(x, starts)


class Pooler(nn.Module):
    """tanh(W · h[CLS]): BERT's and ALBERT's pooled output ([B, K, H] per packed example given `starts`)."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, starts: jax.Array | None = None) -> jax.Array:
        dense_layer = dense(self.config, self.config.hidden_size, ("hidden", "hidden_out"), name="dense")
        return jnp.tanh(dense_layer(first_tokens(x, starts)))


class MLMHead(nn.Module):
    """transform (H→E) + activation + LayerNorm, then logits against the tied word embeddings plus a bias."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, attend) -> jax.Array:
        cfg = self.config
        h = dense(cfg, cfg.embed_dim, ("hidden", "embed"), name="transform")(x)
        h = LayerNorm(cfg, name="norm")(ACTIVATIONS[cfg.mlm_head_act](h))
        bias = self.param("bias", zeros_init(("vocab",)), (cfg.vocab_size,), dtype_of(cfg.param_dtype))
        return attend(h).astype(jnp.float32) + bias.astype(jnp.float32)


class PairHead(nn.Module):
    """2-way classifier on the pooled output: NSP (is B the next segment?) or SOP (are A, B swapped?)."""

    config: ModelConfig

    @nn.compact
    def __call__(self, pooled: jax.Array) -> jax.Array:
        return dense(self.config, 2, ("hidden", None), name="dense")(pooled).astype(jnp.float32)


class RTDHead(nn.Module):
    """ELECTRA discriminator: per-token logit that the token was replaced by the generator."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        h = ACTIVATIONS[cfg.hidden_act](dense(cfg, cfg.hidden_size, ("hidden", "hidden_out"), name="dense")(x))
        return dense(cfg, 1, ("hidden", None), name="prediction")(h)[..., 0].astype(jnp.float32)


def last_token(hidden: jax.Array, mask: jax.Array | None) -> jax.Array:
    """h at each row's last real token, [B, H]: XLNet's <cls> whether the batch is padded left (as XLNet's
    tokenizer pads, so this is h[:, -1]) or right."""
    if mask is None:
        return hidden[:, -1]
    t = hidden.shape[1]
    last = t - 1 - jnp.argmax(jnp.flip(mask.astype(bool), axis=1), axis=1)
    return jnp.take_along_axis(hidden, last[:, None, None].astype(jnp.int32), axis=1)[:, 0]


class ClassificationHead(nn.Module):
    """Sequence classification / regression, shaped like each family's *ForSequenceClassification head."""

    config: ModelConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, last: jax.Array, pooled: jax.Array | None, mask: jax.Array | None = None,
                 starts: jax.Array | None = None) -> jax.Array:
        """[B, num_labels]; [B, K, num_labels] for packed rows (`starts`: each example's first position)."""
        cfg = self.config
        drop = nn.Dropout(cfg.classifier_dropout)
        kind = CLASSIFIER_INPUT[cfg.family]
        if kind == "pooler":
            x = pooled
        elif kind == "last_dense_tanh":  # XLNet's summary: no dropout before the dense layer
            x = jnp.tanh(dense(cfg, cfg.hidden_size, ("hidden", "hidden_out"), name="dense")(last_token(last, mask)))
        else:
            act = {"dense_tanh": jnp.tanh, "dense_gelu": ACTIVATIONS["gelu"], "dense_relu": jax.nn.relu}[kind]
            x = drop(first_tokens(last, starts), deterministic=self.deterministic)
            x = act(dense(cfg, cfg.hidden_size, ("hidden", "hidden_out"), name="dense")(x))
        x = drop(x, deterministic=self.deterministic)
        return dense(cfg, cfg.num_labels, ("hidden", None), name="out")(x).astype(jnp.float32)


class SpanHead(nn.Module):
    """Extractive QA: start and end logits per token, [B, T, 2]."""

    config: ModelConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, last: jax.Array) -> jax.Array:
        x = nn.Dropout(self.config.classifier_dropout)(last, deterministic=self.deterministic)
        return dense(self.config, 2, ("hidden", None), name="out")(x).astype(jnp.float32)


class TokenHead(nn.Module):
    """Token classification (NER / tagging): [B, T, num_labels]."""

    config: ModelConfig
    deterministic: bool = True

    @nn.compact
    def __call__(self, last: jax.Array) -> jax.Array:
        x = nn.Dropout(self.config.classifier_dropout)(last, deterministic=self.deterministic)
        return dense(self.config, self.config.num_labels, ("hidden", None), name="out")(x).astype(jnp.float32)
