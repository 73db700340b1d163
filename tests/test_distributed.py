"""Multi-process start-up through JAX's own cluster detection, and the multislice (hybrid) device mesh.

The TPU case stands in for the one thing this machine lacks, a TPU VM's metadata server: JAX's GceTpuCluster
is made to see TPU chips and its metadata lookup answers as a worker of a v5e-16 would. Everything else
(which detector is asked, what `initialize()` then derives) is JAX's own code. Two real processes joined by
JAX's SLURM detection are in test_multihost.py.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from jax._src import clusters
from jax._src.clusters import cloud_tpu_cluster

from jaxbert.parallel import (
    DistributedError,
    MeshError,
    create_mesh,
    detect_cluster,
    device_grid,
    maybe_initialize_distributed,
    resolve_mesh_shape,
)

DEFAULTS = {"coordinator_address": "", "num_processes": -1, "process_id": -1}  # the configs' distributed section
LAUNCHER_VARIABLES = ("SLURM_", "OMPI_", "PMI_", "TPU_WORKER_", "TPU_PROCESS_", "MEGASCALE_", "KUBERNETES_",
                      "JAX_COORDINATOR")


@pytest.fixture
def plain_env(monkeypatch):
    """No launcher's variables in the environment (whatever the machine running the tests has set)."""
    for key in list(os.environ):
        if key.startswith(LAUNCHER_VARIABLES):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def initialize_calls(monkeypatch):
    """Records what jax.distributed.initialize would be called with (this test process stays as it is)."""
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    return calls


def test_a_plain_machine_stays_single_process_at_once_and_offline(plain_env, initialize_calls):
    assert cloud_tpu_cluster.running_in_cloud_tpu_vm is False  # the premise: this host has no TPU chips

    def no_network(*args, **kwargs):
        raise AssertionError(f"cluster detection used the network: {args}")

    plain_env.setattr(socket, "create_connection", no_network)
    plain_env.setattr(socket, "getaddrinfo", no_network)
    plain_env.setattr(cloud_tpu_cluster, "get_metadata", no_network)
    start = time.perf_counter()
    assert detect_cluster() is None
    assert maybe_initialize_distributed(DEFAULTS) is False
    assert maybe_initialize_distributed(None) is False
    assert time.perf_counter() - start < 0.5
    assert initialize_calls == []


def _tpu_vm_metadata(worker: int, hosts: int, slices: int = 1, slice_id: int = 0):
    """`get_metadata` as a Cloud TPU VM worker's metadata server answers it (text, HTTP status)."""
    tpu_env = "ACCELERATOR_TYPE: 'v5litepod-16'\nTYPE: 'V5LITE_POD'\n"
    if slices > 1:
        tpu_env += (f"MEGASCALE_COORDINATOR_ADDRESS: '10.130.0.11:8080'\nMEGASCALE_NUM_SLICES: '{slices}'\n"
                    f"MEGASCALE_SLICE_ID: '{slice_id}'\n")
    answers = {"agent-worker-number": str(worker),
               "worker-network-endpoints": ",".join(f"10.130.{slice_id}.{11 + i}" for i in range(hosts)),
               "tpu-env": tpu_env}

    def get_metadata(key):
        return (answers[key], 200) if key in answers else ("", 404)

    return get_metadata


@pytest.fixture
def on_a_tpu_vm(plain_env):
    """JAX's TPU detection as on a Cloud TPU VM: chips seen at import, a metadata server to ask."""
    plain_env.delenv("TPU_SKIP_MDS_QUERY", raising=False)  # jax sets it at import on a host without TPU chips
    plain_env.setattr(cloud_tpu_cluster, "running_in_cloud_tpu_vm", True)

    def answer_as(**kw):
        plain_env.setattr(cloud_tpu_cluster, "get_metadata", _tpu_vm_metadata(**kw))

    return answer_as


