"""A minimal jaxbert Tokenizer-protocol wrapper over a real `tokenizers` tokenizer.json, for the data tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer as HFTokenizer

from jaxbert.tokenize.base import SpecialTokens


class HFWordPiece:
    """bert-base-uncased WordPiece (from tokenizer.json) behind the jaxbert `__call__`/`encode` protocol."""

    kind = "wordpiece"

    def __init__(self, tokenizer_json: str | Path) -> None:
        self.backend = HFTokenizer.from_file(str(tokenizer_json))
        self.backend.no_truncation()
        self.backend.no_padding()
        ids = {name: self.backend.token_to_id(f"[{name.upper()}]") for name in ("pad", "unk", "cls", "sep", "mask")}
        self.special = SpecialTokens(**ids)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def __call__(self, texts: str | Sequence[str], text_pairs: str | Sequence[str] | None = None,
                 max_length: int = 128, padding: str | bool = "max_length", truncation: bool = True,
                 return_offsets: bool = False) -> dict[str, np.ndarray]:
        texts = [texts] if isinstance(texts, str) else list(texts)
        pairs = [text_pairs] if isinstance(text_pairs, str) else text_pairs
        inputs = texts if pairs is None else list(zip(texts, pairs, strict=True))
        if truncation:
            self.backend.enable_truncation(max_length)
        if padding == "max_length":
            self.backend.enable_padding(pad_id=self.special.pad, length=max_length)
        elif padding in ("longest", True):
            self.backend.enable_padding(pad_id=self.special.pad)
        try:
            encodings = self.backend.encode_batch(inputs)
        finally:
            self.backend.no_truncation()
            self.backend.no_padding()
        out = {"input_ids": np.array([e.ids for e in encodings], np.int32),
               "attention_mask": np.array([e.attention_mask for e in encodings], np.int32),
               "token_type_ids": np.array([e.type_ids for e in encodings], np.int32)}
        if return_offsets:
            out["offset_mapping"] = np.array([e.offsets for e in encodings], np.int32).reshape(len(encodings), -1, 2)
        return out

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids
