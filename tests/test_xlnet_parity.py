"""XLNet against transformers PyTorch (fp32, eval mode) on the same randomly initialised, perturbed weights.

Odd shapes (3 heads, a vocabulary of 1013), several batch sizes and lengths, left and right padding,
segments: the content stream's hidden states without a permutation mask, XLNetLMHeadModel's logits
given the same perm_mask and target_mapping, memory across two segments, bi_data and clamp_len, the
three task models, and export back to transformers.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbert
from jaxbert.config import ModelConfig
from jaxbert.errors import JaxbertError
from jaxbert.interop import hf, hf_tasks
from jaxbert.model import build_model

torch = pytest.importorskip("torch", reason="install the test extra: pip install -e '.[test]'")
transformers = pytest.importorskip("transformers", reason="install the test extra: pip install -e '.[test]'")

TOL = 1e-4
VOCAB = 1013  # not a multiple of 8
SMALL = dict(vocab_size=VOCAB, d_model=48, n_layer=2, n_head=3, d_inner=80, pad_token_id=5)
# (batch, length, padding side or None, segments); two more shapes behind -m slow (each shape compiles twice)
BATCHES = [(3, 12, "left", True), (2, 7, "right", False), pytest.param(1, 5, None, True, marks=pytest.mark.slow),
           pytest.param(4, 16, "left", False, marks=pytest.mark.slow)]


def _perturbed(cls, config, seed: int = 0):
    torch.manual_seed(seed)
    model = cls(config).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():  # off the init values: LayerNorm scales, zero biases
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


def _batch(b: int, t: int, side: str | None, segments: bool, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed + 7 * b + t)
    ids = rng.randint(6, VOCAB, (b, t))
    mask = np.ones((b, t), np.int64)
    for row in range(b):
        pad = 0 if side is None else (row * t) // (b + 1)
        if side == "left":
            mask[row, :pad] = 0
        elif side == "right" and pad:
            mask[row, -pad:] = 0
    ids[mask == 0] = 5
    out = {"input_ids": ids, "attention_mask": mask}
    if segments:  # XLNet's layout: A <sep> B <sep> <cls>, types 0 / 1 / 2
        types = np.zeros_like(ids)
        types[:, t // 2:] = 1
        types[:, -1] = 2
        out["token_type_ids"] = types
    return out


def _perm_inputs(b: int, t: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random perm_mask and a target_mapping of p slots (the last one empty in row 0)."""
    rng = np.random.RandomState(seed)
    perm = (rng.rand(b, t, t) < 0.5).astype(np.float32)
    mapping = np.zeros((b, p, t), np.float32)
    for row in range(b):
        for slot, pos in enumerate(rng.choice(t, p, replace=False)):
            mapping[row, slot, pos] = 1.0
    mapping[0, -1] = 0.0
    return perm, mapping


@functools.cache
def _apply(config: ModelConfig):
    return jax.jit(lambda params, ids, mask, types, perm, mapping, mems: build_model(config).apply(
        {"params": params}, ids, mask, types, output_hidden_states=True, perm_mask=perm, target_mapping=mapping,
        mems=mems, use_mems=True))


def _torch(batch: dict[str, np.ndarray]) -> dict:
    return {k: torch.tensor(v) for k, v in batch.items()}


def _close(ours, theirs, what: str) -> float:
    diff = float(np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64)).max())
    assert diff <= TOL, f"{what}: max abs difference {diff:.2e} > {TOL}"
    return diff


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> tuple[Path, object]:
    directory = tmp_path_factory.mktemp("xlnet-lm")
    model = _perturbed(transformers.XLNetLMHeadModel, transformers.XLNetConfig(**SMALL))
    model.save_pretrained(directory)
    return directory, model


def test_import_derives_the_config(lm_dir) -> None:
    config, _ = hf.load_hf(lm_dir[0])
    assert (config.family, config.heads, config.pooler, config.hidden_size, config.num_heads) == \
        ("xlnet", ("lm",), False, 48, 3)
    assert (config.vocab_size, config.intermediate_size, config.pad_token_id, config.mem_len) == (VOCAB, 80, 5, 512)
    fields = json.loads((lm_dir[0] / "config.json").read_text())
    assert hf.model_config_from_hf({**fields, "mem_len": None}, ("lm",), False, "x").mem_len == 0  # null: keep all


