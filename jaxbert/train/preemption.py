"""Preemption: on SIGTERM (or the multi-host preemption service's notice) save and exit cleanly."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import jax

log = logging.getLogger(__name__)


def _preemption_service_available() -> bool:
    # jax.distributed.initialize() starts the service on multi-process runs; a plain host has none.
    try:
        from jax._src import distributed

        return getattr(distributed.global_state, "preemption_sync_manager", None) is not None
    except ImportError:
        return False


class PreemptionGuard:
    """Turns SIGTERM into a flag the train loop polls once per step.

    Multi-process runs with jax's preemption service ask its sync point, so every process stops
    at the same step; without the service, processes agree by an all-gather of their flags.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in signals:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        log.warning("received signal %d: saving a checkpoint and stopping after this step", signum)
        self.requested = True

    def should_stop(self, step: int, sync: bool = True) -> bool:
        """True when this step is the one to save at and stop (the same step on every process)."""
        if jax.process_count() == 1:
            return self.requested
        if _preemption_service_available():
            from jax.experimental import multihost_utils

            return bool(multihost_utils.reached_preemption_sync_point(step)) or self._agreed(sync)
        return self._agreed(sync)

    def _agreed(self, sync: bool) -> bool:
        if not sync:
            return False
        import numpy as np
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.asarray(self.requested, np.int32))
        return bool(np.any(flags))

    def close(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
