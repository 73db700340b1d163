"""A workdir you can trust (issue 12), checked on real files with the loop's stub objective and the pipelines' own
functions: whose directory it is, the saved config against a resumed run's, the newest readable checkpoint, the
newest clean one kept under NaN skips, a full disk in one line, relocatable datasets. The same cases at the
command line on the smoke config are in test_workdir_cases.py."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import grain
import jax
import numpy as np
import pytest
from train_stub import Regression, data_stream, regression_data, train_config

from jaxbert import storage
from jaxbert.cli import main
from jaxbert.config import ConfigError
from jaxbert.formats import CHECKPOINT_DIR, read_workdir
from jaxbert.lock import LOCK_FILE
from jaxbert.train.checkpoint import SUSPECT_KEY, Checkpointer, CheckpointError, checkpoint_meta
from jaxbert.train.loop import NonFiniteLossError, train
from jaxbert.train.metrics import read_metrics
from jaxbert.train.resume import ResumeConfigError, check_resume
from jaxbert.train.state import TrainState
from jaxbert.train.workdir import MARKER, WorkdirRefused, check_claimable

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "configs" / "smoke" / "bert.py")


def steps_in(workdir: Path) -> list[int]:
    return sorted(int(p.name) for p in (workdir / CHECKPOINT_DIR).iterdir() if p.name.isdigit())


def params_at(workdir: Path, step: int):
    import orbax.checkpoint as ocp

    return ocp.StandardCheckpointHandler().restore(storage.path(workdir) / CHECKPOINT_DIR / str(step) / "params")


def losses(workdir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(workdir) if "loss" in r]


def damage(workdir: Path, step: int) -> None:
    """Cut the array data files of a step's params short, as a failing disk or an interrupted copy would.

    (All of them: the stub's arrays are so small that OCDBT may keep an unread older node in one file;
    test_workdir_cases.py cuts one file of a real checkpoint, as the issue did.)"""
    for f in (workdir / CHECKPOINT_DIR / str(step) / "params").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            os.truncate(f, f.stat().st_size // 3)


# ---- whose directory it is (case 2) ------------------------------------------------------------
def test_runs_claim_empty_dirs_and_their_own_and_refuse_anything_else(tmp_path):
    check_claimable(tmp_path / "new", "pretrain")  # absent
    train(train_config(steps=4), tmp_path / "run", Regression(), data_stream(8))
    assert json.loads((tmp_path / "run" / MARKER).read_text())["kind"] == "train"
    check_claimable(tmp_path / "run", "pretrain")  # a workdir jaxbert wrote
    legacy = tmp_path / "legacy"  # written before the marker existed: only run files, a run config
    (legacy / CHECKPOINT_DIR).mkdir(parents=True)
    (legacy / "config.json").write_text(json.dumps({"train": {}, "checkpoint": {}}))
    check_claimable(legacy, "pretrain")

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "jaxbert.json").write_text("{}")
    (tmp_path / "file").write_text("x")
    hf_like = tmp_path / "hf"
    hf_like.mkdir()
    (hf_like / "config.json").write_text(json.dumps({"model_type": "bert"}))
    for directory, words in ((bundle, "it holds jaxbert.json"), (tmp_path / "file", "is a file"),
                             (hf_like, "its config.json is not a jaxbert run config")):
        with pytest.raises(WorkdirRefused, match=words) as err:
            check_claimable(directory, "pretrain")
        assert "\n" not in str(err.value)
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / MARKER).write_text(json.dumps({"kind": "finetune"}))
    with pytest.raises(WorkdirRefused, match="is a finetune workdir; a pretrain run writes its own"):
        check_claimable(tmp_path / "ft", "pretrain")
    before = sorted(p.name for p in bundle.iterdir())
    with pytest.raises(WorkdirRefused):
        train(train_config(steps=4), bundle, Regression(), data_stream(8))
    assert sorted(p.name for p in bundle.iterdir()) == before  # not even a lock file


def test_pretrain_on_a_hugging_face_model_dir_is_refused_and_the_model_is_untouched(tmp_path, capsys):
    """Case 2 as written: `--workdir` pointed at a Hugging Face model directory."""
    transformers = pytest.importorskip("transformers")
    import jaxbert

    hf_dir = tmp_path / "hf-model"
    config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37)
    transformers.BertForMaskedLM(config).save_pretrained(hf_dir)
    before = {p.name: p.read_bytes() for p in hf_dir.iterdir()}
    rc = main(["pretrain", "--config", SMOKE, "--workdir", str(hf_dir), "--config.train.steps=2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1].startswith(f"jaxbert pretrain: error: --workdir {hf_dir} is not empty and is not a "
                                          "jaxbert workdir (it holds ")
    assert "model.safetensors" in err[-1] and "nothing was written" in err[-1]
    assert {p.name: p.read_bytes() for p in hf_dir.iterdir()} == before  # not one byte written
    assert transformers.AutoModelForMaskedLM.from_pretrained(hf_dir).config.hidden_size == 32
    assert jaxbert.load(hf_dir).config.num_layers == 2


# ---- the saved config against the new one (case 4) ---------------------------------------------
def _saved_workdir(tmp_path: Path, config) -> Path:
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps(config.to_dict()))
    return workdir


def test_a_resume_that_changes_model_or_data_fields_is_refused_naming_each(tmp_path):
    from jaxbert.train.experiment import smoke_config

    saved = smoke_config("bert")
    workdir = _saved_workdir(tmp_path, saved)
    new = smoke_config("bert")
    new.model = {**new.model.to_dict(), "hidden_act": "relu"}
    new.data.vocab_size = 3000
    with pytest.raises(ResumeConfigError) as err:
        check_resume(workdir, new.to_dict())
    message = str(err.value)
    assert "\n" not in message
    assert "config.model.hidden_act: 'gelu' in the workdir, 'relu' now" in message
    assert "config.data.vocab_size: 2000 in the workdir, 3000 now" in message
    assert "--config.resume.allow_changes=data.vocab_size,model.hidden_act" in message
    # accepted explicitly (a field, or a whole section), with a warning naming it
    assert check_resume(workdir, new.to_dict(), "model.hidden_act,data") == ["data.vocab_size", "model.hidden_act"]
    with pytest.raises(ConfigError, match="allow_changes: 'model.hiden_act' names no config field"):
        check_resume(workdir, new.to_dict(), "model.hiden_act")


def test_safe_fields_may_change_and_a_preset_equals_its_fields_spelled_out(tmp_path):
    from jaxbert.config import get_preset
    from jaxbert.train.experiment import smoke_config

    saved = smoke_config("bert")
    workdir = _saved_workdir(tmp_path, saved)
    new = smoke_config("bert")
    new.train.steps, new.train.end_lr, new.train.log_every, new.train.eval_every = 9000, 1e-5, 7, 70
    new.checkpoint.every, new.checkpoint.keep, new.checkpoint.restore_step = 11, 9, 300
    new.mesh.fsdp, new.data.reader_threads = 2, 4
    model = saved.model.to_dict()
    new.model = {**get_preset(model.pop("preset")).replace(**model).to_dict()}  # every field, no preset name
    assert check_resume(workdir, new.to_dict()) == []
    new.train.seq_len = 128
    with pytest.raises(ResumeConfigError, match="config.train.seq_len: 64 in the workdir, 128 now"):
        check_resume(workdir, new.to_dict())
    assert check_resume(tmp_path / "fresh", new.to_dict()) == []  # nothing saved: nothing to compare


def test_the_readme_lists_every_field_safe_to_change_and_allow_changes():
    """The docs promise what the code allows: each SAFE_TO_CHANGE entry (a section as `section.*`) is named in
    the README's Workdirs section, beside --config.resume.allow_changes, and the smoke config has each field."""
    from jaxbert.train.experiment import smoke_config
    from jaxbert.train.resume import SAFE_TO_CHANGE, flatten

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Workdirs"):]
    section = section[:section.index("\n## ")]
    assert "--config.resume.allow_changes=" in section
    fields = set(flatten(smoke_config("bert").to_dict()))
    finetuning_only = ("train.epochs", "eval.batch_size")
    for entry in SAFE_TO_CHANGE:
        assert (f"`{entry}.*`" if "." not in entry else f"`{entry}`") in section, entry
        assert entry in finetuning_only or any(f == entry or f.startswith(entry + ".") for f in fields), entry


