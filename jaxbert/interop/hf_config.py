"""Hugging Face config.json fields <-> ModelConfig, for bert, roberta, albert, electra, distilbert and xlnet."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from jaxbert.config import HEADS, ConfigError, ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.interop.hf_names import ARCHITECTURES

# transformers' config-class defaults for the fields we read (a config.json may omit any of them).
_BERT_DEFAULTS = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                      attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                      initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0, tie_word_embeddings=True)
DEFAULTS: dict[str, dict[str, Any]] = {
    "bert": _BERT_DEFAULTS,
    "roberta": {**_BERT_DEFAULTS, "vocab_size": 50265, "pad_token_id": 1},
    "albert": {**_BERT_DEFAULTS, "vocab_size": 30000, "embedding_size": 128, "hidden_size": 4096,
               "num_hidden_groups": 1, "num_attention_heads": 64, "intermediate_size": 16384,
               "inner_group_num": 1, "hidden_act": "gelu_new", "hidden_dropout_prob": 0.0,
               "attention_probs_dropout_prob": 0.0},
    "electra": {**_BERT_DEFAULTS, "embedding_size": 128, "hidden_size": 256, "num_attention_heads": 4,
                "intermediate_size": 1024},
    "distilbert": dict(vocab_size=30522, max_position_embeddings=512, sinusoidal_pos_embds=False, n_layers=6,
                       n_heads=12, dim=768, hidden_dim=3072, dropout=0.1, attention_dropout=0.1,
                       activation="gelu", initializer_range=0.02, pad_token_id=0, tie_word_embeddings=True),
    "xlnet": dict(vocab_size=32000, d_model=1024, n_layer=24, n_head=16, d_inner=4096, ff_activation="gelu",
                  attn_type="bi", initializer_range=0.02, layer_norm_eps=1e-12, dropout=0.1, mem_len=512,
                  reuse_len=None, bi_data=False, clamp_len=-1, pad_token_id=5, tie_word_embeddings=True),
}

# HF activation names -> ours. The tanh-approximation variants are the same function.
_ACT_FROM_HF = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new", "gelu_fast": "gelu_new",
                "relu": "relu", "silu": "silu", "swish": "silu"}
_ACT_TO_HF = {"gelu": "gelu", "gelu_new": "gelu_new", "relu": "relu", "silu": "silu"}

# Heads whose transform activation transformers hard-codes to exact GELU (RoBERTa's lm_head,
# ELECTRA's generator); every other head uses the encoder's hidden_act.
_GELU_MLM_FAMILIES = ("roberta", "electra")


def canonical_heads(heads: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(h for h in HEADS if h in heads)


def _activation(name: Any, source: str) -> str:
    if name not in _ACT_FROM_HF:
        raise JaxbertError(f"{source}: activation {name!r} is not supported; "
                           f"use one of {', '.join(sorted(_ACT_FROM_HF))}")
    return _ACT_FROM_HF[name]


def model_config_from_hf(hf: Mapping[str, Any], heads: tuple[str, ...], pooler: bool,
                         source: str) -> ModelConfig:
    """The ModelConfig of an HF config.json whose weights hold these heads and (or not) a pooler."""
    model_type = hf["model_type"]
    defaults = DEFAULTS[model_type]

    def get(key: str) -> Any:
        value = hf.get(key)
        return defaults[key] if value is None else value

    def unsupported(what: str, fix: str) -> JaxbertError:
        return JaxbertError(f"{source}: {what} is not supported; {fix}")

    if model_type == "xlnet":
        return _xlnet_config(hf, get, heads, unsupported, source)
    if "mlm" in heads and not get("tie_word_embeddings"):
        raise unsupported("an untied MLM decoder (tie_word_embeddings=false)",
                          "jaxbert ties the decoder to the word embeddings")
    if model_type == "distilbert":
        if get("sinusoidal_pos_embds"):
            raise unsupported("DistilBERT with sinusoidal_pos_embds=true", "use learned position embeddings")
        fields: dict[str, Any] = dict(
            vocab_size=get("vocab_size"), hidden_size=get("dim"), num_layers=get("n_layers"),
            num_heads=get("n_heads"), intermediate_size=get("hidden_dim"),
            hidden_act=_activation(get("activation"), source), hidden_dropout=get("dropout"),
            attention_dropout=get("attention_dropout"), layer_norm_eps=1e-12,  # hard-coded in transformers
            type_vocab_size=0)
    else:
        position_type = hf.get("position_embedding_type") or "absolute"
        if position_type != "absolute":
            raise unsupported(f"position_embedding_type={position_type!r}", "only absolute positions exist")
        fields = dict(
            vocab_size=get("vocab_size"), hidden_size=get("hidden_size"), num_layers=get("num_hidden_layers"),
            num_heads=get("num_attention_heads"), intermediate_size=get("intermediate_size"),
            hidden_act=_activation(get("hidden_act"), source), hidden_dropout=get("hidden_dropout_prob"),
            attention_dropout=get("attention_probs_dropout_prob"), layer_norm_eps=get("layer_norm_eps"),
            type_vocab_size=get("type_vocab_size"))
    fields.update(family=model_type, max_position_embeddings=get("max_position_embeddings"),
                  pad_token_id=get("pad_token_id"), initializer_range=get("initializer_range"),
                  pooler=pooler, heads=canonical_heads(heads))

    if model_type == "roberta":
        fields.update(position_offset=fields["pad_token_id"], head_act="gelu")
    elif model_type == "electra":
        embedding = get("embedding_size")
        fields.update(embedding_size=0 if embedding == fields["hidden_size"] else embedding,
                      head_act="gelu" if "mlm" in heads else "")
    elif model_type == "albert":
        groups, inner = get("num_hidden_groups"), get("inner_group_num")
        if inner != 1:
            raise unsupported(f"ALBERT inner_group_num={inner}", "only inner_group_num=1 maps onto jaxbert's layers")
        if groups not in (1, fields["num_layers"]):
            raise unsupported(f"ALBERT num_hidden_groups={groups}",
                              "use 1 (all layers shared) or num_hidden_layers (no sharing)")
        if get("embedding_size") == fields["hidden_size"]:
            raise unsupported("ALBERT with embedding_size == hidden_size",
                              "jaxbert's model has no E->H projection when the sizes are equal")
        fields.update(embedding_size=get("embedding_size"), sharing="all" if groups == 1 else "none")
    try:
        return ModelConfig(**fields)
    except ConfigError as e:
        raise JaxbertError(f"{source}: {e}") from e


def _xlnet_config(hf: Mapping[str, Any], get: Any, heads: tuple[str, ...], unsupported: Any,
                  source: str) -> ModelConfig:
    """The ModelConfig of an XLNetConfig's fields (transformers' d_model, n_layer, ... names)."""
    if "lm" in heads and not get("tie_word_embeddings"):
        raise unsupported("an untied LM decoder (tie_word_embeddings=false)",
                          "jaxbert ties the decoder to the word embeddings")
    if get("attn_type") != "bi":
        raise unsupported(f"attn_type={get('attn_type')!r} (Transformer-XL's causal attention)",
                          "jaxbert's XLNet attends bidirectionally ('bi')")
    if get("reuse_len"):
        raise unsupported(f"reuse_len={get('reuse_len')}", "memory keeps whole segments; set reuse_len to null")
    d_model, n_head = get("d_model"), get("n_head")
    if hf.get("d_head") not in (None, d_model // max(n_head, 1)):
        raise unsupported(f"d_head={hf['d_head']} with d_model={d_model}, n_head={n_head}",
                          "use d_head = d_model / n_head")
    fields = dict(family="xlnet", vocab_size=get("vocab_size"), hidden_size=d_model, num_layers=get("n_layer"),
                  num_heads=n_head, intermediate_size=get("d_inner"),
                  hidden_act=_activation(get("ff_activation"), source), hidden_dropout=get("dropout"),
                  attention_dropout=get("dropout"), layer_norm_eps=get("layer_norm_eps"),
                  initializer_range=get("initializer_range"), pad_token_id=get("pad_token_id"), pooler=False,
                  heads=canonical_heads(heads), bi_data=bool(get("bi_data")), clamp_len=int(get("clamp_len")),
                  # mem_len null (the released checkpoints' value) keeps every past state, as 0 does here
                  mem_len=int((hf["mem_len"] if "mem_len" in hf else get("mem_len")) or 0))
    try:
        return ModelConfig(**fields)
    except ConfigError as e:
        raise JaxbertError(f"{source}: {e}") from e


def _xlnet_config_dict(config: ModelConfig, arch: str) -> dict[str, Any]:
    if config.hidden_dropout != config.attention_dropout:
        raise JaxbertError("cannot export xlnet to Hugging Face: XLNet has one dropout rate for attention and "
                           f"hidden states, got {config.attention_dropout} and {config.hidden_dropout}; set both alike")
    # No max_position_embeddings: XLNetConfig has no length limit and refuses the field.
    return dict(model_type="xlnet", architectures=[arch], vocab_size=config.vocab_size, d_model=config.hidden_size,
                n_layer=config.num_layers, n_head=config.num_heads, d_head=config.head_dim,
                d_inner=config.intermediate_size, ff_activation=_ACT_TO_HF[config.hidden_act],
                dropout=config.hidden_dropout, layer_norm_eps=config.layer_norm_eps,
                initializer_range=config.initializer_range, pad_token_id=config.pad_token_id,
                tie_word_embeddings=True, attn_type="bi", bi_data=config.bi_data, clamp_len=config.clamp_len,
                mem_len=config.mem_len or None, reuse_len=None, same_length=False, untie_r=True,
                summary_type="last", summary_use_proj=True, summary_activation="tanh",
                summary_last_dropout=config.classifier_dropout)


def architecture(config: ModelConfig) -> str:
    """The transformers class that holds exactly this config's heads and pooler (a clear error if none does)."""
    if config.task:
        raise JaxbertError(f"this is a fine-tuned {config.task} model; export it with "
                           "jaxbert.interop.hf_tasks.export_hf_task (jaxbert.export_hf picks it for you)")
    key = (config.family, canonical_heads(config.heads), config.pooler)
    if key not in ARCHITECTURES:
        options = [f"heads={list(h)} pooler={p}" for f, h, p in ARCHITECTURES if f == config.family]
        raise JaxbertError(f"no transformers {config.family} class holds heads={list(config.heads)} with "
                           f"pooler={config.pooler}; use one of: {'; '.join(options)}")
    return ARCHITECTURES[key]


