"""The fine-tuning recipe is the reference one: from identical weights, with dropout off, jaxbert's train steps
(the `finetune` objective, the loop's AdamW with BERT's weight-decay exclusions, clipping, warmup + linear
decay) follow transformers + torch.optim.AdamW + get_linear_schedule_with_warmup step for step."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
import torch
import transformers

import jaxbert
from jaxbert.objectives.finetune import Finetune
from jaxbert.train.optim import make_optimizer
from jaxbert.train.spec import OptimizerSpec
from jaxbert.train.state import TrainState
from jaxbert.train.step import make_train_step

STEPS = 4
OPTS = OptimizerSpec(lr=1e-3, warmup_steps=1, schedule="linear", b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01,
                     clip_norm=1.0)


def _torch_model(kind: str) -> transformers.PreTrainedModel:
    config = transformers.BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0,
                                     num_labels={"regression": 1, "span": 2}.get(kind, 3))
    if kind == "regression":
        config.problem_type = "regression"
    torch.manual_seed(0)
    cls = {"classification": transformers.BertForSequenceClassification,
           "regression": transformers.BertForSequenceClassification,
           "span": transformers.BertForQuestionAnswering,
           "token": transformers.BertForTokenClassification}[kind]
    model = cls(config)
    with torch.no_grad():  # larger weights than the 0.02 init make the comparison demanding
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _batches(kind: str) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    out = []
    for _ in range(STEPS):
        b = {"input_ids": rng.integers(5, 99, (4, 12)).astype(np.int32), "attention_mask": np.ones((4, 12), np.int32),
             "token_type_ids": np.zeros((4, 12), np.int32)}
        b["attention_mask"][0, 9:] = 0
        if kind == "classification":
            b["labels"] = rng.integers(0, 3, 4).astype(np.int32)
        elif kind == "regression":
            b["labels"] = rng.uniform(0, 5, 4).astype(np.float32)
        elif kind == "span":
            b["start_positions"] = rng.integers(1, 8, 4).astype(np.int32)
            b["end_positions"] = b["start_positions"] + 1
        else:
            b["labels"] = rng.integers(0, 3, (4, 12)).astype(np.int32)
            b["labels"][:, 0] = -100
            b["labels"][0, 9:] = -100
        out.append(b)
    return out


# Sequence- and token-level heads run by default; the other two share their code paths (slow: -m slow).
@pytest.mark.parametrize("kind", ["classification", "token", pytest.param("regression", marks=pytest.mark.slow),
                                  pytest.param("span", marks=pytest.mark.slow)])
@pytest.mark.slow
def test_train_steps_match_transformers_and_torch(kind: str, tmp_path: Path) -> None:
    model = _torch_model(kind)
    model.save_pretrained(tmp_path)
    start = jaxbert.load(tmp_path)  # the same initial weights, task head included
    objective = Finetune(start.config, kind)
    tx, schedule = make_optimizer(OPTS, STEPS)
    state = TrainState(jax.numpy.zeros((), jax.numpy.int32), start.params, tx.init(start.params))
    step = jax.jit(make_train_step(objective, tx, schedule))

    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=OPTS.lr, eps=1e-6)
    sched = transformers.get_linear_schedule_with_warmup(optimizer, 1, STEPS)
    model.train()
    for batch in _batches(kind):
        state, metrics = step(state, {}, {k: jax.numpy.asarray(v) for k, v in batch.items()}, jax.random.key(0))
        tb = {k: torch.tensor(v).long() for k, v in batch.items()}
        if kind == "regression":
            tb["labels"] = torch.tensor(batch["labels"])
        loss = model(**tb).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        sched.step()
        optimizer.zero_grad()
        assert float(metrics["loss"]) == pytest.approx(loss.item(), rel=1e-4, abs=1e-5)
    # after the updates the models still agree: same weights, hence the same outputs
    ours = jaxbert.Pretrained(start.config, state.params)
    batch = _batches(kind)[0]
    with torch.no_grad():
        theirs = model.eval()(**{k: torch.tensor(batch[k]).long() for k in ("input_ids", "attention_mask",
                                                                              "token_type_ids")})
    got = np.asarray(ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits[
        start.config.task])
    want = (torch.stack([theirs.start_logits, theirs.end_logits], -1) if kind == "span" else theirs.logits).numpy()
    real = batch["attention_mask"].astype(bool)
    if kind in ("span", "token"):
        got, want = got[real], want[real]
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()))