# ---- the newest readable checkpoint (case 5) -----------------------------------------------------
def test_a_damaged_latest_step_is_named_set_aside_and_the_run_resumes_from_the_one_before(tmp_path, caplog):
    straight = tmp_path / "straight"
    train(train_config(steps=12), straight, Regression(), data_stream(8))
    workdir = tmp_path / "damaged"
    shutil.copytree(straight, workdir)
    damage(workdir, 12)
    with caplog.at_level(logging.WARNING):
        result = train(train_config(steps=12), workdir, Regression(), data_stream(8))
    assert result.status == "finished" and result.step == 12
    assert "checkpoint step 12 in" in caplog.text and "is damaged or unreadable" in caplog.text
    assert "resuming from step 8, the newest readable checkpoint" in caplog.text
    assert (workdir / "checkpoints-set-aside" / "12-damaged").is_dir()  # kept for inspection, out of the way
    assert steps_in(workdir) == [4, 8, 12]  # 12 saved again by this run
    jax.tree_util.tree_map(np.testing.assert_array_equal, params_at(workdir, 12), params_at(straight, 12))
    assert losses(workdir) == losses(straight)


@pytest.mark.slow
def test_restore_step_chooses_a_checkpoint_and_sets_the_later_ones_aside(tmp_path):
    straight = tmp_path / "straight"
    train(train_config(steps=12), straight, Regression(), data_stream(8))
    workdir = tmp_path / "again"
    train(train_config(steps=12), workdir, Regression(), data_stream(8))
    config = train_config(steps=12)
    config.checkpoint.restore_step = 4
    result = train(config, workdir, Regression(), data_stream(8))
    assert result.step == 12 and (workdir / "checkpoints-set-aside" / "8-after-restore-step-4").is_dir()
    assert (workdir / "checkpoints-set-aside" / "12-after-restore-step-4").is_dir()
    jax.tree_util.tree_map(np.testing.assert_array_equal, params_at(workdir, 12), params_at(straight, 12))
    config.checkpoint.restore_step = 5
    with pytest.raises(CheckpointError) as err:
        train(config, workdir, Regression(), data_stream(8))
    assert "config.checkpoint.restore_step=5" in str(err.value) and "(it holds: 4, 8, 12)" in str(err.value)