def exportable(config: ModelConfig) -> ModelConfig:
    """The config export writes: without the pooler where the matching class has none (RobertaForMaskedLM
    and co.; real roberta-base checkpoints carry an unused pooler), with a warning that it is dropped."""
    key = (config.family, canonical_heads(config.heads), config.pooler)
    if config.pooler and key not in ARCHITECTURES and key[:2] + (False,) in ARCHITECTURES:
        warnings.warn(f"transformers' {ARCHITECTURES[key[:2] + (False,)]} has no pooler; "
                      "the pooler weights are not exported", stacklevel=3)
        return config.replace(pooler=False)
    return config


def _check_exportable(config: ModelConfig) -> None:
    def bad(what: str, fix: str) -> None:
        raise JaxbertError(f"cannot export {config.family} to Hugging Face: {what}; {fix}")

    family = config.family
    if family == "albert":
        if config.sharing not in ("all", "none"):
            bad(f"sharing={config.sharing!r} has no transformers equivalent", "use sharing 'all' or 'none'")
        if config.embed_dim == config.hidden_size:
            bad("AlbertModel always has an E->H projection", "set embedding_size below hidden_size")
    elif config.sharing != "none":
        bad(f"sharing={config.sharing!r}", "only ALBERT shares layers in transformers")
    if family == "electra" and config.embedding_size == config.hidden_size:
        bad("embedding_size equal to hidden_size must be written as 0", "set embedding_size=0")
    if family == "distilbert":
        if config.type_vocab_size != 0:
            bad("DistilBERT has no segment embeddings", "set type_vocab_size=0")
        if config.layer_norm_eps != 1e-12:
            bad("DistilBERT's LayerNorm eps is fixed at 1e-12", "set layer_norm_eps=1e-12")
    elif config.type_vocab_size == 0:
        bad("type_vocab_size=0 (no segment embeddings)", "set type_vocab_size >= 1")
    if family in ("bert", "distilbert") and config.embed_dim != config.hidden_size:
        bad("factorized embeddings (embedding_size != hidden_size)", "use ALBERT or ELECTRA for that")
    wanted_offset = config.pad_token_id if family == "roberta" else 0
    if config.position_offset != wanted_offset:
        bad(f"position_offset={config.position_offset}", f"transformers' {family} uses {wanted_offset}")
    if "mlm" in config.heads:
        head_act = "gelu" if family in _GELU_MLM_FAMILIES else config.hidden_act
        if config.mlm_head_act != head_act:
            bad(f"the MLM head activation {config.mlm_head_act!r}", f"transformers' {family} uses {head_act!r}")


