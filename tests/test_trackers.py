"""Experiment trackers (Weights & Biases, offline) and the profiler window, on the loop's stub objective.

W&B runs with WANDB_MODE=offline: its real client writes its real run files, which the test reads back with
W&B's own protobuf records (tests/wandb_records.py). The profiler test reads the trace with jax's own
xplane reader (jax.profiler.ProfileData).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest
from test_train import _SigtermAt
from train_stub import Regression, data_stream, train_config

from jaxbert.config import ConfigError
from jaxbert.train.loop import train
from jaxbert.train.metrics import read_metrics
from jaxbert.train.spec import RunSpec

HERE = Path(__file__).resolve().parent


@pytest.fixture
def wandb_offline(monkeypatch, tmp_path):
    pytest.importorskip("wandb", reason="install the test extra (it holds wandb): pip install -e '.[test]'")
    for key, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONFIG_DIR": tmp_path / "wb-config",
                       "WANDB_CACHE_DIR": tmp_path / "wb-cache", "WANDB_DATA_DIR": tmp_path / "wb-data"}.items():
        monkeypatch.setenv(key, str(value))


def _offline_runs(workdir: Path) -> list[Path]:
    """W&B's offline run files under WORKDIR/wandb, oldest first (one folder per wandb.init)."""
    return sorted((workdir / "wandb").glob("offline-run-*/run-*.wandb"))


def test_wandb_offline_run_logs_metrics_and_config_and_a_resumed_run_keeps_the_run_id(wandb_offline, tmp_path):
    import wandb_records

    config = train_config(steps=10)
    config.log.trackers = ("jsonl", "tensorboard", "wandb")
    config.log.wandb_tags = ("smoke",)
    workdir = tmp_path / "run"
    first = train(config, workdir, Regression(), _SigtermAt(data_stream(8), at=6))
    assert first.status == "preempted" and first.step == 6
    run_id = json.loads((workdir / "wandb_run.json").read_text())["id"]
    [run_file] = _offline_runs(workdir)
    info = wandb_records.run_info(run_file)
    assert info["id"] == run_id and info["project"] == "jaxbert"
    # The run's config is the experiment config (the nested sections as W&B stores them).
    assert info["config"]["train"]["steps"] == 10 and info["config"]["objective"]["name"] == "regression"
    assert info["config"]["log"]["trackers"] == ["jsonl", "tensorboard", "wandb"]

    second = train(config, workdir, Regression(), data_stream(8))
    assert second.status == "finished" and second.step == 10
    runs = _offline_runs(workdir)
    assert len(runs) == 2 and all(p.name == f"run-{run_id}.wandb" for p in runs)  # `wandb sync` joins them
    assert wandb_records.run_info(runs[1])["id"] == run_id

    # W&B holds exactly metrics.jsonl's training rows, each step once, split across the two sessions.
    jsonl = {r["step"]: r for r in read_metrics(workdir) if "loss" in r}
    logged = [row for p in runs for row in wandb_records.history(p) if "loss" in row]
    assert [row["_step"] for row in logged] == list(range(1, 11)) == sorted(jsonl)
    for row in logged:
        for key in ("loss", "mae", "learning_rate", "grad_norm"):
            assert row[key] == pytest.approx(jsonl[row["_step"]][key], rel=1e-6), (row["_step"], key)


def test_asking_for_wandb_without_the_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now fails, as where it is not installed
    config = train_config()
    config.log.trackers = ("jsonl", "wandb")
    with pytest.raises(ConfigError) as err:
        RunSpec.from_config(config)
    message = str(err.value)
    assert "\n" not in message and "config.log.trackers" in message and "jaxbert[wandb]" in message


def test_the_cli_without_wandb_fails_in_one_line_before_writing(tmp_path):
    workdir = tmp_path / "run"
    code = ("import sys; sys.modules['wandb'] = None\nfrom jaxbert.cli import main\n"
            f"sys.exit(main(['pretrain', '--config', 'configs/smoke/bert.py', '--workdir', {str(workdir)!r}, "
            "'--config.log.trackers=jsonl,tensorboard,wandb']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=HERE.parent, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "jaxbert[wandb]" in last and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert not workdir.exists() or not any(workdir.iterdir())


def test_bad_log_and_profile_values_name_the_field():
    for section, key, value, field in [("log", "trackers", ("jsonl", "mlflow"), "log.trackers"),
                                       ("log", "trackers", ("tensorboard",), "log.trackers"),
                                       ("profile", "num_steps", -1, "profile.num_steps"),
                                       ("profile", "start_step", 0, "profile.start_step")]:
        config = train_config()
        config[section][key] = value
        if section == "profile" and key == "start_step":
            config.profile.num_steps = 2
        with pytest.raises(ConfigError, match=f"config.{field}"):
            RunSpec.from_config(config)


def test_only_process_zero_talks_to_wandb(wandb_offline, tmp_path):
    """Two real jax.distributed processes share one workdir: one W&B run, opened by process 0."""
    workdir = tmp_path / "shared"
    workdir.mkdir()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    procs = [subprocess.Popen([sys.executable, str(HERE / "tracker_probe.py"), str(i), str(port), str(workdir)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    views = sorted((json.loads(out.strip().splitlines()[-1]) for out, _ in outs), key=lambda v: v["process_index"])
    assert [(v["process_index"], v["trackers"]) for v in views] == [(0, 1), (1, 0)]
    import wandb_records

    [run_file] = _offline_runs(workdir)
    assert [r["loss"] for r in wandb_records.history(run_file)] == [1.5, 0.5]


def test_profile_traces_only_the_asked_steps(tmp_path):
    config = train_config(steps=8)
    config.profile.start_step, config.profile.num_steps = 3, 2
    train(config, tmp_path, Regression(), data_stream(8))
    [trace] = list((tmp_path / "tensorboard" / "plugins" / "profile").glob("*/*.xplane.pb"))
    steps = sorted({dict(ev.stats)["step_num"] for plane in jax.profiler.ProfileData.from_file(str(trace)).planes
                    for line in plane.lines for ev in line.events if ev.name == "train"})
    assert steps == [3, 4]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))  # the scalars still go there too


def test_a_run_resumed_past_the_window_traces_nothing(tmp_path):
    config = train_config(steps=8)
    train(config, tmp_path, Regression(), data_stream(8))
    config.train.steps = 10
    config.profile.start_step, config.profile.num_steps = 2, 2
    assert train(config, tmp_path, Regression(), data_stream(8)).step == 10  # steps 9, 10 ran, untraced
    assert not (tmp_path / "tensorboard" / "plugins").exists()


@pytest.mark.slow  # about 100 s on 2 shared cores (compiling bert-tiny, then the tracer)
def test_bench_profile_writes_a_trace_of_the_timed_steps(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "jaxbert.cli", "bench", "--model", "bert-tiny", "--batch", "2",
                           "--seq", "16", "--steps", "3", "--profile", str(tmp_path)], cwd=HERE.parent,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["impl"] == "jaxbert"
    [trace] = list((tmp_path / "plugins" / "profile").glob("*/*.xplane.pb"))
    steps = sorted({dict(ev.stats)["step_num"] for plane in jax.profiler.ProfileData.from_file(str(trace)).planes
                    for line in plane.lines for ev in line.events if ev.name == "train"})
    assert steps == [1, 2, 3]  # the timed steps, not the warm-up
