"""Training text for vocabularies: the sentences of a pretraining corpus (see `jaxbert.data.corpus`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from jaxbert.data.corpus import CorpusError, read_documents

__all__ = ["CorpusError", "iter_corpus"]


def iter_corpus(paths: Iterable[str | Path], errors: str = "strict", text_field: str = "text") -> Iterator[str]:
    """Every non-blank line (JSON lines: every line of each `text_field`) of every corpus file, in order.

    Vocabularies are trained on exactly the text pretraining reads, through the same reader.
    """
    for document in read_documents(list(paths), text_field=text_field, errors=errors):
        yield from document