def hf_config_dict(config: ModelConfig) -> dict[str, Any]:
    """The config.json contents of the matching transformers model (architectures included)."""
    arch = architecture(config)
    if config.family == "xlnet":
        return _xlnet_config_dict(config, arch)
    _check_exportable(config)
    common = dict(model_type=config.family, architectures=[arch], vocab_size=config.vocab_size,
                  max_position_embeddings=config.max_position_embeddings, initializer_range=config.initializer_range,
                  pad_token_id=config.pad_token_id, tie_word_embeddings=True)
    act = _ACT_TO_HF[config.hidden_act]
    if config.family == "distilbert":
        return {**common, "dim": config.hidden_size, "n_layers": config.num_layers, "n_heads": config.num_heads,
                "hidden_dim": config.intermediate_size, "activation": act, "dropout": config.hidden_dropout,
                "attention_dropout": config.attention_dropout, "sinusoidal_pos_embds": False}
    out = {**common, "hidden_size": config.hidden_size, "num_hidden_layers": config.num_layers,
           "num_attention_heads": config.num_heads, "intermediate_size": config.intermediate_size,
           "hidden_act": act, "hidden_dropout_prob": config.hidden_dropout,
           "attention_probs_dropout_prob": config.attention_dropout, "type_vocab_size": config.type_vocab_size,
           "layer_norm_eps": config.layer_norm_eps, "position_embedding_type": "absolute"}
    if config.family == "albert":
        out.update(embedding_size=config.embed_dim, inner_group_num=1,
                   num_hidden_groups=1 if config.sharing == "all" else config.num_layers)
    if config.family == "electra":
        out.update(embedding_size=config.embed_dim)
    return out


def to_hf_config(config: ModelConfig) -> Any:
    """The transformers config object equivalent to `config` (imports transformers)."""
    try:
        import transformers
    except ImportError as e:
        raise JaxbertError("to_hf_config needs transformers; pip install transformers") from e
    fields = hf_config_dict(config)
    return transformers.AutoConfig.for_model(fields.pop("model_type"), **fields)
