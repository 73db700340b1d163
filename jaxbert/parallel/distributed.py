"""Multi-process start-up: call jax.distributed.initialize() only when this is one process of many."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax

log = logging.getLogger(__name__)


def multi_process_env(environ: Mapping[str, str] | None = None) -> str | None:
    """Which multi-process launcher this process runs under ("coordinator", "slurm", "mpi", "tpu-pod"), or None."""
    env = os.environ if environ is None else environ

    def count(key: str) -> int:
        try:
            return int(env.get(key, "1"))
        except ValueError:
            return 1

    if env.get("JAX_COORDINATOR_ADDRESS") or env.get("JAXBERT_DISTRIBUTED", "").lower() in ("1", "true"):
        return "coordinator"
    if env.get("SLURM_JOB_ID") and count("SLURM_NTASKS") > 1:
        return "slurm"
    if count("OMPI_COMM_WORLD_SIZE") > 1:
        return "mpi"
    hosts = [h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h.strip()]
    if len(hosts) > 1 or count("MEGASCALE_NUM_SLICES") > 1:
        return "tpu-pod"
    return None


def maybe_initialize_distributed(config: Mapping[str, Any] | None = None,
                                 environ: Mapping[str, str] | None = None) -> bool:
    """Initialise JAX's multi-process runtime when running as one process of many; True if it did.

    `config` may give `coordinator_address`, `num_processes`, `process_id` explicitly (e.g. a
    config's `distributed` section); otherwise the launcher's environment is detected. A plain
    single host never initialises (jax.distributed would wait for peers that do not exist).
    """
    cfg = {k: v for k, v in dict(config or {}).items() if v not in (None, "", -1)}
    kind = "config" if cfg.get("coordinator_address") else multi_process_env(environ)
    if kind is None:
        return False
    if jax.distributed.is_initialized():
        return True
    log.info("initialising jax.distributed (%s)", kind)
    jax.distributed.initialize(coordinator_address=cfg.get("coordinator_address"),
                               num_processes=cfg.get("num_processes"), process_id=cfg.get("process_id"))
    return True


def process_zero_first(fn: Callable[[], Any]) -> Any:
    """Run `fn` on process 0, then on the others (which find its files cached), in that order."""
    if jax.process_count() == 1:
        return fn()
    from jax.experimental import multihost_utils

    result = fn() if jax.process_index() == 0 else None
    multihost_utils.sync_global_devices("jaxbert-prepare")
    return result if jax.process_index() == 0 else fn()
