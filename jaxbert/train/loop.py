"""The one training loop: any Objective, any mesh, resumable, logged, preemption-safe."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxbert.errors import JaxbertError
from jaxbert.objectives.base import Objective
from jaxbert.parallel import create_mesh, host_to_global, put_global, replicated
from jaxbert.train.checkpoint import Checkpointer, checkpoint_meta
from jaxbert.train.memory import check_fits_devices
from jaxbert.train.metrics import MetricsWriter, mean_metrics, throughput, to_python, truncate_metrics_file
from jaxbert.train.preemption import PreemptionGuard
from jaxbert.train.sharded import compile_steps, init_state, objective_optimizer, state_layout

log = logging.getLogger(__name__)
PyTree = Any
HostBatch = Mapping[str, np.ndarray]


class NonFiniteLossError(JaxbertError):
    """The loss or gradient became NaN/inf; the message names the step and the last good checkpoint."""


@dataclasses.dataclass
class TrainResult:
    step: int  # optimizer steps done (the step of the last checkpoint)
    status: str  # "finished" | "preempted"
    metrics: dict[str, float]  # the last logged train metrics
    eval_metrics: dict[str, float]
    compile_s: float = 0.0


def select_fields(batch: HostBatch, fields: Mapping[str, tuple[tuple[int, ...], Any]]) -> dict[str, np.ndarray]:
    """The arrays the objective reads, with its dtypes; derives attention_mask from `length` if needed."""
    out = {}
    for name, (_, dtype) in fields.items():
        if name in batch:
            out[name] = np.asarray(batch[name], dtype=dtype)
        elif name == "attention_mask" and "length" in batch:
            t = np.shape(batch["input_ids"])[-1]
            out[name] = (np.arange(t)[None, :] < np.asarray(batch["length"])[:, None]).astype(dtype)
        else:
            raise JaxbertError(f"the data has no field {name!r} that objective needs (it has "
                               f"{', '.join(sorted(batch))}); check data format vs objective.pair_task")
    return out


class _Progress:
    """A tqdm bar on process 0 (silent elsewhere or when disabled)."""

    def __init__(self, enabled: bool, total: int, initial: int) -> None:
        self.bar = None
        if enabled and jax.process_index() == 0:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def show(self, metrics: Mapping[str, float]) -> None:
        if self.bar is not None:
            keys = ("loss", "mlm_accuracy", "nsp_accuracy", "sop_accuracy", "learning_rate")
            self.bar.set_postfix({k.replace("accuracy", "acc"): f"{metrics[k]:.4g}" for k in keys if k in metrics},
                                 refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(config: Any, workdir: str | os.PathLike, objective: Objective, train_iter: Iterator[HostBatch],
          eval_batches: Callable[[], Iterator[HostBatch]] | None = None, init_params: PyTree | None = None,
          tokenizer_dir: str | None = None, mesh: jax.sharding.Mesh | None = None,
          eval_hook: Callable[[int, PyTree], Mapping[str, float]] | None = None) -> TrainResult:
    """Train `objective` for config.train.steps, resuming from WORKDIR's latest complete checkpoint.

    `train_iter` yields this process's rows of each global batch (numpy); its get_state/set_state,
    when present, are checkpointed so a resumed run reads exactly the batches it would have.
    `eval_batches()` returns a fresh iterator over the held-out batches.
    `eval_hook(step, params)`, when given, returns more eval metrics (e.g. a fine-tuning task's official
    scores over all its eval data) every train.eval_every steps and at the last step, logged as eval/<name>.
    """
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    t, c = config.train, config.checkpoint
    total, batch_size, seq_len = int(t.steps), int(t.batch_size), int(t.seq_len)
    mesh = mesh or create_mesh(dict(config.mesh))
    tx, schedule = objective_optimizer(objective, t, total)
    frozen_host = objective.init_frozen()
    layout = state_layout(objective, tx, mesh, frozen_host)
    frozen = put_global(frozen_host, layout.frozen_shardings) if frozen_host else {}
    ckpt = Checkpointer(workdir, keep=int(c.get("keep", 3)), keep_every=int(c.get("keep_every", 0)),
                        async_save=bool(c.get("async_save", True)))
    checkpointable = hasattr(train_iter, "get_state") and hasattr(train_iter, "set_state")
    start = ckpt.latest_step()
    if start is not None:
        log.info("resuming from the checkpoint at step %d in %s", start, ckpt.directory)
        state = ckpt.restore(start, layout.abstract_state, train_iter if checkpointable else None)
        truncate_metrics_file(workdir, start)
    else:
        start = 0
        state = init_state(objective, tx, layout, jax.random.key(int(config.seed)), init_params)
        truncate_metrics_file(workdir, 0)
    meta = checkpoint_meta(objective, config, tokenizer_dir)
    if start >= total:
        ckpt.close()
        return TrainResult(start, "finished", {}, {})

    compiled = compile_steps(objective, tx, schedule, layout, batch_size, seq_len, int(t.get("grad_accum", 1)),
                             with_eval=eval_batches is not None)
    log.info("compiled the train step in %.1fs", compiled.compile_s)
    check_fits_devices(compiled.memory, mesh.devices.flat)  # one line now rather than an OOM at step 1
    fields = objective.batch_fields(batch_size, seq_len)
    base_key = put_global(jax.random.key(int(config.seed) + 1), replicated(mesh))
    writer = MetricsWriter(workdir)
    guard = PreemptionGuard()
    progress = _Progress(bool(t.get("progress", True)), total, start)
    log_every, eval_every, ckpt_every = int(t.get("log_every", 100)), int(t.get("eval_every", 0)), int(c.every)
    nan_policy = str(t.get("nan_policy", "stop"))
    tokens_per_step = batch_size * seq_len
    flops_per_step = objective.flops_per_step(batch_size, seq_len)
    last_saved = start
    pending: list[tuple[int, dict[str, jax.Array]]] = []
    logged: dict[str, float] = {}
    eval_logged: dict[str, float] = {}
    skipped = 0
    timer = (time.perf_counter(), start)
    status = "finished"

    def save(step: int) -> None:
        nonlocal last_saved
        if step > last_saved:
            ckpt.save(state, meta, train_iter if checkpointable else None)
            last_saved = step

    def check_pending() -> None:
        # The device ran ahead asynchronously; fetch the queued per-step metrics now.
        nonlocal skipped, logged, timer
        rows = [(s, to_python(jax.device_get(m))) for s, m in pending]
        pending.clear()
        for s, row in rows:
            if row["finite"] < 1.0:
                if nan_policy == "stop":
                    raise NonFiniteLossError(
                        f"loss became {row['loss']} (grad norm {row['grad_norm']}) at step {s}; stopped without "
                        f"applying it, the last good checkpoint is step {last_saved} in {ckpt.directory}; lower "
                        "train.lr, raise train.warmup_steps, or set train.nan_policy=skip")
                skipped += 1
                log.warning("step %d: non-finite loss %s, update skipped (%d so far)", s, row["loss"], skipped)
            if s % log_every == 0 or s == total:
                now = time.perf_counter()
                row.update(throughput(s - timer[1], now - timer[0], tokens_per_step, flops_per_step,
                                      jax.device_count()))
                timer = (now, s)
                row.pop("finite")
                row["skipped_steps"] = float(skipped)
                logged = row
                writer.write(s, row)
                progress.show(row)

    def run_eval(step: int) -> None:
        nonlocal eval_logged
        rows = []
        eval_key = put_global(jax.random.key(int(config.seed) + 2), replicated(mesh))
        for i, batch in enumerate(eval_batches()):
            if i >= int(t.get("eval_batches", 10)):
                break
            gb = host_to_global(select_fields(batch, fields), mesh)
            rows.append(to_python(jax.device_get(compiled.eval(state.params, frozen, gb,
                                                               jax.random.fold_in(eval_key, i)))))
        if rows:
            eval_logged = {f"eval/{k}": v for k, v in mean_metrics(rows).items()}
            writer.write(step, eval_logged)
            log.info("step %d eval: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in eval_logged.items()))

    try:
        step = start
        while step < total:
            try:
                host = next(train_iter)
            except StopIteration:
                raise JaxbertError(f"the training data ran out at step {step}; make the dataset repeat or "
                                   "lower train.steps") from None
            batch = host_to_global(select_fields(host, fields), mesh)
            state, metrics = compiled.train(state, frozen, batch, base_key)
            step += 1
            pending.append((step, metrics))
            progress.update()
            boundary = step % log_every == 0 or step % ckpt_every == 0 or step == total
            if boundary:
                check_pending()
            if eval_batches is not None and eval_every > 0 and (step % eval_every == 0 or step == total):
                run_eval(step)
            if eval_hook is not None and (step == total or (eval_every > 0 and step % eval_every == 0)):
                check_pending()
                extra = {f"eval/{k}": float(v) for k, v in eval_hook(step, state.params).items()}
                writer.write(step, extra)
                eval_logged = {**eval_logged, **extra}
            if step % ckpt_every == 0 or step == total:
                save(step)
            if guard.should_stop(step, sync=boundary):
                check_pending()
                save(step)
                status = "preempted"
                log.warning("preempted: checkpoint saved at step %d; run the same command again to resume", step)
                break
        check_pending()
    finally:
        progress.close()
        guard.close()
        writer.close()
        ckpt.close()
    return TrainResult(last_saved, status, logged, eval_logged, compiled.compile_s)
