"""Where each jaxbert parameter lives in a Hugging Face checkpoint, per family, as data.

An entry `(ours, theirs, kind)` maps one of our modules (a "/" path in the param tree) to one HF
module (a "." key prefix). `kind` says how the tensors convert (see `jaxbert.interop.hf_convert`):

- "embedding":  {embedding} <- {weight}
- "layernorm":  {scale, bias} <- {weight, bias}
- "linear":     {kernel [in, out], bias} <- {weight [out, in], bias}
- "qkv":        {kernel [H, heads, head_dim], bias [heads, head_dim]} <- {weight [heads*head_dim, H], bias}
- "attn_out":   {kernel [heads, head_dim, H], bias} <- {weight [H, heads*head_dim], bias}
- "vector":     one leaf <- one tensor (the MLM output bias; XLNet's attention biases, mask_emb)
- "param":      {kernel} <- a bare parameter in the same layout (XLNet's q, k, v, r [H, heads, head_dim])
- "head_out":   {kernel [heads, head_dim, H]} <- XLNet's o [H, heads, head_dim]

Base-model keys (embeddings, encoder, pooler) are relative to the family's `base_prefix`
("bert.", "albert.", ...), which a bare *Model checkpoint omits; head keys are absolute.
Layer keys are relative to `layer_prefix`, formatted with the layer (or ALBERT group) index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Entry = tuple[str, str, str]

_BERT_EMBEDDINGS: tuple[Entry, ...] = (
    ("embeddings/word", "embeddings.word_embeddings", "embedding"),
    ("embeddings/position", "embeddings.position_embeddings", "embedding"),
    ("embeddings/token_type", "embeddings.token_type_embeddings", "embedding"),
    ("embeddings/norm", "embeddings.LayerNorm", "layernorm"),
)

_BERT_LAYER: tuple[Entry, ...] = (
    ("attention/query", "attention.self.query", "qkv"),
    ("attention/key", "attention.self.key", "qkv"),
    ("attention/value", "attention.self.value", "qkv"),
    ("attention/out", "attention.output.dense", "attn_out"),
    ("attention/norm", "attention.output.LayerNorm", "layernorm"),
    ("ffn/intermediate", "intermediate.dense", "linear"),
    ("ffn/output", "output.dense", "linear"),
    ("ffn/norm", "output.LayerNorm", "layernorm"),
)


@dataclass(frozen=True)
class FamilyNames:
    """The HF key layout of one model_type."""

    base_prefix: str
    embeddings: tuple[Entry, ...]
    layer_prefix: str
    layer: tuple[Entry, ...]
    projection: Entry | None = None  # E -> H projection (ALBERT, ELECTRA), base-relative
    pooler: Entry | None = None  # base-relative
    heads: dict[str, tuple[Entry, ...]] = field(default_factory=dict)  # absolute keys
    # Tied copies of the word embeddings / MLM bias that older checkpoints store; transformers ties
    # them on load (ignoring the stored values), so do we.
    tied: tuple[str, ...] = ()


FAMILIES: dict[str, FamilyNames] = {
    "bert": FamilyNames(
        base_prefix="bert",
        embeddings=_BERT_EMBEDDINGS,
        layer_prefix="encoder.layer.{i}",
        layer=_BERT_LAYER,
        pooler=("pooler/dense", "pooler.dense", "linear"),
        heads={
            "mlm": (("mlm_head/transform", "cls.predictions.transform.dense", "linear"),
                    ("mlm_head/norm", "cls.predictions.transform.LayerNorm", "layernorm"),
                    ("mlm_head/bias", "cls.predictions.bias", "vector")),
            "nsp": (("nsp_head/dense", "cls.seq_relationship", "linear"),),
        },
        tied=("cls.predictions.decoder.weight", "cls.predictions.decoder.bias"),
    ),
    "roberta": FamilyNames(
        base_prefix="roberta",
        embeddings=_BERT_EMBEDDINGS,
        layer_prefix="encoder.layer.{i}",
        layer=_BERT_LAYER,
        pooler=("pooler/dense", "pooler.dense", "linear"),
        heads={
            "mlm": (("mlm_head/transform", "lm_head.dense", "linear"),
                    ("mlm_head/norm", "lm_head.layer_norm", "layernorm"),
                    ("mlm_head/bias", "lm_head.bias", "vector")),
        },
        tied=("lm_head.decoder.weight", "lm_head.decoder.bias"),
    ),
    "albert": FamilyNames(
        base_prefix="albert",
        embeddings=_BERT_EMBEDDINGS,
        projection=("embeddings/projection", "encoder.embedding_hidden_mapping_in", "linear"),
        layer_prefix="encoder.albert_layer_groups.{i}.albert_layers.0",
        layer=(
            ("attention/query", "attention.query", "qkv"),
            ("attention/key", "attention.key", "qkv"),
            ("attention/value", "attention.value", "qkv"),
            ("attention/out", "attention.dense", "attn_out"),
            ("attention/norm", "attention.LayerNorm", "layernorm"),
            ("ffn/intermediate", "ffn", "linear"),
            ("ffn/output", "ffn_output", "linear"),
            ("ffn/norm", "full_layer_layer_norm", "layernorm"),
        ),
        pooler=("pooler/dense", "pooler", "linear"),
        heads={
            "mlm": (("mlm_head/transform", "predictions.dense", "linear"),
                    ("mlm_head/norm", "predictions.LayerNorm", "layernorm"),
                    ("mlm_head/bias", "predictions.bias", "vector")),
            "sop": (("sop_head/dense", "sop_classifier.classifier", "linear"),),
        },
        tied=("predictions.decoder.weight", "predictions.decoder.bias"),
    ),
    "electra": FamilyNames(
        base_prefix="electra",
        embeddings=_BERT_EMBEDDINGS,
        projection=("embeddings/projection", "embeddings_project", "linear"),
        layer_prefix="encoder.layer.{i}",
        layer=_BERT_LAYER,
        heads={
            "mlm": (("mlm_head/transform", "generator_predictions.dense", "linear"),
                    ("mlm_head/norm", "generator_predictions.LayerNorm", "layernorm"),
                    ("mlm_head/bias", "generator_lm_head.bias", "vector")),
            "rtd": (("rtd_head/dense", "discriminator_predictions.dense", "linear"),
                    ("rtd_head/prediction", "discriminator_predictions.dense_prediction", "linear")),
        },
        tied=("generator_lm_head.weight",),
    ),
    "distilbert": FamilyNames(
        base_prefix="distilbert",
        embeddings=(
            ("embeddings/word", "embeddings.word_embeddings", "embedding"),
            ("embeddings/position", "embeddings.position_embeddings", "embedding"),
            ("embeddings/norm", "embeddings.LayerNorm", "layernorm"),
        ),
        layer_prefix="transformer.layer.{i}",
        layer=(
            ("attention/query", "attention.q_lin", "qkv"),
            ("attention/key", "attention.k_lin", "qkv"),
            ("attention/value", "attention.v_lin", "qkv"),
            ("attention/out", "attention.out_lin", "attn_out"),
            ("attention/norm", "sa_layer_norm", "layernorm"),
            ("ffn/intermediate", "ffn.lin1", "linear"),
            ("ffn/output", "ffn.lin2", "linear"),
            ("ffn/norm", "output_layer_norm", "layernorm"),
        ),
        heads={
            "mlm": (("mlm_head/transform", "vocab_transform", "linear"),
                    ("mlm_head/norm", "vocab_layer_norm", "layernorm"),
                    ("mlm_head/bias", "vocab_projector.bias", "vector")),
        },
        tied=("vocab_projector.weight",),
    ),
}

_XLNET_ATTENTION = "rel_attn"
FAMILIES["xlnet"] = FamilyNames(
    base_prefix="transformer",
    embeddings=(("embeddings/word", "word_embedding", "embedding"),
                ("embeddings/mask_emb", "mask_emb", "vector")),
    layer_prefix="layer.{i}",
    layer=(
        ("attention/query", f"{_XLNET_ATTENTION}.q", "param"),
        ("attention/key", f"{_XLNET_ATTENTION}.k", "param"),
        ("attention/value", f"{_XLNET_ATTENTION}.v", "param"),
        ("attention/position", f"{_XLNET_ATTENTION}.r", "param"),
        ("attention/out", f"{_XLNET_ATTENTION}.o", "head_out"),
        ("attention/content_bias", f"{_XLNET_ATTENTION}.r_w_bias", "vector"),
        ("attention/position_bias", f"{_XLNET_ATTENTION}.r_r_bias", "vector"),
        ("attention/segment_bias", f"{_XLNET_ATTENTION}.r_s_bias", "vector"),
        ("attention/segment_embed", f"{_XLNET_ATTENTION}.seg_embed", "vector"),
        ("attention/norm", f"{_XLNET_ATTENTION}.layer_norm", "layernorm"),
        ("ffn/intermediate", "ff.layer_1", "linear"),
        ("ffn/output", "ff.layer_2", "linear"),
        ("ffn/norm", "ff.layer_norm", "layernorm"),
    ),
    heads={"lm": (("lm_head/bias", "lm_loss.bias", "vector"),)},
    tied=("lm_loss.weight",),
)

# Non-persistent buffers that older transformers versions saved; never weights.
BUFFER_SUFFIXES = ("position_ids", "token_type_ids")

# Older checkpoints (TF-converted) name LayerNorm params gamma/beta; transformers renames them on load.
LEGACY_RENAMES = ((".gamma", ".weight"), (".beta", ".bias"))

# The transformers class that holds exactly a given (heads, pooler) combination, per family.
ARCHITECTURES: dict[tuple[str, tuple[str, ...], bool], str] = {
    ("bert", ("mlm", "nsp"), True): "BertForPreTraining",
    ("bert", ("mlm",), False): "BertForMaskedLM",
    ("bert", ("nsp",), True): "BertForNextSentencePrediction",
    ("bert", (), True): "BertModel",
    ("roberta", ("mlm",), False): "RobertaForMaskedLM",
    ("roberta", (), True): "RobertaModel",
    ("albert", ("mlm", "sop"), True): "AlbertForPreTraining",
    ("albert", ("mlm",), False): "AlbertForMaskedLM",
    ("albert", (), True): "AlbertModel",
    ("electra", ("rtd",), False): "ElectraForPreTraining",
    ("electra", ("mlm",), False): "ElectraForMaskedLM",
    ("electra", (), False): "ElectraModel",
    ("distilbert", ("mlm",), False): "DistilBertForMaskedLM",
    ("distilbert", (), False): "DistilBertModel",
    ("xlnet", ("lm",), False): "XLNetLMHeadModel",
    ("xlnet", (), False): "XLNetModel",
}
