"""Issue 12, items 8 and 9: inputs that escaped the one-line contract, and reading untrusted model files safely.

A non-integer field in an HF config.json, `embed --batch-size 0`, `convert --format jaxbert` onto an existing
bundle; shard names in a weight index that point outside the model directory; `.bin` files on a torch whose
`torch.load(weights_only=True)` can be bypassed; one huge input line for `embed`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxbert
from jaxbert.cli import main
from jaxbert.errors import JaxbertError

transformers = pytest.importorskip("transformers")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def hf_dir(tmp_path) -> Path:
    """A tiny real Hugging Face BERT directory (config.json + model.safetensors), written by transformers."""
    config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37)
    out = tmp_path / "hf"
    transformers.BertModel(config).save_pretrained(out)
    return out


def _edit_config(directory: Path, **fields) -> None:
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


@pytest.mark.parametrize("field, value, wanted", [("num_hidden_layers", "two", "a whole number"),
                                                  ("hidden_dropout_prob", "0.1", "a number"),
                                                  ("num_attention_heads", 2.5, "a whole number"),
                                                  ("layer_norm_eps", "1e-12", "a number")])
def test_a_mistyped_hf_config_field_is_one_line_naming_it(hf_dir, capsys, tmp_path, field, value, wanted):
    _edit_config(hf_dir, **{field: value})
    with pytest.raises(JaxbertError) as err:
        jaxbert.load(hf_dir)
    assert f"config.json field {field} is {value!r}, which is not {wanted}" in str(err.value)
    assert main(["convert", "--from", str(hf_dir), "--to", str(tmp_path / "out")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxbert convert: error: ") and field in lines[0]


def _shard(hf_dir: Path, name: str, outside: Path | None = None) -> None:
    """Turn the single weights file into a one-shard checkpoint whose index names `name`."""
    weights = hf_dir / "model.safetensors"
    from safetensors.numpy import load_file

    keys = list(load_file(weights))
    target = outside if outside is not None else hf_dir / name
    weights.rename(target)
    (hf_dir / "model.safetensors.index.json").write_text(json.dumps({"metadata": {},
                                                                     "weight_map": dict.fromkeys(keys, name)}))


def test_a_sharded_checkpoint_with_plain_shard_names_loads(hf_dir):
    reference = jaxbert.load(hf_dir)
    _shard(hf_dir, "model-00001-of-00001.safetensors")
    loaded = jaxbert.load(hf_dir)
    np.testing.assert_array_equal(np.asarray(loaded.params["embeddings"]["word"]["embedding"]),
                                  np.asarray(reference.params["embeddings"]["word"]["embedding"]))


@pytest.mark.parametrize("escape", ["../outside.safetensors", "ABSOLUTE", "sub/../../outside.safetensors"])
def test_shard_names_that_leave_the_model_directory_are_refused(hf_dir, tmp_path, escape):
    outside = tmp_path / "outside.safetensors"
    name = str(outside) if escape == "ABSOLUTE" else escape
    _shard(hf_dir, name, outside=outside)  # the file exists out there: following the name would read it
    with pytest.raises(JaxbertError, match="which is not a file name inside") as err:
        jaxbert.load(hf_dir)
    assert "\n" not in str(err.value)


def test_pytorch_bin_files_are_refused_on_a_torch_that_cannot_load_them_safely(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37)
    out = tmp_path / "bin"
    model = transformers.BertModel(config)
    model.save_pretrained(out)
    (out / "model.safetensors").unlink()  # an old-style checkpoint: the pickle only
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    assert jaxbert.load(out).config.num_layers == 2  # torch 2.6+ reads it (weights_only=True)
    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    with pytest.raises(JaxbertError, match=r"torch 2\.5\.1\+cpu cannot read one safely .*CVE-2025-32434"):
        jaxbert.load(out)


def test_embed_batch_size_and_max_length_must_be_positive(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("hello\n")
    for flag in ("--batch-size", "--max-length"):
        rc = main(["embed", "--model", str(tmp_path), "--input", str(tmp_path / "t.txt"), "--output",
                   str(tmp_path / "e.npy"), flag, "0"])
        err = capsys.readouterr().err.strip()
        assert rc == 1 and err == f"jaxbert embed: error: {flag}=0: must be a positive number"
    assert not (tmp_path / "e.npy").exists()


def test_convert_to_jaxbert_never_replaces_an_existing_bundle(hf_dir, tmp_path, capsys):
    target = tmp_path / "bundle"
    assert main(["convert", "--from", str(hf_dir), "--to", str(target)]) == 0
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    _edit_config(hf_dir, hidden_act="relu")  # a different model, converted onto the same target
    capsys.readouterr()
    assert main(["convert", "--from", str(hf_dir), "--to", str(target)]) == 1
    assert capsys.readouterr().err.strip() == (f"jaxbert convert: error: {target} already exists; choose a new "
                                               "directory or remove it first")
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert jaxbert.load(target).config.hidden_act == "gelu"


# ---- one huge line for embed --------------------------------------------------------------------------
def test_a_long_text_is_clipped_to_exactly_the_tokens_the_model_sees(minilm_dir, tmp_path, capsys, caplog):
    from jaxbert.commands.embed import clip_text

    model = jaxbert.load(minilm_dir)
    words = [f"token{i % 97} word{i % 13}, and more text" for i in range(20_000)]
    text = " ".join(words)  # ~0.7 MB
    head, truncated = clip_text(text, model.tokenizer, 256)
    assert truncated and len(head) < len(text) // 50
    full = model.tokenizer([text], max_length=256, truncation=True)
    clipped = model.tokenizer([head], max_length=256, truncation=True)
    np.testing.assert_array_equal(full["input_ids"], clipped["input_ids"])
    assert clip_text("a short text", model.tokenizer, 256) == ("a short text", False)

    src = tmp_path / "texts.txt"
    src.write_text(f"short one\n{text}\nanother short one\n", encoding="utf-8")
    assert main(["embed", "--model", str(minilm_dir), "--input", str(src), "--output", str(tmp_path / "e.npy")]) == 0
    ours = np.load(tmp_path / "e.npy")
    np.testing.assert_allclose(ours[1], model.embed([text])[0], rtol=1e-5, atol=1e-6)  # same as the whole text
    assert "1 of 3 texts were longer than --max-length=256 tokens and were truncated to it" in caplog.text


@pytest.mark.slow
def test_a_10_mb_line_costs_embed_no_more_memory_than_a_short_one(minilm_dir, tmp_path):
    def peak_mb(line: str) -> float:
        src = tmp_path / "in.txt"
        src.write_text(line + "\n", encoding="utf-8")
        script = ("import resource, sys; from jaxbert.cli import main; "
                  f"rc = main(['embed', '--model', {str(minilm_dir)!r}, '--input', {str(src)!r}, '--output', "
                  f"{str(tmp_path / 'e.npy')!r}]); "
                  "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)")
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
                             env={**os.environ, "JAX_PLATFORMS": "cpu"}, cwd=REPO)
        assert out.returncode == 0, out.stderr[-3000:]
        return float(out.stdout.strip().splitlines()[-1])

    short = peak_mb("a short line of text")
    huge = peak_mb(" ".join(f"word{i % 1000}" for i in range(1_200_000)))  # ~10 MB
    print(json.dumps({"peak_rss_mb_short": short, "peak_rss_mb_10mb_line": huge}))
    assert huge - short < 150, (short, huge)
