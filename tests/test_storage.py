"""The storage layer against a real GCS API (the emulator): paths, atomic writes, staged directories,
content-keyed local copies, and the one-line answers for a missing bucket or a refused one."""

from __future__ import annotations

import http.server
import threading

import pytest

from jaxbert import storage


def test_local_and_url_paths_are_one_type(tmp_path):
    local = storage.path(tmp_path / "a")
    url = storage.path("gs://bucket/run")
    assert str(url) == "gs://bucket/run" and storage.is_url(url) and not storage.is_url(local)
    assert str(url / "checkpoints") == "gs://bucket/run/checkpoints"
    with pytest.raises(storage.StorageError, match="unsupported URL scheme"):
        storage.path("ftp://host/x")


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_write_read_append_and_staged_dir(where, tmp_path, request):
    root = storage.path(tmp_path) if where == "local" else storage.path(request.getfixturevalue("gcs_bucket"))
    storage.write_json(root / "x" / "a.json", {"k": 1})
    assert storage.read_json(root / "x" / "a.json") == {"k": 1}
    log = storage.AppendFile(root / "log.jsonl")
    log.write_lines(["1", "2"])
    storage.AppendFile(root / "log.jsonl").write_lines(["3"])  # a resumed writer continues the file
    assert (root / "log.jsonl").read_text() == "1\n2\n3\n"

    target = root / "bundle"
    with storage.staged_dir(target, marker="done.json") as d:
        (d / "data.txt").write_text("v1")
        (d / "done.json").write_text("{}")
    assert (target / "data.txt").read_text() == "v1"
    with pytest.raises(storage.StorageError, match="already exists"), storage.staged_dir(target, "done.json"):
        pass
    # A failed write leaves the old directory as it was (local) or uncommitted (no marker, URL).
    with pytest.raises(RuntimeError), storage.staged_dir(target, marker="done.json", replace=True) as d:
        (d / "data.txt").write_text("half")
        raise RuntimeError("killed")
    if where == "local":
        assert (target / "data.txt").read_text() == "v1" and (target / "done.json").exists()
    else:
        assert not (target / "done.json").exists()
    with storage.staged_dir(target, marker="done.json", replace=True) as d:
        (d / "data.txt").write_text("v2")
        (d / "done.json").write_text("{}")
    assert (target / "data.txt").read_text() == "v2"
    # Somebody else's directory is never replaced.
    (root / "theirs").mkdir(parents=True, exist_ok=True)
    (root / "theirs" / "notes.txt").write_text("mine")
    with pytest.raises(storage.StorageError, match="not a directory jaxbert wrote"), \
            storage.staged_dir(root / "theirs", marker="done.json", replace=True):
        pass
    assert (root / "theirs" / "notes.txt").read_text() == "mine"


def test_local_copy_is_keyed_by_content(gcs_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXBERT_CACHE", str(tmp_path / "cache"))
    src = storage.path(gcs_bucket) / "tok"
    (src / "vocab.txt").write_text("a\nb\n")
    (src / "sub").mkdir(parents=True, exist_ok=True)
    (src / "sub" / "x.bin").write_bytes(b"\x00\x01")
    first = storage.local_copy(src)
    assert (first / "vocab.txt").read_text() == "a\nb\n" and (first / "sub" / "x.bin").read_bytes() == b"\x00\x01"
    assert storage.local_copy(src) == first  # unchanged: the same copy
    (src / "vocab.txt").write_text("a\nc\n")
    second = storage.local_copy(src)
    assert second != first and (second / "vocab.txt").read_text() == "a\nc\n"
    only = storage.local_copy(src, names=["vocab.txt", "missing.json"])
    assert sorted(p.name for p in only.iterdir()) == ["vocab.txt"]
    assert storage.local_copy(src / "vocab.txt").read_text() == "a\nc\n"
    assert storage.local_copy(tmp_path) == tmp_path  # local paths are used in place


def test_missing_bucket_is_one_line(gcs_emulator):
    with pytest.raises(storage.StorageError) as e:
        storage.check_access("gs://no-such-bucket-here/run", what="--workdir")
    msg = str(e.value)
    assert "\n" not in msg and "gs://no-such-bucket-here" in msg and "does not exist" in msg


class _Forbidden(http.server.BaseHTTPRequestHandler):
    """An endpoint that refuses every request with 403, as GCS does for a bucket this account may not use."""

    def _refuse(self) -> None:
        body = b'{"error": {"code": 403, "message": "caller does not have storage.objects.list access"}}'
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _refuse

    def log_message(self, *args) -> None:
        pass


def test_refused_bucket_is_one_line(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_address[1]}")
        import gcsfs

        gcsfs.GCSFileSystem.clear_instance_cache()
        with pytest.raises(storage.StorageError) as e:
            storage.check_access("gs://private-bucket/data", what="--config.data.corpus")
        msg = str(e.value)
        assert "\n" not in msg and "gs://private-bucket" in msg and ("permission" in msg or "refused" in msg)
    finally:
        server.shutdown()
        gcsfs.GCSFileSystem.clear_instance_cache()
