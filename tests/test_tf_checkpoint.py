"""Google's original TensorFlow checkpoints (BERT, ALBERT, ELECTRA) through jaxbert.load.

Parity: checkpoints that TensorFlow itself writes, under Google's variable names, converted by transformers'
own TF loaders (load_tf_weights_in_bert / _albert / _electra, transformers 4.57 in the reference
environment) must give every hidden state and head logit of jaxbert's model within 1e-4. The other tests
run without TensorFlow, on checkpoints from tests/tf_bundle_writer.py (which TensorFlow reads back
bit for bit, checked with the parity cases).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tf_bundle_writer import write_checkpoint
from tf_fixtures import albert_shapes, bert_shapes, electra_shapes, random_variables

import jaxbert
from jaxbert.errors import JaxbertError
from jaxbert.interop import tf_checkpoint
from jaxbert.interop.tf_bundle import TFCheckpointError, find_prefix

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-4
VOCAB = 1013
LENGTHS = (12, 7, 3)  # a padded batch

# bert_config.json / albert_config.json as Google ships them (no model_type), at test sizes.
BERT = dict(vocab_size=VOCAB, hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=80,
            max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu", hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1, initializer_range=0.02)
ALBERT = {**BERT, "num_hidden_layers": 3, "embedding_size": 16, "num_hidden_groups": 1, "inner_group_num": 1,
          "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}  # v2: no dropout
# ELECTRA releases ship no config: the tests put the discriminator's transformers config.json beside them.
ELECTRA = {**BERT, "hidden_size": 96, "intermediate_size": 160, "embedding_size": 32}
# The generator by ELECTRA's get_generator_config: half the width, 4x FFN, max(1, 48 // 64) = 1 head.
ELECTRA_GENERATOR = {**ELECTRA, "hidden_size": 48, "intermediate_size": 192, "num_attention_heads": 1}


@dataclass(frozen=True)
class Case:
    shapes: dict[str, tuple[int, ...]]
    files: dict[str, dict[str, Any]]  # config files beside the checkpoint
    reference_class: str
    reference_config: dict[str, Any]  # the transformers config of the reference model
    heads: tuple[str, ...]
    load: dict[str, Any] = field(default_factory=dict)  # jaxbert.load keyword arguments
    mode: str = "discriminator"
    training_state: bool = False
    prefix: str = "model.ckpt"


CASES = {
    "bert": Case(bert_shapes(BERT), {"bert_config.json": BERT}, "BertForPreTraining", {"model_type": "bert", **BERT},
                 ("mlm", "nsp"), training_state=True, prefix="bert_model.ckpt"),
    "albert-v2": Case(albert_shapes(ALBERT), {"albert_config.json": ALBERT}, "AlbertForPreTraining",
                      {"model_type": "albert", **ALBERT}, ("mlm", "sop"), prefix="model.ckpt-best"),
    "albert-unshared": Case(albert_shapes({**ALBERT, "num_hidden_groups": 3}),
                            {"albert_config.json": {**ALBERT, "num_hidden_groups": 3}}, "AlbertForPreTraining",
                            {"model_type": "albert", **ALBERT, "num_hidden_groups": 3}, ("mlm", "sop")),
    "electra-discriminator": Case(electra_shapes(ELECTRA, ELECTRA_GENERATOR),
                                  {"config.json": {"model_type": "electra", **ELECTRA}}, "ElectraForPreTraining",
                                  {"model_type": "electra", **ELECTRA}, ("rtd",), prefix="electra_small"),
    "electra-generator": Case(electra_shapes(ELECTRA, ELECTRA_GENERATOR),
                              {"config.json": {"model_type": "electra", **ELECTRA}}, "ElectraForMaskedLM",
                              {"model_type": "electra", **ELECTRA_GENERATOR}, ("mlm",), load={"part": "generator"},
                              mode="generator", prefix="electra_small"),
}
FAMILY = {"bert": "bert", "albert-v2": "albert", "albert-unshared": "albert", "electra-discriminator": "electra",
          "electra-generator": "electra"}


def _batch(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, VOCAB, (len(LENGTHS), max(LENGTHS)))
    mask = np.zeros_like(ids)
    for row, n in enumerate(LENGTHS):
        mask[row, :n] = 1
        ids[row, n:] = 0
    types = np.zeros_like(ids)
    types[:, 5:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types * mask}


def _ours(model: jaxbert.Pretrained, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], output_hidden_states=True)
    res = {f"hidden_{i}": np.asarray(h) for i, h in enumerate(out.hidden_states)}
    res["last"] = np.asarray(out.last_hidden_state)
    if out.pooler_output is not None:
        res["pooler"] = np.asarray(out.pooler_output)
    res.update({k: np.asarray(v) for k, v in out.logits.items()})
    return res


def _write_case(name: str, directory: Path, writer: bool) -> dict[str, np.ndarray]:
    """The case's config files in `directory` (and, with `writer`, its checkpoint by tests/tf_bundle_writer.py)."""
    case = CASES[name]
    directory.mkdir(parents=True, exist_ok=True)
    for file, fields in case.files.items():
        (directory / file).write_text(json.dumps(fields), encoding="utf-8")
    weights = random_variables(case.shapes, seed=len(name), training_state=case.training_state)
    if writer:
        write_checkpoint(directory / case.prefix, weights)
    return weights


