"""The model module of a config: EncoderModel for the BERT family, XLNetModel for XLNet."""

from __future__ import annotations

import flax.linen as nn

from jaxbert.config import ModelConfig
from jaxbert.model.model import EncoderModel
from jaxbert.model.xlnet import XLNetModel


def build_model(config: ModelConfig) -> nn.Module:
    """The Flax module of `config`'s family; both take (input_ids, attention_mask, token_type_ids, ...)."""
    return XLNetModel(config) if config.family == "xlnet" else EncoderModel(config)
