"""The files that make up a tokenizer (Hugging Face and jaxbert layouts alike), copied byte for byte."""

from __future__ import annotations

import tempfile
from typing import Any

from jaxbert.storage import PathLike, path, staged_dir

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "spiece.model", "30k-clean.model")


def copy_tokenizer_files(source: PathLike, target: PathLike) -> bool:
    """Copy the tokenizer files `source` holds into `target` (local or gs://); True if there were any."""
    src, dst = path(source), path(target)
    copied = False
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            dst.mkdir(parents=True, exist_ok=True)
            (src / name).copy(dst / name, overwrite=True)
            copied = True
    return copied


def write_tokenizer_dir(target: PathLike, source_dir: PathLike | None = None, tokenizer: Any = None) -> bool:
    """A run's tokenizer directory (WORKDIR/tokenizer), written once: the files copied byte for byte from
    `source_dir` where it has them, else written by `tokenizer.save`. False when it already existed."""
    dst = path(target)
    if dst.is_dir() and any(dst.iterdir()):
        return False
    with staged_dir(dst, marker=_DONE, replace=True) as d:
        if source_dir is None or not copy_tokenizer_files(source_dir, d):
            with tempfile.TemporaryDirectory() as tmp:  # tokenizers write local files only
                tokenizer.save(tmp)
                copy_tokenizer_files(tmp, d)
        (d / _DONE).write_text("")
    return True


_DONE = ".complete"  # written last into a tokenizer directory jaxbert writes (the commit marker)
