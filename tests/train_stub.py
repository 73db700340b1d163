"""A tiny deterministic Objective (linear regression) and a resumable grain data stream for loop tests.

Compiles in well under a second, so the generic loop (resume, accumulation, NaN handling,
checkpoints) can be tested quickly; the real MLM objective is tested in test_objectives_mlm.py.
"""

from __future__ import annotations

from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import PartitionSpec as P

from jaxbert.config import ModelConfig
from jaxbert.objectives.base import Objective

FEATURES = 16


class Regression(Objective):
    """Mean squared error of y ≈ x·W + b, with a LayerNorm-named scale so weight-decay masks matter."""

    name = "regression"
    model_config = ModelConfig(num_layers=1, hidden_size=16, num_heads=1, intermediate_size=16, vocab_size=16)

    def __init__(self, dropout: float = 0.0) -> None:
        self.dropout = dropout

    def init(self, rng: jax.Array) -> Any:
        k1, _ = jax.random.split(rng)
        return {"dense": {"kernel": 0.1 * jax.random.normal(k1, (FEATURES, 8)), "bias": jnp.zeros((8,))},
                "norm": {"scale": jnp.ones((8,))}}

    def param_axes(self) -> Any:
        return {"dense": {"kernel": P("embed", "mlp"), "bias": P("mlp")}, "norm": {"scale": P("mlp")}}

    def loss(self, params, frozen, batch, rng, deterministic=False):
        h = batch["x"] @ params["dense"]["kernel"] + params["dense"]["bias"]
        if self.dropout and not deterministic:
            keep = jax.random.bernoulli(rng, 1.0 - self.dropout, h.shape)
            h = jnp.where(keep, h / (1.0 - self.dropout), 0.0)
        pred = (h * params["norm"]["scale"]).sum(-1)
        loss = jnp.mean((pred - batch["y"]) ** 2)
        return loss, {"loss": loss, "mae": jnp.mean(jnp.abs(pred - batch["y"]))}

    def batch_fields(self, batch_size, seq_len):
        return {"x": ((batch_size, FEATURES), np.float32), "y": ((batch_size,), np.float32)}

    def flops_per_step(self, batch_size, seq_len):
        return 6.0 * batch_size * FEATURES * 8


def regression_data(n: int = 256, seed: int = 0, nan_at: int | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    true_w = np.random.default_rng(1234).normal(size=FEATURES)  # the same function for every seed
    y = (x @ true_w + 0.1 * rng.normal(size=n)).astype(np.float32)
    if nan_at is not None:
        x[nan_at] = np.nan
    return {"x": x, "y": y}


def data_stream(batch_size: int, seed: int = 0, nan_at: int | None = None, shuffle: bool = True):
    """A grain DatasetIterator (get_state/set_state) of numpy batches, repeating forever."""
    data = regression_data(seed=seed, nan_at=nan_at)
    ds = grain.MapDataset.source([{k: v[i] for k, v in data.items()} for i in range(len(data["x"]))])
    if shuffle:
        ds = ds.shuffle(seed=seed)
    ds = ds.repeat(None).batch(batch_size, drop_remainder=True)
    return iter(ds.to_iter_dataset())


def train_config(steps: int = 8, batch_size: int = 8, **train: Any) -> ml_collections.ConfigDict:
    from jaxbert.train.experiment import pretrain_config

    c = pretrain_config("bert-tiny")
    c.objective.name = "regression"
    c.train.update({**dict(steps=steps, batch_size=batch_size, seq_len=8, lr=0.05, warmup_steps=0, log_every=1,
                           eval_every=0, progress=False, weight_decay=0.0, clip_norm=0.0), **train})
    c.checkpoint.update(dict(every=4, keep=10, async_save=False))
    c.mesh = ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 1})
    return c


def sharded_run(workdir: str, mesh: dict[str, int], steps: int = 6) -> list[float]:
    """Train the stub on `mesh` (run under XLA_FLAGS=--xla_force_host_platform_device_count=8); its losses."""
    from jaxbert.train.loop import train
    from jaxbert.train.metrics import read_metrics

    config = train_config(steps=steps, batch_size=16)
    config.mesh = ml_collections.ConfigDict(mesh)
    train(config, workdir, Regression(), data_stream(16))
    return [r["loss"] for r in read_metrics(workdir) if "loss" in r]
