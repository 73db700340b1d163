"""One writer per directory: an exclusive lock held for the life of a run, local or on gs://.

Local directories: `fcntl.flock` on DIR/.jaxbert-lock. The kernel drops the lock when its holder dies
(SIGKILL included), so a killed run never leaves a lock behind; the file keeps the last holder's
identity (host, pid, start time), which a refused run names.

gs:// directories: a lease object DIR/.jaxbert-lock holding the owner's identity, created only if absent
and renewed (heartbeat) only while unchanged, both through GCS generation preconditions
(`ifGenerationMatch`: 0 = "must not exist", N = "still the object I wrote"), so of two runs that race
for it exactly one write succeeds. A lease is taken over only when stale: its last renewal is older
than its TTL (ages are measured on the storage server's clock: the response's Date header against
the object's `updated` time, so clocks of different hosts need not agree), or its holder is a process
of this host that no longer exists. A holder that finds its lease renewed by someone else has lost it
and stops at its next check (`check()`, called before every checkpoint save).
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from jaxbert import storage
from jaxbert.errors import JaxbertError

log = logging.getLogger(__name__)

LOCK_FILE = ".jaxbert-lock"
LEASE_TTL_ENV = "JAXBERT_LEASE_TTL_S"  # seconds a gs:// lease lives without renewal (tests shorten it)
DEFAULT_LEASE_TTL_S = 60.0


class LockedError(JaxbertError):
    """Another run holds the directory; the message names it (host, pid, start time)."""


class LockLostError(JaxbertError):
    """This run's gs:// lease was taken over by another run; it must stop writing."""


# ---- who we are ----------------------------------------------------------------------------
def _proc_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux): tells a live pid from a reused one."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


