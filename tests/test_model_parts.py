"""ELECTRA's generator out of a training workdir: jaxbert.load(workdir, part="generator"), `jaxbert convert
--part generator`, and export to transformers' ElectraForMaskedLM (same logits within 1e-4)."""

from __future__ import annotations

from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest

import jaxbert
from jaxbert.config import PRESETS
from jaxbert.errors import JaxbertError
from jaxbert.formats import read_workdir
from jaxbert.objectives.base import build_objective
from jaxbert.train.checkpoint import Checkpointer, CheckpointError, checkpoint_meta
from jaxbert.train.state import TrainState

torch = pytest.importorskip("torch", reason="install the test extra: pip install -e '.[test]'")
transformers = pytest.importorskip("transformers", reason="install the test extra: pip install -e '.[test]'")

TOL = 1e-4
VOCAB = 211
SIZES = dict(vocab_size=VOCAB, num_layers=2, max_position_embeddings=64)


def _electra():
    config = ml_collections.ConfigDict({
        "model": {"preset": "electra-small", "hidden_size": 64, "num_heads": 2, "intermediate_size": 128,
                  "embedding_size": 32, **SIZES},
        "objective": {"name": "electra", "max_predictions": 4,
                      "generator": {"preset": "electra-small-generator", "hidden_size": 48, "num_heads": 1,
                                    "intermediate_size": 96, **SIZES}}})
    return build_objective(config)


def _perturbed(params, seed: int):
    """Every tensor moved off its init value (zero biases, unit LayerNorm scales), so each one is checked."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    rng = np.random.RandomState(seed)
    return jax.tree_util.tree_unflatten(tree, [np.asarray(x) + rng.normal(0, 0.05, x.shape).astype(np.float32)
                                               for x in leaves])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> tuple[Path, object, dict]:
    objective = _electra()
    params = _perturbed(jax.jit(objective.init)(jax.random.key(0)), seed=1)
    where = tmp_path_factory.mktemp("electra")
    ckpt = Checkpointer(where, async_save=False)
    ckpt.save(TrainState(jax.numpy.asarray(5), params, {}), checkpoint_meta(objective, {"seed": 0}))
    ckpt.close()
    return where, objective, params


def _batch() -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    ids = rng.randint(5, VOCAB, (3, 12))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    types = np.zeros_like(ids)
    types[:, 6:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types * mask}


@pytest.mark.slow
def test_generator_part_is_the_generator_on_the_shared_embeddings(workdir) -> None:
    where, objective, params = workdir
    disc = jaxbert.load(where)
    assert disc.config == objective.model_config  # the default is unchanged: the discriminator
    gen = jaxbert.load(where, part="generator")
    assert gen.config == objective.generator_config and gen.config.heads == ("mlm",)
    # The paper ties the embeddings: the generator reads the discriminator's tables, and its own projection.
    for table in ("word", "position", "token_type", "norm"):
        jax.tree_util.tree_map(np.testing.assert_array_equal, gen.params["embeddings"][table],
                               params["discriminator"]["embeddings"][table])
    jax.tree_util.tree_map(np.testing.assert_array_equal, gen.params["embeddings"]["projection"],
                           params["generator"]["embeddings"]["projection"])
    explicit = jaxbert.load(where, part="discriminator")
    jax.tree_util.tree_map(np.testing.assert_array_equal, explicit.params, disc.params)


def test_generator_exports_to_electra_for_masked_lm(workdir, tmp_path: Path) -> None:
    from jaxbert.cli import main

    where, _, _ = workdir
    assert main(["convert", "--from", str(where), "--to", str(tmp_path / "hf"), "--format", "hf",
                 "--part", "generator"]) == 0
    model, info = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert type(model).__name__ == "ElectraForMaskedLM" and not any(info.values()), info
    batch = _batch()
    with torch.no_grad():
        theirs = model.eval()(**{k: torch.tensor(v) for k, v in batch.items()}, output_hidden_states=True)
    ours = jaxbert.load(where, part="generator")(batch["input_ids"], batch["attention_mask"],
                                                 batch["token_type_ids"], output_hidden_states=True)
    assert np.abs(np.asarray(ours.logits["mlm"]) - theirs.logits.numpy()).max() <= TOL
    for mine, ref in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        assert np.abs(np.asarray(mine) - ref.numpy()).max() <= TOL
    # A jaxbert bundle of the generator opens as the generator.
    assert main(["convert", "--from", str(where), "--to", str(tmp_path / "bundle"), "--part", "generator"]) == 0
    assert jaxbert.load(tmp_path / "bundle").config.heads == ("mlm",)


def test_unknown_parts_and_single_model_workdirs_are_one_line_errors(workdir, tmp_path: Path) -> None:
    where, _, _ = workdir
    with pytest.raises(CheckpointError, match="its parts are discriminator, generator") as err:
        read_workdir(where, part="student")
    assert "\n" not in str(err.value)
    class OneModel:  # what the checkpoint records of an objective that trains one model (MLM)
        name = "mlm"
        model_config = PRESETS["bert-tiny"]

    ckpt = Checkpointer(tmp_path, async_save=False)
    ckpt.save(TrainState(jax.numpy.asarray(1), {"w": jax.numpy.ones((2,))}, {}), checkpoint_meta(OneModel(), {}))
    ckpt.close()
    with pytest.raises(JaxbertError, match="objective 'mlm' recorded one model"):
        jaxbert.load(tmp_path, part="generator")
    with pytest.raises(JaxbertError, match="config= applies to TensorFlow checkpoints"):
        jaxbert.load(tmp_path, config="bert-tiny")