@pytest.mark.parametrize("b, t, side, segments", BATCHES)
def test_content_stream_and_lm_logits_match_transformers(lm_dir, b, t, side, segments) -> None:
    directory, model = lm_dir
    config, params = hf.load_hf(directory)
    batch = _batch(b, t, side, segments)
    types = batch.get("token_type_ids")
    # The content stream, no permutation mask: every layer's hidden states and the LM logits over all tokens.
    with torch.no_grad():
        base = model.transformer(**_torch(batch), output_hidden_states=True)
        full = model(**_torch(batch)).logits.numpy()
    ours = _apply(config)(params, batch["input_ids"], batch["attention_mask"], types, None, None, None)
    assert len(ours.hidden_states) == len(base.hidden_states) == config.num_layers + 1
    for i, (a, ref) in enumerate(zip(ours.hidden_states, base.hidden_states, strict=True)):
        _close(a, ref.numpy(), f"hidden state {i}")
    _close(ours.last_hidden_state, base.last_hidden_state.numpy(), "last hidden state")
    _close(ours.logits["lm"], full, "lm logits (content stream)")
    # Two streams: the same perm_mask and target_mapping give the same query-stream logits.
    perm, mapping = _perm_inputs(b, t, max(1, t // 3))
    with torch.no_grad():
        theirs = model(**_torch(batch), perm_mask=torch.tensor(perm), target_mapping=torch.tensor(mapping))
    ours = _apply(config)(params, batch["input_ids"], batch["attention_mask"], types, perm, mapping, None)
    assert ours.logits["lm"].shape == theirs.logits.shape == (b, mapping.shape[1], VOCAB)
    _close(ours.logits["lm"], theirs.logits.numpy(), "lm logits (query stream)")
    _close(ours.query_hidden_state, model.transformer(
        **_torch(batch), perm_mask=torch.tensor(perm), target_mapping=torch.tensor(mapping)).last_hidden_state
        .detach().numpy(), "query stream")


def test_memory_bi_data_and_clamp_len_match_transformers(tmp_path: Path) -> None:
    """Two segments with memory (mem_len 5 < length), backward positions for half the batch, clamped distances."""
    fields = dict(SMALL, mem_len=5, bi_data=True, clamp_len=6, ff_activation="gelu_new", layer_norm_eps=1e-7)
    model = _perturbed(transformers.XLNetLMHeadModel, transformers.XLNetConfig(**fields), seed=3)
    model.save_pretrained(tmp_path)
    config, params = hf.load_hf(tmp_path)
    assert (config.bi_data, config.clamp_len, config.mem_len, config.hidden_act) == (True, 6, 5, "gelu_new")
    first, second = _batch(4, 9, None, True), _batch(4, 6, None, True, seed=1)
    with torch.no_grad():
        a = model.transformer(**_torch(first), use_mems=True)
        b = model.transformer(**_torch(second), mems=a.mems, use_mems=True, output_hidden_states=True)
    ours_a = _apply(config)(params, first["input_ids"], first["attention_mask"], first["token_type_ids"],
                            None, None, None)
    ours_b = _apply(config)(params, second["input_ids"], second["attention_mask"], second["token_type_ids"],
                            None, None, ours_a.mems)
    assert ours_a.mems.shape == (2, 4, 5, 48)
    for i in range(config.num_layers):
        _close(ours_a.mems[i], a.mems[i].numpy().transpose(1, 0, 2), f"memory of layer {i}")
        _close(ours_b.mems[i], b.mems[i].numpy().transpose(1, 0, 2), f"second memory of layer {i}")
    for i, ref in enumerate(b.hidden_states):
        _close(ours_b.hidden_states[i], ref.numpy(), f"hidden state {i} with memory")


TASKS = {
    "classification": ("XLNetForSequenceClassification", 3),
    "span": ("XLNetForQuestionAnsweringSimple", 2),
    "token": ("XLNetForTokenClassification", 4),
}


def _task_logits(model, batch: dict[str, np.ndarray], task: str) -> np.ndarray:
    with torch.no_grad():
        out = model(**_torch(batch))
    if task == "span":
        return torch.stack([out.start_logits, out.end_logits], -1).numpy()
    return out.logits.numpy()


@pytest.mark.parametrize("task", list(TASKS))
def test_task_models_load_and_export_exactly(task: str, tmp_path: Path) -> None:
    arch, labels = TASKS[task]
    hf_config = transformers.XLNetConfig(**SMALL, num_labels=labels, summary_last_dropout=0.2)
    model = _perturbed(getattr(transformers, arch), hf_config, seed=5)
    model.save_pretrained(tmp_path / "theirs")
    loaded = jaxbert.load(tmp_path / "theirs")
    assert (loaded.config.task, loaded.config.num_labels, loaded.config.family) == (task, labels, "xlnet")
    assert loaded.config.classifier_dropout == (0.2 if task == "classification" else 0.0)
    batch = _batch(3, 11, "left", True)  # XLNet's tokenizer pads on the left; the summary reads the last token
    ours = np.asarray(_apply(loaded.config)(loaded.params, batch["input_ids"], batch["attention_mask"],
                                            batch["token_type_ids"], None, None, None).logits[task])
    _close(ours, _task_logits(model, batch, task), f"{task} logits")
    out = jaxbert.export_hf(loaded, tmp_path / "ours")
    assert json.loads((out / "config.json").read_text())["architectures"] == [arch]
    again, info = getattr(transformers, arch).from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    _close(_task_logits(again.eval(), batch, task), ours, f"{task} logits after export")


def test_classifier_summarises_the_last_real_token_whatever_the_padding_side(lm_dir, tmp_path: Path) -> None:
    """Right padding (a tokenizer that is not XLNet's) still classifies from the last real token."""
    model = _perturbed(transformers.XLNetForSequenceClassification,
                       transformers.XLNetConfig(**SMALL, num_labels=2), seed=6)
    model.save_pretrained(tmp_path)
    p = jaxbert.load(tmp_path)
    left = _batch(2, 10, "left", False)
    right = {k: np.stack([np.roll(row, -int((m == 0).sum())) for row, m in zip(v, left["attention_mask"],
                                                                              strict=True)])
             for k, v in left.items()}
    run = lambda b: np.asarray(_apply(p.config)(p.params, b["input_ids"], b["attention_mask"], None, None, None,
                                                None).logits["classification"])
    _close(run(right), run(left), "right- vs left-padded logits")  # relative attention: only order matters
    _close(run(left), _task_logits(model, left, "classification"), "left-padded logits vs transformers")


@pytest.mark.parametrize("heads, arch", [(("lm",), "XLNetLMHeadModel"), ((), "XLNetModel")])
def test_export_round_trip_through_transformers(lm_dir, heads, arch, tmp_path: Path) -> None:
    config, params = hf.load_hf(lm_dir[0])
    if not heads:
        config, params = config.replace(heads=()), {k: v for k, v in params.items() if k != "lm_head"}
    out = jaxbert.export_hf(jaxbert.Pretrained(config, params), tmp_path / "out")
    fields = json.loads((out / "config.json").read_text())
    assert fields["architectures"] == [arch] and "max_position_embeddings" not in fields
    theirs, info = getattr(transformers, arch).from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    batch = _batch(2, 8, "left", True)
    with torch.no_grad():
        ref = theirs.eval()(**_torch(batch))
    ours = _apply(config)(params, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], None, None,
                          None)
    _close(ours.logits["lm"] if heads else ours.last_hidden_state, ref[0].numpy(), f"{arch} output")
    back, back_params = hf.load_hf(out)
    assert back == config.replace(max_position_embeddings=512)
    jax.tree_util.tree_map(np.testing.assert_array_equal, back_params, params)


def test_unsupported_xlnet_configs_are_one_line_errors(lm_dir, tmp_path: Path) -> None:
    directory = tmp_path / "uni"
    directory.mkdir()
    fields = json.loads((lm_dir[0] / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**fields, "attn_type": "uni"}))
    (directory / "model.safetensors").write_bytes((lm_dir[0] / "model.safetensors").read_bytes())
    with pytest.raises(JaxbertError, match="attn_type='uni'") as err:
        hf.load_hf(directory)
    assert "\n" not in str(err.value)
    config, params = hf.load_hf(lm_dir[0])
    with pytest.raises(JaxbertError, match="one dropout rate"):
        hf.export_hf(config.replace(attention_dropout=0.0, hidden_dropout=0.1), params, tmp_path / "x")
    assert hf_tasks.hf_task_of(lm_dir[0]) is None
