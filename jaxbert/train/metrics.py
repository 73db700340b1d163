"""Training metrics: model FLOPs utilisation, and the writers (WORKDIR/metrics.jsonl + TensorBoard)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import jax

from jaxbert import storage

METRICS_FILE = "metrics.jsonl"

# Dense bf16 peak FLOP/s per device (vendor figures); matched against jax's device_kind.
PEAK_FLOPS = {
    "TPU v2": 45e12 / 2,  # per core; a v2 chip has two
    "TPU v3": 123e12 / 2,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v5": 459e12,
    "TPU v6 lite": 918e12,
    "TPU v6e": 918e12,
    "NVIDIA H200": 989e12,
    "NVIDIA H100": 989e12,
    "NVIDIA A100": 312e12,
    "NVIDIA L4": 121e12,
    "NVIDIA A10G": 125e12,
}


def device_peak_flops(device: Any = None) -> float | None:
    """The peak FLOP/s of one device when known (TPUs, common GPUs), else None (e.g. CPUs)."""
    kind = str(getattr(device or jax.devices()[0], "device_kind", ""))
    for name in sorted(PEAK_FLOPS, key=len, reverse=True):
        if kind.startswith(name):
            return PEAK_FLOPS[name]
    return None


def throughput(steps: int, seconds: float, tokens_per_step: int, flops_per_step: float,
               num_devices: int) -> dict[str, float]:
    """tokens/s, steps/s and (where the device peak is known) model FLOPs utilisation."""
    if seconds <= 0 or steps <= 0:
        return {}
    out = {"tokens_per_s": steps * tokens_per_step / seconds, "steps_per_s": steps / seconds}
    peak = device_peak_flops()
    if peak and flops_per_step:
        out["mfu"] = steps * flops_per_step / seconds / (peak * num_devices)
    return out


def to_python(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Scalars as plain floats (NaN/inf kept as float values)."""
    return {k: float(v) for k, v in metrics.items()}


def mean_metrics(rows: list[Mapping[str, float]]) -> dict[str, float]:
    """Per-key mean over a list of metric dicts."""
    if not rows:
        return {}
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


def write_run_config(workdir: str | os.PathLike, config: Any) -> None:
    """WORKDIR/config.json: the experiment config as run; written by process 0 only, atomically."""
    if jax.process_index() != 0:
        return
    storage.write_json(storage.path(workdir) / "config.json",
                       config.to_dict() if hasattr(config, "to_dict") else dict(config))


def truncate_metrics_file(workdir: str | os.PathLike, last_step: int) -> None:
    """Drop logged rows after `last_step` (a resumed run logs them again, identically); atomic.

    The file is process 0's (it alone writes metrics): other processes leave it alone.
    """
    path = storage.path(workdir) / METRICS_FILE
    if jax.process_index() != 0 or not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if int(row.get("step", 0)) <= last_step:
            kept.append(line)
    storage.write_text(path, "".join(x + "\n" for x in kept))


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every row of WORKDIR/metrics.jsonl."""
    path = storage.path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class MetricsWriter:
    """Appends one JSON object per logged step to WORKDIR/metrics.jsonl and mirrors it to TensorBoard.

    Only process 0 writes; on other processes every call is a no-op.
    """

    def __init__(self, workdir: str | os.PathLike, tensorboard: bool = True) -> None:
        self.active = jax.process_index() == 0
        self._file = storage.AppendFile(storage.path(workdir) / METRICS_FILE) if self.active else None
        self._tb = None
        if self.active and tensorboard:
            from tensorboardX import SummaryWriter

            # tensorboardX writes gs:// event files itself (through google-cloud-storage).
            self._tb = SummaryWriter(str(storage.path(workdir) / "tensorboard"))

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self.active:
            return
        row = {"step": int(step), **{k: _json_float(v) for k, v in metrics.items()}}
        self._file.write_lines([json.dumps(row)])
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
            self._tb = None


def _json_float(v: Any) -> Any:
    # JSON has no NaN/inf literals that every reader accepts; write them as strings.
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v
