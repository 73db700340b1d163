"""Read pretraining corpora as documents (lists of sentences) from text, gzip, JSON-lines or TFDS sources.

On-disk formats:
  * `.txt` / `.txt.gz` (any other name is read as text too): one sentence or paragraph a line, documents
    separated by one or more blank lines (the google-research/bert convention); with `line_documents`,
    every line is a document of its own (a paragraph-a-line corpus without blank lines, such as People's
    Daily, whose lines `sentence_split="rules"` then splits into sentences).
  * `.jsonl` / `.jsonl.gz`: one JSON object a line; `text_field` holds the document, whose newlines
    separate its sentences.
  * `tfds:NAME[:SPLIT]` entries in the path list: a TFDS dataset already prepared in array_record format
    (e.g. `tfds:wikipedia/20230601.en:train`), read with `tfds.data_source`; see `iter_tfds_documents`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import gzip
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from jaxbert import storage
from jaxbert.errors import JaxbertError

Document = list[str]  # the sentences (or paragraphs) of one document, in order
TFDS_PREFIX = "tfds:"
_ERRORS = ("strict", "replace")


class CorpusError(JaxbertError, ValueError):
    """A corpus file is missing, unreadable or malformed; the message names the file (and line)."""


@dataclasses.dataclass
class CorpusStats:
    """Counts gathered while reading a corpus (the builder logs them in its summary)."""

    files: int = 0
    documents: int = 0  # documents with at least one non-blank sentence
    empty_documents: int = 0  # JSON-lines records (or TFDS rows) whose text is blank: skipped
    sentences: int = 0
    replaced_lines: int = 0  # lines whose invalid UTF-8 bytes were replaced (errors="replace")

    def count(self, document: Document) -> bool:
        """Count one document read (a blank one as skipped); True when it holds a sentence."""
        if not document:
            self.empty_documents += 1
            return False
        self.documents += 1
        self.sentences += len(document)
        return True


def resolve_corpus_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Expand files, directories (their files, sorted) and glob patterns; keep `tfds:` entries as they are.

    Raises CorpusError naming the first path that matches nothing.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    resolved: list[str] = []
    for raw in paths:
        entry = os.fspath(raw)
        if entry.startswith(TFDS_PREFIX):
            resolved.append(entry)
            continue
        storage.check_access(entry, what="corpus path")
        where = storage.path(entry) if storage.is_url(entry) else Path(entry)
        if where.is_dir():
            files = sorted(str(p) for p in where.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise CorpusError(f"corpus directory {entry} holds no files; put .txt/.jsonl files in it")
            resolved.extend(files)
        elif where.is_file():
            resolved.append(entry)
        elif glob.has_magic(entry) and (matches := _glob(entry)):
            resolved.extend(matches)
        else:
            raise CorpusError(f"corpus path {entry} not found; check the path (or data.corpus in the config)")
    if not resolved:
        raise CorpusError("no corpus paths given; pass at least one .txt/.jsonl file, directory or tfds: name")
    return resolved


def read_documents(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    text_field: str = "text",
    errors: str = "strict",
    stats: CorpusStats | None = None,
    line_documents: bool = False,
) -> Iterator[Document]:
    """Yield the documents of every corpus path in order (see the module docstring for the formats).

    `errors="strict"` raises CorpusError naming the file and line of the first invalid UTF-8 byte;
    `errors="replace"` replaces such bytes with U+FFFD and counts the lines in `stats.replaced_lines`.
    """
    if errors not in _ERRORS:
        raise CorpusError(f"errors={errors!r} is not supported; use one of {', '.join(_ERRORS)}")
    stats = stats if stats is not None else CorpusStats()
    for path in resolve_corpus_paths(paths):
        if path.startswith(TFDS_PREFIX):
            name, _, split = path[len(TFDS_PREFIX):].partition(":")
            yield from iter_tfds_documents(name, split=split or "train", text_field=text_field, stats=stats)
        elif _is_jsonl(path):
            yield from iter_jsonl_documents(path, text_field=text_field, errors=errors, stats=stats)
        else:
            yield from iter_text_documents(path, errors=errors, stats=stats, line_documents=line_documents)


def iter_text_documents(path: str, *, errors: str = "strict", stats: CorpusStats | None = None,
                        line_documents: bool = False) -> Iterator[Document]:
    """Documents of a text file: one sentence a line, documents separated by blank lines (or, with
    `line_documents`, one document a line)."""
    stats = stats if stats is not None else CorpusStats()
    stats.files += 1
    document: Document = []
    for line in _decoded_lines(path, errors, stats):
        sentence = line.strip()
        if sentence and line_documents:
            stats.count([sentence])
            yield [sentence]
        elif sentence:
            document.append(sentence)
        elif document:
            stats.count(document)
            yield document
            document = []
    if document:
        stats.count(document)
        yield document


def iter_jsonl_documents(
    path: str, *, text_field: str = "text", errors: str = "strict", stats: CorpusStats | None = None
) -> Iterator[Document]:
    """Documents of a JSON-lines file: `record[text_field]` split into sentences at newlines."""
    stats = stats if stats is not None else CorpusStats()
    stats.files += 1
    for lineno, line in enumerate(_decoded_lines(path, errors, stats), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}, line {lineno}: invalid JSON ({e.msg}); write one JSON object a line") from None
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise CorpusError(f"{path}, line {lineno}: no string field {text_field!r}; "
                              "set text_field to the key holding the document text")
        document = split_sentences(record[text_field])
        if stats.count(document):
            yield document


def iter_tfds_documents(
    name: str,
    *,
    split: str = "train",
    text_field: str = "text",
    data_dir: str | None = None,
    stats: CorpusStats | None = None,
) -> Iterator[Document]:
    """Documents of a public TFDS text dataset (e.g. `wikipedia/20230601.en`, `c4/en`), via `tfds.data_source`.

    The dataset must already be prepared in array_record format under `data_dir` (or TFDS_DATA_DIR), e.g.
    `tfds build wikipedia/20230601.en --file_format=array_record` on a machine with internet access; its
    `text_field` string is split into sentences at newlines (Wikipedia and C4 put paragraphs on lines).
    """
    import tensorflow_datasets as tfds  # imported here: reading local files must not pay for TFDS

    stats = stats if stats is not None else CorpusStats()
    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir)
    except Exception as e:  # TFDS raises many types (DatasetNotFoundError, FileNotFoundError, ...)
        raise CorpusError(f"TFDS dataset {name!r} (split {split!r}) could not be opened ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); prepare it with "
                          f"`tfds build {name} --file_format=array_record` or fix data_dir") from e
    stats.files += 1
    for i in range(len(source)):
        row = source[i]
        if text_field not in row:
            raise CorpusError(f"TFDS dataset {name!r} has no feature {text_field!r} (features: "
                              f"{', '.join(sorted(row))}); set text_field")
        text = row[text_field]
        document = split_sentences(text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text))
        if stats.count(document):
            yield document


def split_sentences(text: str) -> Document:
    """The non-blank lines of a document's text, stripped."""
    return [s for s in (line.strip() for line in text.split("\n")) if s]


