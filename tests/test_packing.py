"""Sequence packing (issue 15.1): several examples per row, told apart by segment ids.

The reference for a packed row is each of its examples run alone: per-token outputs, per-example
heads and losses must match what the unpacked model gives (fp32, 1e-5), so packing changes only
how many real tokens a step carries.
"""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbert.config import PRESETS
from jaxbert.data.masking import num_per_segment, select_tokens_per_segment
from jaxbert.data.packing import PackingError, RowPacker, pack_arrays, pack_rows
from jaxbert.data.pretraining import ExampleConfig, ExampleConfigError, ExampleStats, create_examples
from jaxbert.model import EncoderModel
from jaxbert.model.packing import positions_in_segment, segment_starts
from jaxbert.objectives.finetune import Finetune, task_model_config
from jaxbert.objectives.mlm import masked_lm_metrics, pair_metrics

SEQ = 32
LENGTHS = (11, 7, 9)  # three examples in one row of 32: 27 real tokens, 5 padding
K = 4  # slots per packed row (one left empty)


def tiny(family: str, **kw):
    base = PRESETS["electra-small" if family == "electra" else "bert-tiny"]
    extra = {"roberta": dict(position_offset=2, pad_token_id=1, type_vocab_size=1, pooler=False, heads=("mlm",)),
             "albert": dict(embedding_size=32, sharing="all", heads=("mlm", "sop")),
             "electra": dict(num_layers=2, heads=("mlm",))}.get(family, {})
    return base.replace(family=family, vocab_size=300, hidden_dropout=0.0, attention_dropout=0.0,
                        compute_dtype="float32", **{**extra, **kw})


