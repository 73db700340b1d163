"""Fine-tuning XLNet on the SST-2 sample through `jaxbert finetune`, end to end: an XLNet vocabulary
(inputs padded on the left, <cls> last), the last-token summary head, the best model kept, `jaxbert eval`
reproducing its metrics, and the export giving transformers' XLNetForSequenceClassification the same logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import jaxbert
from jaxbert.finetune.best import BEST_DIR, read_task_info
from jaxbert.finetune.tasks import EncodeOptions, encode_task, get_task, read_task_file
from jaxbert.tokenize import train_vocab
from tests.finetune_fixtures import head_lines
from tests.test_finetune_cli import EVERY_2, _check_run, _finetune

pytest.importorskip("transformers", reason="install the test extra: pip install -e '.[test]'")

TINY_XLNET = {"preset": "xlnet-base", "vocab_size": 800, "hidden_size": 24, "num_heads": 3, "num_layers": 2,
              "intermediate_size": 40}


@pytest.fixture(scope="module")
def xlnet_bundle(shared_data: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("xlnet-start")
    train_vocab([shared_data / "glue" / "sst2" / "train.tsv"], "xlnet", 800, root / "vocab")
    return jaxbert.init(TINY_XLNET, seed=0, tokenizer=root / "vocab").save(root / "bundle")


@pytest.mark.slow
def test_sst2_end_to_end(xlnet_bundle: Path, shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "glue" / "sst2" / "train.tsv"
    train, dev = head_lines(src, tmp_path / "train.tsv", 48), head_lines(src, tmp_path / "dev.tsv", 40, skip=48)
    summary = _finetune("sst2", tmp_path / "run", xlnet_bundle, train, dev, 32, EVERY_2)
    assert summary["train_rows"] == 48 and summary["eval_examples"] == 40
    _check_run("sst2", tmp_path / "run", summary, dev, tmp_path, eval_steps=(2, 4))
    model = jaxbert.load(tmp_path / "run")
    assert model.config.family == "xlnet" and model.config.task == "classification" and not model.config.pooler
    # The task data are XLNet's layout: padded on the left, so every row ends in its <cls>.
    enc = encode_task(read_task_file(get_task("sst2"), dev), model.tokenizer, EncodeOptions(max_length=32))
    assert (enc.arrays["input_ids"][:, -1] == model.tokenizer.special.cls).all()
    assert (enc.arrays["attention_mask"][:, 0] == 0).any()
    info = read_task_info(tmp_path / "run" / BEST_DIR)
    assert 0.0 <= info["metrics"]["accuracy"] <= 1.0 and np.isfinite(info["value"])
