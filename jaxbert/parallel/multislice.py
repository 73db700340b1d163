"""A mesh over several TPU slices: the config's mesh inside each slice, data parallel across slices.

Chips of one slice talk over ICI; slices talk over the much slower data-center network (DCN), so
only the gradient all-reduce of data parallelism should cross it. The result has the usual axes
("data", "fsdp", "tensor"): its "data" axis is slices x the per-slice data axis, slice-major, so
fsdp and tensor collectives stay inside a slice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh

from jaxbert.parallel.mesh import MESH_AXES, MeshError, create_mesh, resolve_mesh_shape


def _slice_of(device: jax.Device) -> int:
    return int(getattr(device, "slice_index", 0) or 0)


def create_multislice_mesh(spec: Mapping[str, int] | None, devices: Sequence[jax.Device], num_slices: int) -> Mesh:
    """`spec` (e.g. {"data": -1, "fsdp": 4}) laid over each of `num_slices` slices, data parallel across them."""
    devices = list(devices)
    if num_slices <= 1:
        return create_mesh(spec, devices)
    if len(devices) % num_slices:
        raise MeshError(f"{len(devices)} devices do not split into {num_slices} slices")
    per_slice = len(devices) // num_slices
    sizes = resolve_mesh_shape(spec or {"data": -1}, per_slice)
    ici = tuple(sizes[a] for a in MESH_AXES)
    dcn = (num_slices,) + (1,) * (len(MESH_AXES) - 1)
    found = sorted({_slice_of(d) for d in devices})
    if len(found) == num_slices:
        from jax.experimental import mesh_utils

        grid = mesh_utils.create_hybrid_device_mesh(ici, dcn, devices=devices)
    else:  # devices that do not say their slice (CPU test devices): consecutive blocks are the slices
        blocks = [np.asarray(devices[i * per_slice:(i + 1) * per_slice], dtype=object).reshape(ici)
                  for i in range(num_slices)]
        grid = np.concatenate(blocks, axis=0)
    return Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))
