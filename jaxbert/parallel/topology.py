"""TPU topologies without a TPU: compile-only devices from libtpu, for ahead-of-time compiling on any host.

`jax.experimental.topologies.get_topology_desc` asks libtpu (installed by `pip install -e '.[tpu]'`) for
the devices of a named topology, e.g. "v5e:8x8" (64 chips). Programs lowered with shardings over them
are compiled by the real TPU compiler, which reports per-chip memory and cost, or refuses a program
that does not fit the chip's HBM. Nothing here changes JAX's default backend: the devices exist only
for compilation, while every array computed stays on the host's own backend (CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from collections.abc import Iterator

import jax

from jaxbert.errors import JaxbertError

INSTALL_HINT = "pip install -e '.[tpu]'"


class TopologyError(JaxbertError):
    """An unknown topology name, a slice count below 1, or no libtpu to compile with."""


@dataclasses.dataclass(frozen=True)
class Generation:
    """What one TPU generation brings per chip (Google Cloud's published figures)."""

    name: str  # as JAX's topology names spell it: v4, v5e, v5p, v6e
    accelerator: str  # the Cloud accelerator-type prefix: v4-, v5litepod-, v5p-, v6e-
    cores_per_chip_in_name: int  # v4-32 / v5p-128 count TensorCores (2 per chip); v5e/v6e count chips
    chip_config: str  # libtpu chip config: "megacore" makes one JAX device of a 2-core chip, as on a real v4/v5p VM
    hbm_bytes: int  # nominal HBM per chip
    peak_bf16_flops: float  # dense bf16 FLOP/s per chip
    clock_hz: float  # TensorCore clock: peak FLOP/s over the MXUs' multiply-adds per cycle
    ici_bytes_per_s: float  # inter-chip interconnect bandwidth per chip
    dims: int  # torus dimensions of the topology name


GENERATIONS: dict[str, Generation] = {
    "v4": Generation("v4", "v4-", 2, "megacore", 32 * 2**30, 275e12, 1.05e9, 2400e9 / 8, 3),
    "v5e": Generation("v5e", "v5litepod-", 1, "default", 16 * 2**30, 197e12, 1.5e9, 1600e9 / 8, 2),
    "v5p": Generation("v5p", "v5p-", 2, "megacore", 95 * 2**30, 459e12, 1.75e9, 4800e9 / 8, 3),
    "v6e": Generation("v6e", "v6e-", 1, "default", 32 * 2**30, 918e12, 1.75e9, 3584e9 / 8, 2),
}

# The chip grids of Cloud TPU slice sizes, by chip count (the accelerator types' standard shapes).
_SHAPES_3D = {4: "2x2x1", 8: "2x2x2", 16: "2x2x4", 32: "2x4x4", 64: "4x4x4", 128: "4x4x8", 256: "4x8x8",
              512: "8x8x8"}
_SHAPES_2D = {1: "1x1", 4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}
_NAME = re.compile(r"^(v\d+[a-z]?):(\d+(?:x\d+)+)$")
_ACCELERATOR = re.compile(r"^(v\d+(?:litepod|p|e)?)-(\d+)$")


@dataclasses.dataclass(frozen=True)
class Topology:
    """A parsed topology: generation, chip grid, and how many slices (data parallel over DCN)."""

    generation: Generation
    shape: tuple[int, ...]
    slices: int = 1

    @property
    def name(self) -> str:
        return f"{self.generation.name}:{'x'.join(map(str, self.shape))}"

    @property
    def chips_per_slice(self) -> int:
        return math.prod(self.shape)

    @property
    def chips(self) -> int:
        return self.chips_per_slice * self.slices

    @property
    def accelerator_type(self) -> str:
        g = self.generation
        return f"{g.accelerator}{self.chips_per_slice * g.cores_per_chip_in_name}"


def known_topologies() -> list[str]:
    """Example names of every generation, in both spellings accepted."""
    out = []
    for g in GENERATIONS.values():
        shapes = _SHAPES_3D if g.dims == 3 else _SHAPES_2D
        out.append(f"{g.name}:{'|'.join(shapes.values())}")
        out.append(f"{g.accelerator}{{{','.join(str(n * g.cores_per_chip_in_name) for n in shapes)}}}")
    return out


def _unknown(name: str, why: str) -> TopologyError:
    return TopologyError(f"--topology {name!r}: {why}; known topologies: {'; '.join(known_topologies())}")


def parse_topology(name: str, slices: int = 1) -> Topology:
    """A Topology from a JAX topology name ("v5e:8x8", "v4:2x2x4") or a Cloud accelerator type ("v5p-128")."""
    if slices < 1:
        raise TopologyError(f"--slices {slices}: a run spans at least 1 slice")
    text = name.strip().lower()
    if m := _NAME.match(text):
        gen = GENERATIONS.get(m.group(1))
        if gen is None:
            raise _unknown(name, f"unknown TPU generation {m.group(1)!r}")
        shape = tuple(int(d) for d in m.group(2).split("x"))
        if len(shape) != gen.dims or min(shape) < 1:
            raise _unknown(name, f"a {gen.name} topology has {gen.dims} dimensions")
        return Topology(gen, shape, slices)
    if m := _ACCELERATOR.match(text):
        gen = next((g for g in GENERATIONS.values() if g.accelerator == f"{m.group(1)}-"), None)
        if gen is None:
            raise _unknown(name, f"unknown accelerator type {m.group(1)!r}")
        count = int(m.group(2))
        shapes = _SHAPES_3D if gen.dims == 3 else _SHAPES_2D
        chips, rest = divmod(count, gen.cores_per_chip_in_name)
        if rest or chips not in shapes:
            raise _unknown(name, f"no standard {gen.name} slice of {count}")
        return Topology(gen, tuple(int(d) for d in shapes[chips].split("x")), slices)
    raise _unknown(name, "not a topology name")


def libtpu_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("libtpu") is not None or bool(os.environ.get("TPU_LIBRARY_PATH"))


@contextlib.contextmanager
def _quiet_libtpu(topology: Topology) -> Iterator[None]:
    """Variables libtpu reads once, when it first starts: a CPU host lacks the worker ones and gets warnings.

    They describe a single local worker, which is what a compile-only host is; they are restored right
    after, so nothing else in the process (jax.distributed's launcher detection) ever sees them.
    """
    wanted = {"TPU_WORKER_HOSTNAMES": "localhost", "TPU_WORKER_ID": "0",
              "TPU_ACCELERATOR_TYPE": topology.accelerator_type, "TPU_SKIP_MDS_QUERY": "1",
              # Compile-only use touches no chip: do not take /tmp/libtpu_lockfile, which lets one process a
              # host load libtpu (parallel test workers, or a compile beside a run on a TPU VM, would fail).
              "ALLOW_MULTIPLE_LIBTPU_LOAD": "1"}
    old = {k: os.environ.get(k) for k in wanted}
    os.environ.update({k: v for k, v in wanted.items() if old[k] is None})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)


