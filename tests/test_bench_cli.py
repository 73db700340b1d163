"""`jaxbert bench`: one JSON line with exactly DESIGN.md's keys, for every objective; removed / unsupported impls."""

from __future__ import annotations

import json

import pytest

from jaxbert.cli import main
from jaxbert.commands.bench import KEYS

DESIGN_KEYS = ("impl", "model", "objective", "batch", "seq", "dtype", "steps", "step_s_median", "tokens_per_s",
               "compile_s", "params", "model_flops_per_step", "achieved_gflops", "peak_rss_mb", "devices")


@pytest.mark.parametrize("model,objective", [("bert-tiny", "mlm"),  # the other objectives: ~60 s each, slow
                                             pytest.param("electra-small", "electra", marks=pytest.mark.slow),
                                             pytest.param("bert-tiny", "distill", marks=pytest.mark.slow),
                                             pytest.param("bert-tiny", "pkd", marks=pytest.mark.slow)])
def test_bench_prints_the_contract_keys(model, objective, capsys):
    assert KEYS == DESIGN_KEYS
    assert main(["bench", "--model", model, "--objective", objective, "--batch", "2", "--seq", "32",
                 "--steps", "2"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert tuple(line) == DESIGN_KEYS
    assert line["objective"] == objective and line["impl"] == "jaxbert" and line["steps"] == 2
    assert line["step_s_median"] > 0 and line["model_flops_per_step"] > 0 and line["params"] > 0


@pytest.mark.slow
def test_electra_bench_trains_a_quarter_width_generator(capsys):
    from jaxbert.config import get_preset
    from jaxbert.model import count_params, param_shapes

    assert main(["bench", "--model", "electra-small", "--objective", "electra", "--batch", "2", "--seq", "32",
                 "--steps", "1"]) == 0
    params = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["params"]
    disc = count_params(param_shapes(get_preset("electra-small")))
    assert params > disc  # the generator trains too (its own layers; the embeddings are shared)


def test_hf_flax_is_not_an_option_and_torch_is_mlm_only(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--impl", "hf-flax"])
    assert exit_.value.code == 2 and "invalid choice: 'hf-flax'" in capsys.readouterr().err
    assert main(["bench", "--impl", "torch", "--objective", "electra", "--model", "electra-small"]) == 1
    assert "MLM pretraining step only" in capsys.readouterr().err
