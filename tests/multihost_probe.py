"""One process of a multi-process run of a jaxbert command on CPU (or the one-process reference).

    python multihost_probe.py NUM_PROCESSES PROCESS_ID PORT jaxbert-args...

Each of several processes sees one CPU device; the one-process reference sees two. Two processes thus
train on the reference's 2-device data-parallel mesh with the same global batch. With several processes
the command gets --config.distributed.* pointing at a coordinator on localhost:PORT, unless
JAXBERT_PROBE_LAUNCHER=slurm: then the caller has set the variables srun sets, and JAX's own SLURM
detection joins the processes. Prints one JSON line with the command's exit code and the process's view
of the devices.
"""

from __future__ import annotations

import json
import os
import sys

num_processes, process_id, port, args = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={2 if num_processes == 1 else 1}"
os.environ["JAX_PLATFORMS"] = "cpu"

from jaxbert.cli import main  # noqa: E402  (the device count must be set before jax starts)

if num_processes > 1 and os.environ.get("JAXBERT_PROBE_LAUNCHER", "config") == "config":
    args += [f"--config.distributed.coordinator_address=localhost:{port}",
             f"--config.distributed.num_processes={num_processes}", f"--config.distributed.process_id={process_id}"]
try:
    rc = main(args)
except BaseException:
    import traceback

    traceback.print_exc()
    rc = 99
if rc:
    # Leave at once: a normal exit would wait at jax.distributed's shutdown barrier for peers that may be
    # stuck waiting for this process at their next collective.
    sys.stderr.flush()
    os._exit(rc)

import jax  # noqa: E402

print(json.dumps({"rc": rc, "process_index": jax.process_index(), "process_count": jax.process_count(),
                  "global_devices": jax.device_count(), "local_devices": jax.local_device_count()}))
