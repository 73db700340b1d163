"""Bucketed shapes: a notebook session compiles a handful of programs, and padding never changes a result."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbert
from jaxbert.inference import bucket, pad_inputs

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    """Counts XLA backend compiles (every jit cache miss and every eager op's first run) while active."""

    def __init__(self) -> None:
        self.count = 0
        self.active = False
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **kwargs) -> None:
        if self.active and event == COMPILE_EVENT:
            self.count += 1

    def __enter__(self) -> CompileCounter:
        self.count, self.active = 0, True
        return self

    def __exit__(self, *exc) -> None:
        self.active = False


@pytest.fixture(scope="module")
def counter() -> CompileCounter:
    return CompileCounter()


@pytest.fixture(scope="module")
def tiny(minilm_dir: Path) -> jaxbert.Pretrained:
    """A small random BERT with MiniLM's tokenizer: shapes (and so compiles) as any model's, compiled fast."""
    config = jaxbert.ModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                                 max_position_embeddings=512)
    return jaxbert.init(config, seed=0, tokenizer=minilm_dir)


@pytest.fixture(scope="module")
def sentences(shared_data: Path) -> list[str]:
    lines = (shared_data / "glue/sst2/train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0].strip() for line in lines[:64]]


def test_bucket_sizes():
    assert [bucket(n) for n in (1, 2, 3, 5, 17, 33)] == [1, 2, 4, 8, 32, 64]
    assert bucket(20, cap=24) == 24 and bucket(24, cap=24) == 24 and bucket(30, cap=24) == 30
    assert [bucket(n, 128, 16) for n in (1, 16, 17, 100, 128)] == [16, 16, 32, 128, 128]
    assert [bucket(n, 32, base=4) for n in (1, 2, 4, 5, 17, 32)] == [1, 4, 4, 16, 32, 32]
    padded = pad_inputs({"input_ids": np.array([[5, 6, 0]]), "attention_mask": np.array([[1, 1, 0]])}, 3, 5, 0)
    np.testing.assert_array_equal(padded["input_ids"], [[5, 6, 0, 0, 0]] * 3)
    np.testing.assert_array_equal(padded["attention_mask"], [[1, 1, 0, 0, 0]] * 3)


@pytest.mark.slow
def test_a_notebook_loop_of_embed_compiles_at_most_8_times(tiny, sentences, counter):
    p = tiny
    with counter:
        for n in range(1, 65):
            p.embed(sentences[:n])
    print(f"\n{counter.count} compiles for p.embed over 1..64 texts")
    assert counter.count <= 8
    with counter:
        for n in (1, 7, 64):  # the same shapes again: nothing new to compile
            p.embed(sentences[:n])
    assert counter.count == 0


@pytest.mark.slow
def test_bucketed_results_equal_unpadded_ones(tiny, sentences):
    """Padding rows and tokens changes nothing: embeddings, features and a direct call equal the model run
    on exactly the encoded texts (no extra rows or tokens)."""
    from jaxbert.api import pool
    from jaxbert.model import EncoderModel

    p = tiny
    texts = sentences[:5]
    enc = p.tokenizer(texts, max_length=128, padding="longest", truncation=True)
    exact = EncoderModel(p.config).apply({"params": p.params}, enc["input_ids"], enc["attention_mask"],
                                         enc["token_type_ids"], output_hidden_states=True)
    want = np.asarray(pool(exact.last_hidden_state, enc["attention_mask"], "mean"))
    np.testing.assert_allclose(p.embed(texts), want, atol=2e-5)
    for row, feat, mask in zip(np.asarray(exact.hidden_states[-1]), p.features(texts), enc["attention_mask"],
                               strict=True):
        np.testing.assert_allclose(feat, row[mask.astype(bool)], atol=2e-5)
    out = p(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], output_hidden_states=True)
    assert out.last_hidden_state.shape == exact.last_hidden_state.shape and len(out.hidden_states) == 3
    real = enc["attention_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(out.last_hidden_state)[real], np.asarray(exact.last_hidden_state)[real],
                               atol=2e-5)
    np.testing.assert_allclose(np.asarray(out.pooler_output), np.asarray(exact.pooler_output), atol=2e-5)
    # Direct calls share the bucket programs: batches of 5, 6 and 7 rows of one length compile the model once
    # (cutting the outputs back to [B, T] compiles only small slices).
    from jaxbert.inference import _forward

    before = _forward._cache_size()
    for rows in (5, 6, 7):
        ids = np.repeat(enc["input_ids"][:1], rows, axis=0)
        assert p(ids, np.ones_like(ids)).last_hidden_state.shape[0] == rows
    assert _forward._cache_size() - before <= 1
