"""The bundled pretraining corpus: the Python documentation that ships with every CPython (the
`pydoc_data.topics` help topics and the standard library's docstrings), so smoke runs and the quick
start need no download. `data.corpus = ("builtin:python-docs",)` in a config names it."""

from __future__ import annotations

import re
from pathlib import Path

from jaxbert import storage

BUILTIN_CORPUS = "builtin:python-docs"
CORPUS_FILES = ("python-docs.train.txt", "python-docs.eval.txt")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
_HELD_OUT_EVERY = 10  # every 10th documentation topic is held out for eval


def prose_sentences(text: str) -> list[str]:
    """The sentences of a text's prose paragraphs (indented code, doctests and headings dropped)."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = paragraph.splitlines()
        if not lines or lines[0].startswith((" ", "\t", ">>>")) or set(lines[-1].strip()) <= set("*=-^~"):
            continue
        joined = " ".join(line.strip() for line in lines)
        sentences.extend(s.strip() for s in _SENTENCE_END.split(joined) if len(s.split()) >= 3)
    return sentences


def topic_documents() -> list[list[str]]:
    """The language reference's help topics (`pydoc_data.topics`), one document each."""
    from pydoc_data.topics import topics

    return [doc for doc in (prose_sentences(topics[name]) for name in sorted(topics)) if len(doc) >= 2]


def docstring_documents() -> list[list[str]]:
    """The docstrings of the standard library's modules, one document per module, read with `ast`
    (nothing is imported, so no module's import-time side effects run)."""
    import ast
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "site-packages", "lib2to3", "__phello__"}
    docs = []
    for path in sorted(root.rglob("*.py")):
        if skip & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        doc: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc.extend(prose_sentences(ast.get_docstring(node) or ""))
        if len(doc) >= 2:
            docs.append(doc)
    return docs


def python_docs_documents() -> list[list[str]]:
    """Every document of the bundled corpus: the help topics, then the standard library's docstrings."""
    return topic_documents() + docstring_documents()


def write_python_docs_corpus(directory: storage.PathLike) -> tuple[storage.Path, storage.Path]:
    """Write the corpus (one sentence a line, blank line between documents) into a local or gs://
    directory: (train file, eval file)."""
    out = storage.path(directory)
    train, held_out = (out / name for name in CORPUS_FILES)
    if train.is_file() and held_out.is_file():
        return train, held_out
    docs = python_docs_documents()
    parts: tuple[list[str], list[str]] = ([], [])
    for i, doc in enumerate(docs):
        parts[i % _HELD_OUT_EVERY == _HELD_OUT_EVERY - 1].append("\n".join(doc))
    for path, chunks in ((train, parts[0]), (held_out, parts[1])):
        storage.write_text(path, "\n\n".join(chunks) + "\n")
    return train, held_out
