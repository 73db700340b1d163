"""Multi-process start-up: `jax.distributed.initialize()` wherever JAX's own cluster detection finds peers.

JAX knows the launchers (`jax._src.clusters`: Open MPI, SLURM, Cloud TPU VM metadata, GKE TPU,
Kubernetes); jaxbert asks those same detectors, in JAX's order, whether this process is one of many, and
lets `initialize()` read the coordinator, process count and id from the one that answers. An explicit
coordinator (`config.distributed.coordinator_address`, or `JAX_COORDINATOR_ADDRESS`) is used as given.

On a plain machine every detector answers from the environment alone (the TPU ones first check that
this host has TPU chips, which jax determined at import from /sys), so nothing waits on the network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax

from jaxbert.errors import JaxbertError

log = logging.getLogger(__name__)


class DistributedError(JaxbertError):
    """Multi-process start-up cannot proceed; the message names the launcher and the fix."""


def detect_cluster() -> Any | None:
    """JAX's cluster environment (a `ClusterEnv` class) this process runs in, or None on a plain machine.

    The first of JAX's auto-detected environments that sees itself, as `jax.distributed.initialize()`
    would pick it (opt-in-only ones, like mpi4py, are skipped as JAX skips them).
    """
    from jax._src import clusters

    for env in clusters.ClusterEnv._cluster_types:
        if env.opt_in_only_method:
            continue
        try:
            present = env.is_env_present()
        except Exception as e:  # e.g. a TPU VM whose metadata server does not answer
            raise DistributedError(f"JAX's {_name(env)} cluster detection failed ({type(e).__name__}: {e}); set "
                                   "config.distributed.coordinator_address/num_processes/process_id explicitly, "
                                   "or config.distributed.num_processes=1 to run one process alone") from e
        if present:
            return env
    return None


def maybe_initialize_distributed(config: Mapping[str, Any] | None = None) -> bool:
    """Initialise JAX's multi-process runtime when this process is one of many; True if it is.

    `config` (a config's `distributed` section) may give `coordinator_address`, `num_processes` and
    `process_id`; empty / -1 values are left to JAX's cluster detection. `num_processes=1` means one
    process alone, whatever the environment says. A plain single host never initialises.
    """
    cfg = {k: v for k, v in dict(config or {}).items() if v not in (None, "", -1)}
    if jax.distributed.is_initialized():
        return True
    if cfg.get("num_processes") == 1:
        return False
    explicit = cfg.get("coordinator_address") or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if explicit:
        kind = f"coordinator {explicit}"
    else:
        env = detect_cluster()
        if env is None:
            return False
        try:
            count = int(cfg.get("num_processes") or env.get_process_count())
        except Exception as e:
            raise DistributedError(f"JAX detected a {_name(env)} cluster but cannot count its processes "
                                   f"({type(e).__name__}: {e}); set config.distributed.num_processes (1 to run "
                                   "alone)") from e
        if count <= 1:  # e.g. a single-host TPU VM, or a one-task SLURM job: nothing to join
            return False
        kind = f"{_name(env)}, {count} processes"
    log.info("initialising jax.distributed (%s)", kind)
    try:
        jax.distributed.initialize(coordinator_address=cfg.get("coordinator_address"),
                                   num_processes=cfg.get("num_processes"), process_id=cfg.get("process_id"))
    except ValueError as e:  # JAX could not complete the coordinator / count / id from any launcher
        raise DistributedError(f"jax.distributed cannot start ({kind}): {e} Set config.distributed.num_processes "
                               "and config.distributed.process_id, or run under a launcher JAX detects (srun, "
                               "mpirun, a Cloud TPU VM)") from e
    return True


def _name(env: Any) -> str:
    return getattr(env, "name", "") or env.__name__


def process_zero_first(fn: Callable[[], Any]) -> Any:
    """Run `fn` on process 0, then on the others (which find its files cached), in that order."""
    if jax.process_count() == 1:
        return fn()
    from jax.experimental import multihost_utils

    result = fn() if jax.process_index() == 0 else None
    multihost_utils.sync_global_devices("jaxbert-prepare")
    return result if jax.process_index() == 0 else fn()
