"""Device mesh from a config dict like {"data": -1, "fsdp": 1, "tensor": 1} (-1 takes the remaining devices).

`"dcn_data": N` (default 1) lays the mesh out over N slices (multislice TPU; elsewhere N processes): the
"data" axis is split into N outer blocks, one per slice, so only data-parallel gradient reductions cross
the slow data-center network, while fsdp and tensor stay on the fast links inside a slice.
"""

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
    unknown = sorted(set(spec) - set(MESH_AXES) - {"dcn_data"})
    if unknown:
        raise MeshError(f"config.mesh: unknown axis {unknown[0]!r}; the mesh axes are {', '.join(MESH_AXES)} "
                        "(and dcn_data, the number of slices)")
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
    slices = dcn_data_size(spec)
    if sizes["data"] % slices:
        raise MeshError(f"config.mesh.dcn_data={slices} must divide the data axis ({sizes['data']}): each slice "
                        "holds an equal block of the data-parallel replicas; raise mesh.data or lower mesh.dcn_data")
    return sizes


def dcn_data_size(spec: Mapping[str, int]) -> int:
    """How many slices the data axis spans (`spec["dcn_data"]`, default 1)."""
    slices = int(spec.get("dcn_data", 1))
    if slices < 1:
        raise MeshError(f"config.mesh.dcn_data: must be a positive number of slices, got {slices}")
    return slices


def create_mesh(spec: Mapping[str, int] | None = None, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A Mesh with axes ("data", "fsdp", "tensor") over `devices` (default: all devices of all processes)."""
    devices = list(jax.devices() if devices is None else devices)
    spec = spec or {"data": -1}
    sizes = resolve_mesh_shape(spec, len(devices))
    grid = device_grid(tuple(sizes[a] for a in MESH_AXES), devices, dcn_data_size(spec))
    # Auto axes: the compiler propagates shardings from the in/out shardings and logical constraints.
    return Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def device_grid(shape: tuple[int, int, int], devices: Sequence[jax.Device], dcn_data: int = 1) -> np.ndarray:
    """`devices` as an array of `shape` (data, fsdp, tensor), laid out along the physical interconnect.

    With `dcn_data` > 1, slice s (the devices' `slice_index`; without one, `process_index`) fills rows
    [s * data / dcn_data, (s + 1) * data / dcn_data) of the data axis, and nothing else.
    """
    from jax.experimental import mesh_utils

    if dcn_data == 1:
        try:
            # mesh_utils lays the axes out along the physical interconnect (TPU torus) where it can.
            return mesh_utils.create_device_mesh(shape, devices=devices)
        except (ValueError, NotImplementedError, AssertionError):
            return np.asarray(devices, dtype=object).reshape(shape)
    by_slice = all(hasattr(d, "slice_index") for d in devices)
    unit = "slice_index" if by_slice else "process_index"
    groups = sorted({getattr(d, unit) for d in devices})
    if len(groups) != dcn_data:
        raise MeshError(f"config.mesh.dcn_data={dcn_data}, but the {len(devices)} devices come in {len(groups)} "
                        f"group(s) by {unit}; set mesh.dcn_data={len(groups)} (the number of slices)")
    inner = (shape[0] // dcn_data, shape[1], shape[2])
    try:
        return mesh_utils.create_hybrid_device_mesh(inner, (dcn_data, 1, 1), devices,
                                                    process_is_granule=not by_slice)
    except ValueError as e:
        raise MeshError(f"config.mesh: cannot lay out data x fsdp x tensor = {inner[0]} x {inner[1]} x {inner[2]} "
                        f"inside each of the {dcn_data} slices ({e}); make the product equal the devices of one "
                        "slice") from e


def data_parallel_size(mesh: Mesh) -> int:
    """How many ways the batch is split: the product of the "data" and "fsdp" axes."""
    return int(mesh.shape["data"] * mesh.shape["fsdp"])
