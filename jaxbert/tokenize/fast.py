"""The shared machinery of the tokenizers built on the `tokenizers` library (WordPiece, byte-level BPE)."""

from __future__ import annotations

import abc
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers

from jaxbert.tokenize.base import SpecialTokens, TokenizerError
from jaxbert.tokenize.common import (
    TokenizerBase,
    as_inputs,
    as_text_list,
    check_max_length,
    check_ragged,
    resolve_padding,
)

ROLES = ("pad", "unk", "cls", "sep", "mask")


def special_ids(backend: tokenizers.Tokenizer, names: dict[str, str], source: str) -> SpecialTokens:
    """Looks up the ids of the five special tokens named in `names` (role -> token string)."""
    ids = {}
    for role in ROLES:
        token_id = backend.token_to_id(names[role])
        if token_id is None:
            raise TokenizerError(
                f"{source}: the {role} token {names[role]!r} is not in the vocabulary; "
                f"set {role}_token in tokenizer_config.json to a token the vocabulary has"
            )
        ids[role] = token_id
    return SpecialTokens(**ids)


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class FastTokenizer(TokenizerBase, abc.ABC):
    """A `tokenizers.Tokenizer` (normalizer, pre-tokenizer, model, post-processor) behind the jaxbert protocol.

    Batch calls go through `encode_batch`, which runs in Rust (on every core unless
    TOKENIZERS_PARALLELISM=false). Truncation and padding are set on the backend for the length
    of one call, under a lock, so one tokenizer can serve several threads.
    """

    kind = "fast"
    # Where padding goes (transformers' XLNet tokenizer pads on the left).
    padding_side = "right"

    def __init__(self, backend: tokenizers.Tokenizer, special: SpecialTokens, names: dict[str, str]) -> None:
        backend.no_truncation()
        backend.no_padding()
        self._backend = backend
        self._lock = threading.Lock()
        self.special = special
        self.special_names = dict(names)
        vocab = backend.get_vocab(with_added_tokens=True)
        self._vocab_size = max(vocab.values()) + 1 if vocab else 0
        continues, breaks_after = self._word_rules(vocab)
        self._build_word_tables(self._vocab_size, continues, breaks_after)

    # ---- subclass hooks -------------------------------------------------------------------
    @abc.abstractmethod
    def _word_rules(self, vocab: dict[str, int]) -> tuple[list[int], list[int]]:
        """(ids that continue the previous token's word, ids after which a new word starts)."""

    @abc.abstractmethod
    def _reference_files(self, directory: Path) -> None:
        """Writes the vocabulary files the transformers tokenizer of this kind loads."""

    @abc.abstractmethod
    def _config(self) -> dict[str, Any]:
        """tokenizer_config.json entries particular to this kind."""

    # ---- properties -----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Rows an embedding table needs for these ids: the largest id plus one."""
        return self._vocab_size

    @property
    def backend(self) -> tokenizers.Tokenizer:
        """The underlying `tokenizers.Tokenizer` (don't enable truncation or padding on it)."""
        return self._backend

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._backend.post_processor.num_special_tokens_to_add(pair)

    # ---- encoding -------------------------------------------------------------------------
    def __call__(
        self,
        texts: str | Sequence[str],
        text_pairs: str | Sequence[str] | None = None,
        max_length: int = 128,
        padding: str | bool = "max_length",
        truncation: bool = True,
        return_offsets: bool = False,
        return_special_tokens_mask: bool = False,
        return_word_starts: bool = False,
    ) -> dict[str, np.ndarray]:
        """Encodes texts (or text pairs) into the contract's dict of int32 [N, T] numpy arrays."""
        firsts, seconds = as_inputs(texts, text_pairs)
        mode = resolve_padding(padding)
        check_max_length(max_length, self.num_special_tokens_to_add(seconds is not None))
        inputs = firsts if seconds is None else list(zip(firsts, seconds, strict=True))
        encodings = self._encode_configured(inputs, max_length, mode, truncation)
        check_ragged([len(e.ids) for e in encodings], mode, max_length, truncation)
        width = max_length if mode == "max_length" else (len(encodings[0].ids) if encodings else 0)

        def stack(field: str) -> np.ndarray:
            if not encodings:
                return np.zeros((0, width), dtype=np.int32)
            return np.array([getattr(e, field) for e in encodings], dtype=np.int32)

        out = {
            "input_ids": stack("ids"),
            "attention_mask": stack("attention_mask"),
            "token_type_ids": stack("type_ids"),
        }
        if return_offsets:
            out["offset_mapping"] = stack("offsets").reshape(len(encodings), width, 2)
        if return_special_tokens_mask:
            out["special_tokens_mask"] = stack("special_tokens_mask")
        if return_word_starts:
            out["word_starts"] = self.word_starts(out["input_ids"])
        return out

    def _encode_configured(self, inputs: list, max_length: int, mode: str, truncation: bool) -> list:
        backend = self._backend
        with self._lock:
            try:
                if truncation:
                    backend.enable_truncation(max_length, strategy="longest_first")
                if mode != "none":
                    backend.enable_padding(
                        direction=self.padding_side,
                        pad_id=self.special.pad,
                        pad_token=self.special_names["pad"],
                        length=max_length if mode == "max_length" else None,
                    )
                return backend.encode_batch(inputs, add_special_tokens=True)
            except Exception as e:  # the Rust side raises plain Exceptions on bad input
                raise TokenizerError(f"{self.kind} tokenizer could not encode the batch: {e}") from e
            finally:
                backend.no_truncation()
                backend.no_padding()

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of one text, untruncated; with the family's special tokens unless told not to."""
        (text,) = as_text_list([text], "text")
        with self._lock:
            return self._backend.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_pair(self, text: str, pair: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of a text pair in the family's pair template, untruncated."""
        text, pair = as_text_list([text, pair], "text")
        with self._lock:
            return self._backend.encode(text, pair, add_special_tokens=add_special_tokens).ids

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
        """Token ids of many texts as ragged lists (no truncation, no padding); fast path for corpora."""
        items = as_text_list(texts)
        with self._lock:
            return [e.ids for e in self._backend.encode_batch(items, add_special_tokens=add_special_tokens)]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids (no special tokens) and the character span of each in `text`."""
        (text,) = as_text_list([text], "text")
        with self._lock:
            enc = self._backend.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self._backend.id_to_token(int(i)) for i in ids]

    def token_to_id(self, token: str) -> int | None:
        return self._backend.token_to_id(token)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    # ---- saving ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Writes the reference vocabulary files, tokenizer.json and tokenizer_config.json to `directory`."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self._reference_files(path)
        with self._lock:
            self._backend.save(str(path / "tokenizer.json"))
        names = {f"{role}_token": self.special_names[role] for role in ROLES}
        write_json(path / "special_tokens_map.json", names)
        write_json(path / "tokenizer_config.json", {**self._config(), **names, "model_max_length": 512})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, special={self.special})"
