"""Byte-level BPE (RoBERTa) on the `tokenizers` library, built like transformers' RobertaTokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import decoders, pre_tokenizers, processors
from tokenizers.models import BPE

from jaxbert.tokenize.base import TokenizerError
from jaxbert.tokenize.fast import FastTokenizer, special_ids, write_json

BPE_SPECIALS = {"pad": "<pad>", "unk": "<unk>", "cls": "<s>", "sep": "</s>", "mask": "<mask>"}


def byte_level_chars(raw: str) -> str:
    """The characters byte-level BPE writes for the bytes of `raw` (space -> "Ġ", newline -> "Ċ", ...)."""
    mapped = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(raw)
    return "".join(piece for piece, _ in mapped)


def _added_tokens(names: dict[str, str]) -> list[tokenizers.AddedToken]:
    # RoBERTa's <mask> swallows the space before it, so "a <mask>" masks the word " x" as one token.
    return [
        tokenizers.AddedToken(names[r], special=True, normalized=False, lstrip=(r == "mask"))
        for r in ("cls", "pad", "sep", "unk", "mask")
    ]


class BPETokenizer(FastTokenizer):
    """RoBERTa's tokenizer: byte-level pre-tokenizer (GPT-2 regex, no prefix space), BPE merges,
    `<s> A </s>` and `<s> A </s></s> B </s>`, offsets trimmed of the leading space.

    Build it with `from_files` (vocab.json + merges.txt) or `from_tokenizer_json`.
    """

    kind = "bpe"

    @classmethod
    def from_files(
        cls,
        vocab_json: str | Path,
        merges_txt: str | Path,
        add_prefix_space: bool = False,
        trim_offsets: bool = True,
        names: dict[str, str] | None = None,
    ) -> BPETokenizer:
        """From vocab.json + merges.txt; `add_prefix_space=False` as in RobertaTokenizer."""
        names = {**BPE_SPECIALS, **(names or {})}
        try:
            model = BPE.from_file(str(vocab_json), str(merges_txt))
        except Exception as e:  # the Rust loader raises plain Exceptions
            raise TokenizerError(f"cannot read BPE files {vocab_json} / {merges_txt}: {e}") from e
        backend = tokenizers.Tokenizer(model)
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        backend.decoder = decoders.ByteLevel()
        special = special_ids(backend, names, str(vocab_json))  # all five must be in vocab.json already
        backend.add_special_tokens(_added_tokens(names))
        backend.post_processor = processors.RobertaProcessing(
            (names["sep"], special.sep),
            (names["cls"], special.cls),
            trim_offsets=trim_offsets,
            add_prefix_space=add_prefix_space,
        )
        return cls(backend, special, names)

    @classmethod
    def from_tokenizer_json(cls, path: str | Path, names: dict[str, str] | None = None) -> BPETokenizer:
        """From a transformers tokenizer.json with a byte-level BPE model."""
        path = Path(path)
        backend = tokenizers.Tokenizer.from_file(str(path))
        spec = json.loads(backend.to_str())
        if "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
            raise TokenizerError(
                f"{path}: a BPE tokenizer without a ByteLevel pre-tokenizer (GPT-2/RoBERTa style) is not supported"
            )
        names = {**BPE_SPECIALS, **(names or {})}
        special = special_ids(backend, names, str(path))
        if backend.post_processor is None:
            backend.post_processor = processors.RobertaProcessing(
                (names["sep"], special.sep), (names["cls"], special.cls)
            )
        return cls(backend, special, names)

    def _settings(self) -> dict[str, Any]:
        spec = json.loads(self._backend.to_str())
        post = spec.get("post_processor") or {}
        pre = spec.get("pre_tokenizer") or {}
        return {
            "add_prefix_space": bool(pre.get("add_prefix_space", False)),
            "trim_offsets": bool(post.get("trim_offsets", True)),
        }

    def _word_rules(self, vocab: dict[str, int]) -> tuple[list[int], list[int]]:
        # GPT-2's pre-tokenizer glues one leading space to a word ("Ġword"), and keeps newlines and
        # tabs apart, so a word starts at a space-led token or right after a newline/tab token; a
        # lone "Ġ" glues to the next token (" 中" -> "Ġ", "ä¸Ń"), so it does not break the word.
        whitespace = byte_level_chars(" \t\n\x0b\x0c\r")
        line_breaks = whitespace.replace(byte_level_chars(" "), "")
        continues = [i for t, i in vocab.items() if t and t[0] not in whitespace]
        breaks_after = [i for t, i in vocab.items() if t and t[-1] in line_breaks]
        return continues, breaks_after

    def _reference_files(self, directory: Path) -> None:
        # The model writes vocab.json + merges.txt; vocab.json then gets the added tokens as well, as
        # RoBERTa's own vocab.json lists <s> ... <mask> among the BPE tokens.
        self._backend.model.save(str(directory))
        vocab = dict(sorted(self.get_vocab().items(), key=lambda kv: kv[1]))
        write_json(directory / "vocab.json", vocab)

    def _config(self) -> dict[str, Any]:
        return {
            "tokenizer_class": "RobertaTokenizer",
            **self._settings(),
            "bos_token": self.special_names["cls"],
            "eos_token": self.special_names["sep"],
        }
