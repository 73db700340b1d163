"""Reference side of tests/test_serving_export.py's SavedModel checks: runs a `jaxbert export --format
saved_model` directory with TensorFlow alone (never imports jaxbert or jax).

    .ref-venv/bin/python tests/reference/saved_model_run.py EXPORT_DIR IN.npz... OUT_PREFIX

Each IN.npz holds int32 arrays named by the export's inputs; the serving_default signature's outputs for
IN number i go to OUT_PREFIX-i.npz. Prints one JSON line: the signature's input and output names.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main(export_dir: str, inputs: list[str], out_prefix: str) -> None:
    serve = tf.saved_model.load(os.path.join(export_dir, "saved_model")).signatures["serving_default"]
    for i, name in enumerate(inputs):
        arrays = dict(np.load(name))
        results = serve(**{k: tf.constant(v, tf.int32) for k, v in arrays.items()})
        np.savez(f"{out_prefix}-{i}.npz", **{k: v.numpy() for k, v in results.items()})
    print(json.dumps({"inputs": sorted(serve.structured_input_signature[1]),
                      "outputs": sorted(serve.structured_outputs)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:-1], sys.argv[-1])
