"""Hugging Face interop against transformers (PyTorch, fp32, eval mode) on the same weights.

Forward parity for every family from randomly initialised (and perturbed) transformers models, the
real all-MiniLM-L6-v2 checkpoint on real sentences, export round trips, and one-line errors.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxbert.config import PRESETS, ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.interop import hf
from jaxbert.interop.hf_config import DEFAULTS
from jaxbert.model import EncoderModel, param_shapes, scan_to_unrolled

torch = pytest.importorskip("torch", reason="install the test extra: pip install -e '.[test]'")
transformers = pytest.importorskip("transformers", reason="install the test extra: pip install -e '.[test]'")

TOL = 1e-4
VOCAB = 1013  # not a multiple of 8
LENGTHS = (12, 7, 3)  # a padded batch: the last two rows end in padding


def _perturb(model, seed: int) -> None:
    """Move every weight (LayerNorm scales and zero-initialised biases included) off its init value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def _batch(pad_id: int, segments: bool, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    batch, length = len(LENGTHS), max(LENGTHS)
    ids = rng.randint(pad_id + 1, VOCAB, (batch, length))
    mask = np.zeros((batch, length), np.int64)
    for row, n in enumerate(LENGTHS):
        mask[row, :n] = 1
        ids[row, n:] = pad_id
    out = {"input_ids": ids, "attention_mask": mask}
    if segments:
        types = np.zeros_like(ids)
        types[:, 5:] = 1
        out["token_type_ids"] = types * mask
    return out


def _hf_run(model, batch: dict[str, np.ndarray], heads: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Hidden states and pooler from the base model, logits from the full model (same weights)."""
    inputs = {k: torch.tensor(v) for k, v in batch.items()}
    with torch.no_grad():
        base = model.base_model(**inputs, output_hidden_states=True)
        full = model(**inputs) if heads else None
    out = {"last": base.last_hidden_state.numpy()}
    out.update({f"hidden_{i}": h.numpy() for i, h in enumerate(base.hidden_states)})
    if getattr(base, "pooler_output", None) is not None:
        out["pooler"] = base.pooler_output.numpy()
    for head in heads:
        field = {"nsp": "seq_relationship_logits", "sop": "sop_logits", "rtd": "logits"}.get(head)
        if head == "mlm":
            field = "prediction_logits" if "prediction_logits" in full else "logits"
        out[head] = full[field].numpy()
    return out


@functools.cache
def _forward(config: ModelConfig):
    """One jitted forward per config, shared by every test that runs that config."""
    return jax.jit(lambda params, ids, mask, types: EncoderModel(config).apply(
        {"params": params}, ids, mask, types, output_hidden_states=True))


def _ours(config: ModelConfig, params, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = _forward(config)(params, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    res = {"last": np.asarray(out.last_hidden_state)}
    res.update({f"hidden_{i}": np.asarray(h) for i, h in enumerate(out.hidden_states)})
    if out.pooler_output is not None:
        res["pooler"] = np.asarray(out.pooler_output)
    res.update({k: np.asarray(v) for k, v in out.logits.items()})
    return res


def _assert_same_outputs(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray],
                         only: np.ndarray | None = None) -> None:
    """Every output within TOL; `only` ([B, T] 0/1) restricts per-token outputs to those positions."""
    assert sorted(ours) == sorted(theirs)
    for name, ref in theirs.items():
        assert ours[name].shape == ref.shape, name
        diff = np.abs(ours[name].astype(np.float64) - ref.astype(np.float64))
        if only is not None and diff.shape[:2] == only.shape:
            diff = diff[only.astype(bool)]
        assert diff.max() <= TOL, f"{name}: max abs difference {diff.max():.2e} > {TOL}"


# ---- forward parity on transformers-initialised models ---------------------------------------------

def _small(preset: str, **changes) -> ModelConfig:
    base = dict(vocab_size=VOCAB, hidden_size=48, num_heads=3, intermediate_size=80, num_layers=2,
                max_position_embeddings=64)
    return PRESETS[preset].replace(**{**base, **changes})


T = transformers
_HF_SMALL = dict(vocab_size=VOCAB, hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=80,
                 max_position_embeddings=64)
# id: (transformers class, its config, the ModelConfig load_hf must derive from it). The same
# ModelConfigs drive the export tests below, so each compiles our forward pass once.
CASES = {
    "bert": ("BertForPreTraining", lambda: T.BertConfig(**_HF_SMALL), _small("bert-base")),
    "bert-h96-gelu_new-3types": ("BertForPreTraining", lambda: T.BertConfig(
        **{**_HF_SMALL, "hidden_size": 96, "intermediate_size": 40, "max_position_embeddings": 40},
        hidden_act="gelu_new", layer_norm_eps=1e-7, type_vocab_size=3),
        _small("bert-base", hidden_size=96, intermediate_size=40, max_position_embeddings=40, hidden_act="gelu_new",
               layer_norm_eps=1e-7, type_vocab_size=3)),
    "bert-mlm-only": ("BertForMaskedLM", lambda: T.BertConfig(**_HF_SMALL),
                      _small("bert-base", heads=("mlm",), pooler=False)),
    "bert-bare-silu": ("BertModel", lambda: T.BertConfig(**_HF_SMALL, hidden_act="silu"),
                       _small("bert-base", heads=(), hidden_act="silu")),
    "roberta": ("RobertaForMaskedLM", lambda: T.RobertaConfig(
        **_HF_SMALL, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1), _small("roberta-base")),
    "albert": ("AlbertForPreTraining", lambda: T.AlbertConfig(
        **{**_HF_SMALL, "num_hidden_layers": 3}, embedding_size=16), _small("albert-base", embedding_size=16,
                                                                             num_layers=3)),
    "albert-unshared": ("AlbertForPreTraining", lambda: T.AlbertConfig(
        **{**_HF_SMALL, "num_hidden_layers": 3}, embedding_size=24, num_hidden_groups=3),
        _small("albert-base", embedding_size=24, num_layers=3, sharing="none")),
    "electra-discriminator": ("ElectraForPreTraining", lambda: T.ElectraConfig(
        **{**_HF_SMALL, "hidden_size": 96, "intermediate_size": 160}, embedding_size=32),
        _small("electra-small", hidden_size=96, intermediate_size=160, embedding_size=32)),
    "electra-generator": ("ElectraForMaskedLM", lambda: T.ElectraConfig(**_HF_SMALL, embedding_size=32),
                          _small("electra-small-generator", embedding_size=32)),
    "electra-discriminator-E=H-relu": ("ElectraForPreTraining", lambda: T.ElectraConfig(
        **_HF_SMALL, embedding_size=48, hidden_act="relu"), _small("electra-small", embedding_size=0,
                                                                    hidden_act="relu")),
    "distilbert": ("DistilBertForMaskedLM", lambda: T.DistilBertConfig(
        vocab_size=VOCAB, dim=48, n_layers=2, n_heads=3, hidden_dim=80, max_position_embeddings=64),
        _small("distilbert-base")),
}


def _save_hf(case: str, directory: Path, seed: int = 0):
    arch, make_config, _ = CASES[case]
    torch.manual_seed(seed)
    model = getattr(transformers, arch)(make_config()).eval()
    _perturb(model, seed)
    model.save_pretrained(directory)
    return model


@pytest.mark.parametrize("case", list(CASES))
def test_forward_matches_transformers(case: str, tmp_path: Path) -> None:
    model = _save_hf(case, tmp_path)
    config, params = hf.load_hf(tmp_path)
    assert config == CASES[case][2]
    batch = _batch(config.pad_token_id, segments=config.type_vocab_size > 1)
    _assert_same_outputs(_ours(config, params, batch), _hf_run(model, batch, config.heads))


def test_electra_generator_is_narrower_than_its_discriminator() -> None:
    """ELECTRA's pair as tested above: a narrower generator with the discriminator's embedding width."""
    disc, gen = CASES["electra-discriminator"][2], CASES["electra-generator"][2]
    assert gen.hidden_size < disc.hidden_size and gen.embed_dim == disc.embed_dim
    assert (disc.heads, gen.heads, gen.head_act) == (("rtd",), ("mlm",), "gelu")


# ---- real weights ----------------------------------------------------------------------------------

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "JAX transforms numerical functions: grad, jit, vmap and pmap.",
    "Hello world",
    "Sentence embeddings map text to dense vectors that capture meaning, so similar sentences lie close.",
]


def test_minilm_real_checkpoint_matches_transformers(minilm_dir: Path) -> None:
    """Real weights, real sentences, padded batch.

    At padding positions transformers' own float32 run drifts up to ~1.2e-4 from its float64 run
    (measured, deep layers of this checkpoint), so padding positions are checked against the float64
    reference, and every position against float32 where the tokens are real.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    encoded = tok.encode_batch(SENTENCES)
    batch = {"input_ids": np.array([e.ids for e in encoded]),
             "attention_mask": np.array([e.attention_mask for e in encoded]),
             "token_type_ids": np.array([e.type_ids for e in encoded])}
    assert batch["attention_mask"].min() == 0  # the batch really is padded

    config, params = hf.load_hf(minilm_dir)
    assert (config.family, config.num_layers, config.hidden_size, config.heads, config.pooler) == \
        ("bert", 6, 384, (), True)
    model = transformers.BertModel.from_pretrained(minilm_dir).eval()
    ours = _ours(config, params, batch)
    _assert_same_outputs(ours, _hf_run(model, batch, ()), only=batch["attention_mask"])
    _assert_same_outputs(ours, _hf_run(model.double(), batch, ()))


# ---- export round trip -----------------------------------------------------------------------------

EXPORTS = ["bert", "bert-mlm-only", "bert-bare-silu", "roberta", "albert", "albert-unshared", "electra-discriminator",
           "electra-generator", "distilbert"]
AUTO_CLASS = {("mlm", "nsp"): "AutoModelForPreTraining", ("mlm", "sop"): "AutoModelForPreTraining",
              ("rtd",): "AutoModelForPreTraining", ("mlm",): "AutoModelForMaskedLM", (): "AutoModel"}


def _random_params(config: ModelConfig, seed: int):
    """Random params of the config's shapes (no zero biases or unit scales, so every tensor is checked)."""
    rng = np.random.RandomState(seed)
    return jax.tree_util.tree_map(lambda s: rng.normal(0, 0.05, s.shape).astype(np.float32), param_shapes(config))


@pytest.mark.parametrize("name", EXPORTS)
def test_export_loads_in_transformers_and_round_trips(name: str, tmp_path: Path) -> None:
    config = CASES[name][2]
    params = _random_params(config, seed=len(name))
    out = hf.export_hf(config, params, tmp_path / "hf")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]

    auto = getattr(transformers, AUTO_CLASS[config.heads])
    model, info = auto.from_pretrained(out, output_loading_info=True)
    assert type(model).__name__ == hf.architecture(config)
    assert not any(info.values()), f"transformers reported loading problems: {info}"
    batch = _batch(config.pad_token_id, segments=config.type_vocab_size > 1, seed=5)
    _assert_same_outputs(_ours(config, params, batch), _hf_run(model.eval(), batch, config.heads))

    loaded_config, loaded = hf.load_hf(out)
    assert loaded_config == config
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, params)