def examples(cfg, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Three real-shaped examples: [CLS] a [SEP] b [SEP] with token types 0/1 where the family has them."""
    rng = np.random.default_rng(seed)
    out = []
    for n in LENGTHS:
        ids = rng.integers(5, cfg.vocab_size, n).astype(np.int32)
        ids[0], ids[n // 2], ids[-1] = 2, 3, 3
        types = (np.arange(n) > n // 2).astype(np.int32) if cfg.type_vocab_size > 1 else np.zeros(n, np.int32)
        out.append({"input_ids": ids, "token_type_ids": types})
    return out


def packed_row(cfg, exs) -> dict[str, np.ndarray]:
    ids = np.full(SEQ, cfg.pad_token_id, np.int32)
    types, segments = np.zeros(SEQ, np.int32), np.zeros(SEQ, np.int32)
    at = 0
    for k, e in enumerate(exs):
        n = len(e["input_ids"])
        ids[at:at + n], types[at:at + n], segments[at:at + n] = e["input_ids"], e["token_type_ids"], k + 1
        at += n
    return {"input_ids": ids[None], "token_type_ids": types[None], "attention_mask": (segments > 0)[None].astype(
        np.int32), "segment_ids": segments[None]}


def run(model, params, batch, **kw):
    types = batch["token_type_ids"] if model.config.type_vocab_size > 0 else None
    return model.apply({"params": params}, batch["input_ids"], batch["attention_mask"], types, **kw)


@pytest.mark.parametrize("family", ["bert", "roberta", pytest.param("albert", marks=pytest.mark.slow),
                                    pytest.param("electra", marks=pytest.mark.slow)])
def test_packed_row_outputs_equal_each_example_run_alone(family):
    cfg = tiny(family)
    model = EncoderModel(cfg)
    exs = examples(cfg)
    batch = packed_row(cfg, exs)
    params = model.init(jax.random.key(0), batch["input_ids"], batch["attention_mask"])["params"]
    starts, present = segment_starts(jnp.asarray(batch["segment_ids"]), K)
    packed = run(model, params, batch, segment_ids=batch["segment_ids"], segment_starts=starts)
    np.testing.assert_array_equal(present[0], [True, True, True, False])
    pair = next((h for h in ("nsp", "sop") if h in cfg.heads), None)
    at = 0
    for k, e in enumerate(exs):
        n = len(e["input_ids"])
        alone = run(model, params, {"input_ids": e["input_ids"][None], "token_type_ids": e["token_type_ids"][None],
                                    "attention_mask": np.ones((1, n), np.int32)})
        np.testing.assert_allclose(packed.last_hidden_state[0, at:at + n], alone.last_hidden_state[0],
                                   atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(packed.logits["mlm"][0, at:at + n], alone.logits["mlm"][0], atol=1e-5, rtol=1e-5)
        if cfg.pooler:
            np.testing.assert_allclose(packed.pooler_output[0, k], alone.pooler_output[0], atol=1e-5, rtol=1e-5)
        if pair:
            np.testing.assert_allclose(packed.logits[pair][0, k], alone.logits[pair][0], atol=1e-5, rtol=1e-5)
        at += n


@pytest.mark.slow
def test_packed_mlm_and_nsp_losses_equal_the_sum_over_the_examples_alone():
    """Masked positions given (the draw is random): summed MLM and NSP losses of a packed batch of two rows
    equal the sums over its six examples run one by one."""
    cfg = tiny("bert")
    model = EncoderModel(cfg)
    rows = [examples(cfg, seed) for seed in (1, 2)]
    batches = [packed_row(cfg, r) for r in rows]
    batch = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    rng = np.random.default_rng(3)
    picks = [[np.sort(rng.choice(np.arange(1, n - 1), 2, replace=False)) for n in LENGTHS] for _ in rows]
    offsets = np.cumsum((0,) + LENGTHS[:-1])
    positions = np.stack([np.concatenate([p + o for p, o in zip(row, offsets, strict=True)]) for row in picks])
    labels = np.asarray([[1, 0, 1, 0], [0, 0, 1, 0]], np.int32)  # slot 3 empty
    params = model.init(jax.random.key(0), batch["input_ids"], batch["attention_mask"])["params"]
    starts, present = segment_starts(jnp.asarray(batch["segment_ids"]), K)
    out = run(model, params, batch, segment_ids=batch["segment_ids"], segment_starts=starts,
              masked_positions=positions)
    targets = np.take_along_axis(batch["input_ids"], positions, axis=1)
    weights = np.ones(positions.shape, np.float32)
    mlm, _ = masked_lm_metrics(out.logits["mlm"], targets, weights)
    nsp, _ = pair_metrics(out.logits["nsp"], labels, present)
    packed_mlm_sum, packed_nsp_sum = float(mlm) * weights.sum(), float(nsp) * float(present.sum())

    mlm_sum = nsp_sum = 0.0
    for r, row in enumerate(rows):
        for k, e in enumerate(row):
            alone = run(model, params, {"input_ids": e["input_ids"][None], "token_type_ids": e["token_type_ids"][None],
                                        "attention_mask": np.ones((1, len(e["input_ids"])), np.int32)},
                        masked_positions=picks[r][k][None])
            m, _ = masked_lm_metrics(alone.logits["mlm"], e["input_ids"][picks[r][k]][None], np.ones((1, 2)))
            p, _ = pair_metrics(alone.logits["nsp"], labels[r, k:k + 1])
            mlm_sum, nsp_sum = mlm_sum + 2 * float(m), nsp_sum + float(p)
    assert packed_mlm_sum == pytest.approx(mlm_sum, rel=1e-5)
    assert packed_nsp_sum == pytest.approx(nsp_sum, rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_packed_classification_batch_has_the_unpacked_loss(family):
    """Fine-tuning: `pack_arrays` rows through the Finetune objective give the unpacked batch's mean loss."""
    cfg = task_model_config(tiny(family), "classification", 3)
    n = 10
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 12, n)
    ids = np.full((n, SEQ), cfg.pad_token_id, np.int32)
    for i, length in enumerate(lengths):
        ids[i, :length] = rng.integers(5, cfg.vocab_size, length)
    arrays = {"input_ids": ids, "attention_mask": (np.arange(SEQ)[None] < lengths[:, None]).astype(np.int32),
              "labels": rng.integers(0, 3, n).astype(np.int32)}
    if cfg.type_vocab_size > 0:
        arrays["token_type_ids"] = np.zeros((n, SEQ), np.int32)
    packed = pack_arrays(arrays, lengths, SEQ, 4, cfg.pad_token_id)
    assert packed["input_ids"].shape[0] < n and packed["labels"].shape[1] == 4
    plain, packing = Finetune(cfg, "classification"), Finetune(cfg, "classification", packed=4)
    params = plain.init(jax.random.key(0))
    loss, metrics = plain.loss(params, {}, arrays, jax.random.key(1), deterministic=True)
    packed_loss, packed_metrics = packing.loss(params, {}, packed, jax.random.key(1), deterministic=True)
    assert float(packed_loss) == pytest.approx(float(loss), rel=1e-5)
    assert float(packed_metrics["accuracy"]) == pytest.approx(float(metrics["accuracy"]))


def test_span_and_token_tasks_refuse_packing():
    cfg = task_model_config(tiny("bert"), "span")
    with pytest.raises(Exception, match="not packed"):
        Finetune(cfg, "span", packed=4)


def test_positions_restart_in_every_segment():
    seg = jnp.asarray([[1, 1, 1, 2, 2, 3, 0, 0]])
    np.testing.assert_array_equal(positions_in_segment(seg)[0], [0, 1, 2, 0, 1, 0, 0, 1])
    starts, present = segment_starts(seg, 4)
    np.testing.assert_array_equal(starts[0], [0, 3, 5, 0])
    np.testing.assert_array_equal(present[0], [True, True, True, False])


