"""Random weights under the variable names Google's TensorFlow code creates, for checkpoint tests.

Written from google-research/bert modeling.py (BertModel, get_masked_lm_output, get_next_sentence_output),
google-research/albert modeling.py (embedding_hidden_mapping_in, transformer/group_N/inner_group_0 with
attention_1 / LayerNorm / ffn_1 / LayerNorm_1) and google-research/electra (run_pretraining.py:
electra/ and generator/ models sharing electra/embeddings, generator_predictions, discriminator_predictions),
independently of jaxbert's own tables (jaxbert/interop/tf_names.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Shapes = dict[str, tuple[int, ...]]


def _dense(scope: str, n_in: int, n_out: int) -> Shapes:
    return {f"{scope}/kernel": (n_in, n_out), f"{scope}/bias": (n_out,)}


def _norm(scope: str, width: int) -> Shapes:
    return {f"{scope}/gamma": (width,), f"{scope}/beta": (width,)}


def _embeddings(scope: str, c: dict[str, Any], width: int) -> Shapes:
    return {f"{scope}/word_embeddings": (c["vocab_size"], width),
            f"{scope}/token_type_embeddings": (c["type_vocab_size"], width),
            f"{scope}/position_embeddings": (c["max_position_embeddings"], width), **_norm(f"{scope}/LayerNorm", width)}


def _bert_layer(scope: str, hidden: int, intermediate: int) -> Shapes:
    out: Shapes = {}
    for name in ("query", "key", "value"):
        out.update(_dense(f"{scope}/attention/self/{name}", hidden, hidden))
    out.update(_dense(f"{scope}/attention/output/dense", hidden, hidden))
    out.update(_norm(f"{scope}/attention/output/LayerNorm", hidden))
    out.update(_dense(f"{scope}/intermediate/dense", hidden, intermediate))
    out.update(_dense(f"{scope}/output/dense", intermediate, hidden))
    out.update(_norm(f"{scope}/output/LayerNorm", hidden))
    return out


def _albert_layer(scope: str, hidden: int, intermediate: int) -> Shapes:
    out: Shapes = {}
    for name in ("query", "key", "value"):
        out.update(_dense(f"{scope}/attention_1/self/{name}", hidden, hidden))
    out.update(_dense(f"{scope}/attention_1/output/dense", hidden, hidden))
    out.update(_norm(f"{scope}/LayerNorm", hidden))
    out.update(_dense(f"{scope}/ffn_1/intermediate/dense", hidden, intermediate))
    out.update(_dense(f"{scope}/ffn_1/intermediate/output/dense", intermediate, hidden))
    out.update(_norm(f"{scope}/LayerNorm_1", hidden))
    return out


def _mlm(width: int, hidden: int, vocab: int) -> Shapes:
    return {**_dense("cls/predictions/transform/dense", hidden, width),
            **_norm("cls/predictions/transform/LayerNorm", width), "cls/predictions/output_bias": (vocab,)}


def bert_shapes(c: dict[str, Any]) -> Shapes:
    """BertModel + get_masked_lm_output + get_next_sentence_output (run_pretraining.py)."""
    h = c["hidden_size"]
    out = _embeddings("bert/embeddings", c, h)
    for i in range(c["num_hidden_layers"]):
        out.update(_bert_layer(f"bert/encoder/layer_{i}", h, c["intermediate_size"]))
    out.update(_dense("bert/pooler/dense", h, h))
    out.update(_mlm(h, h, c["vocab_size"]))
    out.update({"cls/seq_relationship/output_weights": (2, h), "cls/seq_relationship/output_bias": (2,)})
    return out


def albert_shapes(c: dict[str, Any]) -> Shapes:
    """AlbertModel (num_hidden_groups groups of one inner group) + the MLM and SOP heads."""
    h, e = c["hidden_size"], c["embedding_size"]
    out = _embeddings("bert/embeddings", c, e)
    out.update(_dense("bert/encoder/embedding_hidden_mapping_in", e, h))
    for g in range(c.get("num_hidden_groups", 1)):
        out.update(_albert_layer(f"bert/encoder/transformer/group_{g}/inner_group_0", h, c["intermediate_size"]))
    out.update(_dense("bert/pooler/dense", h, h))
    out.update(_mlm(e, h, c["vocab_size"]))
    out.update({"cls/seq_relationship/output_weights": (2, h), "cls/seq_relationship/output_bias": (2,)})
    return out


def _electra_encoder(scope: str, c: dict[str, Any], hidden: int, intermediate: int, layers: int) -> Shapes:
    out: Shapes = {}
    if c["embedding_size"] != hidden:
        out.update(_dense(f"{scope}/embeddings_project", c["embedding_size"], hidden))
    for i in range(layers):
        out.update(_bert_layer(f"{scope}/encoder/layer_{i}", hidden, intermediate))
    return out


def electra_shapes(disc: dict[str, Any], gen: dict[str, Any]) -> Shapes:
    """ELECTRA pretraining: the discriminator (electra/), the generator (generator/) on the shared
    electra/embeddings, and both prediction heads."""
    e, h, hg = disc["embedding_size"], disc["hidden_size"], gen["hidden_size"]
    out = _embeddings("electra/embeddings", disc, e)
    out.update(_electra_encoder("electra", disc, h, disc["intermediate_size"], disc["num_hidden_layers"]))
    out.update(_dense("discriminator_predictions/dense", h, h))
    out.update(_dense("discriminator_predictions/dense_1", h, 1))
    out.update(_electra_encoder("generator", disc, hg, gen["intermediate_size"], gen["num_hidden_layers"]))
    out.update(_dense("generator_predictions/dense", hg, e))
    out.update(_norm("generator_predictions/LayerNorm", e))
    out["generator_predictions/output_bias"] = (disc["vocab_size"],)
    return out


def random_variables(shapes: Shapes, seed: int, training_state: bool = False) -> dict[str, np.ndarray]:
    """float32 weights (LayerNorm scales near 1, nothing zero); with `training_state`, also the
    AdamWeightDecayOptimizer slots of every weight and global_step, as Google's pretraining saves them."""
    rng = np.random.RandomState(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in sorted(shapes.items()):
        value = rng.normal(0.0, 0.05, shape)
        out[name] = (value + 1.0 if name.endswith("/gamma") else value).astype(np.float32)
    if training_state:
        for name, value in list(out.items()):
            out[f"{name}/adam_m"] = (value * 0.01).astype(np.float32)
            out[f"{name}/adam_v"] = np.abs(value * 0.001).astype(np.float32)
        out["global_step"] = np.asarray(1000, np.int64)
    return out