def test_export_drops_a_pooler_the_class_cannot_hold(tmp_path: Path) -> None:
    """Real roberta-base checkpoints carry a pooler that RobertaForMaskedLM has no place for."""
    config = CASES["roberta"][2].replace(pooler=True)
    params = _random_params(config, seed=4)
    with pytest.warns(UserWarning, match="RobertaForMaskedLM has no pooler"):
        out = hf.export_hf(config, params, tmp_path / "hf")
    model, info = transformers.AutoModelForMaskedLM.from_pretrained(out, output_loading_info=True)
    assert not any(info.values()), f"transformers reported loading problems: {info}"
    loaded_config, loaded = hf.load_hf(out)
    assert loaded_config == config.replace(pooler=False)
    without_pooler = {k: v for k, v in params.items() if k != "pooler"}
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, without_pooler)


def test_export_of_unrolled_params_equals_scanned(tmp_path: Path) -> None:
    config = CASES["bert"][2]
    params = _random_params(config, seed=3)
    unrolled = config.replace(scan_layers=False)
    a = hf.hf_state_dict(config, params)
    b = hf.hf_state_dict(unrolled, scan_to_unrolled(params, config))
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_export_is_atomic_and_refuses_to_clobber(tmp_path: Path) -> None:
    config = CASES["bert"][2]
    wrong = _random_params(config.replace(hidden_size=24), 0)
    with pytest.raises(JaxbertError, match="params to export"):
        hf.export_hf(config, wrong, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # no output, no temporary directory left behind

    params = _random_params(config, 0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(JaxbertError, match="not empty"):
        hf.export_hf(config, params, tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]
    hf.export_hf(config, params, tmp_path / "busy", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


@pytest.mark.parametrize("config, message", [
    (_small("albert-base", embedding_size=16, sharing="attention"), "sharing='attention'"),
    (_small("bert-base", heads=("sop",)), "heads=['sop']"),
    (_small("roberta-base", head_act="relu"), "MLM head activation"),
    (_small("bert-base", embedding_size=16), "factorized embeddings"),
    (_small("bert-base", heads=(), task="classification", num_labels=3), "export_hf_task"),
])
def test_export_refuses_configs_transformers_cannot_hold(config: ModelConfig, message: str, tmp_path: Path) -> None:
    with pytest.raises(JaxbertError, match=re.escape(message)) as err:
        hf.export_hf(config, _random_params(config, 0), tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


# ---- older checkpoint layouts and formats ----------------------------------------------------------

def test_pytorch_bin_with_legacy_names_and_stored_tied_decoder(tmp_path: Path) -> None:
    """Old-style checkpoints: pytorch_model.bin, LayerNorm gamma/beta, stored decoder copy, position_ids buffer."""
    model = _save_hf("bert", tmp_path / "st")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    legacy = {}
    for key, value in state.items():
        if "LayerNorm" in key:
            key = key.replace(".weight", ".gamma").replace(".bias", ".beta")
        legacy[key] = value
    legacy["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    legacy["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    legacy["bert.embeddings.position_ids"] = torch.arange(512)[None]
    (tmp_path / "bin").mkdir()
    shutil.copy(tmp_path / "st" / "config.json", tmp_path / "bin" / "config.json")
    torch.save(legacy, tmp_path / "bin" / "pytorch_model.bin")
    assert hf.is_hf_dir(tmp_path / "bin")

    config_st, params_st = hf.load_hf(tmp_path / "st")
    config_bin, params_bin = hf.load_hf(tmp_path / "bin")
    assert config_bin == config_st
    jax.tree_util.tree_map(np.testing.assert_array_equal, params_bin, params_st)


def test_pytorch_bin_without_torch_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    model = _save_hf("distilbert", tmp_path / "st")
    (tmp_path / "bin").mkdir()
    shutil.copy(tmp_path / "st" / "config.json", tmp_path / "bin" / "config.json")
    torch.save(model.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(JaxbertError, match="needs torch"):
        hf.load_hf(tmp_path / "bin")


def test_task_head_checkpoint_loads_the_encoder(tmp_path: Path) -> None:
    """A fine-tuned BertForSequenceClassification: the encoder loads, the classifier is skipped with a warning."""
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(CASES["bert-bare-silu"][1]()).eval()
    _perturb(model, 0)
    model.save_pretrained(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config, params = hf.load_hf(tmp_path)
    assert any("classifier.weight" in str(w.message) for w in caught)
    assert config == CASES["bert-bare-silu"][2]
    batch = _batch(0, segments=True)
    _assert_same_outputs(_ours(config, params, batch), _hf_run(model.bert, batch, ()))


# ---- errors ----------------------------------------------------------------------------------------

def _edit_config(directory: Path, **changes) -> None:
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _expect_error(directory: Path, *fragments: str) -> None:
    with pytest.raises(JaxbertError) as err:
        hf.load_hf(directory)
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path: Path) -> None:
    _save_hf("bert", tmp_path)
    _edit_config(tmp_path, intermediate_size=64)
    _expect_error(tmp_path, "bert.encoder.layer.0.intermediate.dense.weight", "(80, 48)", "(64, 48)")


def test_extra_and_missing_layers_are_errors(tmp_path: Path) -> None:
    _save_hf("bert", tmp_path / "a")
    _edit_config(tmp_path / "a", num_hidden_layers=1)
    _expect_error(tmp_path / "a", "unexpected weight bert.encoder.layer.1.")
    _save_hf("bert", tmp_path / "b")
    _edit_config(tmp_path / "b", num_hidden_layers=3)
    _expect_error(tmp_path / "b", "bert.encoder.layer.2.attention.self.query.weight is missing", "(48, 48)")


def test_missing_weight_is_named(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    _save_hf("roberta", tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    del tensors["roberta.encoder.layer.1.output.LayerNorm.bias"]
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    _expect_error(tmp_path, "roberta.encoder.layer.1.output.LayerNorm.bias is missing", "(48,)")


def test_unknown_model_type_missing_weights_and_corrupt_files(tmp_path: Path) -> None:
    _save_hf("distilbert", tmp_path / "gpt")
    _edit_config(tmp_path / "gpt", model_type="gpt2")
    _expect_error(tmp_path / "gpt", "'gpt2'", "not supported")

    _save_hf("distilbert", tmp_path / "noweights")
    (tmp_path / "noweights" / "model.safetensors").unlink()
    assert not hf.is_hf_dir(tmp_path / "noweights")
    _expect_error(tmp_path / "noweights", "has no weights")

    _save_hf("distilbert", tmp_path / "truncated")
    blob = (tmp_path / "truncated" / "model.safetensors").read_bytes()
    (tmp_path / "truncated" / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    _expect_error(tmp_path / "truncated", "cannot read", "model.safetensors")

    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "config.json").write_text("{not json")
    _expect_error(tmp_path / "badjson", "not valid JSON")
    assert not hf.is_hf_dir(tmp_path / "badjson")
    _expect_error(tmp_path / "nothing", "has no config.json")


@pytest.mark.parametrize("case, changes, fragment", [
    ("albert", {"num_hidden_groups": 2}, "num_hidden_groups=2"),
    ("albert", {"inner_group_num": 2}, "inner_group_num=2"),
    ("distilbert", {"sinusoidal_pos_embds": True}, "sinusoidal_pos_embds"),
    ("bert", {"position_embedding_type": "relative_key"}, "relative_key"),
    ("bert", {"hidden_act": "mish"}, "'mish'"),
    ("bert", {"tie_word_embeddings": False}, "untied"),
])
def test_unsupported_config_is_a_clear_error(case: str, changes: dict, fragment: str, tmp_path: Path) -> None:
    _save_hf(case, tmp_path)
    _edit_config(tmp_path, **changes)
    _expect_error(tmp_path, fragment, "not supported")


@pytest.mark.parametrize("model_type", list(DEFAULTS))
def test_config_defaults_equal_transformers(model_type: str) -> None:
    """Fields a config.json omits take transformers' own defaults."""
    reference = transformers.AutoConfig.for_model(model_type).to_dict()
    assert {k: reference[k] for k in DEFAULTS[model_type]} == DEFAULTS[model_type]
