"""`jaxbert compile`: the real TPU compiler (libtpu, no TPU) compiles the run's own sharded train step.

Small models keep each compile to seconds: bert-tiny width (vocabulary cut to 1024) and a 2-layer model
of bert-base width. Everything else in the suite stays on CPU (JAX_PLATFORMS=cpu): the TPU devices
here exist only for compiling.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import ml_collections
import pytest

from jaxbert.aot import CompileTarget, compile_step, largest_fitting, standin_tokenizer
from jaxbert.parallel import topology as topology_module
from jaxbert.parallel.topology import TopologyError, libtpu_available, parse_topology
from jaxbert.train.experiment import apply_overrides, smoke_config

needs_libtpu = pytest.mark.skipif(not libtpu_available(),
                                  reason="libtpu (the TPU compiler) is not installed: pip install -e '.[tpu]'")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESIGN_KEYS = ("topology", "chips", "slices", "mesh", "batch", "seq", "per_chip_bytes", "hbm_bytes_per_chip", "fits",
               "model_flops_per_step", "compiler_flops_per_step", "est_step_s", "est_mfu", "compile_s")
TINY = ["--config.model.vocab_size=1024", "--config.train.seq_len=128", "--config.train.batch_size=8",
        "--config.model.max_position_embeddings=128"]
BASE_WIDTH = ["--config.model.hidden_size=768", "--config.model.num_heads=12", "--config.model.intermediate_size=3072",
              "--config.model.vocab_size=30522", "--config.model.num_layers=2"]


def config(*overrides: str) -> ml_collections.ConfigDict:
    c = smoke_config("bert")
    return apply_overrides(c, [*TINY, *overrides])


_TARGETS: dict[tuple[str, int], CompileTarget] = {}


def target(name: str, slices: int = 1) -> CompileTarget:
    if (name, slices) not in _TARGETS:
        _TARGETS[name, slices] = CompileTarget.create(parse_topology(name, slices))
    return _TARGETS[name, slices]


def tpu_devices_of(compiled) -> set[str]:
    import jax

    return {d.device_kind for s in jax.tree_util.tree_leaves(compiled.train.input_shardings) for d in s.device_set}


SLOW = pytest.mark.slow  # each TPU compile costs ~20 s of CPU: the default run keeps one per kind of layout


@needs_libtpu
@pytest.mark.parametrize("name,slices,mesh", [
    pytest.param("v5e:2x2", 1, {"data": 4}, marks=SLOW),
    pytest.param("v5e:2x2", 1, {"fsdp": 4}, marks=SLOW),  # fsdp: also test_fsdp_keeps_a_quarter_...
    ("v5e:2x2", 1, {"data": 2, "tensor": 2}),
    pytest.param("v4:2x2x1", 1, {"data": 4}, marks=SLOW),
    ("v4:2x2x1", 2, {"fsdp": 2, "data": 2}),
])
def test_the_train_step_compiles_for_tpu_meshes_and_slices(name, slices, mesh):
    overrides = [f"--config.mesh.{axis}={size}" for axis, size in {"data": 1, "fsdp": 1, "tensor": 1, **mesh}.items()]
    report = compile_step(config(*overrides), target(name, slices))
    compiled = report.pop("_compiled")
    chips = 4 * slices
    assert report["chips"] == chips and report["slices"] == slices
    expected = {"data": 1, "fsdp": 1, "tensor": 1, **mesh}
    expected["data"] *= slices  # slices add data parallelism over DCN
    assert report["mesh"] == expected
    assert tpu_devices_of(compiled) == {"TPU v5 lite" if name.startswith("v5e") else "TPU v4"}
    mem = report["per_chip_bytes"]
    assert report["fits"] and 0 < mem["total"] < report["hbm_bytes_per_chip"] < 33 * 2**30
    assert mem["arguments"] > 0 and mem["temporaries"] > 0
    assert report["est_step_s"] > 0 and 0 < report["est_mfu"] < 1
    assert report["compiler_flops_per_step"] > 0
    hlo = compiled.train.as_text()
    if slices > 1 or expected["data"] * expected["fsdp"] > 1:
        assert "all-reduce" in hlo or "reduce-scatter" in hlo  # gradients are combined across the batch shards


@pytest.mark.slow
@needs_libtpu
def test_fsdp_keeps_a_quarter_of_the_arguments_per_chip():
    data = compile_step(config(*BASE_WIDTH), target("v5e:2x2"))
    fsdp = compile_step(config(*BASE_WIDTH, "--config.mesh.fsdp=4", "--config.mesh.data=1"), target("v5e:2x2"))
    ratio = fsdp["per_chip_bytes"]["arguments"] / data["per_chip_bytes"]["arguments"]
    assert ratio <= 0.3, ratio


@needs_libtpu
def test_a_step_larger_than_hbm_reports_fits_false_with_the_compilers_one_line_refusal():
    report = compile_step(config("--config.model.vocab_size=50000000"), target("v5e:2x2"))
    assert report["fits"] is False and "_compiled" not in report
    assert report["per_chip_bytes"]["total"] > report["hbm_bytes_per_chip"]
    refusal = report["refusal"]
    assert "\n" not in refusal and "per device but 15.75 GiB are available" in refusal and "mesh.fsdp" in refusal


@needs_libtpu
@pytest.mark.parametrize("name", [pytest.param("v4:2x2x1", marks=SLOW), "v5e:2x2",
                                  pytest.param("v5p:2x2x1", marks=SLOW)])
def test_splash_attention_compiles_into_the_tpu_step(name):
    report = compile_step(config("--config.model.attention_kernel=splash", "--config.model.compute_dtype=bfloat16",
                                 "--config.mesh.data=2", "--config.mesh.tensor=2"), target(name))
    hlo = report.pop("_compiled").train.as_text()
    assert report["fits"] and report["attention_kernel"] == "splash"
    assert "tpu_custom_call" in hlo  # the Mosaic kernel itself, forward and backward
    assert hlo.count("tpu_custom_call") >= 3


@needs_libtpu
def test_the_command_prints_one_json_line_and_no_libtpu_noise(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([REPO, *sys.path])}
    proc = subprocess.run([sys.executable, "-m", "jaxbert.cli", "compile", "--config", "configs/smoke/bert.py",
                           "--topology", "v5litepod-4", *TINY], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert all(k in report for k in DESIGN_KEYS)
    assert report["topology"] == "v5e:2x2" and report["fits"] is True
    assert set(report["per_chip_bytes"]) == {"arguments", "outputs", "temporaries", "total"}
    for noise in ("TPU_WORKER_HOSTNAMES", "TPU_ACCELERATOR_TYPE", "InitGoogle"):
        assert noise not in proc.stderr


def test_unknown_topologies_and_a_missing_libtpu_are_one_line_errors(monkeypatch, capsys):
    from jaxbert.cli import main

    assert main(["compile", "--config", "configs/smoke/bert.py", "--topology", "v9:2x2"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "v5e:" in err and "v5p-" in err and "v4:" in err
    monkeypatch.setattr(topology_module, "libtpu_available", lambda: False)
    assert main(["compile", "--config", "configs/smoke/bert.py", "--topology", "v5e:2x2"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install -e '.[tpu]'" in err


def test_topology_names_in_both_spellings():
    assert parse_topology("v5p-128").name == "v5p:4x4x4" and parse_topology("v5p-128").chips == 64
    assert parse_topology("v4-32").name == "v4:2x2x4" and parse_topology("v5litepod-64").name == "v5e:8x8"
    assert parse_topology("v5e:4x4", slices=2).chips == 32
    with pytest.raises(TopologyError, match="3 dimensions"):
        parse_topology("v4:2x2")
    with pytest.raises(TopologyError, match="at least 1 slice"):
        parse_topology("v4:2x2x1", slices=0)


def test_largest_fitting_finds_the_boundary_in_units_of_the_data_parallel_size():
    calls = []

    def fits(batch):
        calls.append(batch)
        return batch <= 200

    assert largest_fitting(fits, 8, 64) == (200, len(calls))
    assert all(b % 8 == 0 for b in calls) and len(calls) <= 10
    assert largest_fitting(lambda b: False, 8, 64)[0] is None
    assert largest_fitting(lambda b: b <= 8, 8, 64)[0] == 8
    assert largest_fitting(lambda b: True, 8, 64, limit=1024)[0] == 1024


def test_the_tokenizer_stand_in_has_each_familys_special_ids():
    from jaxbert.config import get_preset

    assert standin_tokenizer(get_preset("bert-base")).special.mask == 103
    roberta = standin_tokenizer(get_preset("roberta-base"))
    assert (roberta.vocab_size, roberta.special.pad, roberta.special.mask) == (50265, 1, 50264)
    assert standin_tokenizer(get_preset("albert-base")).special.mask == 4


@pytest.mark.slow
@needs_libtpu
def test_distillation_and_finetuning_configs_compile_their_own_objectives():
    from jaxbert.train.experiment import load_config

    tiny = {"preset": "bert-tiny", "vocab_size": 1024, "max_position_embeddings": 128}
    student = {"preset": "distilbert-base", "num_layers": 1, "hidden_size": 128, "num_heads": 2,
               "intermediate_size": 512, "vocab_size": 1024, "max_position_embeddings": 128}
    shapes = ["--config.train.batch_size=8", "--config.train.seq_len=128"]
    distill = apply_overrides(load_config(os.path.join(REPO, "configs/distill/distilbert_base.py")),
                              [*shapes, "--config.objective.max_predictions=20"])
    finetune = apply_overrides(load_config(os.path.join(REPO, "configs/finetune/sst2.py")), shapes)
    with distill.ignore_type(), finetune.ignore_type():
        distill.model, distill.objective.teacher_model, finetune.model = student, tiny, tiny
    for config, name in ((distill, "distill"), (finetune, "finetune")):
        report = compile_step(config, target("v5e:2x2"))
        report.pop("_compiled")
        assert report["objective"] == name and report["fits"] and report["params"] > 0
