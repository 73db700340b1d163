"""Reading training text for vocabularies: .txt, .txt.gz, .jsonl(.gz) ("text" field), or folders of them."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from jaxbert.tokenize.base import TokenizerError

CORPUS_SUFFIXES = (".txt", ".txt.gz", ".jsonl", ".jsonl.gz", ".tokens", ".raw")
ENCODING_ERRORS = ("strict", "replace")


class CorpusError(TokenizerError):
    """A corpus file is missing, unreadable, not UTF-8 or not the JSON lines it claims to be."""


def corpus_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files to read: each path itself, or a folder's corpus files (sorted); missing paths are errors."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(CORPUS_SUFFIXES))
            if not found:
                raise CorpusError(f"corpus folder {path} has no {', '.join(CORPUS_SUFFIXES)} files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"corpus path {path} does not exist; pass text files (.txt, .txt.gz, .jsonl)")
    if not files:
        raise CorpusError("no corpus paths given; pass at least one text file")
    return files


def _raw_lines(path: Path) -> Iterator[bytes]:
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                yield from f
        except (OSError, EOFError, zlib.error) as e:
            raise CorpusError(f"{path} is not a readable gzip file ({e}); re-compress it or pass it unzipped") from e
    else:
        with path.open("rb") as f:
            yield from f


def _decode(line: bytes, path: Path, lineno: int, errors: str) -> str:
    try:
        return line.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"{path}:{lineno}: not UTF-8 (byte 0x{line[e.start]:02x} at column {e.start + 1}); convert the file "
            "to UTF-8 (iconv -t utf-8) or replace bad bytes (--encoding-errors replace)"
        ) from e


def read_lines(path: str | Path, errors: str = "strict") -> Iterator[str]:
    """The non-blank text lines of one corpus file (a .jsonl file: each object's "text" field)."""
    if errors not in ENCODING_ERRORS:
        raise CorpusError(f"errors={errors!r} is not one of {ENCODING_ERRORS}")
    path = Path(path)
    is_jsonl = path.name.endswith((".jsonl", ".jsonl.gz"))
    for lineno, raw in enumerate(_raw_lines(path), start=1):
        line = _decode(raw, path, lineno, errors).rstrip("\r\n")
        if not line.strip():
            continue
        if is_jsonl:
            line = _json_text(line, path, lineno)
            if not line.strip():
                continue
        yield line


def _json_text(line: str, path: Path, lineno: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise CorpusError(f"{path}:{lineno}: not a JSON object ({e.msg}); write one JSON object a line") from e
    text = record.get("text") if isinstance(record, dict) else None
    if not isinstance(text, str):
        raise CorpusError(f'{path}:{lineno}: no string "text" field; each JSON line needs {{"text": "..."}}')
    return text


def iter_corpus(paths: Iterable[str | Path], errors: str = "strict") -> Iterator[str]:
    """Every non-blank line of every corpus file, in order."""
    for path in corpus_files(paths):
        yield from read_lines(path, errors)
