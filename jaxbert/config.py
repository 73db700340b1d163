"""ModelConfig: one frozen, hashable description of every BERT-family encoder, plus named presets."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from jaxbert.errors import JaxbertError

FAMILIES = ("bert", "roberta", "albert", "electra", "distilbert", "xlnet")
ACTIVATIONS = ("gelu", "gelu_new", "relu", "silu")
SHARING_MODES = ("none", "all", "attention", "ffn")
ATTENTION_KERNELS = ("xla", "dot_product", "cudnn", "splash")
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")
DTYPES = ("float32", "bfloat16", "float16")
HEADS = ("mlm", "nsp", "sop", "rtd", "lm")
TASKS = ("", "classification", "span", "token")

# How each family's reference *ForSequenceClassification head reads the encoder output.
CLASSIFIER_INPUT = {
    "bert": "pooler",  # dropout(pooled) -> linear
    "albert": "pooler",
    "roberta": "dense_tanh",  # h[<s>] -> dense -> tanh -> linear
    "electra": "dense_gelu",  # h[CLS] -> dense -> gelu -> linear
    "distilbert": "dense_relu",  # h[CLS] -> dense -> relu -> linear
    "xlnet": "last_dense_tanh",  # h[last real token] -> dense -> tanh -> linear (XLNet's sequence summary)
}

# The pretraining heads each family's reference model (transformers *ForPreTraining / *ForMaskedLM) holds.
DEFAULT_HEADS = {
    "bert": ("mlm", "nsp"),
    "roberta": ("mlm",),
    "albert": ("mlm", "sop"),
    "electra": ("rtd",),
    "distilbert": ("mlm",),
    "xlnet": ("lm",),  # XLNetLMHeadModel: the tied decoder plus a bias, no transform
}


class ConfigError(JaxbertError, ValueError):
    """A config value is wrong; the message names the field and the fix."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Every architectural choice of a BERT-family encoder and its pretraining heads.

    `embedding_size` 0 means "same as hidden_size" (no factorized projection).
    `position_offset` > 0 gives RoBERTa positions: padding tokens sit at `position_offset`,
    real tokens count up from `position_offset + 1`.
    `head_act` "" means "same as hidden_act" (RoBERTa's and ELECTRA's generator heads use gelu).
    `task` adds a fine-tuning head: "classification" (num_labels classes; 1 = regression), "span"
    (start/end logits for extractive QA) or "token" (num_labels tags per token).

    XLNet (family "xlnet") has no position table: `max_position_embeddings` is only the longest input the
    checks accept. `bi_data` gives the second half of a batch backward relative positions (XLNet's
    bidirectional input pipeline; the batch must be even), `clamp_len` > 0 clamps relative distances, and
    `mem_len` is how many past hidden states a forward pass with memory keeps (0: all of them).
    """

    family: str = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    embedding_size: int = 0
    hidden_act: str = "gelu"
    head_act: str = ""
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    pad_token_id: int = 0
    position_offset: int = 0
    sharing: str = "none"
    pooler: bool = True
    heads: tuple[str, ...] = ("mlm", "nsp")
    task: str = ""
    num_labels: int = 0
    classifier_dropout: float = 0.1
    initializer_range: float = 0.02
    compute_dtype: str = "float32"
    param_dtype: str = "float32"
    attention_kernel: str = "xla"
    remat: str = "none"
    scan_layers: bool = True
    bi_data: bool = False
    clamp_len: int = -1
    mem_len: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(self.heads))
        self.validate()

    # ---- derived values -------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Width of the token embeddings (ALBERT/ELECTRA factorize it below hidden_size)."""
        return self.embedding_size or self.hidden_size

    @property
    def has_projection(self) -> bool:
        """Whether embeddings pass through a dense E→H projection.

        Only when E != H, as in Google's original ALBERT and ELECTRA code and the ALBERT paper's
        parameter counts (transformers' ALBERT always projects; such E == H checkpoints are refused on import).
        """
        return self.embed_dim != self.hidden_size

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def mlm_head_act(self) -> str:
        return self.head_act or self.hidden_act

    # ---- validation -----------------------------------------------------------------
    def validate(self) -> None:
        def bad(field: str, msg: str) -> None:
            raise ConfigError(f"ModelConfig.{field}: {msg}")

        if self.family not in FAMILIES:
            bad("family", f"unknown family {self.family!r}; use one of {', '.join(FAMILIES)}")
        for field in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                      "max_position_embeddings"):
            if int(getattr(self, field)) <= 0:
                bad(field, f"must be a positive integer, got {getattr(self, field)}")
        if self.hidden_size % self.num_heads:
            bad("hidden_size", f"{self.hidden_size} is not divisible by num_heads={self.num_heads}; "
                "pick sizes where hidden_size % num_heads == 0")
        if self.embedding_size < 0:
            bad("embedding_size", "must be >= 0 (0 means same as hidden_size)")
        if self.type_vocab_size < 0:
            bad("type_vocab_size", "must be >= 0 (0 means no segment embeddings)")
        if self.hidden_act not in ACTIVATIONS:
            bad("hidden_act", f"unknown activation {self.hidden_act!r}; use one of {', '.join(ACTIVATIONS)}")
        if self.head_act and self.head_act not in ACTIVATIONS:
            bad("head_act", f"unknown activation {self.head_act!r}; use one of {', '.join(ACTIVATIONS)}")
        if self.sharing not in SHARING_MODES:
            bad("sharing", f"unknown sharing mode {self.sharing!r}; use one of {', '.join(SHARING_MODES)}")
        if self.attention_kernel not in ATTENTION_KERNELS:
            bad("attention_kernel", f"unknown kernel {self.attention_kernel!r}; "
                f"use one of {', '.join(ATTENTION_KERNELS)}")
        if self.remat not in REMAT_POLICIES:
            bad("remat", f"unknown remat policy {self.remat!r}; use one of {', '.join(REMAT_POLICIES)}")
        for field in ("compute_dtype", "param_dtype"):
            if getattr(self, field) not in DTYPES:
                bad(field, f"unknown dtype {getattr(self, field)!r}; use one of {', '.join(DTYPES)}")
        for rate in ("hidden_dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, rate) < 1.0:
                bad(rate, f"must be in [0, 1), got {getattr(self, rate)}")
        unknown = [h for h in self.heads if h not in HEADS]
        if unknown:
            bad("heads", f"unknown head(s) {unknown}; use any of {', '.join(HEADS)}")
        if "nsp" in self.heads and "sop" in self.heads:
            bad("heads", "a model has an NSP or an SOP head, not both")
        if ("nsp" in self.heads or "sop" in self.heads) and not self.pooler:
            bad("pooler", "NSP/SOP heads read the pooled [CLS] output; set pooler=True")
        if not 0 <= self.pad_token_id < self.vocab_size:
            bad("pad_token_id", f"{self.pad_token_id} is outside the vocabulary (size {self.vocab_size})")
        if self.position_offset < 0:
            bad("position_offset", "must be >= 0")
        if self.task not in TASKS:
            bad("task", f"unknown task head {self.task!r}; use one of {', '.join(t or repr(t) for t in TASKS)}")
        if self.task in ("classification", "token") and self.num_labels < 1:
            bad("num_labels", f"a {self.task} head needs num_labels >= 1 (1 = regression), got {self.num_labels}")
        if self.task == "classification" and CLASSIFIER_INPUT[self.family] == "pooler" and not self.pooler:
            bad("pooler", f"{self.family} classifies from the pooled output; set pooler=True")
        if not 0.0 <= self.classifier_dropout < 1.0:
            bad("classifier_dropout", f"must be in [0, 1), got {self.classifier_dropout}")
        if self.mem_len < 0:
            bad("mem_len", f"must be >= 0 (0 keeps every past state), got {self.mem_len}")
        self._validate_family_heads(bad)

    def _validate_family_heads(self, bad) -> None:
        """XLNet's tied LM head is its own; the BERT-style heads and layouts are not XLNet's."""
        if self.family != "xlnet":
            if "lm" in self.heads:
                bad("heads", "the 'lm' head is XLNet's; BERT-family models predict tokens with 'mlm'")
            if self.bi_data or self.mem_len:
                bad("bi_data" if self.bi_data else "mem_len", "only XLNet has relative positions and memory")
            return
        if set(self.heads) - {"lm"}:
            bad("heads", f"an XLNet model holds only the 'lm' head, got {list(self.heads)}")
        if self.pooler:
            bad("pooler", "XLNet has no pooler (its classifier summarises the last token); set pooler=False")
        if self.has_projection:
            bad("embedding_size", "XLNet has no factorized embeddings; set embedding_size=0")
        if self.sharing != "none":
            bad("sharing", "XLNet shares no layers; set sharing='none'")
        if self.position_offset:
            bad("position_offset", "XLNet has no position table; set position_offset=0")
        if self.hidden_size % 2:
            bad("hidden_size", f"XLNet's sinusoidal relative encodings need an even size, got {self.hidden_size}")

    # ---- (de)serialisation ----------------------------------------------------------
    def replace(self, **changes: Any) -> ModelConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"ModelConfig has no field(s) {sorted(unknown)}; "
                              f"known fields: {', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["heads"] = list(self.heads)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"ModelConfig has no field(s) {sorted(unknown)}; "
                              f"known fields: {', '.join(sorted(known))}")
        return cls(**dict(d))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _bert(layers: int, hidden: int, heads: int, **kw: Any) -> ModelConfig:
    return ModelConfig(family="bert", num_layers=layers, hidden_size=hidden, num_heads=heads,
                       intermediate_size=4 * hidden, **kw)


