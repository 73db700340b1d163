"""Serving exports of a model or fine-tuned task model: StableHLO (`jax.export`), ONNX (`jax2onnx`) and
TensorFlow SavedModel (`jax2tf`).

Every format holds the same function: int32 [batch, length] token ids, attention mask (1 = real token) and,
for families with segments, token type ids in; a task model's task logits, or a base model's encoder
outputs, out. Batch and length are symbolic (any batch, any length up to the position table). The weights
are constants of the exported program (SavedModel: TF variables, so the graph stays small), and the layers
are unrolled (a serving graph has no scan; jax2onnx cannot convert flax's scan over symbolic shapes). Each
export directory also holds `serving.json` (the signature), a README of its inputs and outputs, and the
model's tokenizer files.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.model import build_model, scan_to_unrolled
from jaxbert.storage import Path, copy_tree, path
from jaxbert.tokenize.files import copy_tokenizer_files

FORMATS = ("stablehlo", "onnx", "saved_model")
MODEL_FILES = {"stablehlo": "model.stablehlo", "onnx": "model.onnx", "saved_model": "saved_model"}  # last: a dir
SIGNATURE_FILE = "serving.json"
ONNX_INSTALL = ("pip install --no-deps jax2onnx onnx-ir onnx onnxruntime (--no-deps: jax2onnx 0.17 pins "
                "orbax-checkpoint<0.11.37, older than jaxbert's)")
TF_INSTALL = "pip install 'jaxbert[tf]' (TensorFlow, for jax2tf and the SavedModel writer)"
# What each output holds, for the README: name -> (shape, meaning).
_OUTPUT_DOCS = {
    "last_hidden_state": ("[batch, length, hidden]", "the last layer's hidden states"),
    "pooler_output": ("[batch, hidden]", "tanh(dense(first token's state)), as in BERT's pooler"),
    "classification": ("[batch, num_labels]", "sequence classification logits (regression: one value)"),
    "span": ("[batch, length, 2]", "answer start and end logits of each token (SQuAD)"),
    "token": ("[batch, length, num_labels]", "per-token tag logits"),
}


def input_names(config: ModelConfig) -> tuple[str, ...]:
    """The exported function's inputs: token type ids only for families with segments."""
    return ("input_ids", "attention_mask") + (("token_type_ids",) if config.type_vocab_size > 0 else ())


def output_names(config: ModelConfig) -> tuple[str, ...]:
    """A task model's logits (named by its head), else the encoder's outputs."""
    if config.task:
        return ("logits",)
    return ("last_hidden_state",) + (("pooler_output",) if config.pooler else ())


def max_length(config: ModelConfig) -> int:
    return config.max_position_embeddings - config.position_offset


def serving_apply(config: ModelConfig, params: Any) -> tuple[Callable[..., tuple[jax.Array, ...]], Any]:
    """(apply(weights, *inputs in input_names order) -> outputs in output_names order, the weights it takes):
    dropout off, layers unrolled."""
    unrolled_config = config.replace(scan_layers=False)
    unrolled = scan_to_unrolled(params, config) if config.scan_layers else params
    model = build_model(unrolled_config)

    def apply(weights: Any, input_ids: jax.Array, attention_mask: jax.Array, token_type_ids: jax.Array | None = None):
        out = model.apply({"params": weights}, input_ids, attention_mask, token_type_ids, deterministic=True)
        if config.task:
            return (out.logits[config.task],)
        return (out.last_hidden_state,) + ((out.pooler_output,) if config.pooler else ())

    return apply, unrolled


def serving_function(config: ModelConfig, params: Any) -> Callable[..., tuple[jax.Array, ...]]:
    """f(*inputs in input_names order) -> outputs in output_names order, with the weights as constants."""
    apply, weights = serving_apply(config, params)
    return lambda *inputs: apply(weights, *inputs)


