"""XLNet's permutation LM objective: the masks by brute force, span targets against a port of the
reference sampler, and the model's two streams leaking nothing a target may not see."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxbert.config import ConfigError
from jaxbert.model import build_model
from jaxbert.model.xlnet import attention_masks
from jaxbert.objectives.base import build_objective
from jaxbert.objectives.plm import permutation_ranks, sample_spans, target_goal

CLS, SEP, PAD = 3, 4, 5
TINY = {"preset": "xlnet-base", "vocab_size": 61, "hidden_size": 16, "num_heads": 2, "num_layers": 2,
        "intermediate_size": 24, "pad_token_id": PAD, "hidden_dropout": 0.0, "attention_dropout": 0.0}


def _objective(**options):
    return build_objective(ml_collections.ConfigDict({"model": TINY, "objective": {"name": "plm", **options}}))


def _rows(batch: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token rows laid out like XLNet's: A <sep> B <sep> <cls>, some padded on the left."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(9, 61, (batch, length))
    mask = np.ones((batch, length), np.int32)
    for row in range(batch):
        pad = rng.randint(0, length // 3) if row % 2 else 0
        mask[row, :pad] = 0
        ids[row, :pad] = PAD
        ids[row, rng.randint(pad + 1, length - 2)] = SEP
        ids[row, -2], ids[row, -1] = SEP, CLS
    return ids, mask


def _order_before(rank: np.ndarray, real: np.ndarray, ordered: np.ndarray, i: int) -> set[int]:
    """Brute force: the real positions before i in the factorization order (context tokens first, in any
    order among themselves; then the targets and special tokens by their permutation rank)."""
    return {j for j in range(len(rank)) if real[j] and (not ordered[j] or rank[j] < rank[i])}


@pytest.mark.parametrize("length, perm_size, seed", [
    (9, 0, 1), (16, 8, 4),
    pytest.param(8, 0, 0, marks=pytest.mark.slow), pytest.param(12, 4, 2, marks=pytest.mark.slow)])
def test_every_target_attends_exactly_to_the_tokens_before_it(length, perm_size, seed):
    objective = _objective(partial_k=3, perm_size=perm_size)
    ids, mask = _rows(6, length, seed)
    draw = jax.jit(objective.draw)(jax.random.key(seed), jnp.asarray(ids), jnp.asarray(mask))
    content, query = (np.asarray(m) for m in attention_masks(jnp.asarray(mask) > 0, draw.perm_mask, 0))
    rank, targets = np.asarray(draw.rank), np.asarray(draw.is_target)
    checked = 0
    for b in range(ids.shape[0]):
        real = mask[b].astype(bool)
        special = np.isin(ids[b], (CLS, SEP)) & real
        assert not (targets[b] & ~real).any() and not (targets[b] & special).any()
        ordered = targets[b] | special
        assert sorted(rank[b][ordered]) == sorted(set(rank[b][ordered]))  # one order: no ties
        for i in np.flatnonzero(targets[b]):
            before = _order_before(rank[b], real, ordered, i)
            assert set(np.flatnonzero(query[b, i])) == before, (b, i)  # query stream: not itself
            assert set(np.flatnonzero(content[b, i])) == before | {i}, (b, i)  # content stream: itself too
            checked += 1
        for i in np.flatnonzero(real & ~targets[b]):  # context and special tokens never see a later target
            later = {j for j in np.flatnonzero(targets[b]) if not special[i] or rank[b][j] > rank[b][i]}
            assert not later & set(np.flatnonzero(content[b, i])), (b, i)
    assert checked > 0


def test_local_permutations_repeat_one_shuffle_per_chunk():
    ranks = np.asarray(permutation_ranks(jax.random.key(0), 3, 12, perm_size=4))
    for row in ranks:
        assert sorted(row) == list(range(12))
        chunks = row.reshape(3, 4)
        assert (chunks - chunks[:1] == np.array([[0], [4], [8]])).all()  # same offsets, chunks in order
    with pytest.raises(ConfigError, match="perm_size"):
        permutation_ranks(jax.random.key(0), 1, 10, perm_size=4)


def _reference_sample_mask(rng: np.random.RandomState, seg: np.ndarray, is_start: np.ndarray, goal: int,
                           max_gram: int = 5, alpha: int = 6, beta: int = 1) -> np.ndarray:
    """xlnet's data_utils.py `_sample_mask`, ported line by line (its end search tests seg[beg])."""
    seg_len = len(seg)
    mask = np.zeros(seg_len, bool)
    num_predict = 0
    ngrams = np.arange(1, max_gram + 1)
    pvals = 1.0 / np.arange(1, max_gram + 1)
    pvals /= pvals.sum()
    cur_len = 0
    while cur_len < seg_len:
        if num_predict >= goal:
            break
        n = min(rng.choice(ngrams, p=pvals), goal - num_predict)
        ctx_size = (n * alpha) // beta
        l_ctx = rng.choice(ctx_size)
        r_ctx = ctx_size - l_ctx
        beg = cur_len + l_ctx
        while beg < seg_len and not is_start[beg]:
            beg += 1
        if beg >= seg_len:
            break
        end, cnt_ngram = beg + 1, 1
        while end < seg_len:
            if is_start[beg]:
                cnt_ngram += 1
                if cnt_ngram > n:
                    break
            end += 1
        if end >= seg_len:
            break
        mask[beg:end] = True
        num_predict += end - beg
        cur_len = end + r_ctx
    while num_predict < goal:
        i = rng.randint(seg_len)
        if not mask[i]:
            mask[i] = True
            num_predict += 1
    return mask