def compile_only_devices(topology: Topology) -> list[jax.Device]:
    """The devices of `topology` (all slices), for lowering and compiling only."""
    if not libtpu_available():
        raise TopologyError(f"compiling for TPU needs libtpu, the TPU compiler: {INSTALL_HINT}")
    from jax.experimental import topologies

    # Hosts of 4 chips (2x2) as on Cloud TPU VMs; it only numbers the processes, not the program.
    bounds = tuple(min(d, b) for d, b in zip((*topology.shape, 1)[:3], (2, 2, 1), strict=True))
    with _quiet_libtpu(topology):
        try:
            desc = topologies.get_topology_desc(
                platform="tpu", topology_name=topology.name, chip_config_name=topology.generation.chip_config,
                chips_per_host_bounds=bounds, num_slices=topology.slices)
        except Exception as e:  # libtpu's own words say what it rejects
            raise _unknown(topology.name, str(e).splitlines()[0]) from e
    return list(desc.devices)


_HBM_LIMIT = re.compile(r"exceeds available HBM \(([\d.]+)([KMGT])\)")
_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def compiler_hbm_limit(devices: list[jax.Device], fallback: int) -> int:
    """The HBM per chip the TPU compiler lets one program use (slightly below the nominal figure).

    Read from the compiler's own refusal of a program far too big for any chip; `fallback` when the
    message does not say (another libtpu wording).
    """
    import jax.numpy as jnp
    from jax.sharding import SingleDeviceSharding

    huge = jax.ShapeDtypeStruct((2**38,), jnp.float32, sharding=SingleDeviceSharding(devices[0]))
    try:
        jax.jit(lambda x: x + 1).lower(huge).compile()
    except Exception as e:
        m = _HBM_LIMIT.search(str(e))
        if m:
            return int(float(m.group(1)) * _UNITS[m.group(2)])
    return fallback
