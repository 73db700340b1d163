"""One of two real jax.distributed processes writing metrics with the W&B tracker into one shared workdir.

    python tracker_probe.py PROCESS_ID PORT WORKDIR

Prints one JSON line: the process index and how many trackers its MetricsWriter opened.
"""

from __future__ import annotations

import json
import sys

import jax

from jaxbert.train.metrics import MetricsWriter
from jaxbert.train.spec import LogSpec

process_id, port, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)
writer = MetricsWriter(workdir, log=LogSpec(trackers=("jsonl", "wandb")), config={"probe": True})
opened = len(writer._trackers)
writer.write(1, {"loss": 1.5})
writer.write(2, {"loss": 0.5})
writer.close()
print(json.dumps({"process_index": jax.process_index(), "trackers": opened}))
jax.distributed.shutdown()
