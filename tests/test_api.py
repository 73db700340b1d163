"""The notebook contract: jaxbert.init / load / save, outputs, features, and clear errors."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import jaxbert
from jaxbert.api import FEATURE_CHOICES, combine_layers
from jaxbert.model import count_params

TINY = dict(preset="bert-tiny", vocab_size=211, num_layers=3, hidden_size=48, num_heads=3, intermediate_size=96)


@pytest.fixture(scope="module")
def tiny():
    return jaxbert.init(TINY, seed=0)


def _batch(rng: np.random.Generator, b: int = 3, t: int = 12):
    ids = rng.integers(5, 211, size=(b, t)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 8:] = 0
    ids[mask == 0] = 0
    return ids, mask


def test_outputs_follow_the_contract(tiny):
    ids, mask = _batch(np.random.default_rng(0))
    out = tiny(ids, attention_mask=mask, output_hidden_states=True)
    assert out.last_hidden_state.shape == (3, 12, 48)
    assert out.pooler_output.shape == (3, 48)
    assert len(out.hidden_states) == 1 + 3
    np.testing.assert_array_equal(out.hidden_states[-1], out.last_hidden_state)
    assert set(out.logits) == {"mlm", "nsp"}
    assert out.logits["mlm"].shape == (3, 12, 211) and out.logits["nsp"].shape == (3, 2)
    # jax arrays are accepted as well as numpy, and give the same result
    out2 = tiny(jax.numpy.asarray(ids), jax.numpy.asarray(mask))
    np.testing.assert_allclose(out2.last_hidden_state, out.last_hidden_state, atol=1e-6)


def test_padding_does_not_change_real_tokens(tiny):
    ids, mask = _batch(np.random.default_rng(1))
    full = tiny(ids, mask).last_hidden_state[1, :8]
    short = tiny(ids[1:2, :8], mask[1:2, :8]).last_hidden_state[0]
    np.testing.assert_allclose(full, short, atol=1e-5)


def test_save_and_load_round_trip(tiny, tmp_path):
    path = tiny.save(tmp_path / "bundle")
    back = jaxbert.load(path)
    assert back.config == tiny.config
    for a, b in zip(jax.tree_util.tree_leaves(tiny.params), jax.tree_util.tree_leaves(back.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # saving over an existing bundle replaces it whole
    tiny.save(path)
    assert jaxbert.load(path).config == tiny.config


def test_every_preset_initialises_lazily():
    from jaxbert.model import param_shapes

    for name in jaxbert.PRESETS:
        assert count_params(param_shapes(jaxbert.get_preset(name))) > 1_000_000


def test_feature_choices_combine_the_right_layers():
    hs = [np.full((1, 2, 3), float(i)) for i in range(7)]  # embeddings + 6 layers, value = layer index
    expect = {"embeddings": 0.0, "last": 6.0, "second_to_last": 5.0, "sum_last_four": 3 + 4 + 5 + 6.0,
              "sum_all": float(sum(range(1, 7)))}
    for choice, value in expect.items():
        np.testing.assert_allclose(combine_layers(hs, choice), value)
    cat = np.asarray(combine_layers(hs, "concat_last_four"))
    assert cat.shape == (1, 2, 12)
    np.testing.assert_allclose(cat[0, 0], np.repeat([3.0, 4.0, 5.0, 6.0], 3))
    np.testing.assert_allclose(combine_layers(hs, [0, -1])[0, 0], [0, 0, 0, 6, 6, 6])
    assert set(expect) | {"concat_last_four"} == set(FEATURE_CHOICES)


@pytest.mark.parametrize("bad", ["no_such_choice", [9]])
def test_bad_feature_choice_is_a_clear_error(bad):
    with pytest.raises(jaxbert.JaxbertError, match="feature choice|out of range"):
        combine_layers([np.zeros((1, 1, 1))] * 3, bad)


def test_missing_and_corrupt_checkpoints_are_clear_errors(tiny, tmp_path):
    with pytest.raises(jaxbert.JaxbertError, match="no such checkpoint"):
        jaxbert.load(tmp_path / "nothing")
    path = tiny.save(tmp_path / "b")
    (path / "jaxbert.json").write_text("{not json")
    with pytest.raises(jaxbert.JaxbertError, match="corrupt"):
        jaxbert.load(path)


def test_config_mismatch_names_the_key_and_shapes(tiny, tmp_path):
    path = tiny.save(tmp_path / "b")
    meta = json.loads((path / "jaxbert.json").read_text())
    meta["model_config"]["intermediate_size"] = 64
    (path / "jaxbert.json").write_text(json.dumps(meta))
    with pytest.raises(jaxbert.JaxbertError) as e:
        jaxbert.load(path)
    msg = str(e.value)
    assert "\n" not in msg and "intermediate" in msg


def test_too_long_input_is_a_clear_error(tiny):
    with pytest.raises(jaxbert.JaxbertError, match="max_position_embeddings"):
        tiny(np.zeros((1, 600), np.int32))


def test_unknown_preset_and_bad_config_fail_in_one_line():
    with pytest.raises(jaxbert.ConfigError, match="unknown model preset 'bert-huge'"):
        jaxbert.init("bert-huge")
    with pytest.raises(jaxbert.ConfigError, match="hidden_size.*not divisible by num_heads"):
        jaxbert.ModelConfig(hidden_size=100, num_heads=3)
    with pytest.raises(jaxbert.ConfigError, match="sharing"):
        jaxbert.ModelConfig(sharing="some")
