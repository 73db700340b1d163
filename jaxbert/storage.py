"""Where bytes meet disk or bucket: one path type for local paths and `gs://` URLs.

Every path a user gives (flags, config fields, bundle and workdir paths) goes through `path()`, an
`etils.epath.Path` — the path type Orbax, grain and TFDS use — backed by `gcsfs` for `gs://`.

Three rules follow from object stores, applied to local disk too so there is one code path:
  * a directory is committed by a marker file written last (as Orbax does on GCS), never by a rename,
    where the target is a URL (`staged_dir`; local disk keeps its atomic rename);
  * an object cannot be appended to: `AppendFile` rewrites the whole (small) object on a URL;
  * a library that reads only local files (array_record, sentencepiece, tokenizers' `from_file`) gets a
    local copy from a cache keyed by the files' content (`local_copy`), never the URL.

`STORAGE_EMULATOR_HOST=http://HOST:PORT` (the variable of Google's client libraries) sends every `gs://`
access to a GCS API emulator: jaxbert sets TensorStore's own variable (used by Orbax) from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path as LocalPath
from typing import Any

from etils import epath

from jaxbert.errors import JaxbertError

Path = epath.Path
PathLike = str | os.PathLike
URL_SCHEMES = ("gs://",)
# Written first into a directory being written in place (object stores), removed after its marker.
WRITING_MARKER = ".jaxbert-writing"
CACHE_ENV = "JAXBERT_CACHE"


class StorageError(JaxbertError):
    """A path cannot be read or written (missing bucket, no permission, ...); the message names it and the fix."""


def configure_environment(environ: dict[str, str] | None = None) -> None:
    """Client-library settings jaxbert relies on; each only where the user has not set it.

    - epath uses gcsfs, not TensorFlow's gfile, even where TensorFlow is installed: one client, one
      emulator variable, and no storage-layout probe per bucket;
    - gcsfs skips its bucket-type probe over gRPC (`GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`), which waits about
      60 s wherever that endpoint does not answer (an emulator, a VM without gRPC egress);
    - under an emulator, TensorStore (Orbax's array store) is pointed at it and given a fixed test token
      instead of searching for credentials;
    - gcsfs keeps no directory-listing cache: Orbax writes through TensorStore, behind gcsfs's back, and a
      cached listing would hide the checkpoint it just wrote.
    """
    if environ is None:
        import fsspec

        for protocol in ("gs", "gcs"):
            fsspec.config.conf.setdefault(protocol, {}).setdefault("use_listings_cache", False)
    env = os.environ if environ is None else environ
    env.setdefault("EPATH_USE_TF", "false")
    env.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    emulator = env.get("STORAGE_EMULATOR_HOST", "")
    if emulator and emulator != "default":
        if not emulator.startswith(("http://", "https://")):
            emulator = f"http://{emulator}"
        env.setdefault("TENSORSTORE_GCS_HTTP_URL", emulator)
        env.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")


configure_environment()


def is_url(p: PathLike | None) -> bool:
    """True for an object-store URL (`gs://bucket/...`)."""
    return p is not None and os.fspath(p).startswith(URL_SCHEMES)


def path(p: PathLike) -> Path:
    """The one path type: a `gs://` URL as it is, a local path made absolute."""
    text = os.fspath(p)
    if "://" in text and not is_url(text):
        raise StorageError(f"{text}: unsupported URL scheme; use a local path or gs://bucket/...")
    return Path(text) if is_url(text) else Path(os.path.abspath(os.path.expanduser(text)))


def display(p: PathLike) -> str:
    """A path as the user would type it."""
    return os.fspath(p)


# ---- buckets -----------------------------------------------------------------------------
def bucket_of(url: PathLike) -> str:
    return os.fspath(url)[len("gs://"):].split("/", 1)[0]


def _gcs() -> Any:
    import gcsfs

    return gcsfs.GCSFileSystem()


def check_access(p: PathLike, what: str = "path") -> None:
    """Fail in one line, before any work, when a `gs://` path's bucket is missing or not ours to use.

    Local paths are checked where they are used; this costs one metadata request per bucket.
    """
    if not is_url(p):
        return
    bucket = bucket_of(p)
    try:
        _gcs().ls(bucket, detail=False)  # listing needs read access; a missing bucket answers 404
    except FileNotFoundError:
        raise StorageError(f"{what} {display(p)}: bucket gs://{bucket} does not exist; create it "
                           f"(gcloud storage buckets create gs://{bucket}) or fix the URL") from None
    except PermissionError as e:
        raise StorageError(f"{what} {display(p)}: no permission on gs://{bucket} ({_first_line(e)}); log in with "
                           "`gcloud auth application-default login` or grant this account "
                           "roles/storage.objectAdmin on the bucket") from None
    except OSError as e:
        if getattr(e, "code", None) in (401, 403) or str(e).startswith(("Forbidden", "Unauthorized")):
            raise StorageError(f"{what} {display(p)}: access to gs://{bucket} refused ({_first_line(e)}); check "
                               "the credentials and the bucket's permissions") from None
        raise StorageError(f"{what} {display(p)}: cannot reach gs://{bucket} ({_first_line(e)}); check the "
                           "network and STORAGE_EMULATOR_HOST") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ---- reading and writing -----------------------------------------------------------------
def write_text(target: PathLike, text: str) -> None:
    """Write a whole text file atomically: a temporary file renamed locally, one object upload on a URL."""
    p = path(target)
    if is_url(p):
        p.write_text(text)
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(p.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, str(p))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(target: PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, default=str))


def read_json(source: PathLike) -> Any:
    return json.loads(path(source).read_text())


class AppendFile:
    """A text file grown line by line: appended locally, rewritten whole on a URL (objects cannot be appended).

    Meant for small logs (metrics.jsonl: one line per logged step).
    """

    def __init__(self, target: PathLike) -> None:
        self.path = path(target)
        self._url = is_url(self.path)
        self._text = self.path.read_text() if self._url and self.path.exists() else ""

    def write_lines(self, lines: Iterable[str]) -> None:
        chunk = "".join(line + "\n" for line in lines)
        if not chunk:
            return
        if self._url:
            self._text += chunk
            self.path.write_text(self._text)
        else:
            with open(str(self.path), "a", encoding="utf-8") as f:
                f.write(chunk)


def remove(p: PathLike) -> None:
    """Delete a file or directory tree if it exists."""
    q = path(p)
    if q.is_dir():
        q.rmtree()
    elif q.exists():
        q.unlink()


def copy_tree(source: PathLike, target: PathLike) -> None:
    """Copy a directory's files (recursively) into `target`, which may be local or a URL."""
    src, dst = path(source), path(target)
    for item in sorted(src.iterdir()):
        if item.is_dir():
            copy_tree(item, dst / item.name)
        else:
            dst.mkdir(parents=True, exist_ok=True)
            item.copy(dst / item.name, overwrite=True)


@contextlib.contextmanager
def staged_dir(target: PathLike, marker: str, replace: bool = False) -> Iterator[Path]:
    """Yield the directory to write a new `target` into; on success it becomes `target`.

    The caller writes `marker` (the file that says "this directory is complete") LAST. Locally the
    directory is written beside the target and renamed onto it (an old target is swapped out only once
    the new one is whole). On an object store there is no atomic rename: the files are written in place
    and the marker, written last, commits them; an old target (`replace=True`) is first uncommitted by
    deleting its marker, so a kill mid-write leaves a directory that reads as incomplete, never a mix
    (WRITING_MARKER says such a directory is jaxbert's, so a later write may replace it). Any other
    non-empty target without the marker is refused: it is not ours to replace.
    """
    dst = path(target)
    if dst.exists() and any(dst.iterdir()):
        if not (dst / marker).exists() and not (dst / WRITING_MARKER).exists():
            raise StorageError(f"{display(dst)} exists and is not a directory jaxbert wrote (no {marker}); "
                               "choose an empty or new directory")
        if not replace:
            raise StorageError(f"{display(dst)} already exists; choose a new directory or remove it first")
    if is_url(dst):
        if dst.exists():
            (dst / WRITING_MARKER).write_text("")  # ours while incomplete: a later write may replace it
            (dst / marker).unlink(missing_ok=True)
            for item in dst.iterdir():
                if item.name != WRITING_MARKER:
                    remove(item)
        dst.mkdir(parents=True, exist_ok=True)
        (dst / WRITING_MARKER).write_text("")
        yield dst
        if not (dst / marker).exists():
            raise StorageError(f"internal: {display(dst)} was written without its {marker}")
        (dst / WRITING_MARKER).unlink(missing_ok=True)
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = LocalPath(tempfile.mkdtemp(prefix=f".{dst.name}.tmp-", dir=str(dst.parent)))
    try:
        yield Path(staging)
        old = None
        if dst.exists():
            old = LocalPath(tempfile.mkdtemp(prefix=f".{dst.name}.old-", dir=str(dst.parent)))
            os.replace(str(dst), str(old / "x"))
        os.replace(str(staging), str(dst))
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---- local copies for libraries that read only local files ---------------------------------
def cache_root() -> LocalPath:
    """Where local copies of remote files live: $JAXBERT_CACHE, else ~/.cache/jaxbert."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "jaxbert")
    return LocalPath(root)


def _fingerprint(files: list[tuple[str, Path]]) -> str:
    """A content key for remote files from their object metadata (name, size, crc32c / md5 / etag)."""
    fs = _gcs()
    digest = hashlib.sha256()
    for rel, p in files:
        info = fs.info(os.fspath(p))
        content = info.get("crc32c") or info.get("md5Hash") or info.get("etag") or info.get("generation") or ""
        digest.update(f"{rel}\0{info.get('size')}\0{content}\n".encode())
    return digest.hexdigest()[:24]


def _remote_files(root: Path, names: Iterable[str] | None) -> list[tuple[str, Path]]:
    if names is not None:
        return [(n, root / n) for n in names if (root / n).exists()]
    out = []

    def visit(directory: Path, prefix: str) -> None:
        for item in directory.iterdir():
            if item.is_dir():
                visit(item, f"{prefix}{item.name}/")
            else:
                out.append((prefix + item.name, item))

    visit(root, "")
    return sorted(out)


def local_copy(p: PathLike, names: Iterable[str] | None = None) -> LocalPath:
    """A local path with the content of `p` (a file or a directory; `names`: only those files of it).

    Local paths are returned as they are. A URL is downloaded once into the cache under a key made from
    the objects' names, sizes and checksums, so a changed object gets a new copy and an unchanged one
    is never downloaded twice. The copy is complete or absent: it is written beside and renamed.
    """
    src = path(p)
    if not is_url(src):
        return LocalPath(os.fspath(src))
    if not src.exists():
        raise StorageError(f"{display(src)}: no such file or directory in the bucket; check the URL")
    is_file = not src.is_dir()
    files = [(src.name, src)] if is_file else _remote_files(src, names)
    if not files:
        raise StorageError(f"{display(src)}: nothing to read there; check the URL")
    key = _fingerprint(files)
    target = cache_root() / "staged" / key / src.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = LocalPath(tempfile.mkdtemp(prefix=".download-", dir=str(target.parent)))
        try:
            for rel, remote in files:
                local = staging / src.name / rel if not is_file else staging / src.name
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(remote.read_bytes())
            os.replace(str(staging / src.name), str(target))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