def test_a_tpu_pod_worker_found_by_jax_metadata_detection_initialises(on_a_tpu_vm, initialize_calls):
    on_a_tpu_vm(worker=2, hosts=4)  # worker 2 of a v5e-16: 4 hosts
    assert detect_cluster() is cloud_tpu_cluster.GceTpuCluster
    assert maybe_initialize_distributed(DEFAULTS) is True
    # Nothing is imposed: JAX's initialize() derives every value itself ...
    assert initialize_calls == [{"coordinator_address": None, "num_processes": None, "process_id": None}]
    # ... and this is what it derives from that metadata: worker 0 coordinates, 4 processes, this is process 2.
    assert clusters.ClusterEnv.auto_detect_unset_distributed_params(None, None, None, None, None, 60)[:3] == (
        "10.130.0.11:8482", 4, 2)


def test_a_multislice_worker_gets_its_global_process_id_from_jax(on_a_tpu_vm, initialize_calls):
    on_a_tpu_vm(worker=1, hosts=4, slices=2, slice_id=1)
    assert maybe_initialize_distributed(DEFAULTS) is True and len(initialize_calls) == 1
    assert clusters.ClusterEnv.auto_detect_unset_distributed_params(None, None, None, None, None, 60)[:3] == (
        "10.130.0.11:8482", 8, 5)


def test_a_single_host_tpu_vm_stays_single_process(on_a_tpu_vm, initialize_calls):
    on_a_tpu_vm(worker=0, hosts=1)
    assert detect_cluster() is cloud_tpu_cluster.GceTpuCluster
    assert maybe_initialize_distributed(DEFAULTS) is False and initialize_calls == []


def test_a_tpu_vm_whose_metadata_server_fails_is_a_one_line_error(on_a_tpu_vm, initialize_calls, plain_env):
    def down(key):
        raise ConnectionError("metadata.google.internal: connection refused")

    plain_env.setattr(cloud_tpu_cluster, "get_metadata", down)
    with pytest.raises(DistributedError) as err:
        maybe_initialize_distributed(DEFAULTS)
    assert "\n" not in str(err.value) and "gcetpu" in str(err.value) and "config.distributed" in str(err.value)
    assert initialize_calls == []


def _srun_env(monkeypatch, tasks: int, procid: int = 0) -> None:
    for key, value in {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": str(tasks), "SLURM_PROCID": str(procid),
                       "SLURM_LOCALID": str(procid), "SLURM_STEP_NODELIST": "gpu[001-002]",
                       "SLURM_NODELIST": "gpu[001-002]", "SLURM_STEP_NUM_NODES": "2"}.items():
        monkeypatch.setenv(key, value)


def test_an_srun_task_initialises_through_jax_slurm_detection(plain_env, initialize_calls):
    _srun_env(plain_env, tasks=2, procid=1)
    assert detect_cluster() is clusters.SlurmCluster
    assert maybe_initialize_distributed(DEFAULTS) is True and len(initialize_calls) == 1
    port = 4242 % 2**12 + 65535 - 2**12 + 1
    assert clusters.ClusterEnv.auto_detect_unset_distributed_params(None, None, None, None, None, 60)[:3] == (
        f"gpu001:{port}", 2, 1)


def test_one_task_jobs_and_an_explicit_single_process_stay_single(plain_env, initialize_calls):
    _srun_env(plain_env, tasks=1)
    assert maybe_initialize_distributed(DEFAULTS) is False
    _srun_env(plain_env, tasks=8)
    assert maybe_initialize_distributed({**DEFAULTS, "num_processes": 1}) is False
    assert initialize_calls == []


def test_an_explicit_coordinator_is_passed_as_given(plain_env, initialize_calls):
    assert maybe_initialize_distributed({"coordinator_address": "h:1", "num_processes": 2, "process_id": 1}) is True
    assert initialize_calls == [{"coordinator_address": "h:1", "num_processes": 2, "process_id": 1}]


