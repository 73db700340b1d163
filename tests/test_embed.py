"""`jaxbert embed`: sentence embeddings written to .npy batch by batch, equal to sentence-transformers' for
the real all-MiniLM-L6-v2 checkpoint; a non-UTF-8 line is a one-line error naming the line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import jaxbert
from jaxbert import cli
from jaxbert.api import Pretrained


def _sst2_sentences(shared_data: Path, count: int) -> list[str]:
    lines = (shared_data / "glue" / "sst2" / "train.tsv").read_text(encoding="utf-8").split("\n")[1:count + 1]
    return [line.split("\t")[0].strip() for line in lines]


def test_embed_matches_sentence_transformers_in_bounded_batches(minilm_dir: Path, shared_data: Path, tmp_path: Path,
                                                                 monkeypatch, capsys) -> None:
    from sentence_transformers import SentenceTransformer

    texts = _sst2_sentences(shared_data, 64)
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    calls: list[int] = []
    original = Pretrained.embed

    def counting(self, batch, *args, **kwargs):
        calls.append(len(batch))
        return original(self, batch, *args, **kwargs)

    monkeypatch.setattr(Pretrained, "embed", counting)
    out = tmp_path / "emb.npy"
    code = cli.main(["embed", "--model", str(minilm_dir), "--input", str(src), "--output", str(out), "--normalize",
                     "--batch-size", "16"])
    assert code == 0 and "wrote 64 embeddings of size 384" in capsys.readouterr().out
    # Host memory is bounded by the batch: the texts are read and embedded 16 at a time.
    assert calls == [16, 16, 16, 16]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npy", "texts.txt"]  # no partial file left

    ours = np.load(out)
    assert ours.shape == (64, 384) and ours.dtype == np.float32
    reference = SentenceTransformer(str(minilm_dir), device="cpu").encode(texts, batch_size=16)
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= 0.9999, cosine.min()
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_embed_pooling_options_agree_with_the_api(minilm_dir: Path, tmp_path: Path) -> None:
    texts = ["The movie was great.", "A dull, lifeless film.", "ok"]
    src = tmp_path / "t.txt"
    src.write_text("\n".join(texts), encoding="utf-8")  # no trailing newline: the last line still counts
    model = jaxbert.load(minilm_dir)
    for pooling in ("cls", "max"):
        out = tmp_path / f"{pooling}.npy"
        assert cli.main(["embed", "--model", str(minilm_dir), "--input", str(src), "--output", str(out),
                         "--pooling", pooling, "--batch-size", "2"]) == 0
        np.testing.assert_allclose(np.load(out), model.embed(texts, pooling=pooling), atol=1e-5)


def test_non_utf8_line_is_a_one_line_error(minilm_dir: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "bad.txt"
    src.write_bytes(b"fine line\nanother\ncaf\xe9 latin-1 line\nlast\n")
    out = tmp_path / "emb.npy"
    code = cli.main(["embed", "--model", str(minilm_dir), "--input", str(src), "--output", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("jaxbert")]  # not tqdm's
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("jaxbert embed: error:") and f"{src}:3: not valid UTF-8" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt"]  # nothing written half-way


@pytest.mark.parametrize("missing", ["input", "model"])
def test_missing_paths_are_clear_errors(minilm_dir: Path, tmp_path: Path, capsys, missing: str) -> None:
    src = tmp_path / "t.txt"
    src.write_text("hello\n")
    args = {"model": str(minilm_dir), "input": str(src)}
    args[missing] = str(tmp_path / "absent")
    code = cli.main(["embed", "--model", args["model"], "--input", args["input"], "--output", str(tmp_path / "o.npy")])
    err = capsys.readouterr().err
    assert code == 1 and "absent" in err and len(err.strip().splitlines()) == 1
