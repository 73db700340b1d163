"""Optimizers and schedules (vs torch / closed forms), the train step, and the generic loop on a stub objective."""

from __future__ import annotations

import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from train_stub import Regression, data_stream, train_config

from jaxbert.config import get_preset
from jaxbert.model import param_shapes
from jaxbert.train.loop import NonFiniteLossError, train
from jaxbert.train.metrics import read_metrics
from jaxbert.train.optim import decay_mask, make_optimizer, make_schedule
from jaxbert.train.spec import OptimizerSpec
from jaxbert.train.state import TrainState
from jaxbert.train.step import make_train_step

torch = pytest.importorskip("torch")


def saved_params(workdir, step):
    from etils import epath

    return ocp.StandardCheckpointHandler().restore(epath.Path(workdir) / "checkpoints" / str(step) / "params")


# ---- optimizer & schedule -------------------------------------------------------------
def test_weight_decay_skips_layer_norms_and_biases_of_the_real_model():
    params = param_shapes(get_preset("bert-tiny"))
    flat = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_flatten_with_path(decay_mask(params))[0]}
    for name, decays in flat.items():
        is_norm_or_bias = "'norm'" in name or name.endswith("['bias']")
        assert decays == (not is_norm_or_bias), name
    assert flat["['embeddings']['word']['embedding']"] and flat["['encoder']['layers']['ffn']['output']['kernel']"]
    assert not flat["['mlm_head']['bias']"] and not flat["['encoder']['layers']['attention']['norm']['scale']"]


def test_warmup_then_linear_and_polynomial_decay():
    lin = make_schedule(OptimizerSpec(lr=1e-3, warmup_steps=10), 100)
    assert float(lin(0)) == 0.0 and np.isclose(lin(5), 5e-4) and np.isclose(lin(10), 1e-3)
    np.testing.assert_allclose([float(lin(s)) for s in (55, 100)], [1e-3 * 45 / 90, 0.0], atol=1e-9)
    poly = make_schedule(OptimizerSpec(lr=1e-3, warmup_steps=0, schedule="polynomial", power=2.0, end_lr=1e-5),
                         100)
    s = 30
    np.testing.assert_allclose(float(poly(s)), (1e-3 - 1e-5) * (1 - s / 100) ** 2 + 1e-5, rtol=1e-5)


def test_adamw_matches_torch_adamw_with_bert_decay_groups():
    rng = np.random.default_rng(0)
    params = {"dense": {"kernel": rng.normal(size=(4, 3)).astype(np.float32),
                        "bias": rng.normal(size=(3,)).astype(np.float32)}}
    grads = [{"dense": {"kernel": rng.normal(size=(4, 3)).astype(np.float32),
                        "bias": rng.normal(size=(3,)).astype(np.float32)}} for _ in range(3)]
    opts = OptimizerSpec(optimizer="adamw", lr=1e-2, schedule="constant", b1=0.9, b2=0.98, eps=1e-6,
                         weight_decay=0.1, clip_norm=0.0)
    tx, _ = make_optimizer(opts, 10)
    p, state = jax.tree_util.tree_map(jnp.asarray, params), None
    state = tx.init(p)
    for g in grads:
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)

    kernel = torch.nn.Parameter(torch.tensor(params["dense"]["kernel"]))
    bias = torch.nn.Parameter(torch.tensor(params["dense"]["bias"]))
    ref = torch.optim.AdamW([{"params": [kernel], "weight_decay": 0.1}, {"params": [bias], "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.98), eps=1e-6)
    for g in grads:
        kernel.grad, bias.grad = torch.tensor(g["dense"]["kernel"]), torch.tensor(g["dense"]["bias"])
        ref.step()
    np.testing.assert_allclose(np.asarray(p["dense"]["kernel"]), kernel.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(p["dense"]["bias"]), bias.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_lamb_trust_ratio_scales_each_layer():
    params = {"w": jnp.full((4,), 2.0)}
    tx, _ = make_optimizer(OptimizerSpec(optimizer="lamb", lr=0.1, schedule="constant", weight_decay=0.0,
                                         clip_norm=0.0), 10)
    updates, _ = tx.update({"w": jnp.asarray([1.0, -1.0, 1.0, -1.0])}, tx.init(params), params)
    # First Adam step is sign(g) (norm 2); LAMB rescales it to ||w|| = 4 before the lr: step norm 0.1 * 4.
    np.testing.assert_allclose(float(jnp.linalg.norm(updates["w"])), 0.1 * 4.0, rtol=1e-4)


# ---- train step -------------------------------------------------------------------------
def _one_step(accum: int, batch: dict) -> dict:
    objective = Regression()
    tx, schedule = make_optimizer(OptimizerSpec(lr=0.1, schedule="constant", weight_decay=0.0, clip_norm=0.0), 10)
    params = objective.init(jax.random.key(0))
    state = TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))
    step = jax.jit(make_train_step(objective, tx, schedule, grad_accum=accum))
    new_state, metrics = step(state, {}, batch, jax.random.key(1))
    return new_state.params, metrics


def test_gradient_accumulation_equals_one_big_batch():
    batch = next(data_stream(16, shuffle=False))
    big, m1 = _one_step(1, batch)
    acc, m4 = _one_step(4, batch)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), big, acc)
    np.testing.assert_allclose(float(m1["loss"]), float(m4["loss"]), rtol=1e-5)


