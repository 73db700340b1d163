"""One writer per workdir (issue 12, case 1): the lock in real processes, locally (flock) and on gs:// (a lease
object on the GCS emulator, which tests/gcs_emulator.py makes check generation preconditions as GCS does)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxbert import storage
from jaxbert.lock import LOCK_FILE, DirectoryLock, LockedError, LockLostError, _Lease

HOLDER = Path(__file__).with_name("lock_holder.py")
REPO = Path(__file__).resolve().parents[1]


def hold(directory: str | Path, ttl: float | None = None) -> subprocess.Popen:
    """A real process holding the lock on `directory` (waits until it says so)."""
    args = [sys.executable, str(HOLDER), str(directory)] + ([str(ttl)] if ttl is not None else [])
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line == "locked", (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


def refusal(directory: str | Path) -> str:
    with pytest.raises(LockedError) as err, DirectoryLock.hold(directory):
        pass
    message = str(err.value)
    assert "\n" not in message
    return message


# ---- local: flock ------------------------------------------------------------------------------
def test_a_second_holder_is_refused_naming_the_first_then_gets_it_once_released(tmp_path):
    proc = hold(tmp_path)
    message = refusal(tmp_path)
    assert f"pid {proc.pid}" in message and f"host {socket.gethostname()}" in message and "started 20" in message
    release(proc)
    with DirectoryLock.hold(tmp_path):
        assert DirectoryLock.held(tmp_path) is not None
    assert DirectoryLock.held(tmp_path) is None


def test_sigkilled_holder_leaves_a_lock_the_next_run_takes_over(tmp_path, caplog):
    proc = hold(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == proc.pid  # the dead holder's record remains
    with DirectoryLock.hold(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert "ended without releasing it" in caplog.text and f"pid {proc.pid}" in caplog.text


def test_nested_holds_in_one_process_share_the_lock(tmp_path):
    with DirectoryLock.hold(tmp_path) as outer, DirectoryLock.hold(tmp_path) as inner:
        assert inner is outer
    with DirectoryLock.hold(tmp_path):  # released by the outer block only: free again now
        pass


@pytest.mark.parametrize("contenders", [6])
def test_processes_started_together_exactly_one_gets_the_lock(tmp_path, contenders):
    procs = [subprocess.Popen([sys.executable, str(HOLDER), str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(contenders)]
    lines = [p.stdout.readline().strip() for p in procs]
    assert lines.count("locked") == 1, lines
    winner = procs[lines.index("locked")]
    assert all(f"pid {winner.pid}" in line for line in lines if line != "locked")
    for p in procs:
        p.stdin.close()
        p.wait(timeout=60)


def test_pretrain_on_a_workdir_another_run_holds_is_refused_in_one_line(tmp_path):
    """Case 1 at the command line: the second run stops before writing anything, naming the holder."""
    proc = hold(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = subprocess.run([sys.executable, "-m", "jaxbert.cli", "pretrain", "--config", "configs/smoke/bert.py",
                          "--workdir", str(tmp_path), "--config.train.steps=2"], capture_output=True, text=True,
                         timeout=600, cwd=REPO, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    release(proc)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert f"is in use by another run (host {socket.gethostname()}, pid {proc.pid}" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


# ---- gs://: a lease object ----------------------------------------------------------------------
def _write_lease(url: str, body: dict) -> None:
    lease = _Lease(storage.path(url))
    current = lease._read()
    lease._write(current[0] if current else "0", body)


def test_lease_refuses_a_second_holder_and_is_released(gcs_bucket):
    url = f"{gcs_bucket}/run"
    proc = hold(url, ttl=30)
    message = refusal(url)
    assert f"pid {proc.pid}" in message and "lease renewed" in message and LOCK_FILE in message
    release(proc)
    assert not storage.path(url, ).joinpath(LOCK_FILE).exists()  # deleted on release
    with DirectoryLock.hold(url):
        pass


def test_lease_heartbeat_keeps_it_fresh_and_a_dead_local_holder_is_taken_over(gcs_bucket, caplog):
    url = f"{gcs_bucket}/run"
    proc = hold(url, ttl=2)
    time.sleep(3)  # longer than the TTL: only the heartbeat keeps the lease
    assert f"pid {proc.pid}" in refusal(url)
    proc.send_signal(signal.SIGKILL)  # the lease object stays; its process is gone
    proc.wait(timeout=60)
    with DirectoryLock.hold(url, lease_ttl_s=30):
        pass
    assert "its process has exited" in caplog.text


def test_lease_of_another_host_is_taken_over_only_when_stale(gcs_bucket, caplog):
    url = f"{gcs_bucket}/run"
    _write_lease(url, {"host": "tpu-worker-7", "pid": 1234, "started": "2026-01-01T00:00:00+00:00", "ttl_s": 2.0,
                       "token": "theirs"})
    message = refusal(url)
    assert "host tpu-worker-7, pid 1234, started 2026-01-01T00:00:00+00:00" in message
    time.sleep(3.5)  # by the server's clock: no renewal for longer than the holder's TTL
    with DirectoryLock.hold(url, lease_ttl_s=30):
        body = json.loads(storage.path(url).joinpath(LOCK_FILE).read_text())
        assert body["pid"] == os.getpid()
    assert "not renewed for" in caplog.text and "tpu-worker-7" in caplog.text


def test_a_holder_whose_lease_was_taken_over_stops_at_its_next_check(gcs_bucket):
    url = f"{gcs_bucket}/run"
    with DirectoryLock.hold(url, lease_ttl_s=1.0) as lock:
        _write_lease(url, {"host": "elsewhere", "pid": 1, "started": "x", "ttl_s": 60, "token": "theirs"})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not lock._impl.lost:
            time.sleep(0.1)
        with pytest.raises(LockLostError, match="lost its lease on .*taken over by host elsewhere"):
            lock.check()
    # ... and it did not delete the new holder's lease on the way out
    assert json.loads(storage.path(url).joinpath(LOCK_FILE).read_text())["host"] == "elsewhere"


def test_pretrain_on_a_gs_workdir_another_run_holds_is_refused_in_one_line(gcs_bucket):
    """Case 1 on gs://: a real process holds the lease; `jaxbert pretrain` on the bucket workdir names it and
    writes nothing (the emulator's address reaches the CLI through STORAGE_EMULATOR_HOST)."""
    url = f"{gcs_bucket}/run"
    proc = hold(url, ttl=30)
    before = sorted(os.fspath(p) for p in storage.path(url).iterdir())
    out = subprocess.run([sys.executable, "-m", "jaxbert.cli", "pretrain", "--config", "configs/smoke/bert.py",
                          "--workdir", url, "--config.train.steps=2"], capture_output=True, text=True,
                         timeout=600, cwd=REPO, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    after = sorted(os.fspath(p) for p in storage.path(url).iterdir())
    release(proc)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert f"{url} is in use by another run (host {socket.gethostname()}, pid {proc.pid}" in errors[0]
    assert "lease renewed" in errors[0]
    assert after == before  # nothing written beside the holder's lease


def test_lease_contenders_started_together_exactly_one_wins(gcs_bucket):
    """Relies on the emulator checking ifGenerationMatch as GCS does (tests/gcs_emulator.py)."""
    url = f"{gcs_bucket}/run"
    procs = [subprocess.Popen([sys.executable, str(HOLDER), url, "30"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(5)]
    lines = [p.stdout.readline().strip() for p in procs]
    assert lines.count("locked") == 1, lines
    for p in procs:
        p.stdin.close()
        p.wait(timeout=60)
