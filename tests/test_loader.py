"""Pretraining dataset build (array_record via TFDS, no TensorFlow) and the grain loader over it."""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from jaxbert.data.corpus import CorpusError
from jaxbert.data.loader import LoaderError, make_pretraining_loader
from jaxbert.data.tfds_builder import META_FILE, DatasetBuildError, build_pretraining_dataset, read_dataset_meta
from jaxbert.parallel import create_mesh, host_to_global
from jaxbert.tokenize import load_tokenizer


@pytest.fixture(scope="module")
def tok(minilm_dir):
    return load_tokenizer(minilm_dir)


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    """The first 500 lines of WikiText-2 (validation)."""
    lines = (shared_data / "corpus" / "wikitext-2.valid.tokens.txt").read_text(encoding="utf-8").splitlines()
    path = tmp_path_factory.mktemp("corpus") / "wiki500.txt"
    path.write_text("\n".join(lines[:500]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dataset(corpus, tok, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "nsp64"
    summary = build_pretraining_dataset([corpus], tok, out, format="nsp", max_seq_len=64, seed=0)
    return out, summary


def _rows(batches) -> list[bytes]:
    """One hashable key per example (ids, segment ids and label)."""
    return [b["input_ids"][i].tobytes() + b["token_type_ids"][i].tobytes() + bytes([b["next_sentence_label"][i]])
            for b in batches for i in range(len(b["input_ids"]))]


def _same(batches_a, batches_b) -> bool:
    if len(batches_a) != len(batches_b):
        return False
    return all(a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
               for a, b in zip(batches_a, batches_b, strict=True))


# ---- building --------------------------------------------------------------------------------------


def test_build_writes_an_array_record_tfds_dataset_without_tensorflow(dataset):
    import tensorflow_datasets as tfds

    out, summary = dataset
    assert importlib.util.find_spec("tensorflow") is None and "tensorflow" not in sys.modules
    assert sorted(p.name for p in out.iterdir() if "array_record" in p.name)  # array_record shards
    source = tfds.builder_from_directory(str(out)).as_data_source(split="train")
    assert len(source) == summary.examples.examples > 100
    meta = read_dataset_meta(out)
    assert meta["options"]["example_config"]["format"] == "nsp" and meta["options"]["special"]["cls"] == 101
    assert summary.corpus.files == 1 and summary.examples.single_sentence_documents > 0
    ex = source[0]
    assert ex["input_ids"].shape == (64,) and ex["input_ids"][0] == 101


def test_loader_decoding_matches_tfds_decoding(dataset):
    """The loader parses records itself (faster); every record must equal TFDS's own decoding."""
    import tensorflow_datasets as tfds

    out, _ = dataset
    source = tfds.builder_from_directory(str(out)).as_data_source(split="train")
    rows = _rows(make_pretraining_loader(out, global_batch_size=1, shuffle=False, num_epochs=1))
    assert rows == _rows([{k: np.asarray(v)[None] for k, v in source[i].items()} for i in range(len(source))])
    first = next(make_pretraining_loader(out, global_batch_size=1, shuffle=False))
    assert int(first["attention_mask"].sum()) == int(source[0]["length"])


def test_rebuilding_reuses_refuses_or_overwrites(corpus, tok, tmp_path):
    out = tmp_path / "ds"
    summary = build_pretraining_dataset([corpus], tok, out, format="sop", max_seq_len=32, seed=0)
    mtime = (out / META_FILE).stat().st_mtime_ns
    again = build_pretraining_dataset([corpus], tok, out, format="sop", max_seq_len=32, seed=0)
    assert again.to_dict() == summary.to_dict() and (out / META_FILE).stat().st_mtime_ns == mtime
    with pytest.raises(DatasetBuildError, match="other options; pass overwrite=True"):
        build_pretraining_dataset([corpus], tok, out, format="sop", max_seq_len=32, seed=1)
    build_pretraining_dataset([corpus], tok, out, format="sop", max_seq_len=32, seed=1, overwrite=True)
    assert read_dataset_meta(out)["options"]["example_config"]["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temp or old directories left
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetBuildError, match="not a jaxbert pretraining dataset"):
        build_pretraining_dataset([corpus], tok, tmp_path / "other")


def test_failed_build_leaves_nothing_behind(tmp_path, corpus, tok):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n\nbad \xff byte\n")
    out = tmp_path / "ds"
    with pytest.raises(CorpusError, match=r"bad\.txt, line 3"):
        build_pretraining_dataset([corpus, bad], tok, out, format="sop", max_seq_len=64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt"]
    with pytest.raises(CorpusError, match="not found"):
        build_pretraining_dataset([tmp_path / "missing.txt"], tok, out)
    with pytest.raises(DatasetBuildError, match="not a complete jaxbert pretraining dataset"):
        make_pretraining_loader(out, 8)


def test_killed_build_never_looks_complete(tmp_path, corpus, minilm_dir):
    """SIGKILL in the middle of writing: the output directory does not exist and the loader refuses it."""
    out = tmp_path / "ds"
    script = textwrap.dedent(f"""
        import sys, time
        from jaxbert.data.tfds_builder import build_pretraining_dataset
        from jaxbert.tokenize import load_tokenizer

        tok = load_tokenizer({str(minilm_dir)!r})
        real_encode = tok.encode_batch

        def slow_encode(texts, add_special_tokens=False):  # stalls mid-build, inside the writer
            print("encoding", file=sys.stderr, flush=True)  # the builder silences stdout
            time.sleep(30)
            return real_encode(texts, add_special_tokens)

        tok.encode_batch = slow_encode
        build_pretraining_dataset([{str(corpus)!r}], tok, {str(out)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})
    try:
        # Log lines may come first.
        assert any(line.strip() == "encoding" for line in iter(proc.stderr.readline, ""))
        time.sleep(0.2)
        assert any(p.name.startswith(".ds.tmp-") for p in tmp_path.iterdir())
    finally:
        proc.kill()
        proc.wait()
    assert not out.exists()
    with pytest.raises(DatasetBuildError, match="not a complete"):
        make_pretraining_loader(out, 8)


# ---- loading ---------------------------------------------------------------------------------------


def test_batches_have_the_model_fields(dataset):
    out, _ = dataset
    loader = make_pretraining_loader(out, global_batch_size=8, seed=0)
    batch = next(loader)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "next_sentence_label"}
    assert all(v.dtype == np.int32 for v in batch.values())
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (8, 64)
    # Real tokens are exactly the non-pad ones, and sequences end with [SEP].
    np.testing.assert_array_equal(batch["attention_mask"], (batch["input_ids"] != 0).astype(np.int32))
    last = batch["attention_mask"].sum(1) - 1
    assert (batch["input_ids"][np.arange(8), last] == 102).all()
    assert loader.meta["summary"]["examples"]["examples"] > 100
    loader.close()


def test_one_epoch_covers_the_dataset_once_and_epochs_reshuffle(dataset):
    out, summary = dataset
    n = summary.examples.examples
    loader = make_pretraining_loader(out, global_batch_size=16, seed=3, num_epochs=2)
    batches = list(loader)
    per_epoch = n // 16 * 16 // 16
    assert len(batches) == (2 * n) // 16 and loader.batches_per_epoch == per_epoch
    unshuffled = _rows(make_pretraining_loader(out, global_batch_size=1, shuffle=False, num_epochs=1))
    first = _rows(batches[:per_epoch])
    assert collections.Counter(first) <= collections.Counter(unshuffled)
    assert len(set(unshuffled) - set(first)) <= 15  # only the remainder of an epoch is missing
    second = _rows(batches[per_epoch:])
    assert first[:64] != second[:64] and first[:64] != unshuffled[:64]


def test_processes_get_contiguous_blocks_that_rebuild_each_global_batch_in_order(dataset):
    out, _ = dataset
    whole = list(make_pretraining_loader(out, global_batch_size=16, seed=9, num_epochs=1))
    shards = [list(make_pretraining_loader(out, global_batch_size=16, seed=9, num_epochs=1, shard_index=i,
                                           shard_count=2)) for i in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(whole)
    for g, s0, s1 in zip(whole, *shards, strict=True):
        assert s0["input_ids"].shape[0] == s1["input_ids"].shape[0] == 8
        for name in g:  # process 0's block then process 1's: the one-process batch, row for row
            np.testing.assert_array_equal(np.concatenate([s0[name], s1[name]]), g[name])
    everything = collections.Counter(_rows(make_pretraining_loader(out, 1, shuffle=False, num_epochs=1)))
    union = collections.Counter(_rows(shards[0])) + collections.Counter(_rows(shards[1]))
    assert union <= everything  # no example is served twice (beyond identical copies in the data)


@pytest.mark.parametrize("num_epochs", [None, 3])
def test_resumed_loader_yields_exactly_the_uninterrupted_batches(dataset, num_epochs):
    out, summary = dataset
    kwargs = dict(global_batch_size=16, seed=5, num_epochs=num_epochs, shard_index=1, shard_count=2)
    uninterrupted = make_pretraining_loader(out, **kwargs)
    # Run across an epoch boundary before saving.
    k = summary.examples.examples // 16 + 3
    for _ in range(k):
        next(uninterrupted)
    state = json.loads(json.dumps(uninterrupted.get_state()))  # what a checkpoint stores
    expected = [next(uninterrupted) for _ in range(6)]
    resumed = make_pretraining_loader(out, **kwargs)
    next(resumed)  # a fresh loader that has already moved on, then restored
    resumed.set_state(state)
    assert _same([next(resumed) for _ in range(6)], expected)
    with pytest.raises(LoaderError, match="seed=5 .now 6."):
        make_pretraining_loader(out, **{**kwargs, "seed": 6}).set_state(state)


@pytest.mark.parametrize("num_epochs", [None, 3])
def test_a_position_saved_by_two_processes_resumes_on_one_or_four(dataset, num_epochs):
    """The saved position is the global batch count: one or four processes continue at the same global example."""
    out, summary = dataset
    common = dict(global_batch_size=16, seed=5, num_epochs=num_epochs)
    k = summary.examples.examples // 16 + 3  # past an epoch boundary
    straight = make_pretraining_loader(out, **common, shard_index=0, shard_count=1)
    following = [next(straight) for _ in range(k + 3)][k:]  # the global batches k, k+1, k+2
    saved = []
    for i in range(2):
        loader = make_pretraining_loader(out, **common, shard_index=i, shard_count=2)
        for _ in range(k):
            next(loader)
        saved.append(json.loads(json.dumps(loader.get_state())))  # what each process's checkpoint file holds
    for count in (1, 4):
        rows = 16 // count
        for i in range(count):
            resumed = make_pretraining_loader(out, **common, shard_index=i, shard_count=count)
            resumed.set_state(saved[i % 2])  # any process's file: every process saved the same position
            expected = [{name: g[name][i * rows:(i + 1) * rows] for name in g} for g in following]
            assert _same([next(resumed) for _ in range(3)], expected), (count, i)


def test_loader_state_works_with_grains_orbax_checkpoint_handler(dataset, tmp_path):
    import grain
    import orbax.checkpoint as ocp

    out, _ = dataset
    loader = make_pretraining_loader(out, global_batch_size=8, seed=2)
    for _ in range(3):
        next(loader)
    with ocp.CheckpointManager(tmp_path / "ckpt", item_handlers={"data": grain.checkpoint.CheckpointHandler()}) as m:
        m.save(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(loader)))
        m.wait_until_finished()
        expected = [next(loader) for _ in range(2)]
        restored = make_pretraining_loader(out, global_batch_size=8, seed=2)
        m.restore(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(restored)))
    assert _same([next(restored) for _ in range(2)], expected)


def test_bad_loader_options_are_named(dataset):
    out, _ = dataset
    with pytest.raises(LoaderError, match="multiple of the process count 3"):
        make_pretraining_loader(out, 8, shard_index=0, shard_count=3)
    with pytest.raises(LoaderError, match=r"shard_index=2 must lie in \[0, shard_count=2\)"):
        make_pretraining_loader(out, 8, shard_index=2, shard_count=2)
    with pytest.raises(LoaderError, match="fewer than one global batch"):
        make_pretraining_loader(out, 1 << 20)
    with pytest.raises(LoaderError, match="num_epochs=0"):
        make_pretraining_loader(out, 8, num_epochs=0)


def test_corpus_to_global_arrays_end_to_end(corpus, tok, tmp_path):
    """Corpus file -> array_record dataset -> grain loader -> global jax.Arrays on a data-parallel mesh."""
    out = tmp_path / "sop"
    summary = build_pretraining_dataset(str(corpus), tok, out, format="sop", max_seq_len=32, dupe_factor=2)
    assert summary.examples.examples > 200
    mesh = create_mesh({"data": -1, "fsdp": 1, "tensor": 1})
    batch_size = 4 * jax.device_count()
    loader = make_pretraining_loader(out, global_batch_size=batch_size, seed=0)
    local = next(loader)
    glob = host_to_global(local, mesh)
    assert set(glob) == {"input_ids", "token_type_ids", "attention_mask", "sentence_order_label"}
    for name, arr in glob.items():
        assert isinstance(arr, jax.Array) and arr.shape == local[name].shape
        assert arr.sharding.spec[0] == ("data", "fsdp")
        np.testing.assert_array_equal(np.asarray(arr), local[name])
    loader.close()


def test_to_global_splits_the_batch_over_a_four_device_mesh(dataset):
    """On 4 (fake CPU) devices each device holds its quarter of the batch: run in a fresh process."""
    out, _ = dataset
    script = textwrap.dedent(f"""
        import jax, numpy as np
        from jax.sharding import Mesh
        from jaxbert.data.loader import make_pretraining_loader
        from jaxbert.parallel import host_to_global
        assert jax.device_count() == 4
        local = next(make_pretraining_loader({str(out)!r}, global_batch_size=8, seed=0))
        batch = host_to_global(local, Mesh(np.array(jax.devices()).reshape(2, 2, 1), ("data", "fsdp", "tensor")))
        for name, arr in batch.items():
            assert arr.shape == local[name].shape and len(arr.addressable_shards) == 4
            for shard in arr.addressable_shards:
                assert shard.data.shape[0] == 2
                np.testing.assert_array_equal(np.asarray(shard.data), local[name][shard.index])
        print("ok")
    """)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]