def test_step_reports_grad_norm_learning_rate_and_skips_non_finite_updates():
    batch = next(data_stream(8, shuffle=False))
    params, metrics = _one_step(1, batch)
    assert float(metrics["finite"]) == 1.0 and float(metrics["grad_norm"]) > 0
    np.testing.assert_allclose(float(metrics["learning_rate"]), 0.1)
    bad = dict(batch, x=np.full_like(batch["x"], np.nan))
    params_bad, metrics_bad = _one_step(1, bad)
    assert float(metrics_bad["finite"]) == 0.0
    original = Regression().init(jax.random.key(0))
    jax.tree_util.tree_map(np.testing.assert_array_equal, params_bad, original)


# ---- the loop ---------------------------------------------------------------------------
class _SigtermAt:
    """Wraps a data iterator and sends this process SIGTERM when batch `at` is taken (a preemption)."""

    def __init__(self, it, at: int) -> None:
        self.it, self.at, self.taken = it, at, 0

    def __next__(self):
        self.taken += 1
        if self.taken == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return next(self.it)

    def get_state(self):
        return self.it.get_state()

    def set_state(self, state):
        self.it.set_state(state)


def test_resume_after_preemption_is_bit_identical(tmp_path):
    config = train_config(steps=10)
    objective = Regression(dropout=0.3)  # rng-dependent steps: resuming must replay the same keys
    straight = train(config, tmp_path / "a", objective, data_stream(8))
    assert straight.status == "finished" and straight.step == 10

    first = train(config, tmp_path / "b", objective, _SigtermAt(data_stream(8), at=6))
    assert first.status == "preempted" and first.step == 6  # saved at the step it was told to stop
    second = train(config, tmp_path / "b", objective, data_stream(8))
    assert second.status == "finished" and second.step == 10

    jax.tree_util.tree_map(np.testing.assert_array_equal, saved_params(tmp_path / "a", 10),
                           saved_params(tmp_path / "b", 10))
    losses = lambda d: [(r["step"], r["loss"]) for r in read_metrics(d) if "loss" in r]
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    assert [s for s, _ in losses(tmp_path / "b")] == list(range(1, 11))  # no step logged twice


def test_loss_falls_and_metrics_file_has_step_loss_and_eval(tmp_path):
    config = train_config(steps=30, eval_every=10, eval_batches=2, log_every=5)
    result = train(config, tmp_path, Regression(), data_stream(8),
                   eval_batches=lambda: data_stream(8, seed=1, shuffle=False))
    rows = read_metrics(tmp_path)
    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "eval/loss" in r]
    assert [r["step"] for r in train_rows] == [5, 10, 15, 20, 25, 30]
    assert [r["step"] for r in eval_rows] == [10, 20, 30]
    assert train_rows[-1]["loss"] < 0.5 * train_rows[0]["loss"]
    assert eval_rows[-1]["eval/loss"] < eval_rows[0]["eval/loss"]
    for key in ("learning_rate", "grad_norm", "tokens_per_s", "mae"):
        assert key in train_rows[-1]
    assert result.eval_metrics["eval/loss"] == eval_rows[-1]["eval/loss"]
    assert (tmp_path / "tensorboard").is_dir()


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    config = train_config(steps=12)
    # Example 50 holds NaN: unshuffled batches of 8 put it in step 7 (examples 48..55).
    with pytest.raises(NonFiniteLossError, match=r"at step 7; .* last good checkpoint is step 4") as err:
        train(config, tmp_path, Regression(), data_stream(8, nan_at=50, shuffle=False))
    assert "\n" not in str(err.value)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [4]
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(saved_params(tmp_path, 4)))


def test_nan_loss_skip_policy_skips_the_update_and_goes_on(tmp_path):
    config = train_config(steps=12, nan_policy="skip")
    result = train(config, tmp_path, Regression(), data_stream(8, nan_at=50, shuffle=False))
    assert result.status == "finished" and result.metrics["skipped_steps"] == 1.0
    rows = {r["step"]: r for r in read_metrics(tmp_path)}
    assert rows[7]["loss"] == "nan" and rows[7]["skipped_steps"] == 1.0
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(saved_params(tmp_path, 12)))


class _FrozenNorm(Regression):
    """Trains the dense layer only: the objective's trainable mask freezes the norm scale."""

    def trainable_mask(self, params):
        return {"dense": {"kernel": True, "bias": True}, "norm": {"scale": False}}


def test_objective_trainable_mask_freezes_params(tmp_path):
    train(train_config(steps=4), tmp_path, _FrozenNorm(), data_stream(8))
    start, end = _FrozenNorm().init(jax.random.key(0)), saved_params(tmp_path, 4)
    np.testing.assert_array_equal(end["norm"]["scale"], start["norm"]["scale"])
    assert not np.array_equal(end["dense"]["kernel"], start["dense"]["kernel"])


def test_finished_workdir_is_not_trained_again(tmp_path):
    config = train_config(steps=4)
    train(config, tmp_path, Regression(), data_stream(8))
    again = train(config, tmp_path, Regression(), data_stream(8))
    assert again.status == "finished" and again.step == 4 and again.metrics == {}
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 4
