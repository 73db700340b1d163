"""The feature-based experiment's parts: the right layers at each word's first sub-token, a tagger that
learns, and the report (table + bar chart). The full run is a script (see README "Experiments")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import jaxbert
from jaxbert.data.conll import STANDARD_TAGS, encode_conll, first_pieces, read_conll
from jaxbert.experiments.feature_choice import (
    choice_features,
    extract_word_features,
    format_table,
    save_chart,
    tag_sentences,
    train_tagger,
)
from tests.finetune_fixtures import conll_sentences


@pytest.fixture(scope="module")
def minilm(minilm_dir: Path) -> jaxbert.Pretrained:
    return jaxbert.load(minilm_dir)


@pytest.mark.slow
def test_features_are_the_chosen_layers_at_first_sub_tokens(minilm, shared_data: Path, tmp_path: Path) -> None:
    sentences = read_conll(conll_sentences(shared_data / "conll2003" / "train.txt", tmp_path / "c.txt", 4))
    feats = extract_word_features(minilm, sentences, max_length=64, batch_size=4)
    enc = encode_conll(sentences, minilm.tokenizer, STANDARD_TAGS, max_length=64)
    for i, sentence in enumerate(sentences):
        first = np.flatnonzero(first_pieces(enc.word_ids[i]))
        # The API's per-token features of the same text, at the words' first pieces.
        text = " ".join(sentence.words)
        for choice, width in (("last", 384), ("second_to_last", 384), ("concat_last_four", 4 * 384),
                              ("sum_all", 384), ("embeddings", 384)):
            ours = choice_features(feats.states[i], choice)
            reference = minilm.features([text], layers=choice, max_length=64)[0][first]
            assert ours.shape == (len(first), width)
            # the layers are stored in float16 (half the memory): equal to its ~3 significant digits
            np.testing.assert_allclose(ours, reference, rtol=5e-3, atol=5e-3)
        assert [STANDARD_TAGS[t] for t in feats.tags[i]] == list(sentence.tags)
        assert list(feats.word_index[i]) == list(range(len(sentence.words)))


@pytest.mark.slow
def test_tagger_learns_separable_word_features() -> None:
    from types import SimpleNamespace

    from jaxbert.evaluate import task_metrics

    rng = np.random.default_rng(0)
    tags = [rng.integers(0, 9, rng.integers(3, 9)).astype(np.int32) for _ in range(48)]
    # Each word's feature is a noisy one-hot of its tag (valid IOB or not, the tagger just has to read it).
    feats = [np.eye(9, dtype=np.float32)[t] + 0.05 * rng.normal(size=(len(t), 9)).astype(np.float32) for t in tags]
    opts = SimpleNamespace(hidden=16, layers=1, dropout=0.0, lr=2e-2, batch_size=16, epochs=12)
    tagger, params, width = train_tagger(feats, tags, opts, seed=0)
    predicted = tag_sentences(tagger, params, feats, [np.arange(len(t)) for t in tags], [len(t) for t in tags], width)
    gold = [[STANDARD_TAGS[i] for i in t] for t in tags]
    assert sum(p == g for ps, gs in zip(predicted, gold, strict=True) for p, g in zip(ps, gs, strict=True)) / sum(
        len(g) for g in gold) > 0.95
    assert task_metrics("conll2003", predicted, gold)["entity_f1"] > 0.9


def test_report_table_and_chart(tmp_path: Path) -> None:
    results = {"train_sentences": 10, "feature_based": {c: {"entity_f1": 0.5 + i / 100} for i, c in enumerate(
        ("embeddings", "last", "second_to_last", "sum_last_four", "concat_last_four", "sum_all"))},
        "fine_tuning": {"entity_f1": 0.9}}
    table = format_table(results).splitlines()
    assert len(table) == 2 + 7 and table[-1].endswith("90.00") and "concat last four" in table[-3]
    png = save_chart(results, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
