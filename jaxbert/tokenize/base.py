"""The one Tokenizer protocol every vocabulary kind (WordPiece, byte-level BPE, SentencePiece) implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from jaxbert.errors import JaxbertError


class TokenizerError(JaxbertError, ValueError):
    """Bad tokenizer files or bad tokenizer input; the message names the thing and the fix."""


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of the special tokens a model family uses (BERT names; RoBERTa maps <s>→cls, </s>→sep...)."""

    pad: int
    unk: int
    cls: int
    sep: int
    mask: int

    def all(self) -> tuple[int, ...]:
        return (self.pad, self.unk, self.cls, self.sep, self.mask)

    def added(self) -> tuple[int, ...]:
        """The ids a template adds or padding fills (every special but unk, which stands for text)."""
        return (self.pad, self.cls, self.sep, self.mask)


@runtime_checkable
class Tokenizer(Protocol):
    """What model code, data pipelines and the CLI may rely on.

    `__call__` follows the contract of DESIGN.md: it returns a dict of numpy int32 arrays
    `input_ids`, `attention_mask`, `token_type_ids` (optionally `offset_mapping` [N, T, 2],
    `special_tokens_mask`, `word_starts`), always two-dimensional [N, T], even for one text.
    padding: "max_length" pads (and with truncation cuts) every row to max_length; "longest" or
    True pads to the batch's longest row; False pads nothing, which numpy allows only when every
    row has the same length (one text, say): ragged rows raise a TokenizerError.
    """

    kind: str  # "wordpiece" | "bpe" | "sentencepiece" | "unigram"
    special: SpecialTokens

    @property
    def vocab_size(self) -> int: ...

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
    ) -> dict[str, np.ndarray]: ...

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def encode_pair(self, text: str, pair: str, add_special_tokens: bool = True) -> list[int]: ...

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]: ...

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]: ...

    def num_special_tokens_to_add(self, pair: bool = False) -> int: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...

    def word_starts(self, ids: Sequence[int] | np.ndarray) -> np.ndarray: ...

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]: ...

    def token_to_id(self, token: str) -> int | None: ...

    def get_vocab(self) -> dict[str, int]: ...

    def save(self, directory: str) -> None: ...
