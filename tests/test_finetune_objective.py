"""The fine-tuning objective: its losses equal PyTorch's / transformers', and its init keeps the pretrained encoder."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxbert
from jaxbert.config import ConfigError, ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.finetune.batches import EpochBatches
from jaxbert.finetune.tasks import TaskExamples, get_task, held_out_split
from jaxbert.model import param_shapes
from jaxbert.objectives.finetune import (
    IGNORE,
    Finetune,
    classification_metrics,
    merge_pretrained,
    regression_loss,
    span_metrics,
    task_model_config,
    token_metrics,
)

TINY = ModelConfig(vocab_size=97, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                   max_position_embeddings=40)


def test_classification_loss_is_torch_cross_entropy():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(7, 3)).astype(np.float32), rng.integers(0, 3, 7)
    loss, acc = classification_metrics(jnp.asarray(logits), jnp.asarray(labels))
    want = F.cross_entropy(torch.tensor(logits), torch.tensor(labels)).item()
    np.testing.assert_allclose(float(loss), want, rtol=1e-6)
    assert float(acc) == pytest.approx(np.mean(logits.argmax(1) == labels))


def test_regression_loss_is_torch_mse():
    rng = np.random.default_rng(1)
    logits, scores = rng.normal(size=(6, 1)).astype(np.float32), rng.uniform(0, 5, 6).astype(np.float32)
    want = F.mse_loss(torch.tensor(logits).squeeze(-1), torch.tensor(scores)).item()
    np.testing.assert_allclose(float(regression_loss(jnp.asarray(logits), jnp.asarray(scores))), want, rtol=1e-6)


def test_span_loss_is_transformers_question_answering_loss():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 11, 2)).astype(np.float32)
    starts, ends = rng.integers(0, 11, 5), rng.integers(0, 11, 5)
    loss, _ = span_metrics(jnp.asarray(logits), jnp.asarray(starts), jnp.asarray(ends))
    # transformers' *ForQuestionAnswering: (CE(start) + CE(end)) / 2
    t = torch.tensor(logits)
    want = (F.cross_entropy(t[..., 0], torch.tensor(starts)) + F.cross_entropy(t[..., 1], torch.tensor(ends))) / 2
    np.testing.assert_allclose(float(loss), want.item(), rtol=1e-6)


def test_token_loss_ignores_minus_100_like_torch():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 9, 5)).astype(np.float32)
    labels = rng.integers(0, 5, (3, 9))
    labels[rng.random((3, 9)) < 0.4] = IGNORE
    loss, acc = token_metrics(jnp.asarray(logits), jnp.asarray(labels))
    want = F.cross_entropy(torch.tensor(logits).reshape(-1, 5), torch.tensor(labels).reshape(-1), ignore_index=-100)
    np.testing.assert_allclose(float(loss), want.item(), rtol=1e-6)
    keep = labels != IGNORE
    assert float(acc) == pytest.approx(np.mean(logits.argmax(-1)[keep] == labels[keep]))


@pytest.mark.parametrize(("family_config", "kind", "pooler"), [
    (TINY, "classification", True),  # BERT classifies from the pooled output
    (TINY, "span", False),  # BertForQuestionAnswering has no pooler
    (TINY, "token", False),
    (TINY.replace(family="roberta", pooler=False, heads=("mlm",), position_offset=1, pad_token_id=1), "classification",
     False),
])
def test_task_config_drops_pretraining_heads_and_keeps_the_reference_pooler(family_config, kind, pooler):
    cfg = task_model_config(family_config, kind, 3)
    assert cfg.heads == () and cfg.pooler is pooler
    assert cfg.num_labels == {"classification": 3, "span": 2, "token": 3}[kind]


def test_task_config_rejects_bad_kinds_and_label_counts():
    with pytest.raises(ConfigError, match="unknown task kind"):
        task_model_config(TINY, "ranking")
    with pytest.raises(ConfigError, match="regression"):
        task_model_config(TINY, "classification", 1)
    assert task_model_config(TINY, "regression").num_labels == 1


def test_initial_params_copy_the_encoder_and_add_a_fresh_head():
    rng = np.random.default_rng(3)  # random values in the shapes of a pretrained model: encoder + MLM + NSP heads
    pretrained = jaxbert.Pretrained(TINY, jax.tree_util.tree_map(lambda s: rng.normal(size=s.shape).astype(np.float32),
                                                                  param_shapes(TINY)))
    cfg = task_model_config(TINY, "classification", 2)
    objective = Finetune(cfg, "classification")
    params = objective.initial_params(pretrained, jax.random.key(0))
    assert set(params) == {"embeddings", "encoder", "pooler", "task_head"}
    for name in ("embeddings", "encoder", "pooler"):
        for a, b in zip(jax.tree_util.tree_leaves(params[name]), jax.tree_util.tree_leaves(pretrained.params[name]),
                        strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert objective.fresh_params == ["task_head/out/bias", "task_head/out/kernel"]
    assert objective.batch_fields(4, 10)["labels"] == ((4,), np.int32)


def test_merge_skips_leaves_of_another_shape():
    fresh = {"a": jnp.zeros((2, 3)), "b": jnp.zeros(4)}
    merged, kept_fresh = merge_pretrained(fresh, {"a": np.ones((2, 3)), "b": np.ones(5), "mlm": np.ones(2)})
    np.testing.assert_array_equal(merged["a"], np.ones((2, 3)))
    np.testing.assert_array_equal(merged["b"], np.zeros(4))
    assert kept_fresh == ["b"]


def test_epoch_batches_cover_every_row_once_per_epoch_and_resume():
    arrays = {"x": np.arange(10)}
    it = EpochBatches(arrays, 4, seed=1, shard_index=0, shard_count=1)
    rows = np.concatenate([next(it)["x"] for _ in range(5)])  # 20 rows = 2 epochs
    assert sorted(rows[:10]) == list(range(10)) and sorted(rows[10:]) == list(range(10))
    it2 = EpochBatches(arrays, 4, seed=1, shard_index=0, shard_count=1)
    next(it2)
    state = it2.get_state()
    it3 = EpochBatches(arrays, 4, seed=1, shard_index=0, shard_count=1)
    it3.set_state(state)
    np.testing.assert_array_equal(next(it3)["x"], rows[4:8])
    # two processes split each global batch between them
    halves = [next(EpochBatches(arrays, 4, seed=1, shard_index=i, shard_count=2))["x"] for i in range(2)]
    np.testing.assert_array_equal(np.concatenate(halves), rows[:4])
    with pytest.raises(JaxbertError, match="batch size"):
        EpochBatches(arrays, 8, seed=1, shard_index=0, shard_count=1).set_state(state)


def test_held_out_split_is_deterministic_and_keeps_squad_articles_whole():
    from jaxbert.data.squad import SquadAnswer, SquadExample

    items = [SquadExample(f"q{i}", f"title{i % 5}", "q?", "ctx", (SquadAnswer("c", 0),)) for i in range(40)]
    data = TaskExamples(get_task("squad_v1"), items)
    train, held = held_out_split(data, 2, seed=0)
    assert len({e.title for e in held.items}) == 2
    assert not {e.title for e in held.items} & {e.title for e in train.items}
    again = held_out_split(data, 2, seed=0)[1]
    assert [e.id for e in again.items] == [e.id for e in held.items]
    glue_like = TaskExamples(get_task("sst2"), list(range(100)))
    tr, ev = held_out_split(glue_like, 0.25, seed=3)
    assert len(ev) == 25 and sorted(tr.items + ev.items) == list(range(100))
    with pytest.raises(JaxbertError, match="eval_size"):
        held_out_split(glue_like, 100, seed=0)
