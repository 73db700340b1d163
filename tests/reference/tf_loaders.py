"""Reference side of tests/test_tf_checkpoint.py; runs in the reference environment (tests/reference_env.sh:
transformers 4.57 + TensorFlow + torch), never imports jaxbert.

    .ref-venv/bin/python tests/reference/tf_loaders.py SPEC.json

SPEC: {"cases": [...], "writer_checks": [...]}. Each case: weights (npz of TF variable name -> array) are
saved by TensorFlow's own Saver at `prefix` (so jaxbert reads a checkpoint TensorFlow wrote), then loaded
into a transformers model whose every parameter was first set to NaN, with transformers' TF loader
(load_tf_weights_in_bert / _albert / _electra); no NaN may remain (every parameter came from the
checkpoint). The model runs on the batch npz; hidden states, pooler and head logits go to `out` (npz).
Each writer check: TensorFlow reads the checkpoint at `prefix` (written by tests/tf_bundle_writer.py) and
must find exactly the variables of `weights`, bit for bit.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("USE_TF", "0")  # transformers' own TF models stay unimported; the loaders import TF directly

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

LOADERS = {
    "bert": transformers.models.bert.modeling_bert.load_tf_weights_in_bert,
    "albert": transformers.models.albert.modeling_albert.load_tf_weights_in_albert,
    "electra": transformers.models.electra.modeling_electra.load_tf_weights_in_electra,
}
HEAD_FIELDS = {"mlm": ("prediction_logits", "logits"), "nsp": ("seq_relationship_logits",),
               "sop": ("sop_logits",), "rtd": ("logits",)}


def save_with_tensorflow(weights: dict[str, np.ndarray], prefix: str) -> None:
    variables = {name: tf.Variable(value, name=name.replace("/", "_")) for name, value in weights.items()}
    tf.compat.v1.train.Saver(var_list=variables).save(None, prefix)


def run_case(case: dict) -> dict:
    weights = dict(np.load(case["weights"]))
    save_with_tensorflow(weights, case["prefix"])
    config = transformers.AutoConfig.for_model(**case["config"])
    model = getattr(transformers, case["class"])(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    extra = {"discriminator_or_generator": case["mode"]} if case["family"] == "electra" else {}
    LOADERS[case["family"]](model, config, case["prefix"], **extra)
    unset = [n for n, p in model.named_parameters() if torch.isnan(p).any()]
    if unset:
        raise SystemExit(f"{case['name']}: transformers' loader left parameters unset: {unset[:5]}")
    batch = {k: torch.tensor(v) for k, v in np.load(case["batch"]).items()}
    with torch.no_grad():
        base = model.base_model(**batch, output_hidden_states=True)
        full = model(**batch)
    out = {f"hidden_{i}": h.numpy() for i, h in enumerate(base.hidden_states)}
    out["last"] = base.last_hidden_state.numpy()
    if getattr(base, "pooler_output", None) is not None:
        out["pooler"] = base.pooler_output.numpy()
    for head in case["heads"]:
        field = next(f for f in HEAD_FIELDS[head] if f in full)
        out[head] = full[field].numpy()
    np.savez(case["out"], **out)
    return {"name": case["name"], "parameters": sum(p.numel() for p in model.parameters())}


def check_writer(check: dict) -> dict:
    expected = dict(np.load(check["weights"]))
    reader = tf.train.load_checkpoint(check["prefix"])
    names = sorted(n for n, _ in tf.train.list_variables(check["prefix"]))
    if names != sorted(expected):
        raise SystemExit(f"TensorFlow lists {len(names)} variables in {check['prefix']}, expected {len(expected)}")
    for name in names:
        value = reader.get_tensor(name)
        if value.dtype != expected[name].dtype or not np.array_equal(value, expected[name]):
            raise SystemExit(f"TensorFlow reads {name} of {check['prefix']} differently")
    return {"prefix": check["prefix"], "variables": len(names)}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    report = {"tensorflow": tf.__version__, "transformers": transformers.__version__,
              "cases": [run_case(c) for c in spec.get("cases", [])],
              "writer_checks": [check_writer(c) for c in spec.get("writer_checks", [])]}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
