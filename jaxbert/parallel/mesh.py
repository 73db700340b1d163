"""Device mesh from a config dict like {"data": -1, "fsdp": 1, "tensor": 1} (-1 takes the remaining devices)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh

from jaxbert.config import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")


class MeshError(ConfigError):
    """The mesh config does not fit the devices; the message names the field and the fix."""


def resolve_mesh_shape(spec: Mapping[str, int], num_devices: int) -> dict[str, int]:
    """Axis sizes for `num_devices`: missing axes are 1, at most one -1 takes what is left."""
    unknown = sorted(set(spec) - set(MESH_AXES))
    if unknown:
        raise MeshError(f"config.mesh: unknown axis {unknown[0]!r}; the mesh axes are {', '.join(MESH_AXES)}")
    sizes = {axis: int(spec.get(axis, 1)) for axis in MESH_AXES}
    fill = [a for a, s in sizes.items() if s == -1]
    if len(fill) > 1:
        raise MeshError(f"config.mesh: only one axis may be -1, got {', '.join(fill)}")
    for axis, size in sizes.items():
        if size == 0 or size < -1:
            raise MeshError(f"config.mesh.{axis}: must be a positive size or -1, got {size}")
    fixed = math.prod(s for s in sizes.values() if s != -1)
    if fill:
        if num_devices % fixed:
            raise MeshError(f"config.mesh: the fixed axes multiply to {fixed}, which does not divide the "
                            f"{num_devices} devices; pick sizes whose product divides {num_devices}")
        sizes[fill[0]] = num_devices // fixed
    elif fixed != num_devices:
        raise MeshError(f"config.mesh: axis sizes multiply to {fixed} but there are {num_devices} devices; "
                        "make the product equal the device count or set one axis to -1")
    return sizes


def create_mesh(spec: Mapping[str, int] | None = None, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A Mesh with axes ("data", "fsdp", "tensor") over `devices` (default: all devices of all processes)."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = resolve_mesh_shape(spec or {"data": -1}, len(devices))
    shape = tuple(sizes[a] for a in MESH_AXES)
    try:
        # mesh_utils lays the axes out along the physical interconnect (TPU torus) where it can.
        from jax.experimental import mesh_utils

        grid = mesh_utils.create_device_mesh(shape, devices=devices)
    except (ValueError, NotImplementedError, AssertionError):
        grid = np.asarray(devices, dtype=object).reshape(shape)
    # Auto axes: the compiler propagates shardings from the in/out shardings and logical constraints.
    return Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def data_parallel_size(mesh: Mesh) -> int:
    """How many ways the batch is split: the product of the "data" and "fsdp" axes."""
    return int(mesh.shape["data"] * mesh.shape["fsdp"])
