"""DistilBERT's frequency-smoothed masking: count^-0.7 probabilities and a selection that follows them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbert.data.masking import MaskingConfig, mask_tokens, select_tokens
from jaxbert.data.token_counts import count_tokens, load_counts, save_counts, smoothed_token_probs
from jaxbert.errors import JaxbertError
from jaxbert.objectives.masking_setup import token_selection_probs


def test_smoothed_probabilities_are_count_to_the_minus_0_7_normalised():
    counts = np.array([500, 0, 7, 1, 12345, 3, 0, 99])
    special = (0, 3)
    got = smoothed_token_probs(counts, 0.7, special)
    # train.py: np.maximum(counts, 1) ** -0.7, special ids set to 0; then normalised (torch.multinomial's weights).
    want = np.array([0.0, 1.0, 7 ** -0.7, 0.0, 12345 ** -0.7, 3 ** -0.7, 1.0, 99 ** -0.7])
    want /= want.sum()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.sum() == pytest.approx(1.0) and got[list(special)].sum() == 0.0
    np.testing.assert_allclose(smoothed_token_probs(counts, 0.0, special)[[1, 2, 4]], 1 / 6)  # no smoothing: uniform
    with pytest.raises(JaxbertError, match="mask_smoothing"):
        smoothed_token_probs(counts, -1.0)


def test_counts_are_a_bincount_of_real_tokens(tmp_path):
    batches = [{"input_ids": np.array([[5, 6, 6, 0], [7, 5, 0, 0]]), "attention_mask": np.array([[1, 1, 1, 0],
                                                                                                 [1, 1, 0, 0]])},
               {"input_ids": np.array([[6, 6, 6, 6]]), "attention_mask": np.ones((1, 4), int)}]
    counts = count_tokens(batches, 10)
    np.testing.assert_array_equal(counts, [0, 0, 0, 0, 0, 2, 6, 1, 0, 0])
    path = save_counts(counts, tmp_path / "counts.npy")
    np.testing.assert_array_equal(load_counts(path, 10), counts)
    with pytest.raises(JaxbertError, match="token_counts"):
        load_counts(path, 11)
    with pytest.raises(JaxbertError, match="outside the vocabulary"):
        count_tokens([{"input_ids": np.array([[12]])}], 10)


def test_weighted_selection_follows_the_probabilities():
    """One token picked per row: each position's frequency matches its weight share within 6 sigma."""
    weights = np.array([1.0, 2.0, 4.0, 8.0, 0.5, 0.0], np.float32)  # the last position is not maskable
    rows = 40_000
    maskable = jnp.asarray(np.broadcast_to(weights > 0, (rows, 6)))
    picked = select_tokens(jax.random.key(0), maskable, jnp.ones(rows, jnp.int32), 1,
                           jnp.asarray(np.broadcast_to(weights, (rows, 6))))
    picked = np.asarray(picked)
    assert (picked.sum(1) == 1).all() and not picked[:, 5].any()
    share = weights[:5] / weights[:5].sum()
    freq = picked[:, :5].mean(0)
    sigma = np.sqrt(share * (1 - share) / rows)
    assert (np.abs(freq - share) < 6 * sigma).all(), (freq, share)


def test_weighted_selection_draws_without_replacement_in_sequence():
    """Two of three picked: P({a, b}) = w_a/W · w_b/(W − w_a) + w_b/W · w_a/(W − w_b) (sequential draws)."""
    w = np.array([1.0, 3.0, 6.0], np.float32)
    rows = 40_000
    picked = np.asarray(select_tokens(jax.random.key(1), jnp.ones((rows, 3), bool), jnp.full(rows, 2, jnp.int32), 2,
                                      jnp.asarray(np.broadcast_to(w, (rows, 3)))))
    assert (picked.sum(1) == 2).all()
    total = w.sum()
    for left_out in range(3):
        a, b = [i for i in range(3) if i != left_out]
        p = w[a] / total * w[b] / (total - w[a]) + w[b] / total * w[a] / (total - w[b])
        freq = (~picked[:, left_out]).mean()
        assert abs(freq - p) < 6 * np.sqrt(p * (1 - p) / rows), (left_out, freq, p)


def test_masking_with_smoothed_probabilities_prefers_rare_tokens(tmp_path):
    """End to end through the objective options: a token 1000x rarer is masked 1000^0.7 ≈ 126x more often."""
    vocab = 12
    counts = np.full(vocab, 1000)
    counts[7] = 1
    path = save_counts(counts, tmp_path / "counts.npy")
    masking = MaskingConfig(mask_token_id=4, vocab_size=vocab, special_ids=(0, 1, 2, 3, 4), max_predictions=1,
                            mask_prob=0.01)
    probs = token_selection_probs({"mask_smoothing": 0.7, "token_counts": str(path)}, masking)
    assert probs is not None and probs[:5].sum() == 0
    assert token_selection_probs({"mask_smoothing": 0.0}, masking) is None
    ids = jnp.asarray(np.tile([5, 6, 7, 8, 9, 10, 11, 5], (20_000, 1)), jnp.int32)
    drawn = mask_tokens(jax.random.key(2), ids, masking, selection_weights=jnp.asarray(probs)[ids])
    weights = np.asarray(drawn.weights)
    assert (weights.sum(1) == 1).all()
    share_rare = float(weights[:, 2].mean())
    ratio = probs[7] / probs[5]
    want = ratio / (ratio + 7)  # one rare token among 8 maskable ones
    assert abs(share_rare - want) < 6 * np.sqrt(want * (1 - want) / 20_000), (share_rare, want)