def test_masking_budget_is_berts_count_per_segment():
    """Each segment gets min(max_predictions, max(1, round(n_s * 0.15))) masks, only of its maskable tokens."""
    seg = np.repeat(np.arange(1, 5), [40, 20, 7, 30])[None].repeat(8, 0)
    seg = np.pad(seg, ((0, 0), (0, 31)))  # 97 real + 31 padding = 128
    maskable = jnp.asarray(seg > 0) & (jax.random.uniform(jax.random.key(0), seg.shape) > 0.1)
    num = num_per_segment(maskable, jnp.asarray(seg), 0.15, 5)
    selected = np.asarray(select_tokens_per_segment(jax.random.key(1), maskable, jnp.asarray(seg), num))
    assert not (selected & ~np.asarray(maskable)).any()
    for b in range(8):
        for s in range(1, 5):
            n_s = int(np.asarray(maskable)[b][seg[b] == s].sum())
            assert selected[b][seg[b] == s].sum() == min(5, max(1, round(n_s * 0.15)))


def test_row_packer_places_every_item_once_within_the_limits():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 129, 2000)
    rows = list(pack_rows(((int(n), i) for i, n in enumerate(lengths)), 128, 8))
    placed = [i for row in rows for i in row]
    assert sorted(placed) == list(range(2000))
    assert all(sum(lengths[i] for i in row) <= 128 and len(row) <= 8 for row in rows)
    assert rows == list(pack_rows(((int(n), i) for i, n in enumerate(lengths)), 128, 8))  # deterministic
    with pytest.raises(PackingError, match="does not fit"):
        RowPacker(128, 8).add(129, "x")
    with pytest.raises(PackingError, match="at least 2"):
        RowPacker(128, 1)


def test_bad_packing_options_are_named():
    with pytest.raises(ExampleConfigError, match="max_examples_per_row"):
        ExampleConfig(max_seq_len=128, pack_examples=True, max_examples_per_row=200)


# ---- the shared corpus: padding share, and packed records hold exactly the unpacked examples ----------
@pytest.fixture(scope="module")
def wiki(shared_data):
    from jaxbert.data.corpus import read_documents

    return list(read_documents(shared_data / "corpus" / "wikitext-2.valid.tokens.txt"))


@pytest.fixture(scope="module")
def bert_tok(minilm_dir):
    from jaxbert.tokenize import load_tokenizer

    return load_tokenizer(minilm_dir)


@pytest.mark.parametrize("fmt,seq", [("nsp", 128), ("nsp", 512), ("sop", 128), ("sop", 512)])
def test_packing_brings_the_shared_corpus_padding_to_5_percent(bert_tok, wiki, fmt, seq):
    plain_stats, packed_stats = ExampleStats(), ExampleStats()
    plain = list(create_examples(wiki, bert_tok, ExampleConfig(format=fmt, max_seq_len=seq), plain_stats))
    packed = list(create_examples(wiki, bert_tok, ExampleConfig(format=fmt, max_seq_len=seq, pack_examples=True),
                                  packed_stats))
    assert packed_stats.padding_share <= 0.05, (plain_stats.padding_share, packed_stats.padding_share)
    assert packed_stats.padding_share < plain_stats.padding_share
    assert packed_stats.padding_share == pytest.approx(
        1 - sum(int((r["segment_ids"] > 0).sum()) for r in packed) / (len(packed) * seq))
    label = "next_sentence_label" if fmt == "nsp" else "sentence_order_label"
    # Every packed segment is one unpacked example (tokens, types, label), each exactly once.
    want = collections.Counter((tuple(e["input_ids"][:e["length"]]), tuple(e["token_type_ids"][:e["length"]]),
                                int(e[label])) for e in plain)
    got = collections.Counter()
    for r in packed:
        for k in range(1, int(r["segment_ids"].max()) + 1):
            at = r["segment_ids"] == k
            got[(tuple(r["input_ids"][at]), tuple(r["token_type_ids"][at]), int(r[label][k - 1]))] += 1
        assert (r["input_ids"][r["segment_ids"] == 0] == bert_tok.special.pad).all()
    assert got == want


@pytest.mark.slow
def test_packed_smoke_pretraining_runs_end_to_end(tmp_path, capsys):
    """`jaxbert pretrain` with data.pack_examples: the packed build, the loader's [K] labels, the packed step."""
    from jaxbert.cli import main
    from jaxbert.train.metrics import read_metrics

    assert main(["pretrain", "--config", "configs/smoke/bert.py", "--workdir", str(tmp_path),
                 "--config.train.progress=false", "--config.data.pack_examples=True",
                 "--config.train.steps=30"]) == 0
    capsys.readouterr()
    rows = [r for r in read_metrics(tmp_path) if "loss" in r]
    assert rows and all(np.isfinite(r["loss"]) for r in rows) and "nsp_accuracy" in rows[-1]
    assert sorted(p.name for p in (tmp_path / "data").iterdir() if p.name.endswith("-packed"))
    assert rows[-1]["loss"] < rows[0]["loss"]
