"""A jax.profiler trace of a window of train steps, into WORKDIR/tensorboard (XProf / tensorboard-plugin-profile
read it from there: `xprof --logdir WORKDIR/tensorboard` or TensorBoard's Profile tab).

Each traced step is marked with `jax.profiler.StepTraceAnnotation("train", step_num=STEP)`, which the
profiler's step view groups by; the trace stops only once the window's last step has finished on the device,
so the device work of every asked step is inside it and no later step is.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import jax

from jaxbert import storage
from jaxbert.train.spec import ProfileSpec

log = logging.getLogger(__name__)
TRACE_DIR = "tensorboard"


class StepProfiler:
    """Starts the trace before step `spec.start_step`, stops it after step start_step + num_steps - 1.

    A run resumed inside the window traces the window's remaining steps; one resumed past it traces none.
    """

    def __init__(self, spec: ProfileSpec, logdir: str | os.PathLike) -> None:
        self.first, self.last = spec.start_step, spec.start_step + spec.num_steps - 1
        self.enabled = spec.num_steps > 0
        self.logdir = os.fspath(storage.path(logdir))
        self.active = False

    def _in_window(self, step: int) -> bool:
        return self.enabled and self.first <= step <= self.last

    @contextlib.contextmanager
    def step(self, step: int) -> Iterator[None]:
        """Around the dispatch of train step `step` (numbered from 1)."""
        if not self._in_window(step):
            yield
            return
        if not self.active:
            log.info("profiling steps %d-%d into %s", step, self.last, self.logdir)
            jax.profiler.start_trace(self.logdir)
            self.active = True
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
            yield

    def after(self, step: int, state: Any) -> None:
        """After step `step` was dispatched: at the window's end, wait for it on the device and stop."""
        if self.active and step >= self.last:
            jax.block_until_ready(state)
            self.stop()

    def stop(self) -> None:
        if self.active:
            jax.profiler.stop_trace()
            self.active = False
