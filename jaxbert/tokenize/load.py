"""Finding and building the right tokenizer from a directory's files (Hugging Face or jaxbert layouts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jaxbert import storage
from jaxbert.tokenize.base import Tokenizer, TokenizerError
from jaxbert.tokenize.bpe import BPETokenizer
from jaxbert.tokenize.files import TOKENIZER_FILES
from jaxbert.tokenize.spiece import SentencePieceTokenizer
from jaxbert.tokenize.unigram import UnigramTokenizer
from jaxbert.tokenize.wordpiece import WordPieceTokenizer

# What find_tokenizer looks for, in order (for error messages).
LOOKED_FOR = ("spiece.model", "tokenizer.json", "vocab.json + merges.txt", "vocab.txt")
# SentencePiece model file names: transformers' and Google ALBERT releases' (30k-clean.model).
SENTENCEPIECE_FILES = ("spiece.model", "30k-clean.model")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TokenizerError(f"{path} is not valid JSON ({e}); fix or delete it") from e
    return data if isinstance(data, dict) else {}


def _token_string(value: Any) -> str | None:
    # tokenizer_config.json holds special tokens as strings or as AddedToken dicts {"content": ...}.
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _settings(directory: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(tokenizer_config.json, special token names by role from it and special_tokens_map.json)."""
    config = _read_json(directory / "tokenizer_config.json")
    names: dict[str, str] = {}
    for source in (_read_json(directory / "special_tokens_map.json"), config):
        for role in ("pad", "unk", "cls", "sep", "mask"):
            token = _token_string(source.get(f"{role}_token"))
            if token is not None:
                names[role] = token
    return config, names


def _model_type(path: Path) -> str:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        return str(spec["model"]["type"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise TokenizerError(f"{path} is not a tokenizers tokenizer.json ({e}); fix or delete it") from e


def find_tokenizer(path: str | Path, defaults: dict[str, Any] | None = None) -> Tokenizer | None:
    """The tokenizer a directory's files describe, or None when it has no tokenizer files.

    Looks for spiece.model or 30k-clean.model (SentencePiece), tokenizer.json (WordPiece, byte-level BPE or
    Unigram), vocab.json + merges.txt (byte-level BPE), vocab.txt (WordPiece), in that order, and reads
    tokenizer_config.json (do_lower_case, strip_accents, keep_accents, ...) and
    special_tokens_map.json where present. `defaults` fills settings tokenizer_config.json does not
    state (e.g. do_lower_case for a Google release, which ships a bare vocab.txt).
    """
    if storage.is_url(path):  # tokenizers and sentencepiece read local files: a copy keyed by content
        remote = storage.path(path)
        if not remote.is_dir():
            raise TokenizerError(f"tokenizer directory {path} does not exist; pass a directory with tokenizer files")
        if not any((remote / n).exists() for n in TOKENIZER_FILES):
            return None
        path = storage.local_copy(remote, TOKENIZER_FILES)
    directory = Path(path)
    if directory.is_file():
        directory = directory.parent
    if not directory.is_dir():
        raise TokenizerError(f"tokenizer directory {directory} does not exist; pass a directory with tokenizer files")
    config, names = _settings(directory)
    config = {**(defaults or {}), **config}
    spiece = next((directory / n for n in SENTENCEPIECE_FILES if (directory / n).is_file()), None)
    if spiece is not None:
        xlnet = str(config.get("tokenizer_class", "")).startswith("XLNet")
        return SentencePieceTokenizer(
            spiece,
            lowercase=bool(config.get("do_lower_case", not xlnet)),
            template="xlnet" if xlnet else "bert",
            keep_accents=bool(config.get("keep_accents", False)),
            remove_space=bool(config.get("remove_space", True)),
            names=names,
        )
    if (directory / "tokenizer.json").is_file():
        model = _model_type(directory / "tokenizer.json")
        if model == "WordPiece":
            return WordPieceTokenizer.from_tokenizer_json(directory / "tokenizer.json", names=names)
        if model == "BPE":
            return BPETokenizer.from_tokenizer_json(directory / "tokenizer.json", names=names)
        if model == "Unigram":
            return UnigramTokenizer.from_tokenizer_json(directory / "tokenizer.json", names=names, settings=config)
        raise TokenizerError(
            f"{directory / 'tokenizer.json'} holds a {model} model; jaxbert reads WordPiece, BPE and Unigram "
            "tokenizer.json files, and SentencePiece models as spiece.model"
        )
    if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
        return BPETokenizer.from_files(
            directory / "vocab.json",
            directory / "merges.txt",
            add_prefix_space=bool(config.get("add_prefix_space", False)),
            trim_offsets=bool(config.get("trim_offsets", True)),
            names=names,
        )
    if (directory / "vocab.txt").is_file():
        return WordPieceTokenizer.from_vocab_file(
            directory / "vocab.txt",
            lowercase=bool(config.get("do_lower_case", True)),
            strip_accents=config.get("strip_accents"),
            tokenize_chinese_chars=bool(config.get("tokenize_chinese_chars", True)),
            names=names,
        )
    return None


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer in a directory (see `find_tokenizer`); a TokenizerError when it has none."""
    tokenizer = find_tokenizer(path)
    if tokenizer is None:
        raise TokenizerError(
            f"{path} has no tokenizer files (one of: {', '.join(LOOKED_FOR)}); "
            "copy the model's tokenizer files there or train one with `jaxbert vocab`"
        )
    return tokenizer


def check_vocab_matches(tokenizer: Tokenizer, vocab_size: int) -> None:
    """Raises a TokenizerError when the tokenizer can emit ids the model's embedding table lacks.

    A model may have more rows than the tokenizer has tokens (vocabularies are often padded to a
    multiple of 8 or 128); the reverse would index out of range.
    """
    if tokenizer.vocab_size > vocab_size:
        raise TokenizerError(
            f"the {tokenizer.kind} tokenizer has {tokenizer.vocab_size} ids but the model's vocab_size is "
            f"{vocab_size}; use the tokenizer the model was trained with (or a model with vocab_size >= "
            f"{tokenizer.vocab_size})"
        )