def test_every_checkpoint_damaged_is_one_line_without_tensorstore_internals(tmp_path, capfd):
    workdir = tmp_path / "w"
    train(train_config(steps=8), workdir, Regression(), data_stream(8))
    damage(workdir, 8)
    damage(workdir, 4)
    capfd.readouterr()
    with pytest.raises(CheckpointError) as err:
        train(train_config(steps=12), workdir, Regression(), data_stream(8))
    message = str(err.value)
    assert message.startswith(f"cannot restore step 8 nor any older one (4) from {workdir / CHECKPOINT_DIR}")
    assert "\n" not in message and "TensorStore details" not in message and "bound method" not in message
    assert "OUT_OF_RANGE" in message  # the storage layer's own reason, in one line
    assert steps_in(workdir) == [4, 8]  # nothing set aside when nothing could be restored
    assert "Event loop is closed" not in capfd.readouterr().err


def test_load_of_a_workdir_takes_its_newest_readable_step(tmp_path, caplog):
    import ml_collections

    from jaxbert.objectives.base import build_objective

    objective = build_objective(ml_collections.ConfigDict({
        "model": {"preset": "bert-tiny", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64},
        "objective": {"name": "mlm", "pair_task": "nsp", "max_predictions": 4}}))
    first = jax.jit(objective.init)(jax.random.key(0))
    second = jax.jit(objective.init)(jax.random.key(1))
    ckpt = Checkpointer(tmp_path, async_save=False)
    for step, params in ((3, first), (6, second)):
        ckpt.save(TrainState(jax.numpy.asarray(step), params, {}), checkpoint_meta(objective, {"seed": 0}))
    ckpt.close()
    assert read_workdir(tmp_path).step == 6
    damage(tmp_path, 6)
    with caplog.at_level(logging.WARNING):
        loaded = read_workdir(tmp_path)
    assert loaded.step == 3 and "checkpoint step 6 of" in caplog.text and "is damaged" in caplog.text
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded.params, first)


# ---- NaN skips never cost the last good checkpoint (case 3) --------------------------------------
def _nan_stream(batch_size: int, bad_steps: list[int]):
    """Unshuffled regression batches; each step in `bad_steps` (1-based, first epoch) holds a NaN row."""
    data = regression_data()
    for step in bad_steps:
        data["x"][(step - 1) * batch_size] = np.nan
    ds = grain.MapDataset.source([{k: v[i] for k, v in data.items()} for i in range(len(data["x"]))])
    return iter(ds.repeat(None).batch(batch_size, drop_remainder=True).to_iter_dataset())


def test_keep_n_never_rotates_out_the_newest_clean_checkpoint_while_later_ones_are_suspect(tmp_path):
    config = train_config(steps=24, nan_policy="skip")
    config.checkpoint.keep = 2
    result = train(config, tmp_path, Regression(), _nan_stream(8, [7, 11, 15, 19, 23]))
    assert result.status == "finished" and result.metrics["skipped_steps"] == 5.0
    assert steps_in(tmp_path) == [4, 20, 24]  # the latest two, and 4: the newest with no skipped step before it
    for step in (4, 20, 24):
        meta = json.loads((tmp_path / CHECKPOINT_DIR / str(step) / "config" / "metadata").read_text())
        assert meta[SUSPECT_KEY] is (step != 4)