def export_model(config: ModelConfig, params: Any, directory: str | os.PathLike, fmt: str,
                 tokenizer_dir: str | os.PathLike | None = None, tokenizer: Any = None,
                 label_names: list[str] | None = None, source: str = "") -> Path:
    """Write `fmt` (stablehlo | onnx | saved_model) of the model with its signature, README and tokenizer files
    to `directory`, which must not exist or be empty."""
    if fmt not in FORMATS:
        raise JaxbertError(f"--format {fmt}: unknown serving format; use one of {', '.join(FORMATS)}")
    target = path(directory)
    if target.exists() and any(target.iterdir()):
        raise JaxbertError(f"{target} is not empty; give a new directory (an export never writes over files)")
    writer = {"stablehlo": _export_stablehlo, "onnx": _export_onnx, "saved_model": _export_saved_model}[fmt]
    with tempfile.TemporaryDirectory() as staging:  # converted before the target is touched: a failure leaves none
        writer(config, params, os.path.join(staging, MODEL_FILES[fmt]))
        target.mkdir(parents=True, exist_ok=True)
        copy_tree(staging, target)
    signature = _signature(config, fmt, label_names, source)
    (target / SIGNATURE_FILE).write_text(json.dumps(signature, indent=2) + "\n")
    has_tokenizer = _write_tokenizer_files(target, tokenizer_dir, tokenizer)
    (target / "README.md").write_text(readme(signature, has_tokenizer))
    return target


def _write_tokenizer_files(target: Path, tokenizer_dir: str | os.PathLike | None, tokenizer: Any) -> bool:
    """The tokenizer's files beside the model: copied byte for byte, else saved by the tokenizer object."""
    if tokenizer_dir is not None and copy_tokenizer_files(tokenizer_dir, target):
        return True
    if tokenizer is None:
        return False
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # tokenizers write local files only
        tokenizer.save(tmp)
        return copy_tokenizer_files(tmp, target)


def _symbolic_inputs(config: ModelConfig) -> list[jax.ShapeDtypeStruct]:
    from jax import export

    batch, length = export.symbolic_shape("batch, length", constraints=(f"length <= {max_length(config)}",))
    return [jax.ShapeDtypeStruct((batch, length), jnp.int32) for _ in input_names(config)]


def _export_stablehlo(config: ModelConfig, params: Any, out: str) -> None:
    from jax import export

    try:
        import flatbuffers  # noqa: F401  (jax.export's serializer needs it)
    except ImportError:
        raise JaxbertError("--format stablehlo needs flatbuffers (jax.export's serializer): "
                           "pip install 'jaxbert[export]'") from None
    exported = export.export(jax.jit(serving_function(config, params)))(*_symbolic_inputs(config))
    with open(out, "wb") as f:
        f.write(exported.serialize())


def _export_onnx(config: ModelConfig, params: Any, out: str) -> None:
    try:
        import jax2onnx
    except ImportError:
        raise JaxbertError(f"--format onnx needs jax2onnx: {ONNX_INSTALL}") from None
    names = input_names(config)
    inputs = [jax.ShapeDtypeStruct(("batch", "length"), jnp.int32)] * len(names)  # jax2onnx's symbolic dims
    proto = jax2onnx.to_onnx(serving_function(config, params), inputs,
                             model_name=f"jaxbert-{config.family}", input_names=list(names),
                             output_names=list(output_names(config)))
    blob = proto.SerializeToString()
    if len(blob) >= 2**31:
        raise JaxbertError("the model's ONNX file would pass protobuf's 2 GiB limit; export it as stablehlo")
    with open(out, "wb") as f:
        f.write(blob)


