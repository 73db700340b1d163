"""What every tokenizer kind shares: argument checks, padding modes, special-id properties, word starts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxbert.tokenize.base import SpecialTokens, TokenizerError

PADDING_MODES = ("max_length", "longest", "none")


def as_text_list(texts: str | Sequence[str], what: str = "texts") -> list[str]:
    """One text or a sequence of texts as a list of str; anything else is a TokenizerError."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)) or not hasattr(texts, "__iter__"):
        raise TokenizerError(f"{what} must be a str or a list of str, got {type(texts).__name__}")
    items = list(texts)
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TokenizerError(f"{what}[{i}] is a {type(t).__name__}, not a str; pass decoded text")
    return items


def as_inputs(texts: str | Sequence[str], text_pairs: str | Sequence[str] | None) -> tuple[list[str], list[str] | None]:
    """Checks `texts` (and `text_pairs`, which must match it one to one)."""
    firsts = as_text_list(texts)
    if text_pairs is None:
        return firsts, None
    seconds = as_text_list(text_pairs, "text_pairs")
    if len(seconds) != len(firsts):
        raise TokenizerError(
            f"text_pairs has {len(seconds)} items but texts has {len(firsts)}; pass one second text per text"
        )
    return firsts, seconds


def resolve_padding(padding: str | bool) -> str:
    """Maps the accepted padding values onto "max_length", "longest" or "none".

    True and "longest" pad to the longest row of the batch; False and "do_not_pad" mean no padding,
    which numpy allows only when every row already has the same length (else a TokenizerError).
    """
    if padding is True or padding == "longest":
        return "longest"
    if padding is False or padding in ("do_not_pad", "none"):
        return "none"
    if padding == "max_length":
        return "max_length"
    raise TokenizerError(f"padding={padding!r} is not one of 'max_length', 'longest' (True), False")


def check_max_length(max_length: int, num_special: int) -> None:
    if not isinstance(max_length, (int, np.integer)) or isinstance(max_length, bool):
        raise TokenizerError(f"max_length must be an int, got {max_length!r}")
    if max_length < num_special:
        raise TokenizerError(
            f"max_length={max_length} leaves no room for the {num_special} special tokens; "
            f"use max_length >= {num_special + 1}"
        )


def longest_first(n1: int, n2: int, budget: int) -> tuple[int, int]:
    """How many tokens of a pair to keep within `budget`, the way `tokenizers` truncates longest-first.

    The shorter side keeps all of its tokens when the longer can absorb the cut; otherwise each side
    keeps half (the longer one gets the odd token).
    """
    if n1 + n2 <= budget:
        return n1, n2
    swap = n1 > n2
    short, long_ = (n2, n1) if swap else (n1, n2)
    long_ = short if short > budget else max(short, budget - short)
    if short + long_ > budget:
        short = budget // 2
        long_ = short + budget % 2
    return (long_, short) if swap else (short, long_)


def check_ragged(lengths: Sequence[int], mode: str, max_length: int, truncation: bool) -> None:
    """Rows of a numpy batch must share one length: say which input breaks that and how to fix it."""
    if not lengths:
        return
    if mode == "max_length" and not truncation:
        too_long = [i for i, n in enumerate(lengths) if n > max_length]
        if too_long:
            i = too_long[0]
            raise TokenizerError(
                f"text {i} is {lengths[i]} tokens long, over max_length={max_length} with truncation=False; "
                "use truncation=True, a larger max_length, or padding='longest'"
            )
    if mode == "none" and len(set(lengths)) > 1:
        raise TokenizerError(
            f"padding=False gives rows of different lengths ({min(lengths)}..{max(lengths)} tokens), "
            "which a numpy array cannot hold; use padding='longest' or 'max_length', or encode_batch for lists"
        )


class TokenizerBase:
    """Special-id properties and the table-driven `word_starts` every kind shares.

    Subclasses set `kind`, `special`, and two boolean tables over the vocabulary:
    `_continues[id]` (the token continues the word of the token before it) and
    `_breaks_after[id]` (the next token starts a new word whatever it looks like: specials,
    and byte-level tokens that end in whitespace).
    """

    kind: str
    special: SpecialTokens
    _continues: np.ndarray
    _breaks_after: np.ndarray

    @property
    def pad_token_id(self) -> int:
        return self.special.pad

    @property
    def unk_token_id(self) -> int:
        return self.special.unk

    @property
    def cls_token_id(self) -> int:
        return self.special.cls

    @property
    def sep_token_id(self) -> int:
        return self.special.sep

    @property
    def mask_token_id(self) -> int:
        return self.special.mask

    def _build_word_tables(self, size: int, continues: Sequence[int], breaks_after: Sequence[int]) -> None:
        self._continues = np.zeros(size, dtype=bool)
        self._continues[np.asarray(list(continues), dtype=np.int64)] = True
        self._breaks_after = np.zeros(size, dtype=bool)
        self._breaks_after[np.asarray(list(breaks_after), dtype=np.int64)] = True
        added = np.asarray(self.special.added(), dtype=np.int64)
        self._continues[added] = False
        self._breaks_after[added] = True

    def word_starts(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Bool array shaped like `ids`: True where a token begins a word (whole-word masking).

        A token is False only when it continues the word of the token before it (WordPiece "##x",
        a BPE token without a leading "Ġ", a SentencePiece piece without a leading "▁"). Special
        tokens and padding count as one-token words. Works on [T] or [N, T] arrays.
        """
        arr = np.asarray(ids)
        if arr.size == 0:
            return np.zeros(arr.shape, dtype=bool)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TokenizerError(f"word_starts needs integer token ids, got dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= self._continues.shape[0]:
            raise TokenizerError(
                f"token id {int(arr.max()) if arr.max() >= 0 else int(arr.min())} is outside this "
                f"{self.kind} vocabulary of {self._continues.shape[0]} ids; use the matching tokenizer"
            )
        starts = ~self._continues[arr]
        starts[..., 1:] |= self._breaks_after[arr[..., :-1]]
        starts[..., 0] = True
        return starts