def _glob(pattern: str) -> list[str]:
    """The files a glob pattern matches, local or gs:// (magic in the last path component only on gs://)."""
    if not storage.is_url(pattern):
        return sorted(m for m in glob.glob(pattern) if os.path.isfile(m))
    parent, _, name = pattern.rpartition("/")
    return sorted(str(p) for p in storage.path(parent).glob(name) if p.is_file())


def _is_jsonl(path: str) -> bool:
    return path.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz"))


def _decoded_lines(path: str, errors: str, stats: CorpusStats) -> Iterator[str]:
    """The lines of a (possibly gzipped) file decoded as UTF-8, with a file:line error for bad bytes."""
    try:
        with storage.path(path).open("rb") as raw_file, (
                gzip.GzipFile(fileobj=raw_file) if path.endswith(".gz") else contextlib.nullcontext(raw_file)) as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    if errors == "strict":
                        raise CorpusError(
                            f"{path}, line {lineno}: invalid UTF-8 byte 0x{raw[e.start]:02x} at byte "
                            f"{e.start + 1}; convert the file to UTF-8 (iconv -t utf-8) or replace bad bytes "
                            "(pretraining: --config.data.encoding_errors=replace; "
                            "jaxbert vocab: --encoding-errors replace)"
                        ) from None
                    stats.replaced_lines += 1
                    yield raw.decode("utf-8", "replace")
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise CorpusError(f"{path}: corrupt gzip file ({e}); re-create it or decompress it to .txt") from None
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e}); check the file's permissions") from None
