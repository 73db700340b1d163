"""Fine-tuned models export to the matching transformers *For{SequenceClassification,QuestionAnswering,
TokenClassification} class, which gives the same logits (1e-4), and import back unchanged."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
import torch
import transformers

import jaxbert
from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.finetune.predict import predict_logits
from jaxbert.interop import hf_tasks
from jaxbert.model import param_shapes
from jaxbert.objectives.finetune import task_model_config

_BASE = dict(vocab_size=99, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=37,
             max_position_embeddings=64)
FAMILIES = {
    "bert": ModelConfig(family="bert", **_BASE),
    "roberta": ModelConfig(family="roberta", pad_token_id=1, position_offset=1, type_vocab_size=1, pooler=False,
                           heads=("mlm",), head_act="gelu", layer_norm_eps=1e-5, **_BASE),
    "albert": ModelConfig(family="albert", embedding_size=16, sharing="all", hidden_act="gelu_new",
                          heads=("mlm", "sop"), **_BASE),
    "electra": ModelConfig(family="electra", embedding_size=16, pooler=False, heads=("rtd",), **_BASE),
    "distilbert": ModelConfig(family="distilbert", type_vocab_size=0, pooler=False, heads=("mlm",), **_BASE),
}
AUTO = {"classification": transformers.AutoModelForSequenceClassification,
        "regression": transformers.AutoModelForSequenceClassification,
        "span": transformers.AutoModelForQuestionAnswering,
        "token": transformers.AutoModelForTokenClassification}
# BERT's three task classes are also exported end to end in test_finetune_cli; the slow cases add nothing
# family-specific beyond the default ones.
_SLOW = pytest.mark.slow
CASES = [pytest.param("bert", "classification", 3, marks=_SLOW),
         *((f, "classification", 3) for f in FAMILIES if f != "bert"),
         pytest.param("roberta", "regression", 1, marks=_SLOW), pytest.param("bert", "span", 2, marks=_SLOW),
         ("albert", "span", 2), ("electra", "token", 5), ("distilbert", "token", 5)]


def _random_params(config: ModelConfig) -> dict:
    # Random values for every leaf (LayerNorm scales too) from the shapes alone: no slow eager init.
    rng = np.random.default_rng(1)
    return jax.tree_util.tree_map(lambda s: rng.normal(0.0, 0.2, s.shape).astype(np.float32), param_shapes(config))


def _inputs(config: ModelConfig) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 99, (3, 12))
    mask = np.ones_like(ids)
    mask[1, 8:] = 0
    types = np.zeros_like(ids)
    if config.type_vocab_size > 1:
        types[:, 6:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


@pytest.mark.parametrize(("family", "kind", "labels"), CASES)
def test_export_matches_transformers_and_round_trips(family: str, kind: str, labels: int, tmp_path: Path) -> None:
    config = task_model_config(FAMILIES[family], kind, labels)
    params = _random_params(config)
    batch = _inputs(config)
    ours = predict_logits(config, params, batch, batch_size=4)
    names = [f"tag{i}" for i in range(labels)] if kind == "token" else None
    out = hf_tasks.export_hf_task(config, params, tmp_path / "hf", label_names=names)

    model, info = AUTO[kind].from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert type(model).__name__ == hf_tasks.task_architecture(config)
    kwargs = {k: torch.tensor(batch[k]) for k in ("input_ids", "attention_mask")}
    if family != "distilbert":
        kwargs["token_type_ids"] = torch.tensor(batch["token_type_ids"])
    with torch.no_grad():
        res = model.eval()(**kwargs)
    theirs = torch.stack([res.start_logits, res.end_logits], -1).numpy() if kind == "span" else res.logits.numpy()
    real = batch["attention_mask"].astype(bool)
    if kind in ("span", "token"):  # padded positions are not outputs either side promises
        ours, theirs = ours[real], theirs[real]
    assert np.abs(theirs).max() > 0.1
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
    if kind == "regression":
        assert model.config.problem_type == "regression"
    if names:
        assert model.config.id2label == dict(enumerate(names))

    back = jaxbert.load(out)  # an HF task directory opens as the same task model
    assert back.config == config and back.label_names == (names or [f"LABEL_{i}" for i in range(labels)])
    np.testing.assert_array_equal(predict_logits(back.config, back.params, batch, batch_size=4),
                                  predict_logits(config, params, batch, batch_size=4))


def test_export_refuses_models_transformers_cannot_hold(tmp_path: Path) -> None:
    config = task_model_config(FAMILIES["bert"], "classification", 2)
    with pytest.raises(JaxbertError, match="pretraining heads"):
        hf_tasks.task_architecture(config.replace(heads=("mlm",)))
    with pytest.raises(JaxbertError, match="pooler"):
        hf_tasks.task_architecture(config.replace(pooler=False))
    with pytest.raises(JaxbertError, match="label names"):
        hf_tasks.task_config_dict(config, ["only-one"])
    assert not (tmp_path / "x").exists()