def _runs(mask: np.ndarray) -> list[int]:
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def test_span_targets_follow_the_reference_sampler():
    """Same target counts as the reference, and the same span statistics on the same word boundaries."""
    rows, length = 400, 96
    rng = np.random.RandomState(0)
    starts = rng.rand(rows, length) < 0.7
    maskable = np.ones((rows, length), bool)
    goal = np.asarray(target_goal(jnp.asarray(maskable), 6, 16))
    assert (goal == 16).all()  # 96 // 6
    ours = np.asarray(sample_spans(jax.random.key(0), jnp.asarray(maskable), jnp.asarray(starts), jnp.asarray(goal)))
    theirs = np.stack([_reference_sample_mask(rng, np.zeros(length), starts[i], 16) for i in range(rows)])
    assert (ours.sum(1) == 16).all() and (theirs.sum(1) == 16).all()
    stats = {}
    for name, m in (("ours", ours), ("reference", theirs)):
        runs = [r for row in m for r in _runs(row)]
        first = [row[np.flatnonzero(np.diff(np.concatenate([[0], m[i].astype(int)])) == 1)]
                 for i, row in enumerate(starts)]
        stats[name] = (np.mean(runs), np.mean(np.concatenate(first)))
    # mean run length and the share of runs beginning at a word start, within sampling error
    assert abs(stats["ours"][0] - stats["reference"][0]) < 0.12, stats
    assert abs(stats["ours"][1] - stats["reference"][1]) < 0.04, stats
    assert stats["ours"][1] > 0.9, stats


def test_targets_skip_specials_and_padding_and_fill_the_slots():
    objective = _objective()  # K = 6
    ids, mask = _rows(8, 30, 5)
    draw = jax.jit(objective.draw)(jax.random.key(1), jnp.asarray(ids), jnp.asarray(mask))
    n = (mask.astype(bool) & ~np.isin(ids, (CLS, SEP))).sum(1)
    assert objective.slots(30) == 5
    np.testing.assert_array_equal(np.asarray(draw.weights).sum(1), np.minimum(5, np.maximum(1, n // 6)))
    positions, weights = np.asarray(draw.positions), np.asarray(draw.weights)
    for b in range(8):
        used = positions[b][weights[b] > 0]
        assert list(used) == sorted(used) and set(used) == set(np.flatnonzero(np.asarray(draw.is_target)[b]))
        np.testing.assert_array_equal(np.asarray(draw.labels)[b][weights[b] > 0], ids[b][used])
        np.testing.assert_array_equal(np.asarray(draw.target_mapping)[b].argmax(-1)[weights[b] > 0], used)


@pytest.mark.slow
def test_the_query_stream_never_sees_its_own_token_or_later_ones():
    """Through the whole model: changing a target's own token leaves its logits as they were, and so do
    changes to any token later in the factorization order; an earlier target's token does change them."""
    objective = _objective(partial_k=2)
    params = jax.jit(objective.init)(jax.random.key(0))
    ids, mask = _rows(2, 12, 7)
    draw = jax.jit(objective.draw)(jax.random.key(3), jnp.asarray(ids), jnp.asarray(mask))
    model = build_model(objective.model_config)
    run = jax.jit(lambda x: model.apply({"params": params}, x, mask, perm_mask=draw.perm_mask,
                                        target_mapping=draw.target_mapping).logits["lm"])
    base = np.asarray(run(jnp.asarray(ids)))
    rank, positions, weights = (np.asarray(x) for x in (draw.rank, draw.positions, draw.weights))
    changed_by_earlier = 0
    for b in range(ids.shape[0]):
        for slot in np.flatnonzero(weights[b]):
            i = positions[b, slot]
            for j in np.flatnonzero(mask[b]):
                other = ids.copy()
                other[b, j] = 9 + (ids[b, j] - 8) % 52
                diff = np.abs(np.asarray(run(jnp.asarray(other)))[b, slot] - base[b, slot]).max()
                if j == i or rank[b, j] > rank[b, i]:
                    assert diff == 0.0, (b, i, j)
                elif rank[b, j] >= 0:
                    changed_by_earlier += diff > 1e-6
    assert changed_by_earlier > 0


def test_bad_options_are_one_line_errors():
    with pytest.raises(ConfigError, match="config.objective.partial_k"):
        _objective(partial_k=0)
    with pytest.raises(ConfigError, match="config.objective.pair_task"):
        _objective(pair_task="sop")
    with pytest.raises(ConfigError, match="trains XLNet"):
        build_objective(ml_collections.ConfigDict({"model": "bert-tiny", "objective": {"name": "plm"}}))
