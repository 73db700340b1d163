"""Step time from a compiled TPU program's own text: the compiler's per-op cycle estimates, summed.

`cost_analysis()["optimal_seconds"]` is negative (unknown) for a whole train step, and its "flops"
count a `while` body (nn.scan over layers) once. The TPU compiler does annotate every op it
schedules with `"estimated_cycles"` in the HLO's backend_config, though; summed over the ops one step
runs (loop bodies times their trip counts, read from the loop condition's bound) and divided by the
chip clock they give the compiler's own estimate of a step, ops run one after another. Collectives
carry no estimate: they are listed with their bytes, and timed here at the chip's ICI bandwidth
(a ring estimate of ours, not the compiler's). Op names (the `op_name` metadata: the model's module
path) group the cycles, which shows what dominates.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re

_COMPUTATION = re.compile(r"^(ENTRY )?%?([\w.\-]+)")
_OPCODE = re.compile(r"\}?\s([a-z][a-z0-9\-_]*)\(")
_CYCLES = re.compile(r'"estimated_cycles":"(\d+)"')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_BOUND = re.compile(r"s32\[\]\S*\s+constant\((\d+)\)")
_ARRAY = re.compile(r"\b(pred|s8|u8|s16|u16|bf16|f16|s32|u32|f32|s64|u64|f64)\[([\d,]*)\]")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "f32": 4,
          "s64": 8, "u64": 8, "f64": 8}
COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
# Module-path parts of op names, most specific first: the row each op's cycles are counted under.
PARTS = ("attention", "ffn", "mlm_head", "nsp_head", "sop_head", "rtd_head", "task_head", "pooler", "embeddings",
         "mask_tokens")


@dataclasses.dataclass
class StepCost:
    """Cycles one step spends per op group, and the collectives it runs."""

    cycles: int
    by_part: dict[str, int]
    collective_bytes: dict[str, int]  # opcode -> bytes moved per device (result sizes), loops counted
    collective_group: dict[str, int]  # opcode -> the largest replica group it spans

    def seconds(self, clock_hz: float) -> float:
        return self.cycles / clock_hz

    def collective_seconds(self, ici_bytes_per_s: float) -> float:
        """Ring estimate: an all-reduce moves 2(n-1)/n of its bytes per device, gathers and scatters (n-1)/n."""
        total = 0.0
        for op, nbytes in self.collective_bytes.items():
            n = max(self.collective_group.get(op, 1), 1)
            share = (n - 1) / n * (2 if op == "all-reduce" else 1)
            total += nbytes * share / ici_bytes_per_s
        return total


def _computations(text: str) -> tuple[dict[str, list[str]], str]:
    comps: dict[str, list[str]] = {}
    entry, current = "", None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith("{"):
            m = _COMPUTATION.match(line)
            current = m.group(2)
            comps[current] = []
            if m.group(1):
                entry = current
        elif current is not None and line.startswith("  ") and " = " in line:
            comps[current].append(line)
    return comps, entry


def _opcode(line: str) -> str:
    m = _OPCODE.search(line.split(" = ", 1)[1])
    return m.group(1) if m else ""


def _result_bytes(line: str) -> int:
    rhs = line.split(" = ", 1)[1]
    m = _OPCODE.search(rhs)
    shape = rhs[:m.start()] if m else rhs
    return sum(_BYTES[t] * math.prod(int(d) for d in dims.split(",") if d) for t, dims in _ARRAY.findall(shape))


def _group_size(line: str) -> int:
    if m := re.search(r"replica_groups=\[(\d+),(\d+)\]<=", line):
        return int(m.group(2))
    if m := re.search(r"replica_groups=mesh\[([^\]]*)\]\s*\{([^}]*)\}", line):
        sizes = dict(re.findall(r"'(\w+)'=(\d+)", m.group(1)))
        return math.prod(int(sizes[a]) for a in re.findall(r"'(\w+)'", m.group(2)) if a in sizes)
    if m := re.search(r"replica_groups=\{\{([\d,]*)\}", line):
        return len([x for x in m.group(1).split(",") if x])
    return 1


def _part(line: str) -> str:
    name = _OP_NAME.search(line)
    path = name.group(1) if name else ""
    if "dynamic_update_index_in_dim" in path or "dynamic_index_in_dim" in path:
        return "activations saved for the backward pass (scan residuals)"
    for part in PARTS:
        if f"/{part}" in path or f"({part}" in path:
            return part
    if "EncoderModel" in path:
        return "encoder other (norms, residuals, layout)"
    return "optimizer, loss and the rest"


def step_cost(hlo_text: str) -> StepCost:
    """The cycles and collectives of one run of a compiled program's entry computation."""
    comps, entry = _computations(hlo_text)
    by_part: collections.Counter[str] = collections.Counter()
    coll_bytes: collections.Counter[str] = collections.Counter()
    coll_group: dict[str, int] = {}

    def trip_count(condition: str) -> int:
        bounds = [int(b) for line in comps.get(condition, []) for b in _BOUND.findall(line)]
        return max(bounds) if bounds else 1

    def walk(name: str, times: int) -> None:
        for line in comps.get(name, []):
            op = _opcode(line)
            if op == "while":
                cond = re.search(r"condition=%([\w.\-]+)", line).group(1)
                body = re.search(r"body=%([\w.\-]+)", line).group(1)
                walk(body, times * trip_count(cond))
                continue
            if op in ("call", "conditional", "async-start"):
                for callee in re.findall(r"(?:to_apply|calls|branch_computations)=\{?%([\w.\-]+)", line):
                    walk(callee, times)
                continue
            base = op.removesuffix("-start")
            if base in COLLECTIVES:
                coll_bytes[base] += _result_bytes(line) * times
                coll_group[base] = max(coll_group.get(base, 1), _group_size(line))
                continue
            if m := _CYCLES.search(line):
                by_part[_part(line)] += int(m.group(1)) * times

    walk(entry, 1)
    return StepCost(sum(by_part.values()), dict(by_part.most_common()), dict(coll_bytes), coll_group)