def test_too_many_skips_in_a_row_stop_naming_the_kept_clean_checkpoint(tmp_path):
    config = train_config(steps=40, nan_policy="skip", max_consecutive_skips=5)
    config.checkpoint.keep = 1
    with pytest.raises(NonFiniteLossError) as err:
        train(config, tmp_path, Regression(), _nan_stream(8, [6, *range(9, 20)]))
    message = str(err.value)
    assert message.startswith("5 non-finite steps in a row up to step 13 (train.max_consecutive_skips=5)")
    assert "the last good checkpoint is step 4" in message and "--config.checkpoint.restore_step=4" in message
    assert "\n" not in message and 4 in steps_in(tmp_path)


# ---- a full disk (case 6) -------------------------------------------------------------------------
@contextlib.contextmanager
def small_disk(where: Path, size: str):
    """A tmpfs of `size` at `where` (root on Linux); skipped, saying why, where it cannot be mounted."""
    where.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip()}); test_workdir_cases.py covers a full disk "
                    "with a file-size limit instead")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_stops_the_run_at_the_failed_save_in_one_line_naming_what_is_intact(tmp_path, capfd):
    with small_disk(tmp_path / "disk", "1m") as disk:
        workdir = disk / "w"
        config = train_config(steps=16, async_save=True)
        train(train_config(steps=4, async_save=True), workdir, Regression(), data_stream(8))
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - 60 * 1024))  # room for metrics rows, not a checkpoint
        capfd.readouterr()
        with pytest.raises(CheckpointError) as err:
            train(config, workdir, Regression(), data_stream(8))
        message = str(err.value)
        assert message.startswith(f"saving the checkpoint at step 8 in {workdir / CHECKPOINT_DIR} failed: No space "
                                  "left on device")
        assert "the complete checkpoints are intact (steps 4) and the rerun resumes from step 4" in message
        assert max(s for s, _ in losses(workdir)) <= 9  # reported at once, not at the next save (step 12)
        stderr = capfd.readouterr().err
        assert "Traceback" not in stderr and "Event loop is closed" not in stderr, stderr[-3000:]
        (disk / "filler").unlink()
        assert train(config, workdir, Regression(), data_stream(8)).step == 16  # the rerun goes on from step 4


# ---- relocatable (case 7) -----------------------------------------------------------------------
def test_a_dataset_cache_follows_its_corpus_when_both_are_moved(tmp_path, caplog):
    from jaxbert.data.tfds_builder import build_pretraining_dataset
    from jaxbert.tokenize import train_vocab

    src = tmp_path / "a"
    src.mkdir()
    corpus = src / "corpus.txt"
    corpus.write_text("".join(f"Sentence {i} of document {d} talks about topic {i % 7}.\n"
                              + ("\n" if i % 5 == 4 else "") for d in range(4) for i in range(20)))
    tokenizer = train_vocab([str(corpus)], "wordpiece", 200, src / "tok")
    build_pretraining_dataset([str(corpus)], tokenizer, src / "data", max_seq_len=32)
    moved = tmp_path / "b"
    shutil.copytree(src, moved)
    shutil.rmtree(src)
    with caplog.at_level(logging.INFO):
        build_pretraining_dataset([str(moved / "corpus.txt")], tokenizer, moved / "data", max_seq_len=32)
    assert "reusing pretraining dataset" in caplog.text
    text = (moved / "corpus.txt").read_text()
    (moved / "corpus.txt").write_text(text.replace("topic 3", "topic 4", 1))  # same name, same size, edited
    with pytest.raises(Exception, match="built with other options; .*they differ in: corpus\\)"):
        build_pretraining_dataset([str(moved / "corpus.txt")], tokenizer, moved / "data", max_seq_len=32)
    (moved / "corpus.txt").write_text("A different corpus.\nWith other text.\n\nAnd more.\nMuch more.\n")
    with pytest.raises(Exception, match="built with other options; .*they differ in: corpus\\)"):
        build_pretraining_dataset([str(moved / "corpus.txt")], tokenizer, moved / "data", max_seq_len=32)


# ---- one-line errors (item 8) ----------------------------------------------------------------------
def test_log_every_zero_is_refused_before_compiling(tmp_path, capsys):
    rc = main(["pretrain", "--config", SMOKE, "--workdir", str(tmp_path / "w"), "--config.train.log_every=0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1] == "jaxbert pretrain: error: config.train.log_every: must be a positive integer, got 0"
    assert not (tmp_path / "w").exists()


def test_a_released_lock_records_its_last_holder(tmp_path):
    train(train_config(steps=4), tmp_path, Regression(), data_stream(8))
    record = json.loads((tmp_path / LOCK_FILE).read_text())
    assert record["released"] is True and record["pid"] == os.getpid()
