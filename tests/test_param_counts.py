"""Parameter counts: every preset equals transformers' pretraining model exactly; docs/param_counts.md is current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jaxbert.config import PRESETS
from jaxbert.interop import hf
from jaxbert.interop.param_table import encoder_only, render
from jaxbert.model import count_params, param_shapes

torch = pytest.importorskip("torch", reason="install the test extra: pip install -e '.[test]'")
transformers = pytest.importorskip("transformers", reason="install the test extra: pip install -e '.[test]'")

DOC = Path(__file__).resolve().parents[1] / "docs" / "param_counts.md"
EXPECTED_CLASS = {"bert": "BertForPreTraining", "roberta": "RobertaForMaskedLM", "albert": "AlbertForPreTraining",
                  "distilbert": "DistilBertForMaskedLM", "xlnet": "XLNetLMHeadModel"}


def _transformers_count(config) -> int:
    """Params of the matching transformers model, built on the meta device (no memory, instant)."""
    with torch.device("meta"):
        model = getattr(transformers, hf.architecture(config))(hf.to_hf_config(config))
    return sum(p.numel() for p in model.parameters())  # parameters() yields tied weights once


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_count_equals_transformers(name: str) -> None:
    config = PRESETS[name]
    expected = EXPECTED_CLASS.get(config.family) or (
        "ElectraForMaskedLM" if "generator" in name else "ElectraForPreTraining")
    assert hf.architecture(config) == expected
    assert count_params(param_shapes(config)) == _transformers_count(config)


@pytest.mark.parametrize("name, changes", [
    ("albert-base", {"sharing": "none"}),  # transformers: num_hidden_groups = num_hidden_layers
    ("bert-base", {"heads": ()}),  # BertModel
    ("roberta-base", {"heads": (), "pooler": True}),  # RobertaModel
    ("electra-small", {"heads": ()}),  # ElectraModel
    ("xlnet-base", {"heads": ()}),  # XLNetModel
    ("xlnet-large", {"vocab_size": 1013, "num_heads": 8}),  # odd vocabulary, other head split
])
def test_variant_count_equals_transformers(name: str, changes: dict) -> None:
    config = PRESETS[name].replace(**changes)
    assert count_params(param_shapes(config)) == _transformers_count(config)


def test_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), \
        "docs/param_counts.md is stale: python -m jaxbert.interop.param_table --output docs/param_counts.md"


def test_doc_rows_equal_the_model_counts() -> None:
    """Independent of render(): parse each preset row and recount."""
    rows = {m.group(1): (int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")))
            for m in re.finditer(r"^\| ([a-z0-9-]+) \| ([\d,]+) \| ([\d,]+) \|", DOC.read_text(), re.MULTILINE)}
    assert sorted(rows) == sorted(PRESETS)
    for name, (total, encoder) in rows.items():
        config = PRESETS[name]
        assert total == count_params(param_shapes(config)), name
        assert encoder == encoder_only(config), name