def _roberta(layers: int, hidden: int, heads: int) -> ModelConfig:
    return ModelConfig(family="roberta", vocab_size=50265, num_layers=layers, hidden_size=hidden,
                       num_heads=heads, intermediate_size=4 * hidden, max_position_embeddings=514,
                       type_vocab_size=1, pad_token_id=1, position_offset=1, layer_norm_eps=1e-5,
                       pooler=False, heads=DEFAULT_HEADS["roberta"], head_act="gelu")


def _albert(layers: int, hidden: int, heads: int, embedding: int = 128, sharing: str = "all") -> ModelConfig:
    return ModelConfig(family="albert", vocab_size=30000, num_layers=layers, hidden_size=hidden,
                       num_heads=heads, intermediate_size=4 * hidden, embedding_size=embedding,
                       hidden_act="gelu_new", hidden_dropout=0.0, attention_dropout=0.0,
                       sharing=sharing, heads=DEFAULT_HEADS["albert"])


def _electra(layers: int, hidden: int, heads: int, embedding: int, generator: bool = False) -> ModelConfig:
    return ModelConfig(family="electra", num_layers=layers, hidden_size=hidden, num_heads=heads,
                       intermediate_size=4 * hidden, embedding_size=embedding if embedding != hidden else 0,
                       pooler=False, heads=("mlm",) if generator else DEFAULT_HEADS["electra"],
                       head_act="gelu" if generator else "")


