"""The MLM objective (BERT MLM+NSP, RoBERTa MLM, ALBERT MLM+SOP) against transformers' pretraining losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxbert.config import ConfigError
from jaxbert.data.masking import mask_tokens
from jaxbert.objectives.base import available_objectives, build_objective
from jaxbert.objectives.masking_setup import word_start_tables, word_starts_on_device
from jaxbert.objectives.mlm import PAIR_LABELS, attention_mask_of

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TINY = {"num_layers": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "vocab_size": 120,
        "max_position_embeddings": 40}
FAMILIES = {
    "bert": ({"preset": "bert-base", **TINY}, "nsp"),
    "roberta": ({"preset": "roberta-base", **TINY, "max_position_embeddings": 42}, "none"),
    "albert": ({"preset": "albert-base", **TINY, "embedding_size": 16}, "sop"),
}


def objective_for(family: str, max_predictions: int = 5):
    model, pair = FAMILIES[family]
    config = ml_collections.ConfigDict({"model": model, "objective": {
        "name": "mlm", "pair_task": pair, "max_predictions": max_predictions}})
    return build_objective(config)


def random_batch(objective, batch: int = 4, seq: int = 24, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cfg = objective.model_config
    lengths = rng.integers(seq // 2, seq + 1, batch)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    ids = rng.integers(5, cfg.vocab_size, (batch, seq))
    ids = np.where(mask == 1, ids, cfg.pad_token_id).astype(np.int32)
    out = {"input_ids": ids, "attention_mask": mask}
    if cfg.type_vocab_size > 0:
        second = (np.arange(seq)[None, :] >= lengths[:, None] // 2) & (mask == 1) & (cfg.type_vocab_size > 1)
        out["token_type_ids"] = second.astype(np.int32)
    if objective.pair_task != "none":
        out[PAIR_LABELS[objective.pair_task]] = rng.integers(0, 2, batch).astype(np.int32)
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_loss_and_accuracy_match_transformers(family, tmp_path):
    from jaxbert.interop.hf import export_hf

    objective = objective_for(family)
    params = jax.jit(objective.init)(jax.random.key(3))
    batch = random_batch(objective)
    rng = jax.random.key(11)
    loss_fn = jax.jit(lambda p, b, r: objective.loss(p, {}, b, r, deterministic=True))
    loss, metrics = loss_fn(params, {k: jnp.asarray(v) for k, v in batch.items()}, rng)

    # The same masking draw the objective made from its rng.
    masked = mask_tokens(jax.random.split(rng)[0], jnp.asarray(batch["input_ids"]), objective.masking,
                         attention_mask=jnp.asarray(batch["attention_mask"]))
    labels = np.where(np.asarray(masked.weights) > 0, np.asarray(masked.labels), -100)
    assert (labels != -100).sum() > 0

    model = transformers.AutoModelForPreTraining.from_pretrained(export_hf(objective.model_config, params,
                                                                           tmp_path / "hf"))
    model.eval()
    long = lambda x: torch.tensor(np.asarray(x, np.int64))
    kwargs = {"input_ids": long(masked.inputs), "attention_mask": long(batch["attention_mask"]),
              "labels": long(labels)}
    if "token_type_ids" in batch:
        kwargs["token_type_ids"] = long(batch["token_type_ids"])
    hf_pair = {"nsp": "next_sentence_label", "sop": "sentence_order_label"}.get(objective.pair_task)
    if hf_pair:
        kwargs[hf_pair] = long(batch[PAIR_LABELS[objective.pair_task]])
    with torch.no_grad():
        out = model(**kwargs)
    np.testing.assert_allclose(float(loss), float(out.loss), rtol=1e-5, atol=1e-5)

    logits = (out.prediction_logits if hasattr(out, "prediction_logits") else out.logits).numpy()
    where = labels != -100
    accuracy = (logits.argmax(-1)[where] == labels[where]).mean()
    np.testing.assert_allclose(float(metrics["mlm_accuracy"]), accuracy, rtol=1e-6)
    if hf_pair:
        pair_logits = (out.seq_relationship_logits if family == "bert" else out.sop_logits).numpy()
        pair_acc = (pair_logits.argmax(-1) == batch[PAIR_LABELS[objective.pair_task]]).mean()
        np.testing.assert_allclose(float(metrics[f"{objective.pair_task}_accuracy"]), pair_acc, rtol=1e-6)
    np.testing.assert_allclose(float(metrics["mlm_loss"]) + float(metrics.get(f"{objective.pair_task}_loss", 0.0)),
                               float(loss), rtol=1e-6)


def test_exported_model_holds_exactly_the_trained_heads():
    assert objective_for("bert").model_config.heads == ("mlm", "nsp")
    assert objective_for("roberta").model_config.heads == ("mlm",)
    assert objective_for("albert").model_config.heads == ("mlm", "sop")
    roberta = jax.eval_shape(objective_for("roberta").init, jax.random.key(0))
    assert set(roberta) == {"embeddings", "encoder", "mlm_head"}


@pytest.mark.slow
def test_flops_formula_matches_xla_cost_analysis():
    config = ml_collections.ConfigDict({"model": {"preset": "bert-base", "num_layers": 2, "hidden_size": 256,
                                                  "num_heads": 4, "intermediate_size": 1024, "vocab_size": 2000,
                                                  # unrolled: XLA counts a scanned layer body only once
                                                  "scan_layers": False},
                                        "objective": {"name": "mlm", "pair_task": "nsp", "max_predictions": 10}})
    objective = build_objective(config)
    params = jax.jit(objective.init)(jax.random.key(0))
    batch = {k: jnp.asarray(v) for k, v in random_batch(objective, batch=4, seq=64).items()}
    compiled = jax.jit(lambda p: objective.loss(p, {}, batch, jax.random.key(0), deterministic=True)[0]
                       ).lower(params).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    forward = objective.flops_per_step(4, 64) / 3
    # XLA also counts softmax, layer norm and masking arithmetic: a little above the matmul count.
    assert 0.9 * forward < cost["flops"] < 1.25 * forward, (cost["flops"], forward)


def test_attention_mask_from_length_or_padding():
    ids = jnp.asarray([[5, 6, 0, 0], [5, 6, 7, 8]])
    np.testing.assert_array_equal(attention_mask_of({"input_ids": ids}, 0), [[1, 1, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(attention_mask_of({"input_ids": ids, "length": jnp.asarray([3, 1])}, 0),
                                  [[1, 1, 1, 0], [1, 0, 0, 0]])


def test_whole_word_boundaries_on_device_equal_the_tokenizers(minilm_dir):
    from jaxbert.tokenize import load_tokenizer

    tok = load_tokenizer(minilm_dir)
    enc = tok(["Tokenization of unbelievably long words happens here.", "Hello, world!"],
              max_length=24, padding="max_length")
    continues, breaks_after = word_start_tables(tok)
    ours = word_starts_on_device(jnp.asarray(enc["input_ids"]), jnp.asarray(continues), jnp.asarray(breaks_after))
    np.testing.assert_array_equal(np.asarray(ours), tok.word_starts(enc["input_ids"]))
    assert not np.asarray(ours).all()  # the text does contain ##pieces


def test_whole_word_masking_masks_whole_words(minilm_dir):
    from jaxbert.tokenize import load_tokenizer

    tok = load_tokenizer(minilm_dir)
    config = ml_collections.ConfigDict({"model": {"preset": "bert-tiny"}, "objective": {
        "name": "mlm", "pair_task": "none", "max_predictions": 20, "whole_word": True, "mask_prob": 0.5}})
    objective = build_objective(config, tokenizer=tok)
    enc = tok(["Tokenization of unbelievably long words happens here."] * 8, max_length=24, padding="max_length")
    starts = tok.word_starts(enc["input_ids"])
    continues, breaks_after = (jnp.asarray(t) for t in objective.word_tables)
    masked = mask_tokens(jax.random.key(0), jnp.asarray(enc["input_ids"]), objective.masking,
                         attention_mask=jnp.asarray(enc["attention_mask"]),
                         word_starts=word_starts_on_device(jnp.asarray(enc["input_ids"]), continues, breaks_after))
    selected = np.asarray(masked.weights) > 0
    for row, start in zip(selected, starts, strict=True):
        word = np.cumsum(start)
        for w in np.unique(word[row]):
            assert row[word == w].all()  # every piece of a chosen word is selected


def test_unknown_objective_and_pair_task_are_one_line_errors():
    assert "mlm" in available_objectives()
    bad = ml_collections.ConfigDict({"model": "bert-tiny", "objective": {"name": "nope"}})
    with pytest.raises(ConfigError, match=r"^config.objective.name: unknown objective 'nope'; available: .*mlm"):
        build_objective(bad)
    bad = ml_collections.ConfigDict({"model": "bert-tiny", "objective": {"name": "mlm", "pair_task": "xyz"}})
    with pytest.raises(ConfigError, match=r"^config.objective.pair_task"):
        build_objective(bad)