# ---- parity with transformers' TF loaders (reference environment) ---------------------------------

@pytest.fixture(scope="module")
def reference(reference_python, tmp_path_factory) -> dict[str, Path]:
    """Every case written by TensorFlow and run through transformers' loader, in one reference process."""
    root = tmp_path_factory.mktemp("tf-reference")
    np.savez(root / "batch.npz", **_batch())
    spec: dict[str, list] = {"cases": [], "writer_checks": []}
    for name, case in CASES.items():
        weights = _write_case(name, root / name / "tf", writer=False)
        np.savez(root / name / "weights.npz", **weights)
        _write_case(name, root / name / "writer", writer=True)
        spec["cases"].append({"name": name, "family": FAMILY[name], "class": case.reference_class,
                              "config": case.reference_config, "mode": case.mode, "heads": list(case.heads),
                              "weights": str(root / name / "weights.npz"),
                              "prefix": str(root / name / "tf" / case.prefix),
                              "batch": str(root / "batch.npz"), "out": str(root / name / "reference.npz")})
        spec["writer_checks"].append({"prefix": str(root / name / "writer" / case.prefix),
                                      "weights": str(root / name / "weights.npz")})
    (root / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(reference_python), str(REPO / "tests/reference/tf_loaders.py"), str(root / "spec.json")],
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert [c["name"] for c in report["cases"]] == list(CASES)
    assert len(report["writer_checks"]) == len(CASES)  # TensorFlow read every writer checkpoint bit for bit
    return {name: root / name for name in CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_transformers_tf_loader(name: str, reference: dict[str, Path]) -> None:
    case, where = CASES[name], reference[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every variable has a place: nothing is skipped with a warning
        model = jaxbert.load(where / "tf", **case.load)
    assert model.config.family == FAMILY[name] and model.config.heads == case.heads
    theirs = dict(np.load(where / "reference.npz"))
    ours = _ours(model, dict(np.load(where.parent / "batch.npz")))
    assert sorted(ours) == sorted(theirs)
    for key, ref in theirs.items():
        assert ours[key].shape == ref.shape, key
        diff = np.abs(ours[key].astype(np.float64) - ref).max()
        assert diff <= TOL, f"{name} {key}: max abs difference {diff:.2e} > {TOL}"
    # The test writer's checkpoint of the same weights loads to the same params as TensorFlow's.
    again = jaxbert.load(where / "writer", **case.load)
    assert again.config == model.config
    import jax

    jax.tree_util.tree_map(np.testing.assert_array_equal, again.params, model.params)


def test_generator_config_follows_electras_rule(reference: dict[str, Path]) -> None:
    """Given the discriminator's config, the generator's comes from its variables by get_generator_config."""
    gen = jaxbert.load(reference["electra-generator"] / "tf", part="generator").config
    assert (gen.hidden_size, gen.num_heads, gen.intermediate_size, gen.num_layers, gen.embed_dim) == (48, 1, 192, 2, 32)


# ---- training state, missing and extra variables ----------------------------------------------------

@pytest.fixture
def bert_dir(tmp_path: Path) -> Path:
    _write_case("bert", tmp_path / "bert", writer=True)
    return tmp_path / "bert"


def _rewrite(directory: Path, prefix: str, change) -> None:
    from jaxbert.interop.tf_bundle import Bundle

    bundle = Bundle(directory / prefix)
    variables = {n: bundle.read(n) for n in bundle.names()}
    change(variables)
    for f in directory.glob(prefix + ".*"):
        f.unlink()
    write_checkpoint(directory / prefix, variables)


def _one_line_error(match: str, *args, **kwargs) -> str:
    with pytest.raises(JaxbertError) as err:
        jaxbert.load(*args, **kwargs)
    message = str(err.value)
    assert "\n" not in message and match in message, message
    return message


def test_optimizer_slots_and_global_step_are_skipped(bert_dir: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = jaxbert.load(bert_dir)
    names = tf_checkpoint._Variables(tf_checkpoint.Bundle(find_prefix(bert_dir))).names()
    assert "global_step" in names and sum(n.endswith(("/adam_m", "/adam_v")) for n in names) > 50
    _rewrite(bert_dir, "bert_model.ckpt", lambda v: [v.pop(n) for n in list(v)
                                                      if n.endswith(("/adam_m", "/adam_v")) or n == "global_step"])
    bare = jaxbert.load(bert_dir)
    import jax

    jax.tree_util.tree_map(np.testing.assert_array_equal, full.params, bare.params)


def test_missing_variable_is_named(bert_dir: Path) -> None:
    _rewrite(bert_dir, "bert_model.ckpt", lambda v: v.pop("bert/encoder/layer_1/output/LayerNorm/beta"))
    _one_line_error("bert/encoder/layer_1/output/LayerNorm/beta", bert_dir)


def test_more_or_fewer_layers_than_the_config_are_named(bert_dir: Path) -> None:
    config = json.loads((bert_dir / "bert_config.json").read_text())
    (bert_dir / "bert_config.json").write_text(json.dumps({**config, "num_hidden_layers": 1}))
    _one_line_error("bert/encoder/layer_1/", bert_dir)  # unused variables inside the model's scopes
    (bert_dir / "bert_config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    message = _one_line_error("are missing", bert_dir)
    assert "bert/encoder/layer_2/attention/self/query/kernel" in message


def test_shape_mismatch_names_the_variable_and_both_shapes(bert_dir: Path) -> None:
    config = json.loads((bert_dir / "bert_config.json").read_text())
    (bert_dir / "bert_config.json").write_text(json.dumps({**config, "intermediate_size": 64}))
    _one_line_error("bert/encoder/layer_0/intermediate/dense/kernel has shape (48, 80) but the config implies (48, 64)",
                    bert_dir)


def test_task_head_variables_are_skipped_with_a_warning(bert_dir: Path) -> None:
    """A run_classifier.py checkpoint: the encoder loads, its classifier (output_weights/bias) is named and skipped."""
    def add_classifier(v):
        v["output_weights"] = np.ones((3, 48), np.float32)
        v["output_bias"] = np.zeros((3,), np.float32)

    _rewrite(bert_dir, "bert_model.ckpt", add_classifier)
    with pytest.warns(UserWarning, match="output_bias, output_weights"):
        assert jaxbert.load(bert_dir).config.heads == ("mlm", "nsp")


def test_hub_module_prefix_and_heads_follow_the_variables(bert_dir: Path) -> None:
    """TF-Hub exports prefix every name with "module/"; a checkpoint without cls/ variables loads as BertModel."""
    def hub_export(v):
        for n in list(v):
            value = v.pop(n)
            if not n.startswith("cls/"):
                v["module/" + n] = value

    _rewrite(bert_dir, "bert_model.ckpt", hub_export)
    model = jaxbert.load(bert_dir)
    assert model.config.heads == () and model.config.pooler


# ---- finding checkpoints and their configs ---------------------------------------------------------

def test_every_way_of_naming_a_checkpoint(bert_dir: Path, tmp_path: Path) -> None:
    prefix = bert_dir / "bert_model.ckpt"
    for path in (bert_dir, prefix, Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001")):
        assert find_prefix(path) == prefix, path
    assert jaxbert.load(prefix).config == jaxbert.load(bert_dir).config
    # Several checkpoints: the `checkpoint` state file says which (Google's hold paths of the training machine).
    for f in bert_dir.glob("bert_model.ckpt.*"):
        shutil.copy(f, bert_dir / f.name.replace("bert_model.ckpt", "model.ckpt-2000"))
    (bert_dir / "checkpoint").write_text('model_checkpoint_path: "gs://bucket/run/model.ckpt-2000"\n')
    assert find_prefix(bert_dir) == bert_dir / "model.ckpt-2000"
    (bert_dir / "checkpoint").unlink()
    with pytest.raises(TFCheckpointError, match="holds 2 TensorFlow checkpoints") as err:
        jaxbert.load(bert_dir)
    assert "\n" not in str(err.value)
    assert find_prefix(tmp_path / "absent") is None


def test_electra_needs_a_config_and_takes_a_preset_or_modelconfig(tmp_path: Path, monkeypatch) -> None:
    from jaxbert.config import ModelConfig
    from jaxbert.interop.hf_config import model_config_from_hf

    _write_case("electra-discriminator", tmp_path / "e", writer=True)
    (tmp_path / "e" / "config.json").unlink()
    _one_line_error("no config file beside the checkpoint", tmp_path / "e")
    disc = model_config_from_hf({"model_type": "electra", **ELECTRA}, ("rtd",), False, "test")
    monkeypatch.setitem(tf_checkpoint.PRESETS, "electra-test", disc)
    _one_line_error("config='electra-test' (the preset whose shapes match)", tmp_path / "e")
    by_preset = jaxbert.load(tmp_path / "e", config="electra-test")
    by_config = jaxbert.load(tmp_path / "e", config=disc)
    assert by_preset.config == by_config.config == disc
    generator = jaxbert.load(tmp_path / "e", config="electra-test", part="generator").config
    assert isinstance(generator, ModelConfig) and generator.hidden_size == 48 and generator.heads == ("mlm",)
    (tmp_path / "gen.json").write_text(json.dumps({"model_type": "electra", **ELECTRA_GENERATOR}))
    assert jaxbert.load(tmp_path / "e", config=tmp_path / "gen.json", part="generator").config == generator
    _one_line_error("unknown part 'student'", tmp_path / "e", config=disc, part="student")
    _one_line_error("is a bert config", tmp_path / "e", config="bert-base")


def test_part_and_config_are_refused_where_they_mean_nothing(bert_dir: Path) -> None:
    _one_line_error("holds one model", bert_dir, part="generator")
    bundle = jaxbert.load(bert_dir).save(bert_dir.parent / "bundle")
    _one_line_error("part= applies to", bundle, part="generator")


# ---- damaged files --------------------------------------------------------------------------------

def test_damaged_checkpoints_are_one_line_errors(bert_dir: Path) -> None:
    data = bert_dir / "bert_model.ckpt.data-00000-of-00001"
    blob = data.read_bytes()
    flipped = bytearray(blob)
    flipped[100] ^= 0xFF
    data.write_bytes(bytes(flipped))
    _one_line_error("fails its CRC32C check", bert_dir)
    data.write_bytes(blob[: len(blob) // 2])
    _one_line_error("truncated", bert_dir)
    data.unlink()
    _one_line_error("download its .data-* files too", bert_dir / "bert_model.ckpt")
    index = bert_dir / "bert_model.ckpt.index"
    index.write_bytes(index.read_bytes()[:-20])
    _one_line_error("not a readable TensorFlow checkpoint index", bert_dir / "bert_model.ckpt")


def test_tf2_object_checkpoint_is_named(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "ckpt-1", {"model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE":
                                           np.ones((2, 2), np.float32)})
    _one_line_error("TF2 object-based checkpoint", tmp_path)


# ---- tokenizers beside the checkpoint --------------------------------------------------------------

def _vocab(path: Path, cased: bool) -> None:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "hello", "world", "##s", "."]
    words += ["Hello", "World"] if cased else []
    path.write_text("\n".join(words) + "\n", encoding="utf-8")


@pytest.mark.parametrize("release, cased_vocab, lowercase", [
    ("uncased_L-2_H-48_A-3", False, True),
    ("cased_L-2_H-48_A-3", True, False),
    ("multi_cased_L-2_H-48_A-3", True, False),
    ("chinese_L-2_H-48_A-3", False, True),
    ("my_model", True, False),  # the name says nothing: the vocabulary's capitals say cased
    ("my_model", False, True),
])
def test_vocab_txt_case_follows_the_release_name(release: str, cased_vocab: bool, lowercase: bool,
                                                 tmp_path: Path) -> None:
    _write_case("bert", tmp_path / release, writer=True)
    _vocab(tmp_path / release / "vocab.txt", cased_vocab)
    model = jaxbert.load(tmp_path / release)
    assert model.tokenizer.kind == "wordpiece"
    ids = model.tokenizer.encode("Hello", add_special_tokens=False)
    assert ids == [model.tokenizer.token_to_id("hello" if lowercase else "Hello")]
    # The setting travels with a saved bundle (tokenizer_config.json is written).
    again = jaxbert.load(model.save(tmp_path / "bundle"))
    assert again.tokenizer.encode("Hello", add_special_tokens=False) == ids


def test_albert_release_sentencepiece_model_is_picked_up(tmp_path: Path, shared_data: Path) -> None:
    from jaxbert.tokenize import SentencePieceTokenizer, train_vocab

    train_vocab([shared_data / "corpus/tinyshakespeare.txt"], "sentencepiece", VOCAB, tmp_path / "spm")
    _write_case("albert-v2", tmp_path / "albert_base", writer=True)
    shutil.copy(tmp_path / "spm" / "spiece.model", tmp_path / "albert_base" / "30k-clean.model")
    model = jaxbert.load(tmp_path / "albert_base")
    assert isinstance(model.tokenizer, SentencePieceTokenizer) and model.tokenizer.vocab_size == VOCAB
    assert model.tokenizer.encode("To be, or not") == SentencePieceTokenizer(tmp_path / "spm/spiece.model").encode(
        "To be, or not")


# ---- conversion to transformers (transformers 5, no TensorFlow) ---------------------------------------

@pytest.mark.parametrize("name, arch", [("bert", "BertForPreTraining"), ("electra-generator", "ElectraForMaskedLM")])
def test_convert_to_hf_loads_in_transformers(name: str, arch: str, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="install the test extra: pip install -e '.[test]'")
    transformers = pytest.importorskip("transformers", reason="install the test extra: pip install -e '.[test]'")
    from jaxbert.cli import main

    _write_case(name, tmp_path / "tf", writer=True)
    part = ["--part", CASES[name].load["part"]] if "part" in CASES[name].load else []
    assert main(["convert", "--from", str(tmp_path / "tf"), "--to", str(tmp_path / "hf"), "--format", "hf",
                 *part]) == 0
    model, info = getattr(transformers, arch).from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not any(info.values()), info
    batch = _batch(seed=3)
    with torch.no_grad():
        full = model.eval()(**{k: torch.tensor(v) for k, v in batch.items()})
    field = "prediction_logits" if arch == "BertForPreTraining" else "logits"
    ours = _ours(jaxbert.load(tmp_path / "tf", **CASES[name].load), batch)
    assert np.abs(ours["mlm"] - full[field].numpy()).max() <= TOL


# ---- formats jaxbert does not read -----------------------------------------------------------------

@pytest.mark.parametrize("files, found", [
    ({"config.json": '{"model_type": "bert"}', "tf_model.h5": ""}, "Keras/TensorFlow 2 weights (tf_model.h5)"),
    ({"config.json": '{"model_type": "bert"}', "flax_model.msgpack": ""}, "Flax weights (flax_model.msgpack)"),
    ({"config.json": '{"model_type": "gpt2"}', "tf_model.h5": ""}, "config.json of model_type 'gpt2'"),
    ({"config.json": '{"model_type": "bert"}'}, "config.json without weights"),
    ({"model.ckpt": "v1"}, "a TensorFlow V1 checkpoint"),
    ({"notes.txt": "hi"}, "files (notes.txt) of no model format"),
    ({}, "an empty directory"),
])
def test_unsupported_formats_name_what_was_found(files: dict[str, str], found: str, tmp_path: Path) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    message = _one_line_error(found, tmp_path)
    assert "jaxbert reads a jaxbert bundle" in message and "Google TensorFlow checkpoint" in message
