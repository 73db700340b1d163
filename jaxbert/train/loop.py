"""The one training loop: any Objective, any mesh, resumable, logged, preemption-safe.

`train()` reads top to bottom: mesh → optimizer and state layout → checkpoint restore (or a fresh
sharded init) → ahead-of-time compile → the step loop → the final save. The loop's running state
(metrics waiting on the device, the last save, the NaN count) lives in small objects with one job
each, not in closures.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import numpy as np

from jaxbert import storage
from jaxbert.errors import JaxbertError
from jaxbert.parallel import create_mesh, host_to_global, put_global, replicated
from jaxbert.train.checkpoint import Checkpointer, checkpoint_meta
from jaxbert.train.memory import check_fits_devices
from jaxbert.train.metrics import MetricsWriter, mean_metrics, throughput, to_python, truncate_metrics_file
from jaxbert.train.objective import Objective
from jaxbert.train.preemption import PreemptionGuard
from jaxbert.train.sharded import CompiledSteps, compile_steps, init_state, objective_optimizer, state_layout
from jaxbert.train.spec import RunSpec

log = logging.getLogger(__name__)
PyTree = Any
HostBatch = Mapping[str, np.ndarray]
EvalHook = Callable[[int, PyTree], Mapping[str, float]]


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
                               f"{', '.join(sorted(batch))}); check the data format against the objective")
    return out


class _Progress:
    """A tqdm bar on process 0 (silent elsewhere or when disabled) showing the objective's headline metrics."""

    def __init__(self, enabled: bool, total: int, initial: int, shown: tuple[str, ...]) -> None:
        self.bar = None
        self.shown = (*shown, "learning_rate")
        if enabled and jax.process_index() == 0:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def show(self, metrics: Mapping[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k.replace("accuracy", "acc"): f"{metrics[k]:.4g}" for k in self.shown
                                  if k in metrics}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _NanPolicy:
    """What a non-finite step does: stop at once ("stop"), or skip it ("skip") up to
    `max_consecutive` in a row, then stop."""

    def __init__(self, policy: str, max_consecutive: int) -> None:
        self.policy, self.max_consecutive = policy, max_consecutive
        self.skipped = 0  # non-finite steps in the whole run
        self.in_a_row = 0

    def check(self, step: int, row: Mapping[str, float], last_good: int, where: str) -> None:
        if row["finite"] >= 1.0:
            self.in_a_row = 0
            return
        advice = (f"the last good checkpoint is step {last_good} in {where}; lower train.lr, raise "
                  "train.warmup_steps")
        if self.policy == "stop":
            raise NonFiniteLossError(f"loss became {row['loss']} (grad norm {row['grad_norm']}) at step {step}; "
                                     f"stopped without applying it, {advice}, or set train.nan_policy=skip")
        self.skipped += 1
        self.in_a_row += 1
        log.warning("step %d: non-finite loss %s, update skipped (%d so far)", step, row["loss"], self.skipped)
        if self.in_a_row >= self.max_consecutive:
            raise NonFiniteLossError(f"{self.in_a_row} non-finite steps in a row up to step {step} "
                                     f"(train.max_consecutive_skips={self.max_consecutive}); {advice}")


class _MetricsQueue:
    """Per-step metrics the device computed asynchronously, fetched in bulk at log boundaries."""

    def __init__(self, writer: MetricsWriter, progress: _Progress, nan: _NanPolicy, log_every: int, total: int,
                 tokens_per_step: int, flops_per_step: float, start: int) -> None:
        self.writer, self.progress, self.nan = writer, progress, nan
        self.log_every, self.total = log_every, total
        self.tokens_per_step, self.flops_per_step = tokens_per_step, flops_per_step
        self.pending: list[tuple[int, dict[str, jax.Array]]] = []
        self.timer = (time.perf_counter(), start)
        self.logged: dict[str, float] = {}

    def add(self, step: int, metrics: dict[str, jax.Array]) -> None:
        self.pending.append((step, metrics))

    def flush(self, last_good: int, where: str) -> None:
        """Fetch the queued rows; apply the NaN policy; log every log_every-th (and the last) step."""
        rows = [(s, to_python(jax.device_get(m))) for s, m in self.pending]
        self.pending.clear()
        for step, row in rows:
            self.nan.check(step, row, last_good, where)
            if step % self.log_every == 0 or step == self.total:
                now = time.perf_counter()
                row.update(throughput(step - self.timer[1], now - self.timer[0], self.tokens_per_step,
                                      self.flops_per_step, jax.device_count()))
                self.timer = (now, step)
                row.pop("finite")
                row["skipped_steps"] = float(self.nan.skipped)
                self.logged = row
                self.writer.write(step, row)
                self.progress.show(row)


class _Saver:
    """Saves checkpoints, at most once per step."""

    def __init__(self, ckpt: Checkpointer, meta: Mapping[str, Any], data_iterator: Any, last_saved: int) -> None:
        self.ckpt, self.meta, self.data_iterator = ckpt, meta, data_iterator
        self.last_saved = last_saved

    def save(self, step: int, state: Any) -> None:
        if step > self.last_saved:
            self.ckpt.save(state, self.meta, self.data_iterator)
            self.last_saved = step


class _Evaluator:
    """The held-out loss/metrics (eval_batches) and the caller's hook (a task's official scores)."""

    def __init__(self, spec: RunSpec, compiled: CompiledSteps, fields: Mapping[str, Any], mesh: jax.sharding.Mesh,
                 writer: MetricsWriter, eval_batches: Callable[[], Iterator[HostBatch]] | None,
                 eval_hook: EvalHook | None) -> None:
        self.spec, self.compiled, self.fields, self.mesh, self.writer = spec, compiled, fields, mesh, writer
        self.eval_batches, self.eval_hook = eval_batches, eval_hook
        self.logged: dict[str, float] = {}

    def _every(self, step: int) -> bool:
        every = self.spec.train.eval_every
        return every > 0 and (step % every == 0 or step == self.spec.train.steps)

    def due(self, step: int) -> bool:
        """Held-out batches every eval_every steps (and at the last); the hook also at the last step always."""
        return (self.eval_batches is not None and self._every(step)) or (
            self.eval_hook is not None and (self._every(step) or step == self.spec.train.steps))

    def run(self, step: int, params: PyTree, frozen: PyTree) -> None:
        if self.eval_batches is not None and self._every(step):
            rows = []
            eval_key = put_global(jax.random.key(self.spec.seed + 2), replicated(self.mesh))
            for i, batch in enumerate(self.eval_batches()):
                if i >= self.spec.train.eval_batches:
                    break
                gb = host_to_global(select_fields(batch, self.fields), self.mesh)
                rows.append(to_python(jax.device_get(self.compiled.eval(params, frozen, gb,
                                                                        jax.random.fold_in(eval_key, i)))))
            if rows:
                metrics = {f"eval/{k}": v for k, v in mean_metrics(rows).items()}
                self.writer.write(step, metrics)
                self.logged = {**self.logged, **metrics}
                log.info("step %d eval: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        if self.eval_hook is not None and (self._every(step) or step == self.spec.train.steps):
            extra = {f"eval/{k}": float(v) for k, v in self.eval_hook(step, params).items()}
            self.writer.write(step, extra)
            self.logged = {**self.logged, **extra}


def _next_batch(train_iter: Iterator[HostBatch], step: int) -> HostBatch:
    try:
        return next(train_iter)
    except StopIteration:
        raise JaxbertError(f"the training data ran out at step {step}; make the dataset repeat or "
                           "lower train.steps") from None


def train(run: RunSpec | Any, workdir: str | os.PathLike, objective: Objective, train_iter: Iterator[HostBatch],
          eval_batches: Callable[[], Iterator[HostBatch]] | None = None, init_params: PyTree | None = None,
          tokenizer_dir: str | None = None, mesh: jax.sharding.Mesh | None = None,
          eval_hook: EvalHook | None = None) -> TrainResult:
    """Train `objective` for run.train.steps, resuming from WORKDIR's latest complete checkpoint.

    `run` is a RunSpec (an experiment config is resolved into one). `train_iter` yields this process's
    rows of each global batch (numpy); its get_state/set_state, when present, are checkpointed so a
    resumed run reads exactly the batches it would have. `eval_batches()` returns a fresh iterator over
    the held-out batches. `eval_hook(step, params)`, when given, returns more eval metrics (e.g. a
    fine-tuning task's official scores over all its eval data), logged as eval/<name> every
    train.eval_every steps and at the last step.
    """
    spec = run if isinstance(run, RunSpec) else RunSpec.from_config(run)
    t, c = spec.train, spec.checkpoint
    workdir = storage.path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    # ---- mesh, optimizer, where every array lives
    mesh = mesh or create_mesh(dict(spec.mesh))
    tx, schedule = objective_optimizer(objective, spec.optimizer, t.steps)
    frozen_host = objective.init_frozen()
    layout = state_layout(objective, tx, mesh, frozen_host)
    frozen = put_global(frozen_host, layout.frozen_shardings) if frozen_host else {}

    # ---- restore the latest checkpoint, or initialise in shards
    ckpt = Checkpointer(workdir, keep=c.keep, keep_every=c.keep_every, async_save=c.async_save)
    data_iterator = train_iter if hasattr(train_iter, "get_state") and hasattr(train_iter, "set_state") else None
    start = ckpt.latest_step()
    if start is not None:
        log.info("resuming from the checkpoint at step %d in %s", start, ckpt.directory)
        state = ckpt.restore(start, layout.abstract_state, data_iterator)
    else:
        start = 0
        state = init_state(objective, tx, layout, jax.random.key(spec.seed), init_params)
    truncate_metrics_file(workdir, start)
    if start >= t.steps:
        ckpt.close()
        return TrainResult(start, "finished", {}, {})

    # ---- compile the steps ahead of time
    compiled = compile_steps(objective, tx, schedule, layout, t.batch_size, t.seq_len, t.grad_accum,
                             with_eval=eval_batches is not None)
    log.info("compiled the train step in %.1fs", compiled.compile_s)
    check_fits_devices(compiled.memory, mesh.devices.flat)  # one line now rather than an OOM at step 1

    # ---- the loop
    fields = objective.batch_fields(t.batch_size, t.seq_len)
    base_key = put_global(jax.random.key(spec.seed + 1), replicated(mesh))
    writer = MetricsWriter(workdir)
    guard = PreemptionGuard()
    progress = _Progress(t.progress, t.steps, start, objective.progress_metrics())
    queue = _MetricsQueue(writer, progress, _NanPolicy(t.nan_policy, t.max_consecutive_skips), t.log_every, t.steps,
                          t.batch_size * t.seq_len, objective.flops_per_step(t.batch_size, t.seq_len), start)
    saver = _Saver(ckpt, checkpoint_meta(objective, spec.experiment, tokenizer_dir), data_iterator, start)
    evaluator = _Evaluator(spec, compiled, fields, mesh, writer, eval_batches, eval_hook)
    where = str(ckpt.directory)
    status = "finished"
    try:
        step = start
        while step < t.steps:
            batch = host_to_global(select_fields(_next_batch(train_iter, step), fields), mesh)
            state, metrics = compiled.train(state, frozen, batch, base_key)
            step += 1
            queue.add(step, metrics)
            progress.update()
            boundary = step % t.log_every == 0 or step % c.every == 0 or step == t.steps
            if boundary or evaluator.due(step):
                queue.flush(saver.last_saved, where)
            if evaluator.due(step):
                evaluator.run(step, state.params, frozen)
            if step % c.every == 0 or step == t.steps:
                saver.save(step, state)
            if guard.should_stop(step, sync=boundary):
                queue.flush(saver.last_saved, where)
                saver.save(step, state)
                status = "preempted"
                log.warning("preempted: checkpoint saved at step %d; run the same command again to resume", step)
                break
        queue.flush(saver.last_saved, where)
    finally:
        progress.close()
        guard.close()
        writer.close()
        ckpt.close()
    return TrainResult(saver.last_saved, status, queue.logged, evaluator.logged, compiled.compile_s)
