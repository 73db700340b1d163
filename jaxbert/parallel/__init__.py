"""Mesh creation, logical-axis sharding rules, sharded init and multi-process start-up."""

from jaxbert.parallel.distributed import (
    DistributedError,
    detect_cluster,
    maybe_initialize_distributed,
    process_zero_first,
)
from jaxbert.parallel.mesh import (
    MESH_AXES,
    MeshError,
    create_mesh,
    data_parallel_size,
    dcn_data_size,
    device_grid,
    resolve_mesh_shape,
)
from jaxbert.parallel.sharding import (
    LOGICAL_RULES,
    activation_sharding,
    batch_sharding,
    bytes_per_device,
    fit_spec,
    host_to_global,
    like_params_shardings,
    logical_to_sharding,
    put_global,
    replicated,
    sharded_init,
    tree_shardings,
)

__all__ = ["LOGICAL_RULES", "MESH_AXES", "DistributedError", "MeshError", "activation_sharding", "batch_sharding",
           "bytes_per_device", "create_mesh", "data_parallel_size", "dcn_data_size", "detect_cluster", "device_grid",
           "fit_spec", "host_to_global", "like_params_shardings", "logical_to_sharding",
           "maybe_initialize_distributed", "process_zero_first",
           "put_global", "replicated", "resolve_mesh_shape", "sharded_init", "tree_shardings"]
