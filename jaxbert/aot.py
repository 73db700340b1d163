"""Ahead-of-time compile a run's sharded train step for a TPU topology, on any host (`jaxbert compile`).

The step is the one `jaxbert pretrain | distill | finetune` would run with the same config: the
objective from the registry, the optimizer of `train.*`, the train state laid out on the config's
mesh by `sharded.state_layout`, and `sharded.compile_steps` — only the devices differ (libtpu's
compile-only devices of the named topology). The TPU compiler's memory and cost analyses then say,
per chip, what the run would need and roughly how fast it would go, before anyone pays for a pod.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxbert.config import ConfigError, ModelConfig, resolve_model_config
from jaxbert.objectives.base import Objective, build_objective
from jaxbert.objectives.masking_setup import BERT_SPECIAL
from jaxbert.parallel.mesh import create_mesh, data_parallel_size
from jaxbert.parallel.topology import Topology, compile_only_devices, compiler_hbm_limit
from jaxbert.tokenize.base import SpecialTokens
from jaxbert.train.hlo_cost import step_cost
from jaxbert.train.memory import DeviceMemoryError, per_device_bytes
from jaxbert.train.sharded import compile_steps, objective_optimizer, state_layout

log = logging.getLogger(__name__)


# ---- the run's parts, from its config ---------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StandinTokenizer:
    """What objectives read from a tokenizer (vocabulary size, special ids, word starts), derived from the
    model config alone: compiling needs the shapes a tokenizer implies, not its vocabulary."""

    vocab_size: int
    special: SpecialTokens

    def word_starts(self, ids: np.ndarray) -> np.ndarray:
        return np.ones(np.shape(ids), dtype=bool)  # whole-word tables keep their [V] shapes; values are moot


def standin_tokenizer(model: ModelConfig) -> StandinTokenizer:
    """A tokenizer stand-in with `model`'s vocabulary size and its family's special-id layout."""
    v = model.vocab_size
    if model.family == "roberta":  # <s>=0 <pad>=1 </s>=2 <unk>=3 ... <mask> last, as RoBERTa's BPE
        special = SpecialTokens(pad=model.pad_token_id, unk=3, cls=0, sep=2, mask=v - 1)
    elif model.family == "albert":  # SentencePiece: <pad>=0 <unk>=1 [CLS]=2 [SEP]=3 [MASK]=4
        special = SpecialTokens(pad=model.pad_token_id, unk=1, cls=2, sep=3, mask=4)
    elif v > BERT_SPECIAL.mask:
        special = dataclasses.replace(BERT_SPECIAL, pad=model.pad_token_id)
    else:
        special = SpecialTokens(pad=0, unk=1, cls=2, sep=3, mask=4)
    return StandinTokenizer(v, special)


def compile_ready(config: Any) -> Any:
    """A copy of `config` with what only the data decides filled in: a fine-tuning run's steps (from the
    epochs) and warmup (from warmup_ratio) change the schedule's constants, not the compiled program; a
    phase-2 run's init weights are not read (the shapes are the config's)."""
    c = copy.deepcopy(config)
    with c.ignore_type():
        if int(c.train.steps) <= 0:
            c.train.steps = 1000
        if int(c.train.get("warmup_steps", 0)) < 0:
            c.train.warmup_steps = 0
        if "phase" in c:
            c.phase = ""
        objective = c.get("objective", {})
        if float(objective.get("mask_smoothing", 0.0) or 0.0) and not objective.get("token_counts", ""):
            # DistilBERT's smoothed masking reads per-token counts that `jaxbert distill` takes from the data;
            # their values are a constant of the program, not its shape: uniform counts compile the same step.
            c.objective.token_counts = _uniform_counts(model_config_of(c).vocab_size)
    return c


def _uniform_counts(vocab_size: int) -> str:
    path = os.path.join(tempfile.mkdtemp(prefix="jaxbert-compile-"), "token_counts.npy")
    np.save(path, np.ones(vocab_size, np.int64))
    return path


def model_config_of(config: Any) -> ModelConfig:
    from jaxbert.train.experiment import model_spec

    return resolve_model_config(model_spec(config))


def build_run_objective(config: Any) -> Objective:
    """The run's objective, from the registry, with a stand-in tokenizer (see `standin_tokenizer`)."""
    return build_objective(config, standin_tokenizer(model_config_of(config)))