def test_a_coordinator_variable_without_a_process_count_is_a_one_line_error(tmp_path):
    # A fresh process: jax.distributed.initialize must run before jax starts its backends.
    code = ("from jaxbert.errors import JaxbertError\n"
            "from jaxbert.parallel import maybe_initialize_distributed\n"
            "try:\n    maybe_initialize_distributed({})\nexcept JaxbertError as e:\n    print('ERROR', e)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCHER_VARIABLES)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**env, "JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_PLATFORMS": "cpu"})
    [line] = [x for x in r.stdout.splitlines() if x.startswith("ERROR")]
    assert "coordinator 127.0.0.1:1" in line and "config.distributed.num_processes" in line, r.stdout + r.stderr


@dataclasses.dataclass(frozen=True)
class FakeDevice:
    """What mesh_utils reads of a device: id, kind, platform, and the slice / process it belongs to."""
    id: int
    slice_index: int
    process_index: int
    platform: str = "cpu"
    device_kind: str = "cpu"


@dataclasses.dataclass(frozen=True)
class FakeDeviceWithoutSlice:
    id: int
    process_index: int
    platform: str = "cpu"
    device_kind: str = "cpu"


def test_dcn_data_puts_each_slice_in_its_own_block_of_the_data_axis():
    # 2 slices of 4 devices (2 hosts each), listed out of order.
    devices = [FakeDevice(id=i, slice_index=i // 4, process_index=i // 2) for i in (5, 0, 7, 2, 4, 1, 6, 3)]
    grid = device_grid((4, 2, 1), devices, dcn_data=2)
    slices = np.vectorize(lambda d: d.slice_index)(grid)
    assert grid.shape == (4, 2, 1)
    assert (slices[:2] == 0).all() and (slices[2:] == 1).all()  # data replicas 0-1 on slice 0, 2-3 on slice 1
    # fsdp x tensor inside a slice: each data row holds devices of one slice only.
    grid = device_grid((2, 2, 2), devices, dcn_data=2)
    assert [sorted({d.slice_index for d in row.flat}) for row in grid] == [[0], [1]]
    assert sorted(d.id for d in grid.flat) == list(range(8))


def test_dcn_data_falls_back_to_processes_where_devices_have_no_slice():
    devices = [FakeDeviceWithoutSlice(id=i, process_index=i // 2) for i in range(8)]  # 4 hosts x 2 GPUs
    grid = device_grid((4, 2, 1), devices, dcn_data=4)
    assert np.vectorize(lambda d: d.process_index)(grid)[:, :, 0].tolist() == [[0, 0], [1, 1], [2, 2], [3, 3]]


def test_dcn_data_that_does_not_fit_is_a_one_line_error():
    devices = [FakeDevice(id=i, slice_index=0, process_index=0) for i in range(8)]
    with pytest.raises(MeshError) as err:
        device_grid((8, 1, 1), devices, dcn_data=2)
    assert str(err.value).count("\n") == 0 and "set mesh.dcn_data=1" in str(err.value)
    with pytest.raises(MeshError) as err:
        resolve_mesh_shape({"data": 3, "fsdp": 2, "dcn_data": 2}, 6)
    assert "config.mesh.dcn_data=2 must divide the data axis (3)" in str(err.value)
    with pytest.raises(MeshError, match="positive number of slices"):
        resolve_mesh_shape({"data": -1, "dcn_data": 0}, 8)


def test_create_mesh_accepts_dcn_data_and_keeps_one_slice_as_before():
    assert resolve_mesh_shape({"data": -1, "fsdp": 2, "tensor": 1, "dcn_data": 1}, 8) == {
        "data": 4, "fsdp": 2, "tensor": 1}
    devices = jax.devices()
    with_option = create_mesh({"data": -1, "dcn_data": 1}, devices)
    assert with_option.devices.tolist() == create_mesh({"data": -1}, devices).devices.tolist()