def _xlnet(layers: int, hidden: int, heads: int) -> ModelConfig:
    # Yang et al. 2019: BERT's shapes; the released vocabulary (32000 SentencePiece ids, <pad> = 5).
    return ModelConfig(family="xlnet", vocab_size=32000, num_layers=layers, hidden_size=hidden, num_heads=heads,
                       intermediate_size=4 * hidden, pad_token_id=5, pooler=False, heads=DEFAULT_HEADS["xlnet"])


PRESETS: dict[str, ModelConfig] = {
    # Compact BERTs (Turc et al. 2019, "Well-Read Students Learn Better").
    "bert-tiny": _bert(2, 128, 2),
    "bert-mini": _bert(4, 256, 4),
    "bert-small": _bert(4, 512, 8),
    "bert-medium": _bert(8, 512, 8),
    # Devlin et al. 2019.
    "bert-base": _bert(12, 768, 12),
    "bert-large": _bert(24, 1024, 16),
    # Liu et al. 2019.
    "roberta-base": _roberta(12, 768, 12),
    "roberta-large": _roberta(24, 1024, 16),
    # Lan et al. 2020, Table 1 (E=128, all-shared).
    "albert-base": _albert(12, 768, 12),
    "albert-large": _albert(24, 1024, 16),
    "albert-xlarge": _albert(24, 2048, 16),
    "albert-xxlarge": _albert(12, 4096, 64),
    # Clark et al. 2020, Table 6: generator widths are the paper's multipliers (1/4, 1/3, 1/4).
    "electra-small": _electra(12, 256, 4, 128),
    "electra-small-generator": _electra(12, 64, 1, 128, generator=True),
    "electra-base": _electra(12, 768, 12, 768),
    "electra-base-generator": _electra(12, 256, 4, 768, generator=True),
    "electra-large": _electra(24, 1024, 16, 1024),
    "electra-large-generator": _electra(24, 256, 4, 1024, generator=True),
    # Sanh et al. 2019.
    "distilbert-base": ModelConfig(family="distilbert", num_layers=6, type_vocab_size=0, pooler=False,
                                   heads=DEFAULT_HEADS["distilbert"]),
    # Yang et al. 2019.
    "xlnet-base": _xlnet(12, 768, 12),
    "xlnet-large": _xlnet(24, 1024, 16),
}


def get_preset(name: str) -> ModelConfig:
    """The ModelConfig of a named preset (e.g. "bert-base"); a clear error for unknown names."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def resolve_model_config(spec: str | ModelConfig | Mapping[str, Any]) -> ModelConfig:
    """A ModelConfig from a preset name, a ModelConfig, or a dict of fields (optionally with `preset`)."""
    if isinstance(spec, ModelConfig):
        return spec
    if isinstance(spec, str):
        return get_preset(spec)
    if isinstance(spec, Mapping):
        fields = dict(spec)
        base = fields.pop("preset", None)
        if base is not None:
            return get_preset(base).replace(**fields)
        return ModelConfig.from_dict(fields)
    raise ConfigError(f"model spec must be a preset name, a ModelConfig or a dict, got {type(spec).__name__}")