def _export_saved_model(config: ModelConfig, params: Any, out: str) -> None:
    """A SavedModel whose serving_default signature runs the model through jax2tf's native serialization
    (the StableHLO program inside an XlaCallModule op), the weights as non-trainable TF variables."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter stays off the screen
    try:
        import tensorflow as tf
        from jax.experimental import jax2tf
    except ImportError:
        raise JaxbertError(f"--format saved_model needs TensorFlow: {TF_INSTALL}") from None
    apply, weights = serving_apply(config, params)
    names, outputs = input_names(config), output_names(config)
    converted = jax2tf.convert(apply, with_gradient=False,
                               polymorphic_shapes=[None] + ["(batch, length)"] * len(names),
                               polymorphic_constraints=(f"length <= {max_length(config)}",))
    module = tf.Module()
    module.weights = tf.nest.map_structure(lambda w: tf.Variable(np.asarray(w), trainable=False), weights)

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, None], tf.int32, name=n) for n in names])
    def serve(*inputs: Any) -> dict[str, Any]:
        return dict(zip(outputs, converted(module.weights, *inputs), strict=True))

    module.serve = serve
    tf.saved_model.save(module, out, signatures={"serving_default": serve})


def _signature(config: ModelConfig, fmt: str, label_names: list[str] | None, source: str) -> dict[str, Any]:
    length = max_length(config)
    outputs = []
    for name in output_names(config):
        key = config.task if name == "logits" else name
        shape, meaning = _OUTPUT_DOCS[key]
        shape = shape.replace("hidden", str(config.hidden_size)).replace("num_labels", str(config.num_labels))
        outputs.append({"name": name, "dtype": "float32", "shape": shape, "meaning": meaning})
    return {"format": fmt, "file": MODEL_FILES[fmt], "source": source, "family": config.family,
            "task": config.task or None, "label_names": label_names, "max_length": length,
            "inputs": [{"name": n, "dtype": "int32", "shape": "[batch, length]"} for n in input_names(config)],
            "outputs": outputs}


def readme(signature: Mapping[str, Any], has_tokenizer: bool) -> str:
    """A short README of the export's inputs and outputs, and how to run it."""
    fmt, file = signature["format"], signature["file"]
    lines = [f"# {signature['family']} {'task model (' + signature['task'] + ')' if signature['task'] else 'encoder'}"
             f" exported by jaxbert as {fmt}", "",
             f"From `{signature['source']}`. `{file}` holds the weights; batch and length are free (length <= "
             f"{signature['max_length']}); dropout is off.", "", "## Inputs", ""]
    lines += [f"- `{i['name']}`: {i['dtype']} {i['shape']}" for i in signature["inputs"]]
    lines += ["", "attention_mask is 1 on real tokens and 0 on padding; pad input_ids with the tokenizer's pad id.",
              "", "## Outputs (in this order)", ""]
    lines += [f"- `{o['name']}`: {o['dtype']} {o['shape']}: {o['meaning']}" for o in signature["outputs"]]
    if signature["label_names"]:
        lines += ["", f"Labels, by logit index: {', '.join(signature['label_names'])}."]
    lines += ["", "## Run it", ""]
    if fmt == "stablehlo":
        lines += ["```python", "from jax import export", f"exported = export.deserialize(open('{file}', 'rb').read())",
                  "outputs = exported.call(input_ids, attention_mask" +
                  (", token_type_ids)" if len(signature["inputs"]) == 3 else ")") + "  # int32 numpy arrays", "```"]
    elif fmt == "saved_model":
        lines += ["```python", "import tensorflow as tf",
                  f"serve = tf.saved_model.load('{file}').signatures['serving_default']",
                  "outputs = serve(input_ids=ids, attention_mask=mask, ...)  # int32 tensors -> dict of outputs",
                  "```", "", "The graph calls the model through TensorFlow's XlaCallModule op (jax2tf native "
                  "serialization): TensorFlow / TF Serving 2.15 or newer runs it."]
    else:
        lines += ["```python", "import onnxruntime", f"session = onnxruntime.InferenceSession('{file}')",
                  "outputs = session.run(None, {'input_ids': ids, 'attention_mask': mask, ...})  # int32 arrays",
                  "```"]
    lines += ["", "The tokenizer files beside it (tokenizer.json / vocab.txt ...) encode texts into these inputs."
              if has_tokenizer else "This model came without tokenizer files: bring the tokenizer it was trained with."]
    lines += ["", f"`{SIGNATURE_FILE}` states the same signature as JSON.", ""]
    return "\n".join(lines)


def run_export(directory: str | os.PathLike, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an export directory by its own runtime (jax.export.deserialize, onnxruntime, TensorFlow): outputs by
    name."""
    root = path(directory)
    signature = json.loads((root / SIGNATURE_FILE).read_text())
    names = [i["name"] for i in signature["inputs"]]
    missing = [n for n in names if n not in inputs]
    if missing:
        raise JaxbertError(f"the export needs input {missing[0]!r}; it takes {', '.join(names)}")
    args = [np.asarray(inputs[n], np.int32) for n in names]
    if signature["format"] == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(str(root / signature["file"])).signatures["serving_default"]
        results = serve(**{n: tf.constant(a) for n, a in zip(names, args, strict=True)})
        return {o["name"]: results[o["name"]].numpy() for o in signature["outputs"]}
    blob = (root / signature["file"]).read_bytes()
    if signature["format"] == "stablehlo":
        from jax import export

        outs = export.deserialize(bytearray(blob)).call(*args)
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"])
        outs = session.run(None, dict(zip(names, args, strict=True)))
    return {o["name"]: np.asarray(x) for o, x in zip(signature["outputs"], outs, strict=True)}
