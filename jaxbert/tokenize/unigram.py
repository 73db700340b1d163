"""SentencePiece Unigram models saved as tokenizer.json (ALBERT, XLNet, T5-style tokenizers of transformers 5).

transformers 5 saves these tokenizers as a `tokenizers` pipeline only (normalizer, Metaspace pre-tokenizer,
Unigram model, template post-processor), without the spiece.model they came from. Running that same
pipeline gives transformers' ids, offsets and special-token handling; what the pipeline does not hold
(the special tokens' roles, and the padding side that transformers' XLNet tokenizer class fixes in
code) comes from tokenizer_config.json and the class it names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tokenizers

from jaxbert.tokenize.base import TokenizerError
from jaxbert.tokenize.fast import FastTokenizer, special_ids
from jaxbert.tokenize.spiece import SPACE, SPM_SPECIALS

# Class attributes of transformers' tokenizers that tokenizer_config.json does not repeat.
CLASS_PADDING_SIDE = {"XLNetTokenizer": "left"}
# tokenizer_config.json settings kept when saving, so transformers rebuilds the same tokenizer class.
_KEPT_SETTINGS = ("tokenizer_class", "do_lower_case", "keep_accents", "remove_space", "add_prefix_space",
                  "bos_token", "eos_token", "padding_side")


class UnigramTokenizer(FastTokenizer):
    """A Unigram tokenizer.json as transformers 5 runs it: its own normalizer, pre-tokenizer and template.

    Build it with `from_tokenizer_json` (a tokenizer.json plus the directory's tokenizer_config.json).
    Special token roles default to ALBERT's ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]").
    """

    kind = "unigram"

    @classmethod
    def from_tokenizer_json(cls, path: str | Path, names: dict[str, str] | None = None,
                            settings: dict[str, Any] | None = None) -> UnigramTokenizer:
        """From a tokenizer.json whose model is Unigram; `settings` is the tokenizer_config.json beside it."""
        path = Path(path)
        try:
            backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as e:  # the Rust loader raises plain Exceptions
            raise TokenizerError(f"cannot read {path}: {e}") from e
        names = {**SPM_SPECIALS, **(names or {})}
        special = special_ids(backend, names, str(path))
        if backend.post_processor is None:
            raise TokenizerError(f"{path} has no post_processor, so it does not say where special tokens go; "
                                 "re-save the tokenizer with transformers' save_pretrained")
        tokenizer = cls(backend, special, names)
        settings = dict(settings or {})
        tokenizer.padding_side = str(settings.get("padding_side")
                                     or CLASS_PADDING_SIDE.get(str(settings.get("tokenizer_class")), "right"))
        tokenizer._settings = {k: settings[k] for k in _KEPT_SETTINGS if k in settings}
        return tokenizer

    def _word_rules(self, vocab: dict[str, int]) -> tuple[list[int], list[int]]:
        # As in SentencePiece: a piece without the leading "▁" continues the word before it.
        return [i for t, i in vocab.items() if not t.startswith(SPACE)], []

    def _reference_files(self, directory: Path) -> None:
        """Nothing beside tokenizer.json: transformers 5 rebuilds these tokenizers from it alone."""

    def _config(self) -> dict[str, Any]:
        config = {"tokenizer_class": "AlbertTokenizer", **getattr(self, "_settings", {})}
        if self.padding_side != "right":
            config["padding_side"] = self.padding_side
        return config
