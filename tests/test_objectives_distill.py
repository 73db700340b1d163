"""Distillation objectives: student init from teacher layers, KD / cosine / PKD losses against torch, frozen teacher."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

import jaxbert
from jaxbert.api import Pretrained
from jaxbert.config import ConfigError, ModelConfig
from jaxbert.data.masking import MaskingConfig
from jaxbert.model import EncoderModel
from jaxbert.model.embeddings import Embeddings
from jaxbert.objectives.base import build_objective
from jaxbert.objectives.distill import (
    DistilBert,
    PatientKD,
    cosine_embedding_loss,
    normalized_mse,
    pkd_layer_pairs,
    soft_target_loss,
)
from jaxbert.objectives.teacher import Teacher, init_layer_indices
from jaxbert.train.step import make_train_step

VOCAB = 64
NO_DROPOUT = dict(hidden_dropout=0.0, attention_dropout=0.0)
TEACHER = ModelConfig(vocab_size=VOCAB, hidden_size=32, num_layers=4, num_heads=2, intermediate_size=64,
                      max_position_embeddings=32, **NO_DROPOUT)
STUDENT = ModelConfig(family="distilbert", vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=2,
                      intermediate_size=64, max_position_embeddings=32, type_vocab_size=0, pooler=False,
                      heads=("mlm",), **NO_DROPOUT)
MASKING = MaskingConfig(mask_token_id=4, vocab_size=VOCAB, special_ids=(0, 1, 2, 3, 4), max_predictions=4)


def _flat(tree):
    return {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="module")
def teacher() -> Teacher:
    return Teacher(random_config=TEACHER, seed=3)


@pytest.fixture(scope="module")
def batch():
    ids = np.random.default_rng(0).integers(5, VOCAB, (4, 16)).astype(np.int32)
    attention = np.ones_like(ids)
    attention[2, 10:] = 0
    ids[2, 10:] = 0
    return {"input_ids": jnp.asarray(ids), "attention_mask": jnp.asarray(attention),
            "token_type_ids": jnp.zeros_like(jnp.asarray(ids))}


# ---- student initialisation -------------------------------------------------------------------
def test_init_layer_indices():
    assert init_layer_indices("skip", 6, 12) == (0, 2, 4, 6, 8, 10)
    assert init_layer_indices("skip", 4, 12) == (0, 3, 6, 9)
    assert init_layer_indices("first", 6, 12) == (0, 1, 2, 3, 4, 5)
    assert init_layer_indices("none", 6, 12) == ()
    assert init_layer_indices([0, 2, 4, 7, 9, 11], 6, 12) == (0, 2, 4, 7, 9, 11)  # HF's extract_distilbert.py
    with pytest.raises(ConfigError, match="init_layers"):
        init_layer_indices([0, 12], 2, 12)
    with pytest.raises(ConfigError, match="init_layers"):
        init_layer_indices("skip", 8, 4)
    with pytest.raises(ConfigError, match="init_layers"):
        init_layer_indices("every", 2, 4)


@pytest.mark.parametrize("scan", [True, False])
def test_student_copies_the_right_teacher_layers(teacher, scan):
    objective = DistilBert(STUDENT.replace(scan_layers=scan), teacher, MASKING, init_layers="skip",
                           fold_token_type=True, init_mlm_transform=True)
    assert objective.init_layers == (0, 2)
    student = _flat(objective.init_student(jax.random.key(1), teacher.params))
    t = _flat(teacher.params)
    copied = 0
    for key, value in t.items():
        if not key.startswith("encoder/layers/"):
            continue
        rest = key[len("encoder/layers/"):]
        for i, j in enumerate((0, 2)):
            got = student[f"encoder/layers/{rest}"][i] if scan else student[f"encoder/layers_{i}/{rest}"]
            np.testing.assert_array_equal(got, value[j])
            copied += 1
    assert copied == 2 * sum(k.startswith("encoder/layers/") for k in t)
    for key in ("embeddings/word/embedding", "embeddings/norm/scale", "embeddings/norm/bias", "mlm_head/bias",
                "mlm_head/transform/kernel", "mlm_head/norm/scale"):
        np.testing.assert_array_equal(student[key], t[key])
    # No segment embeddings in the student: segment 0's vector is folded into the positions.
    np.testing.assert_array_equal(student["embeddings/position/embedding"],
                                  t["embeddings/position/embedding"] + t["embeddings/token_type/embedding"][0])
    assert not any(k.startswith(("pooler", "nsp_head", "embeddings/token_type")) for k in student)


def test_default_init_is_the_extraction_scripts(teacher):
    """scripts/extract_distilbert.py: layers [0, 2, 4, 7, 9, 11] of 12 (first and last included); word and
    position embeddings, embedding LayerNorm and MLM bias copied as they are; the MLM transform and its
    LayerNorm left fresh (no --vocab_transform); no segment table, nothing folded."""
    assert init_layer_indices("spread", 6, 12) == (0, 2, 4, 7, 9, 11)
    assert init_layer_indices("spread", 3, 12) == (0, 6, 11)
    objective = DistilBert(STUDENT, teacher, MASKING)
    assert objective.init_layers == (0, 3)
    student = _flat(objective.init_student(jax.random.key(1), teacher.params))
    fresh = _flat(jax.jit(objective.init)(jax.random.key(1)))  # init_student also draws under jit
    t = _flat(teacher.params)
    for key in ("embeddings/word/embedding", "embeddings/position/embedding", "embeddings/norm/scale",
                "embeddings/norm/bias", "mlm_head/bias"):
        np.testing.assert_array_equal(student[key], t[key])
    for key in ("mlm_head/transform/kernel", "mlm_head/transform/bias", "mlm_head/norm/scale", "mlm_head/norm/bias"):
        np.testing.assert_array_equal(student[key], fresh[key])
    assert not np.array_equal(student["mlm_head/transform/kernel"], t["mlm_head/transform/kernel"])
    for rest in [k[len("encoder/layers/"):] for k in t if k.startswith("encoder/layers/")]:
        np.testing.assert_array_equal(student[f"encoder/layers/{rest}"], t[f"encoder/layers/{rest}"][[0, 3]])


def test_folded_student_embeds_like_the_teacher(teacher, batch):
    objective = DistilBert(STUDENT, teacher, MASKING, fold_token_type=True)
    params = objective.init_student(jax.random.key(1), teacher.params)

    @jax.jit
    def embeddings(student, teacher_params):
        # The embedding sub-module alone: what the fold must make identical.
        embed = lambda config, p: Embeddings(config).apply({"params": p["embeddings"]}, batch["input_ids"],
                                                           batch["token_type_ids"])
        return embed(STUDENT, student), embed(TEACHER, teacher_params)

    got, want = embeddings(params, teacher.params)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_teacher_loads_from_a_bundle(teacher, tmp_path):
    params = teacher.params
    Pretrained(TEACHER, params).save(tmp_path / "teacher")
    loaded = Teacher(tmp_path / "teacher")
    assert loaded.config == TEACHER and loaded.tokenizer_dir() is None
    for key, value in _flat(params).items():
        np.testing.assert_array_equal(_flat(loaded.params)[key], value)
    with pytest.raises(ConfigError, match="objective.teacher"):
        _ = Teacher(tmp_path / "missing").config


# ---- loss functions against torch / by hand ---------------------------------------------------------
def test_soft_target_loss_by_hand_and_against_torch():
    # T = 2: teacher logits (0, 2 ln 3) give p = (1/4, 3/4); student (0, 0) gives q = (1/2, 1/2).
    teacher_logits = jnp.asarray([[0.0, 2 * math.log(3)], [5.0, -5.0]])
    student_logits = jnp.asarray([[0.0, 0.0], [-5.0, 5.0]])
    by_hand = 4 * (0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5))
    got = soft_target_loss(student_logits, teacher_logits, 2.0, weights=jnp.asarray([1.0, 0.0]))
    np.testing.assert_allclose(float(got), by_hand, rtol=1e-6)
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(6, 11)).astype(np.float32), rng.normal(size=(6, 11)).astype(np.float32)
    ref = F.kl_div(F.log_softmax(torch.tensor(s) / 3.0, -1), F.softmax(torch.tensor(t) / 3.0, -1),
                   reduction="batchmean") * 9.0
    np.testing.assert_allclose(float(soft_target_loss(jnp.asarray(s), jnp.asarray(t), 3.0)), float(ref), rtol=1e-5)
    assert float(soft_target_loss(jnp.asarray(s), jnp.asarray(s), 3.0)) == 0.0


def test_cosine_loss_matches_torch():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(2, 5, 8)).astype(np.float32), rng.normal(size=(2, 5, 8)).astype(np.float32)
    weights = np.ones((2, 5), np.float32)
    weights[1, 3:] = 0
    keep = weights.ravel() > 0
    ref = torch.nn.CosineEmbeddingLoss()(torch.tensor(s.reshape(-1, 8)[keep]), torch.tensor(t.reshape(-1, 8)[keep]),
                                         torch.ones(int(keep.sum())))
    got = cosine_embedding_loss(jnp.asarray(s), jnp.asarray(t), jnp.asarray(weights))
    np.testing.assert_allclose(float(got), float(ref), rtol=1e-5)


def test_normalized_mse_matches_the_pkd_code():
    rng = np.random.default_rng(2)
    s, t = rng.normal(size=(3, 4, 8)).astype(np.float32), rng.normal(size=(3, 4, 8)).astype(np.float32)
    ref = F.mse_loss(F.normalize(torch.tensor(s), p=2, dim=2), F.normalize(torch.tensor(t), p=2, dim=2))
    np.testing.assert_allclose(float(normalized_mse(jnp.asarray(s), jnp.asarray(t))), float(ref), rtol=1e-5)


def test_pkd_layer_pairs():
    assert pkd_layer_pairs("skip", 6, 12) == ((1, 2), (2, 4), (3, 6), (4, 8), (5, 10))
    assert pkd_layer_pairs("last", 6, 12) == ((1, 7), (2, 8), (3, 9), (4, 10), (5, 11))
    assert pkd_layer_pairs("skip", 3, 12) == ((1, 4), (2, 8))
    assert pkd_layer_pairs("last", 3, 12) == ((1, 10), (2, 11))
    with pytest.raises(ConfigError, match="strategy"):
        pkd_layer_pairs("middle", 3, 12)
    with pytest.raises(ConfigError, match="num_layers"):
        pkd_layer_pairs("skip", 6, 3)


# ---- the objectives in a train step ---------------------------------------------------------------
@pytest.mark.slow
def test_kd_vanishes_for_a_student_equal_to_its_teacher_and_the_teacher_stays_frozen(teacher, batch):
    same = TEACHER.replace(heads=("mlm",))
    objective = DistilBert(same, teacher, MASKING, init_layers="first", init_mlm_transform=True)
    frozen = objective.init_frozen()
    params = objective.init_student(jax.random.key(0), frozen["teacher"])
    for key, value in _flat(params).items():
        np.testing.assert_array_equal(value, _flat(frozen["teacher"])[key])
    teacher_before = _flat(frozen["teacher"])
    tx = optax.adam(1e-2)
    step = jax.jit(make_train_step(objective, tx, optax.constant_schedule(1e-2)))
    from jaxbert.train.state import TrainState

    state = TrainState(step=jnp.asarray(0, jnp.int32), params=params, opt_state=tx.init(params))
    assert len(jax.tree_util.tree_leaves(state.opt_state)) == 1 + 2 * len(jax.tree_util.tree_leaves(params))
    history = []
    for _ in range(4):
        state, metrics = step(state, frozen, batch, jax.random.key(7))
        history.append({k: float(v) for k, v in metrics.items()})
    first = history[0]  # computed on the initial params (no dropout in these configs)
    assert first["ce_loss"] < 1e-5 and first["cos_loss"] < 1e-5 and first["teacher_agreement"] == 1.0
    np.testing.assert_allclose(first["loss"], 2.0 * first["mlm_loss"] + 5.0 * first["ce_loss"] + first["cos_loss"],
                               rtol=1e-6)
    assert history[-1]["ce_loss"] > first["ce_loss"]  # the student moved away from the teacher...
    for key, value in _flat(frozen["teacher"]).items():  # ...the teacher did not move at all
        np.testing.assert_array_equal(np.asarray(value), teacher_before[key])
    assert not all(np.array_equal(a, _flat(params)[k]) for k, a in _flat(state.params).items())


@pytest.mark.slow
def test_pkd_classification_loss_matches_an_independent_computation(batch):
    teacher_cfg = TEACHER.replace(task="classification", num_labels=3)
    teacher = Teacher(random_config=teacher_cfg, seed=4)
    student_cfg = TEACHER.replace(num_layers=2, task="classification", num_labels=3)
    objective = PatientKD(student_cfg, teacher, None, task="classification", strategy="skip", temperature=5.0,
                          alpha=0.7, beta=100.0, init_layers="none")
    assert objective.layer_pairs == ((1, 2),) and objective.init_layers == ()
    frozen = objective.init_frozen()
    # Random classifiers output near-zero logits; spread the teacher's so its soft targets say something.
    head = frozen["teacher"]["task_head"]["out"]
    frozen = {"teacher": {**frozen["teacher"], "task_head": {"out": {**head, "kernel": head["kernel"] * 300}}}}
    params = objective.init_student(jax.random.key(0), frozen["teacher"])
    labels = jnp.asarray([0, 2, 1, 2])
    b = {**batch, "labels": labels}
    _, metrics = jax.jit(objective.loss, static_argnames="deterministic")(params, frozen, b, jax.random.key(0),
                                                                          deterministic=True)

    @jax.jit
    def forward(student, teacher_params):
        args = (b["input_ids"], b["attention_mask"], b["token_type_ids"])
        return (EncoderModel(objective.model_config).apply({"params": student}, *args, output_hidden_states=True),
                EncoderModel(teacher_cfg).apply({"params": teacher_params}, *args, output_hidden_states=True))

    s, t = forward(params, frozen["teacher"])
    s_logits = torch.tensor(np.asarray(s.logits["classification"]))
    t_logits = torch.tensor(np.asarray(t.logits["classification"]))
    task = F.cross_entropy(s_logits, torch.tensor(np.asarray(labels), dtype=torch.long))
    kd = F.kl_div(F.log_softmax(s_logits / 5, -1), F.softmax(t_logits / 5, -1), reduction="batchmean") * 25
    pt = F.mse_loss(F.normalize(torch.tensor(np.asarray(s.hidden_states[1][:, 0])), dim=-1),
                    F.normalize(torch.tensor(np.asarray(t.hidden_states[2][:, 0])), dim=-1))
    np.testing.assert_allclose(metrics["task_loss"], float(task), rtol=1e-5)
    np.testing.assert_allclose(metrics["kd_loss"], float(kd), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(metrics["pt_loss"], float(pt), rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(metrics["loss"], 0.3 * float(task) + 0.7 * float(kd) + 100 * float(pt), rtol=1e-4)
    assert objective.batch_fields(4, 16)["labels"] == ((4,), np.int32)


def test_workdir_loads_as_the_student(teacher, batch, tmp_path):
    from jaxbert.train.checkpoint import Checkpointer, checkpoint_meta
    from jaxbert.train.state import TrainState

    objective = DistilBert(STUDENT, teacher, MASKING)
    params = objective.init_student(jax.random.key(0), teacher.params)
    ckpt = Checkpointer(tmp_path, async_save=False)
    ckpt.save(TrainState(step=jnp.asarray(1, jnp.int32), params=params, opt_state=optax.sgd(0.1).init(params)),
              checkpoint_meta(objective, {"objective": {"name": "distill"}}))
    ckpt.close()
    loaded = jaxbert.load(tmp_path)
    assert loaded.config == objective.model_config and loaded.config.family == "distilbert"
    for key, value in _flat(params).items():
        np.testing.assert_array_equal(_flat(loaded.params)[key], value)


def _numpy_log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.mark.slow
@pytest.mark.parametrize("ce_positions", ["all", "masked"])
def test_distilbert_loss_equals_numpy_over_all_tokens(teacher, batch, ce_positions):
    """The authors' distiller.py, recomputed in numpy from the two models' outputs: KL(teacher_T || student_T)
    · T² averaged over every real token (attention mask) — or the masked ones with restrict_ce_to_mask —,
    token cross-entropy at the masked slots, 1 − cos over real tokens."""
    from jaxbert.objectives.masking_setup import draw_mask

    objective = DistilBert(STUDENT, teacher, MASKING, temperature=2.0, ce_positions=ce_positions)
    params = objective.init_student(jax.random.key(1), teacher.params)
    frozen = objective.init_frozen()
    rng = jax.random.key(11)
    _, metrics = jax.jit(objective.loss, static_argnames="deterministic")(params, frozen, batch, rng,
                                                                          deterministic=True)
    masked = draw_mask(jax.random.split(rng)[0], batch["input_ids"], batch["attention_mask"], MASKING)
    args = (masked.inputs, batch["attention_mask"])
    s = EncoderModel(objective.model_config).apply({"params": params}, *args)
    t = EncoderModel(objective.teacher_config).apply({"params": frozen["teacher"]}, *args, batch["token_type_ids"])
    s_logits, t_logits = np.asarray(s.logits["mlm"]), np.asarray(t.logits["mlm"])  # [B, T, V]: every position
    attention = np.asarray(batch["attention_mask"]).astype(bool)
    labels = np.asarray(masked.labels)
    selected = np.asarray(masked.weights).astype(bool)
    rows = attention if ce_positions == "all" else selected
    log_p, log_q = _numpy_log_softmax(t_logits[rows] / 2.0), _numpy_log_softmax(s_logits[rows] / 2.0)
    ce = (np.exp(log_p) * (log_p - log_q)).sum(-1).mean() * 4.0
    mlm = -_numpy_log_softmax(s_logits[selected])[np.arange(selected.sum()), labels[selected]].mean()
    hs = np.asarray(s.last_hidden_state, np.float64)[attention]
    ht = np.asarray(t.last_hidden_state, np.float64)[attention]
    cos = (1 - (hs * ht).sum(-1) / (np.linalg.norm(hs, axis=-1) * np.linalg.norm(ht, axis=-1))).mean()
    assert attention.sum() > selected.sum() > 0
    print(f"\n{ce_positions}: |ce - numpy| {abs(float(metrics['ce_loss']) - ce):.2e} (ce {ce:.6f}), "
          f"|loss - numpy| {abs(float(metrics['loss']) - (5 * ce + 2 * mlm + cos)):.2e}")
    np.testing.assert_allclose(float(metrics["ce_loss"]), ce, rtol=2e-5)
    np.testing.assert_allclose(float(metrics["mlm_loss"]), mlm, rtol=2e-5)
    np.testing.assert_allclose(float(metrics["cos_loss"]), cos, rtol=2e-4, atol=1e-7)
    np.testing.assert_allclose(float(metrics["loss"]), 5 * ce + 2 * mlm + cos, rtol=2e-5)


@pytest.mark.slow
def test_frozen_position_embeddings_do_not_move(teacher, batch):
    from jaxbert.train.sharded import objective_optimizer
    from jaxbert.train.spec import OptimizerSpec
    from jaxbert.train.state import TrainState

    objective = DistilBert(STUDENT, teacher, MASKING, freeze_positions=True)
    params = objective.init_student(jax.random.key(0), teacher.params)
    mask = _flat(objective.trainable_mask(params))
    assert [k for k, v in mask.items() if not v] == ["embeddings/position/embedding"]
    # The run's optimizer, as the loop builds it: the objective's trainable mask freezes the position table.
    tx, schedule = objective_optimizer(objective, OptimizerSpec(lr=1e-2, weight_decay=0.01), 10)
    step = jax.jit(make_train_step(objective, tx, schedule))
    state = TrainState(step=jnp.asarray(0, jnp.int32), params=params, opt_state=tx.init(params))
    for _ in range(2):
        state, _ = step(state, objective.init_frozen(), batch, jax.random.key(3))
    before, after = _flat(params), _flat(state.params)
    np.testing.assert_array_equal(after["embeddings/position/embedding"], before["embeddings/position/embedding"])
    assert not np.array_equal(after["embeddings/word/embedding"], before["embeddings/word/embedding"])


# ---- factories ---------------------------------------------------------------------------------------
def _config(name: str, **objective) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"model": STUDENT.replace(vocab_size=VOCAB).to_dict(),
                                      "objective": {"name": name, "max_predictions": 4, **objective}})


def test_factories():
    teacher_model = {**TEACHER.to_dict(), "vocab_size": 30522}  # a random teacher takes the student's vocabulary
    obj = build_objective(_config("distill", teacher_model=teacher_model, temperature=3.0))
    assert isinstance(obj, DistilBert) and obj.teacher_config.vocab_size == VOCAB
    bf16 = _config("distill", teacher_model=teacher_model)
    bf16.model.compute_dtype = "bfloat16"
    assert build_objective(bf16).teacher_config.compute_dtype == "bfloat16"  # the teacher computes like the student
    assert (obj.temperature, obj.alpha_ce, obj.alpha_mlm, obj.alpha_cos) == (3.0, 5.0, 2.0, 1.0)
    assert obj.init_layers == (0, 3) and obj.ce_positions == "all" and obj.selection_probs is None
    assert obj.trainable_mask(obj.init(jax.random.key(0))) is None
    with pytest.raises(ConfigError, match="ce_positions"):
        build_objective(_config("distill", teacher_model=teacher_model, ce_positions="some"))
    with pytest.raises(ConfigError, match="token_counts"):
        build_objective(_config("distill", teacher_model=teacher_model, mask_smoothing=0.7))
    pkd = build_objective(_config("pkd", teacher_model=teacher_model, strategy="last", beta=10.0))
    assert isinstance(pkd, PatientKD) and pkd.init_layers == (0, 1) and pkd.layer_pairs == ((1, 3),)
    with pytest.raises(ConfigError, match="objective.teacher"):
        build_objective(_config("distill"))
    with pytest.raises(ConfigError, match="MLM head"):
        build_objective(_config("distill", teacher_model={**TEACHER.to_dict(), "heads": ["nsp"]}))
    with pytest.raises(ConfigError, match="hidden_size"):
        build_objective(_config("distill", teacher_model={**TEACHER.to_dict(), "hidden_size": 64}))