def slice_mesh_spec(mesh: Any, slices: int) -> dict[str, int]:
    """The run's mesh over `slices` TPU slices from the config's mesh of ONE slice: data parallel across the
    slices (mesh.dcn_data), fsdp and tensor inside each; a fixed data axis grows by the slice count."""
    spec = {k: int(v) for k, v in dict(mesh).items() if k != "dcn_data"}
    if slices > 1 and spec.get("data", 1) != -1:
        spec["data"] = spec.get("data", 1) * slices
    return {**spec, "dcn_data": int(slices)}


# ---- one compile ------------------------------------------------------------------------------
@dataclasses.dataclass
class CompileTarget:
    """Compile-only devices of a topology and the HBM the compiler allows per chip."""

    topology: Topology
    devices: list[jax.Device]
    hbm_bytes: int

    @classmethod
    def create(cls, topology: Topology) -> CompileTarget:
        devices = compile_only_devices(topology)
        return cls(topology, devices, compiler_hbm_limit(devices, topology.generation.hbm_bytes))


def _cost(compiled: Any) -> dict[str, float]:
    try:
        cost = compiled.cost_analysis()
    except Exception:  # not every backend implements it
        return {}
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return dict(cost or {})


def _count_params(objective: Objective) -> int:
    shapes = jax.eval_shape(objective.init, jax.random.key(0))
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(shapes)))