_STARTED = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def identity() -> dict[str, Any]:
    """This process as a lock holder: host, pid, when it started (UTC) and its kernel start ticks."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _STARTED,
            "proc_start": _proc_start_ticks(os.getpid())}


def describe(holder: dict[str, Any] | None) -> str:
    if not holder or "pid" not in holder:
        return "another run (its identity is not recorded yet)"
    return f"host {holder.get('host')}, pid {holder.get('pid')}, started {holder.get('started')}"


def holder_is_dead(holder: dict[str, Any]) -> bool:
    """True when the holder is a process of this host that has exited (or whose pid was reused)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    pid = holder["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        pass
    recorded, now = holder.get("proc_start"), _proc_start_ticks(pid)
    return recorded is not None and now is not None and recorded != now


def _refusal(directory: storage.Path, holder: dict[str, Any] | None, extra: str = "") -> LockedError:
    return LockedError(f"{storage.display(directory)} is in use by another run ({describe(holder)}{extra}); "
                       "one run at a time may write a workdir: wait for that run to finish or stop it, or choose "
                       "another --workdir")


# ---- local: flock --------------------------------------------------------------------------
class _FileLock:
    def __init__(self, directory: storage.Path) -> None:
        self.directory = directory
        self.file = directory / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(os.fspath(self.file), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise _refusal(self.directory, holder) from None
        except BaseException:
            os.close(fd)
            raise
        previous = self._read_holder(fd, retries=0)
        if previous and previous.get("pid") is not None and previous.get("released") is not True:
            log.warning("taking over the lock of %s left by a run that ended without releasing it (%s)",
                        storage.display(self.directory), describe(previous))
        _overwrite(fd, json.dumps(identity()).encode())
        os.fsync(fd)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int, retries: int = 100) -> dict[str, Any] | None:
        """The holder recorded in the lock file. The holder writes it right after locking, so until then the
        file may be empty, half written or still the previous holder's record: wait a moment for a live one."""
        holder = None
        for attempt in range(retries + 1):
            raw = os.pread(fd, 4096, 0)
            try:
                holder = json.loads(raw) if raw else None
            except ValueError:
                holder = None
            if isinstance(holder, dict) and holder.get("released") is not True and not holder_is_dead(holder):
                return holder
            if attempt < retries:
                time.sleep(0.05)
        return holder if isinstance(holder, dict) else None

    def check(self) -> None:
        """A kernel lock cannot be lost while its holder lives."""

    def release(self) -> None:
        import fcntl

        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            _overwrite(self._fd, json.dumps({**identity(), "released": True}).encode())
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _overwrite(fd: int, data: bytes) -> None:
    """Replace the file's content with `data`, never leaving it empty in between (others read it unlocked)."""
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


# ---- gs://: a lease object -------------------------------------------------------------------
class _Lease:
    """A lease object renewed by a heartbeat thread; see the module docstring for the protocol."""

    def __init__(self, directory: storage.Path, ttl_s: float | None = None) -> None:
        self.directory = directory
        self.url = os.fspath(directory / LOCK_FILE)
        self.bucket, _, self.key = self.url[len("gs://"):].partition("/")
        self.ttl_s = float(ttl_s if ttl_s is not None else os.environ.get(LEASE_TTL_ENV, DEFAULT_LEASE_TTL_S))
        self.token = uuid.uuid4().hex
        self.generation: str | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fs = storage._gcs()

    # -- the GCS JSON API calls, each with its precondition
    def _read(self) -> tuple[str, dict[str, Any], float] | None:
        """(generation, body, age in seconds by the server's clock) of the lease object, or None if absent."""
        try:
            headers, raw = self._fs.call("GET", "b/{}/o/{}", self.bucket, self.key)
            meta = json.loads(raw)
            _, body = self._fs.call("GET", "b/{}/o/{}", self.bucket, self.key, alt="media",
                                    generation=meta["generation"])
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(body)
        except ValueError:
            holder = {}
        return str(meta["generation"]), holder, _age_s(meta.get("updated"), headers.get("Date"))

    def _write(self, if_generation: str, body: dict[str, Any]) -> str:
        """Upload the lease if the object's generation is still `if_generation` ("0": absent); its new generation.

        A 412 answer (someone else wrote first) comes back from gcsfs as FileExistsError."""
        out = self._fs.call("POST", f"{self._fs._location}/upload/storage/v1/b/{{}}/o", self.bucket,
                            uploadType="media", name=self.key, ifGenerationMatch=if_generation,
                            data=json.dumps(body).encode(), headers={"Content-Type": "application/octet-stream"},
                            json_out=True)
        return str(out["generation"])

    def _body(self) -> dict[str, Any]:
        return {**identity(), "token": self.token, "ttl_s": self.ttl_s,
                "renewed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}

    # -- the protocol
    def acquire(self) -> None:
        current = self._read()
        if current is not None:
            generation, holder, age = current
            dead = holder_is_dead(holder)
            ttl = float(holder.get("ttl_s", self.ttl_s))
            if not dead and age <= ttl:
                raise _refusal(self.directory, holder, f", lease renewed {age:.0f} s ago; it expires "
                               f"{ttl:.0f} s after its last renewal, or delete {self.url} if that run is gone")
            why = "its process has exited" if dead else f"not renewed for {age:.0f} s (TTL {ttl:.0f} s)"
            log.warning("taking over the stale lease of %s (%s): %s", storage.display(self.directory),
                        describe(holder), why)
        else:
            generation = "0"
        try:
            self.generation = self._write(generation, self._body())
        except FileExistsError:  # another run wrote it between our read and our write
            again = self._read()
            raise _refusal(self.directory, again[1] if again else None) from None
        self._thread = threading.Thread(target=self._heartbeat, name="jaxbert-lease", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        last_renewal = time.monotonic()
        while not self._stop.wait(self.ttl_s / 4):
            try:
                self.generation = self._write(self.generation, self._body())
                last_renewal = time.monotonic()
            except FileExistsError:
                current = self._read()
                self.lost = f"taken over by {describe(current[1] if current else None)}"
                log.error("the lease of %s was %s; this run stops at its next checkpoint",
                          storage.display(self.directory), self.lost)
                return
            except Exception as e:  # a network blip: retry until the lease would have expired
                if time.monotonic() - last_renewal > self.ttl_s:
                    self.lost = f"not renewed for {self.ttl_s:.0f} s ({storage._first_line(e)})"
                    log.error("the lease of %s expired: %s", storage.display(self.directory), self.lost)
                    return

    def check(self) -> None:
        if self.lost:
            raise LockLostError(f"this run lost its lease on {storage.display(self.directory)} ({self.lost}); it "
                                "stops here and writes nothing more; the other run owns the workdir now")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.generation is not None and not self.lost:
            with contextlib.suppress(FileNotFoundError, FileExistsError):
                self._fs.call("DELETE", "b/{}/o/{}", self.bucket, self.key, ifGenerationMatch=self.generation)
        self.generation = None


def _age_s(updated: str | None, date_header: str | None) -> float:
    """Seconds since `updated` (RFC 3339), measured on the server's clock when its Date header is given."""
    if not updated:
        return float("inf")
    then = datetime.datetime.fromisoformat(updated.replace("Z", "+00:00"))
    now = email.utils.parsedate_to_datetime(date_header) if date_header else None
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    # The Date header has whole seconds: a lease renewed within the same second may look up to 1 s younger.
    return max(0.0, (now - then).total_seconds())


# ---- the one entry point -------------------------------------------------------------------
class DirectoryLock:
    """An exclusive, re-entrant (per process) lock on a directory, local or gs://."""

    _held: dict[str, tuple[DirectoryLock, int]] = {}
    _guard = threading.Lock()

    def __init__(self, directory: storage.PathLike, lease_ttl_s: float | None = None) -> None:
        self.directory = storage.path(directory)
        self._impl = _Lease(self.directory, lease_ttl_s) if storage.is_url(self.directory) else _FileLock(
            self.directory)

    @classmethod
    def held(cls, directory: storage.PathLike) -> DirectoryLock | None:
        """The lock this process holds on `directory`, if any."""
        entry = cls._held.get(os.fspath(storage.path(directory)))
        return entry[0] if entry else None

    def check(self) -> None:
        """Raise LockLostError if a gs:// lease was taken over (a local lock cannot be)."""
        self._impl.check()

    @classmethod
    @contextlib.contextmanager
    def hold(cls, directory: storage.PathLike, lease_ttl_s: float | None = None) -> Iterator[DirectoryLock]:
        """Hold the lock for the block: acquired (or refused in one line naming the holder), then released.

        Nested holds of one directory in one process share the first one's lock."""
        key = os.fspath(storage.path(directory))
        with cls._guard:
            entry = cls._held.get(key)
            if entry is not None:
                cls._held[key] = (entry[0], entry[1] + 1)
        if entry is None:
            lock = cls(directory, lease_ttl_s)
            lock._impl.acquire()
            with cls._guard:
                cls._held[key] = (lock, 1)
        else:
            lock = entry[0]
        try:
            yield lock
        finally:
            with cls._guard:
                held, count = cls._held[key]
                if count > 1:
                    cls._held[key] = (held, count - 1)
                else:
                    del cls._held[key]
            if count == 1:
                held._impl.release()
