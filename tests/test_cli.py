"""The command line's parsing: --version, override help, the space form of overrides, misplaced overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import jaxbert
from jaxbert.cli import build_parser, config_overrides, main

REPO = Path(__file__).resolve().parents[1]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    assert capsys.readouterr().out.strip() == f"jaxbert {version}" == f"jaxbert {jaxbert.__version__}"


@pytest.mark.parametrize("command", ["pretrain", "distill", "finetune"])
def test_config_commands_explain_overrides_with_an_example(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    assert "--config.KEY=VALUE" in help_text and "--config.KEY VALUE" in help_text
    example = help_text.split("Example:")[1]
    assert "--config." in example and "=" in example


def test_space_form_overrides_are_joined():
    overrides, unknown = config_overrides(["--config.train.lr", "1e-4", "--config.seed=3", "--config.train.steps",
                                           "-1", "--config.flag", "--config.init", "/x", "--other"])
    assert overrides == ["--config.train.lr=1e-4", "--config.seed=3", "--config.train.steps=-1", "--config.flag",
                         "--config.init=/x"]
    assert unknown == ["--other"]


def test_space_form_reaches_the_config(tmp_path, capsys):
    # The override is applied before the run starts: distill refuses the objective it was given by name.
    code = main(["distill", "--config", str(REPO / "configs/smoke/bert.py"), "--workdir", str(tmp_path / "w"),
                 "--config.objective.name", "electra"])
    err = capsys.readouterr().err
    assert code == 1 and "'electra' is not a distillation objective" in err and err.count("\n") == 1
    assert not (tmp_path / "w").exists()


def test_an_override_needs_a_value(tmp_path, capsys):
    code = main(["distill", "--config", str(REPO / "configs/smoke/bert.py"), "--workdir", str(tmp_path / "w"),
                 "--config.objective.name"])
    assert code == 1 and "needs a value" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["embed", "--model", "m", "--input", "i", "--output", "o"],
                                     ["eval", "--model", "m", "--task", "sst2", "--data", "d"],
                                     ["fill-mask", "--model", "m", "a [MASK]"]])
def test_overrides_to_a_command_without_a_config_are_an_error(command, capsys, tmp_path):
    code = main([*command, "--config.train.lr=1e-4"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"jaxbert {command[0]}: error: --config.train.lr=1e-4" in err and "reads no config file" in err


def test_every_embed_option_has_help():
    parser = build_parser(["embed"])
    sub = next(a for a in parser._actions if a.dest == "command").choices["embed"]
    options = [a for a in sub._actions if a.option_strings and a.dest != "help"]
    assert {a.dest for a in options} >= {"model", "input", "output", "pooling", "normalize", "batch_size",
                                         "max_length"}
    assert all(a.help for a in options), [a.dest for a in options if not a.help]