def compile_step(config: Any, target: CompileTarget, batch_size: int | None = None,
                 objective: Objective | None = None) -> dict[str, Any]:
    """Compile the config's train step over `target` and report it as one JSON-able dict (see DESIGN's keys).

    A step the compiler refuses for memory gives fits=False with the bytes it needed, not an exception.
    """
    from jaxbert.checks import validate_experiment

    config = compile_ready(config)
    topo = target.topology
    t = config.train
    if batch_size is not None:
        with config.ignore_type():
            t.batch_size = int(batch_size)
    spec = validate_experiment(config, topo.chips_per_slice)
    mesh = create_mesh(slice_mesh_spec(config.mesh, topo.slices), target.devices)
    batch, seq, accum = int(t.batch_size), int(t.seq_len), int(t.get("grad_accum", 1))
    dp = data_parallel_size(mesh)
    if (batch // accum) % dp:
        raise ConfigError(f"config.train.batch_size: {batch} (micro-batch {batch // accum}) is not divisible by the "
                          f"data-parallel size {dp} ({topo.slices} slices x mesh data x fsdp); use a multiple of "
                          f"{dp * accum}")
    objective = objective or build_run_objective(config)
    model = objective.model_config
    tx, schedule = objective_optimizer(objective, spec.optimizer, spec.train.steps)
    # The frozen params' shapes only (a distillation teacher): nothing is loaded onto any device.
    frozen = jax.eval_shape(objective.init_frozen)
    layout = state_layout(objective, tx, mesh, frozen)
    report: dict[str, Any] = {
        "topology": topo.name, "accelerator": topo.accelerator_type, "chips": topo.chips, "slices": topo.slices,
        "mesh": {k: int(v) for k, v in mesh.shape.items()}, "batch": batch, "seq": seq, "grad_accum": accum,
        "objective": objective.name, "params": _count_params(objective), "remat": model.remat,
        "attention_kernel": model.attention_kernel, "compute_dtype": model.compute_dtype,
        "hbm_bytes_per_chip": target.hbm_bytes,
        "model_flops_per_step": float(objective.flops_per_step(batch, seq)),
    }
    start = time.perf_counter()
    try:
        compiled = compile_steps(objective, tx, schedule, layout, batch, seq, accum, with_eval=False)
    except DeviceMemoryError as e:
        needed = e.needed
        report.update(per_chip_bytes={"arguments": None, "outputs": None, "temporaries": None, "total": needed},
                      fits=False, refusal=str(e), compiler_flops_per_step=None, est_step_s=None, est_collective_s=None,
                      est_step_s_serial=None, est_mfu=None, est_mfu_serial=None,
                      compile_s=round(time.perf_counter() - start, 2))
        return report
    memory = per_device_bytes(compiled.memory)
    flops = _cost(compiled.train).get("flops")
    report.update(per_chip_bytes=memory, fits=bool(memory["total"] <= target.hbm_bytes),
                  compiler_flops_per_step=None if flops is None else float(flops) * topo.chips)
    report.update(step_estimate(compiled.train.as_text(), report["model_flops_per_step"], topo))
    if model.attention_kernel == "splash":
        report["est_note"] = ("the Pallas splash kernel is a custom call: the compiler's flop count leaves the "
                              "attention core out")
    report["compile_s"] = round(compiled.compile_s, 2)
    report["_compiled"] = compiled
    return report


def step_estimate(hlo_text: str, model_flops: float, topo: Topology) -> dict[str, Any]:
    """est_step_s from the compiler's per-op cycle estimates (see hlo_cost), collectives apart, and the MFUs."""
    gen = topo.generation
    cost = step_cost(hlo_text)
    compute = cost.seconds(gen.clock_hz)
    collectives = cost.collective_seconds(gen.ici_bytes_per_s)
    peak = topo.chips * gen.peak_bf16_flops
    mfu = lambda s: model_flops / (s * peak) if s > 0 else None
    return {"est_step_s": compute, "est_collective_s": collectives, "est_step_s_serial": compute + collectives,
            "est_mfu": mfu(compute), "est_mfu_serial": mfu(compute + collectives),
            "est_cycles_by_part": {k: round(v / cost.cycles, 4) for k, v in cost.by_part.items()} if cost.cycles
            else {}}


# ---- the largest batch that fits ---------------------------------------------------------------
def largest_fitting(fits: Callable[[int], bool], unit: int, start: int, limit: int = 2**20) -> tuple[int | None, int]:
    """The largest multiple of `unit` (up to `limit`) for which `fits` holds, assuming it holds below some
    size and fails above it; (None, calls) when not even `unit` fits. Doubles from `start`, then bisects."""
    calls = 0

    def check(n: int) -> bool:
        nonlocal calls
        calls += 1
        return fits(n)

    start = max(unit, start // unit * unit)
    if check(start):
        low, high = start, None
        while high is None:
            candidate = low * 2
            if candidate > limit:
                return low, calls
            if check(candidate):
                low = candidate
            else:
                high = candidate
    else:
        low, high = 0, start
    while high - low > unit:
        mid = (low + high) // 2 // unit * unit
        if mid <= low:
            break
        if check(mid):
            low = mid
        else:
            high = mid
    if low == 0:
        return (unit, calls) if unit < high and check(unit) else (None, calls)
    return low, calls


def max_batch(config: Any, target: CompileTarget, objective: Objective | None = None,
              on_try: Callable[[dict[str, Any]], None] | None = None) -> tuple[int | None, int]:
    """(largest global batch that fits, compiles tried), searched in multiples of the data-parallel size."""
    config = compile_ready(config)
    objective = objective or build_run_objective(config)
    topo = target.topology
    mesh = create_mesh(slice_mesh_spec(config.mesh, topo.slices), target.devices)
    unit = data_parallel_size(mesh) * int(config.train.get("grad_accum", 1))

    def fits(batch: int) -> bool:
        report = compile_step(config, target, batch, objective)
        report.pop("_compiled", None)
        if on_try is not None:
            on_try(report)
        return bool(report["fits"])

    return largest_fitting(fits, unit, int(config.train.batch_size))


def compile_report(config: Any, topology: Topology, search_batch: bool = False,
                   on_try: Callable[[dict[str, Any]], None] | None = None, hlo_path: str | None = None
                   ) -> dict[str, Any]:
    """The one JSON line of `jaxbert compile`: the config's step, and with `search_batch` its largest batch.
    `hlo_path` receives the compiled step's HLO text (what the TPU compiler made of it)."""
    target = CompileTarget.create(topology)
    objective = build_run_objective(compile_ready(config))
    report = compile_step(config, target, None, objective)
    compiled = report.pop("_compiled", None)
    if hlo_path and compiled is not None:
        with open(hlo_path, "w") as f:
            f.write(compiled.train.as_text())
    if search_batch:
        best, tries = max_batch(config, target, objective, on_try)
        report.update(max_batch=best, max_batch_compiles=tries)
    return report

