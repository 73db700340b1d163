"""Where each jaxbert parameter lives in Google's original TensorFlow checkpoints, per family, as data.

Variable names as google-research/bert, google-research/albert and google-research/electra create
them. An entry `(ours, theirs, kind)` maps one of our modules (a "/" path in the param tree) to one
TF variable scope; `kind` says which variables the scope holds and how they convert:

- "embedding":    {embedding} <- the scope itself, [rows, E]
- "layernorm":    {scale, bias} <- {gamma, beta}
- "linear":       {kernel [in, out], bias} <- {kernel [in, out], bias}  (TF and Flax share the layout)
- "qkv":          {kernel [H, heads, head_dim], bias [heads, head_dim]} <- {kernel [H, heads*head_dim], bias}
- "attn_out":     {kernel [heads, head_dim, H], bias} <- {kernel [heads*head_dim, H], bias}
- "vector":       one leaf <- the scope itself (the MLM output bias)
- "output_layer": {kernel [in, out], bias} <- {output_weights [out, in], output_bias} (BERT's NSP head)

Layer scopes are relative to `layer_scope`, formatted with the layer (or ALBERT group) index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Entry = tuple[str, str, str]

# Our leaf names of each kind, paired with the TF variable below the scope ("" = the scope itself).
LEAVES: dict[str, tuple[tuple[str, str], ...]] = {
    "embedding": (("embedding", ""),),
    "layernorm": (("scale", "gamma"), ("bias", "beta")),
    "linear": (("kernel", "kernel"), ("bias", "bias")),
    "qkv": (("kernel", "kernel"), ("bias", "bias")),
    "attn_out": (("kernel", "kernel"), ("bias", "bias")),
    "vector": (("", ""),),
    "output_layer": (("kernel", "output_weights"), ("bias", "output_bias")),
}


def _embeddings(scope: str) -> tuple[Entry, ...]:
    return (
        ("embeddings/word", f"{scope}/word_embeddings", "embedding"),
        ("embeddings/position", f"{scope}/position_embeddings", "embedding"),
        ("embeddings/token_type", f"{scope}/token_type_embeddings", "embedding"),
        ("embeddings/norm", f"{scope}/LayerNorm", "layernorm"),
    )


_BERT_LAYER: tuple[Entry, ...] = (
    ("attention/query", "attention/self/query", "qkv"),
    ("attention/key", "attention/self/key", "qkv"),
    ("attention/value", "attention/self/value", "qkv"),
    ("attention/out", "attention/output/dense", "attn_out"),
    ("attention/norm", "attention/output/LayerNorm", "layernorm"),
    ("ffn/intermediate", "intermediate/dense", "linear"),
    ("ffn/output", "output/dense", "linear"),
    ("ffn/norm", "output/LayerNorm", "layernorm"),
)

# ALBERT's attention_ffn_block: "attention_1", then "LayerNorm", "ffn_1", "LayerNorm_1".
_ALBERT_LAYER: tuple[Entry, ...] = (
    ("attention/query", "attention_1/self/query", "qkv"),
    ("attention/key", "attention_1/self/key", "qkv"),
    ("attention/value", "attention_1/self/value", "qkv"),
    ("attention/out", "attention_1/output/dense", "attn_out"),
    ("attention/norm", "LayerNorm", "layernorm"),
    ("ffn/intermediate", "ffn_1/intermediate/dense", "linear"),
    ("ffn/output", "ffn_1/intermediate/output/dense", "linear"),
    ("ffn/norm", "LayerNorm_1", "layernorm"),
)

_BERT_MLM: tuple[Entry, ...] = (
    ("mlm_head/transform", "cls/predictions/transform/dense", "linear"),
    ("mlm_head/norm", "cls/predictions/transform/LayerNorm", "layernorm"),
    ("mlm_head/bias", "cls/predictions/output_bias", "vector"),
)


@dataclass(frozen=True)
class TFModelNames:
    """The TF variable layout of one model (one family, or one of ELECTRA's two models)."""

    family: str
    embeddings: tuple[Entry, ...]
    layer_scope: str
    layer: tuple[Entry, ...]
    projection: Entry | None = None  # E -> H
    pooler: Entry | None = None
    heads: dict[str, tuple[Entry, ...]] = field(default_factory=dict)
    # Scopes of this model's variables: an unmatched variable inside them means the config is wrong.
    scopes: tuple[str, ...] = ()
    # Scopes of a sibling model in the same checkpoint (ELECTRA's other half), ignored when loading this one.
    siblings: tuple[str, ...] = ()
    # Where to read the embedding tables when this model's own scope lacks them (ELECTRA's generator
    # shares the discriminator's).
    embeddings_fallback: str | None = None


MODELS: dict[str, TFModelNames] = {
    "bert": TFModelNames(
        family="bert",
        embeddings=_embeddings("bert/embeddings"),
        layer_scope="bert/encoder/layer_{i}",
        layer=_BERT_LAYER,
        pooler=("pooler/dense", "bert/pooler/dense", "linear"),
        heads={"mlm": _BERT_MLM, "nsp": (("nsp_head/dense", "cls/seq_relationship", "output_layer"),)},
        scopes=("bert/", "cls/predictions/", "cls/seq_relationship/"),
    ),
    "albert": TFModelNames(
        family="albert",
        embeddings=_embeddings("bert/embeddings"),
        projection=("embeddings/projection", "bert/encoder/embedding_hidden_mapping_in", "linear"),
        layer_scope="bert/encoder/transformer/group_{i}/inner_group_0",
        layer=_ALBERT_LAYER,
        pooler=("pooler/dense", "bert/pooler/dense", "linear"),
        heads={"mlm": _BERT_MLM, "sop": (("sop_head/dense", "cls/seq_relationship", "output_layer"),)},
        scopes=("bert/", "cls/predictions/", "cls/seq_relationship/"),
    ),
    "electra": TFModelNames(  # the discriminator
        family="electra",
        embeddings=_embeddings("electra/embeddings"),
        projection=("embeddings/projection", "electra/embeddings_project", "linear"),
        layer_scope="electra/encoder/layer_{i}",
        layer=_BERT_LAYER,
        heads={"rtd": (("rtd_head/dense", "discriminator_predictions/dense", "linear"),
                       ("rtd_head/prediction", "discriminator_predictions/dense_1", "linear"))},
        scopes=("electra/", "discriminator_predictions/"),
        siblings=("generator/", "generator_predictions/"),
    ),
    "electra-generator": TFModelNames(
        family="electra",
        embeddings=_embeddings("generator/embeddings"),
        embeddings_fallback="electra/embeddings",
        projection=("embeddings/projection", "generator/embeddings_project", "linear"),
        layer_scope="generator/encoder/layer_{i}",
        layer=_BERT_LAYER,
        heads={"mlm": (("mlm_head/transform", "generator_predictions/dense", "linear"),
                       ("mlm_head/norm", "generator_predictions/LayerNorm", "layernorm"),
                       ("mlm_head/bias", "generator_predictions/output_bias", "vector"))},
        scopes=("generator/", "generator_predictions/"),
        siblings=("electra/", "discriminator_predictions/"),
    ),
}

# The models (parts) each ELECTRA checkpoint holds; other families hold one.
PARTS = {"discriminator": "electra", "generator": "electra-generator"}

# Variables that are training state, not weights: optimizer slots (BERT/ALBERT/ELECTRA's AdamWeightDecay
# "adam_m"/"adam_v", tf.train.AdamOptimizer's "Adam"/"Adam_1", LAMB's, momentum) and step counters.
OPTIMIZER_SLOTS = ("adam_m", "adam_v", "Adam", "Adam_1", "lamb_m", "lamb_v", "Momentum", "LAMB", "LAMB_1")
BOOKKEEPING = ("global_step", "beta1_power", "beta2_power", "loss_scale", "good_steps", "current_loss_scale")

# Prefix TF-Hub module exports add to every variable.
HUB_PREFIX = "module/"
