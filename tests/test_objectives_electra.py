"""ELECTRA objective: tied embeddings, replaced-token labels, Gumbel sampling, RTD metrics, export."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from scipy import stats
from sklearn.metrics import log_loss, precision_score, recall_score

import jaxbert
from jaxbert.config import ConfigError, ModelConfig
from jaxbert.data.masking import MaskingConfig
from jaxbert.objectives.base import build_objective
from jaxbert.objectives.electra import (
    SHARED_EMBEDDINGS,
    Electra,
    generator_params,
    gumbel_sample,
    replace_at,
    replaced_token_metrics,
)

VOCAB, MASK, SPECIAL = 64, 4, (0, 1, 2, 3, 4)
DISC = ModelConfig(family="electra", vocab_size=VOCAB, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                   embedding_size=16, max_position_embeddings=32, heads=("rtd",), pooler=False, scan_layers=False)
GEN = ModelConfig(family="electra", vocab_size=VOCAB, hidden_size=8, num_layers=1, num_heads=1, intermediate_size=16)


def _objective(**kw) -> Electra:
    masking = MaskingConfig(mask_token_id=MASK, vocab_size=VOCAB, special_ids=SPECIAL, max_predictions=4,
                            mask_replace_prob=0.85, random_replace_prob=0.0)
    return Electra(DISC, GEN, masking, **kw)


@pytest.fixture(scope="module")
def objective() -> Electra:
    return _objective()


@pytest.fixture(scope="module")
def params(objective):
    return jax.jit(objective.init)(jax.random.key(0))


@pytest.fixture(scope="module")
def batch():
    ids = np.random.default_rng(0).integers(5, VOCAB, (4, 16)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    attention = np.ones_like(ids)
    attention[1, 12:] = 0  # a padded row
    ids[1, 12:] = 0
    return {"input_ids": jnp.asarray(ids), "attention_mask": jnp.asarray(attention)}


@pytest.fixture(scope="module")
def loss_parts(objective):
    """jit: (metrics, grad of the generator's MLM loss, grad of the RTD loss) in one compile."""

    def parts(p, b, rng):
        def two_losses(q):
            metrics = objective.loss(q, {}, b, rng, deterministic=True)[1]
            return jnp.stack([metrics["mlm_loss"], metrics["rtd_loss"]]), metrics

        _, pullback, metrics = jax.vjp(two_losses, p, has_aux=True)
        grads = jax.vmap(pullback)(jnp.eye(2))[0]  # one batched backward pass for both losses
        part = lambda i: jax.tree_util.tree_map(lambda g: g[i], grads)
        return metrics, part(0), part(1)

    return jax.jit(parts)


def _leaves_with_paths(tree):
    return {"/".join(str(getattr(k, "key", k)) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_one_copy_of_the_shared_embeddings(objective, params):
    gen = params["generator"]
    assert set(gen.get("embeddings", {})) == {"projection"}  # its own 16 -> 8 projection only
    merged = generator_params(params)
    for name in SHARED_EMBEDDINGS:
        assert merged["embeddings"][name] is params["discriminator"]["embeddings"][name]
    word_tables = [k for k, v in _leaves_with_paths(params).items() if v.shape == (VOCAB, DISC.embed_dim)]
    assert word_tables == ["discriminator/embeddings/word/embedding"]
    # The param axes mirror the param tree exactly (sharding relies on it).
    assert jax.tree_util.tree_structure(objective.param_axes(), is_leaf=lambda x: isinstance(
        x, jax.sharding.PartitionSpec)) == jax.tree_util.tree_structure(params)


@pytest.mark.slow
def test_both_losses_train_the_shared_embeddings(objective, params, batch, loss_parts):
    _, g_mlm, g_rtd = loss_parts(params, batch, jax.random.key(1))
    shared = ("discriminator", "embeddings", "word", "embedding")
    pick = lambda t: t[shared[0]][shared[1]][shared[2]][shared[3]]
    assert float(jnp.abs(pick(g_mlm)).sum()) > 0
    assert float(jnp.abs(pick(g_rtd)).sum()) > 0
    # No gradient flows through the sampled tokens: the RTD loss never reaches generator-only params,
    # and the MLM loss never reaches discriminator-only params.
    assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree_util.tree_leaves(g_rtd["generator"]))
    assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree_util.tree_leaves(g_mlm["discriminator"]["encoder"]))
    # One SGD step on either loss alone moves the one shared table.
    for grads in (g_mlm, g_rtd):
        updates, _ = optax.sgd(0.1).update(grads, optax.sgd(0.1).init(params))
        stepped = optax.apply_updates(params, updates)
        assert not np.allclose(pick(stepped), pick(params))


def test_labels_are_sampled_differs_from_original(objective, params, batch):
    # A generator whose output bias makes token 7 certain: every masked slot samples 7, so a masked 7
    # is labelled original (0) and every other masked token replaced (1).
    p = jax.tree_util.tree_map(lambda x: x, params)
    bias = np.zeros(VOCAB, np.float32)
    bias[7] = 1e4
    p["generator"]["mlm_head"]["bias"] = jnp.asarray(bias)
    ids = np.asarray(batch["input_ids"]).copy()
    ids[:, 1:5] = 7
    b = {**batch, "input_ids": jnp.asarray(ids)}
    c = jax.jit(objective.corrupt, static_argnames="deterministic")(p, b, jax.random.key(3), deterministic=True)
    selected = np.asarray(c.masked.weights) > 0
    fake, labels = np.asarray(c.fake_ids), np.asarray(c.labels)
    assert selected.sum() > 0
    assert (np.asarray(c.sampled)[np.asarray(c.masked.masked_weights) > 0] == 7).all()
    np.testing.assert_array_equal(fake[selected], 7)
    np.testing.assert_array_equal(fake[~selected], ids[~selected])
    np.testing.assert_array_equal(labels, (fake != ids) & (np.asarray(b["attention_mask"]) > 0))
    assert not labels[~selected].any()
    assert (labels[selected] == (ids[selected] != 7)).all()
    assert (selected & (ids == 7)).any() and (selected & (ids != 7)).any()  # both cases occurred


def test_replace_at_leaves_unused_slots_alone():
    ids = jnp.asarray([[9, 10, 11, 12]])
    # Slot 0 is real (position 0); slots 1-2 are unused (position 0, weight 0) and must not clobber it.
    out = replace_at(ids, jnp.asarray([[0, 0, 0]]), jnp.asarray([[40, 41, 42]]), jnp.asarray([[1.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(np.asarray(out), [[40, 10, 11, 12]])


def test_gumbel_samples_follow_the_softmax():
    logits = jnp.asarray([2.0, 1.0, 0.0, -1.0, 0.5])
    n = 20000
    draws = gumbel_sample(jax.random.key(0), jnp.broadcast_to(logits, (n, 5)), temperature=1.0)
    counts = np.bincount(np.asarray(draws), minlength=5)
    softmax = lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum()
    assert stats.chisquare(counts, softmax(np.asarray(logits, np.float64)) * n).pvalue > 1e-3
    # Temperature 0.5 sharpens to softmax(2 · logits).
    draws = gumbel_sample(jax.random.key(1), jnp.broadcast_to(logits, (n, 5)), temperature=0.5)
    counts = np.bincount(np.asarray(draws), minlength=5)
    assert stats.chisquare(counts, softmax(2 * np.asarray(logits, np.float64)) * n).pvalue > 1e-3


def test_rtd_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (3, 10)).astype(np.float32)
    labels = rng.random((3, 10)) < 0.3
    weights = (rng.random((3, 10)) < 0.8).astype(np.float32)
    m = replaced_token_metrics(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(weights))
    y, w, prob = labels.ravel(), weights.ravel(), 1 / (1 + np.exp(-logits.ravel()))
    pred = logits.ravel() > 0
    np.testing.assert_allclose(float(m["rtd_loss"]), log_loss(y, prob, sample_weight=w), rtol=1e-5)
    np.testing.assert_allclose(float(m["disc_precision"]), precision_score(y, pred, sample_weight=w), rtol=1e-6)
    np.testing.assert_allclose(float(m["disc_recall"]), recall_score(y, pred, sample_weight=w), rtol=1e-6)
    np.testing.assert_allclose(float(m["disc_accuracy"]), ((y == pred) * w).sum() / w.sum(), rtol=1e-6)


@pytest.mark.slow
def test_loss_is_weighted_sum_and_decreases(objective, params, batch, loss_parts):
    metrics, _, _ = loss_parts(params, batch, jax.random.key(5))
    np.testing.assert_allclose(float(metrics["loss"]), float(metrics["mlm_loss"]) + 50 * float(metrics["rtd_loss"]),
                               rtol=1e-6)
    tx = optax.adam(1e-2)

    @jax.jit
    def update(p, state, g_mlm, g_rtd):
        grads = jax.tree_util.tree_map(lambda a, b: a + 50 * b, g_mlm, g_rtd)  # d(loss) = d(mlm) + 50 d(rtd)
        updates, state = tx.update(grads, state, p)
        return optax.apply_updates(p, updates), state

    p, state, losses = params, tx.init(params), []
    for step in range(12):
        m, g_mlm, g_rtd = loss_parts(p, batch, jax.random.key(100 + step))
        p, state = update(p, state, g_mlm, g_rtd)
        losses.append(float(m["loss"]))
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses


def test_workdir_loads_as_the_discriminator(objective, params, batch, tmp_path):
    from jaxbert.train.checkpoint import Checkpointer, checkpoint_meta
    from jaxbert.train.state import TrainState

    ckpt = Checkpointer(tmp_path, async_save=False)
    state = TrainState(step=jnp.asarray(1, jnp.int32), params=params, opt_state=optax.sgd(0.1).init(params))
    ckpt.save(state, checkpoint_meta(objective, {"objective": {"name": "electra"}}))
    ckpt.close()
    loaded = jaxbert.load(tmp_path)
    assert loaded.config == objective.model_config and loaded.config.heads == ("rtd",)
    out = loaded(batch["input_ids"], batch["attention_mask"])
    assert set(out.logits) == {"rtd"} and out.logits["rtd"].shape == batch["input_ids"].shape
    for a, b in zip(jax.tree_util.tree_leaves(loaded.params), jax.tree_util.tree_leaves(objective.export(params)),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _config(**objective) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"model": DISC.to_dict(), "objective": {"name": "electra", **objective}})


def test_factory_ties_generator_fields_to_the_discriminator():
    config = _config(generator={**GEN.to_dict(), "vocab_size": 99, "max_position_embeddings": 512},
                     disc_weight=20.0, max_predictions=4)
    config.model.compute_dtype = "bfloat16"
    obj = build_objective(config)
    assert isinstance(obj, Electra) and obj.disc_weight == 20.0
    gen = obj.generator_config
    assert (gen.vocab_size, gen.max_position_embeddings, gen.embed_dim) == (VOCAB, 32, DISC.embed_dim)
    assert gen.heads == ("mlm",) and obj.model_config.heads == ("rtd",)
    assert gen.compute_dtype == "bfloat16"  # one dtype override sets both models
    assert (obj.masking.mask_replace_prob, obj.masking.random_replace_prob) == (0.85, 0.0)
    with pytest.raises(ConfigError, match="objective.generator"):
        build_objective(_config())


@pytest.mark.parametrize("size,generator", [(0.25, "electra-small-generator"), (1 / 3, "electra-base-generator"),
                                            (0.25, "electra-large-generator")])
def test_generator_size_builds_the_papers_generators(size, generator):
    """generator_size as the original code's generator_hidden_size (get_generator_config): hidden H·size, all
    layers, intermediate 4·hidden, hidden // 64 heads — the generators of the paper's Table 6."""
    from jaxbert.config import get_preset
    from jaxbert.objectives.electra import generator_from_fraction

    disc = get_preset(generator.replace("-generator", ""))
    config = ml_collections.ConfigDict({"model": disc.to_dict(), "objective": {
        "name": "electra", "generator_size": size, "generator": "", "max_predictions": 20}})
    got = build_objective(config).generator_config
    want = get_preset(generator)
    for field in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "embed_dim"):
        assert getattr(got, field) == getattr(want, field), field
    half = generator_from_fraction(disc, size, layer_fraction=0.5)
    assert half.num_layers == disc.num_layers // 2
    with pytest.raises(ConfigError, match="generator_size"):
        generator_from_fraction(disc, 1.5)
    both = ml_collections.ConfigDict({"model": disc.to_dict(), "objective": {
        "name": "electra", "generator_size": size, "generator": generator}})
    with pytest.raises(ConfigError, match="not both"):
        build_objective(both)
    with pytest.raises(ConfigError, match="temperature"):
        _objective(temperature=0.0)
