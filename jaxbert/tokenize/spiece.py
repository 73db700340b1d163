"""SentencePiece (ALBERT, XLNet) on the `sentencepiece` library: spiece.model plus ALBERT's text clean-up
(XLNet's tokenizer cleans text the same way)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm

from jaxbert.tokenize.albert_text import Origins, albert_clean, albert_clean_text
from jaxbert.tokenize.base import SpecialTokens, TokenizerError
from jaxbert.tokenize.batching import BertTemplate, Encoded, XLNetTemplate, build_batch
from jaxbert.tokenize.common import (
    TokenizerBase,
    as_inputs,
    as_text_list,
    check_max_length,
    resolve_padding,
)
from jaxbert.tokenize.fast import ROLES, write_json

SPM_SPECIALS = {"pad": "<pad>", "unk": "<unk>", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
XLNET_SPECIALS = {"pad": "<pad>", "unk": "<unk>", "cls": "<cls>", "sep": "<sep>", "mask": "<mask>"}
TEMPLATES = {"bert": BertTemplate, "xlnet": XLNetTemplate}
SPACE = "▁"
Span = tuple[int, int]


@dataclass(frozen=True)
class _Run:
    """A stretch of one input text: a special token typed in it, or text for SentencePiece."""

    start: int
    end: int
    special_id: int | None = None
    index: int = -1  # where its cleaned text sits in the batch sent to SentencePiece
    origins: Origins | None = None


def _is_number_comma(piece: str) -> bool:
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


class SentencePieceTokenizer(TokenizerBase):
    """ALBERT's tokenizer: AlbertTokenizer's clean-up (do_lower_case, keep_accents=False, remove_space),
    a SentencePiece model, `[CLS] A [SEP] B [SEP]`; with template="xlnet", XLNetTokenizer's
    `A <sep> B <sep> <cls>` padded on the left (and its <cls>/<sep>/<mask> names).

    Special tokens typed in the text ("[MASK]") are kept whole, as transformers does. Pieces like
    "▁1," are split into "▁1" + "," as Google's ALBERT tokenizer does.
    Offsets are character spans of the original text; a piece's leading "▁" covers no character,
    and a lone "▁" gets the span of the character it introduces (as in transformers).
    """

    kind = "sentencepiece"

    def __init__(
        self,
        model_file: str | Path,
        lowercase: bool = True,
        keep_accents: bool = False,
        remove_space: bool = True,
        names: dict[str, str] | None = None,
        num_threads: int = -1,
        template: str = "bert",
    ) -> None:
        """`num_threads` for batch encoding: SentencePiece's own thread pool, -1 = its default (all cores)."""
        path = Path(model_file)
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=path.read_bytes())
        except (OSError, RuntimeError) as e:
            raise TokenizerError(f"cannot load SentencePiece model {path}: {e}") from e
        self.model_file = path
        self.lowercase = lowercase
        self.keep_accents = keep_accents
        self.remove_space = remove_space
        self.num_threads = num_threads
        self._vanish_cache: dict[str, bool] = {}
        if template not in TEMPLATES:
            raise TokenizerError(f"unknown SentencePiece template {template!r}; use one of {', '.join(TEMPLATES)}")
        self.template = template
        self.special_names = {**(XLNET_SPECIALS if template == "xlnet" else SPM_SPECIALS), **(names or {})}
        self.special = self._special_ids(str(path))
        size = self._sp.get_piece_size()
        pieces = [self._sp.id_to_piece(i) for i in range(size)]
        self._number_comma = {i for i, p in enumerate(pieces) if _is_number_comma(p)}
        specials = sorted(set(self.special_names.values()), key=len, reverse=True)
        self._special_re = re.compile("|".join(re.escape(s) for s in specials))
        self._special_by_name = {self.special_names[r]: getattr(self.special, r) for r in ROLES}
        controls = [i for i in range(size) if self._sp.is_control(i)]
        self._build_word_tables(size, [i for i, p in enumerate(pieces) if not p.startswith(SPACE)], controls)
        self._template = TEMPLATES[template](cls=self.special.cls, sep=self.special.sep, pad=self.special.pad)

    def _special_ids(self, source: str) -> SpecialTokens:
        ids = {}
        for role in ROLES:
            name = self.special_names[role]
            token_id = self._sp.piece_to_id(name)
            if self._sp.id_to_piece(token_id) != name:
                raise TokenizerError(
                    f"{source}: the {role} token {name!r} is not a piece of this SentencePiece model; "
                    "train it with that control symbol (jaxbert vocab --kind sentencepiece does)"
                )
            ids[role] = token_id
        return SpecialTokens(**ids)

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def processor(self) -> spm.SentencePieceProcessor:
        """The underlying `sentencepiece.SentencePieceProcessor`."""
        return self._sp

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._template.num_added(pair)

    # ---- text -> pieces ---------------------------------------------------------------------
    def _segments(self, text: str) -> list[tuple[int, int, int | None]]:
        """(start, end, special id or None) for the runs of `text` between special-token strings."""
        out: list[tuple[int, int, int | None]] = []
        pos = 0
        for m in self._special_re.finditer(text):
            if m.start() > pos:
                out.append((pos, m.start(), None))
            out.append((m.start(), m.end(), self._special_by_name[m.group()]))
            pos = m.end()
        if pos < len(text):
            out.append((pos, len(text), None))
        return out

    def _split_number_comma(self, ids: list[int], spans: list[Span] | None, clean: str):
        """Google ALBERT's rule: re-encode "▁12," as "▁12" + "," (the vocabulary may hold "12," pieces)."""
        if self._number_comma.isdisjoint(ids):
            return ids, spans
        out_ids: list[int] = []
        out_spans: list[Span] | None = [] if spans is not None else None
        for k, piece_id in enumerate(ids):
            if piece_id not in self._number_comma:
                out_ids.append(piece_id)
                if out_spans is not None:
                    out_spans.append(spans[k])
                continue
            piece = self._sp.id_to_piece(piece_id)
            sub = self._sp.encode(piece[:-1].replace(SPACE, ""), out_type=str)
            if not piece.startswith(SPACE) and sub and sub[0].startswith(SPACE):
                sub = sub[1:] if len(sub[0]) == 1 else [sub[0][1:], *sub[1:]]
            sub.append(piece[-1])
            out_ids.extend(self._sp.piece_to_id(p) for p in sub)
            if out_spans is not None:
                out_spans.extend(self._spans_within(sub, spans[k], clean))
        return out_ids, out_spans

    @staticmethod
    def _spans_within(sub: list[str], span: Span, clean: str) -> list[Span]:
        # Lays the re-split pieces over the span of the piece they came from, character by character.
        out: list[Span] = []
        pos = span[0]
        for p in sub:
            text = p.replace(SPACE, "")
            while pos < span[1] and clean[pos].isspace():
                pos += 1
            end = min(pos + len(text), span[1])
            out.append((pos, end))
            pos = end
        return out

    def _clean(self, text: str) -> str:
        return albert_clean_text(text, self.lowercase, self.keep_accents, self.remove_space)

    def _encode_segments(self, texts: list[str], with_offsets: bool) -> list[Encoded]:
        """Encodes texts without special tokens; one SentencePiece call for the whole batch."""
        plans: list[list[_Run]] = []
        cleaned: list[str] = []
        for text in texts:
            plan = []
            for start, end, special_id in self._segments(text):
                if special_id is not None:
                    plan.append(_Run(start, end, special_id=special_id))
                    continue
                if with_offsets:
                    clean, origins = albert_clean(text[start:end], self.lowercase, self.keep_accents, self.remove_space)
                else:
                    clean, origins = self._clean(text[start:end]), None
                if clean:
                    plan.append(_Run(start, end, index=len(cleaned), origins=origins))
                    cleaned.append(clean)
            plans.append(plan)
        kind = "offset_mapping" if with_offsets else int
        results = self._sp.encode(cleaned, return_type=kind, num_threads=self.num_threads) if cleaned else []
        return [self._assemble(plan, cleaned, results, with_offsets) for plan in plans]

    def _assemble(self, plan: list[_Run], cleaned: list[str], results: list, with_offsets: bool) -> Encoded:
        ids: list[int] = []
        offsets: list[Span] | None = [] if with_offsets else None
        for run in plan:
            if run.special_id is not None:
                ids.append(run.special_id)
                if offsets is not None:
                    offsets.append((run.start, run.end))
                continue
            clean = cleaned[run.index]
            result = results[run.index]
            if with_offsets:
                piece_ids = list(result["ids"])
                spans = [self._trim(clean, s, p) for s, p in zip(result["offsets"], result["pieces"], strict=True)]
            else:
                piece_ids, spans = list(result), None
            piece_ids, spans = self._split_number_comma(piece_ids, spans, clean)
            ids.extend(piece_ids)
            if offsets is not None and spans is not None and run.origins is not None:
                offsets.extend(_to_original(s, run.origins, run.start) for s in spans)
        return Encoded(ids, offsets)

    def _vanishes(self, char: str) -> bool:
        # Characters SentencePiece's normalizer deletes (zero-width space, DEL, ...) or that "▁" stands for.
        hit = self._vanish_cache.get(char)
        if hit is None:
            hit = self._vanish_cache[char] = char.isspace() or not self._sp.normalize(char)
        return hit

    def _trim(self, clean: str, span: Span, piece: str) -> Span:
        """SentencePiece's span of a piece, less the whitespace and deleted characters at its edges.

        A lone "▁" then covers nothing: like transformers' AlbertTokenizer, give it the character it
        introduces, so every token has a non-empty span.
        """
        begin, end = span
        while begin < end and self._vanishes(clean[begin]):
            begin += 1
        while end > begin and self._vanishes(clean[end - 1]):
            end -= 1
        if begin == end and piece.startswith(SPACE):
            while begin < len(clean) and self._vanishes(clean[begin]):
                begin += 1
            end = min(begin + 1, len(clean))
        return begin, end

    # ---- the protocol -------------------------------------------------------------------------
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
        enc_a = self._encode_segments(firsts, return_offsets)
        enc_b = self._encode_segments(seconds, return_offsets) if seconds is not None else None
        out = build_batch(
            self._template,
            enc_a,
            enc_b,
            max_length=max_length,
            mode=mode,
            truncation=truncation,
            return_offsets=return_offsets,
            return_special_tokens_mask=return_special_tokens_mask,
        )
        if return_word_starts:
            out["word_starts"] = self.word_starts(out["input_ids"])
        return out

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of one text, untruncated; with the template's special tokens unless told not to."""
        (text,) = as_text_list([text], "text")
        ids = self._encode_segments([text], False)[0].ids
        return self._template.wrap(ids) if add_special_tokens else ids

    def encode_pair(self, text: str, pair: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of a text pair (`[CLS] A [SEP] B [SEP]`, or XLNet's layout), untruncated."""
        a, b = (e.ids for e in self._encode_segments([text, pair], False))
        if not add_special_tokens:
            return a + b
        return self._template.wrap(a, b)

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
        """Token ids of many texts as ragged lists (no truncation, no padding)."""
        encoded = self._encode_segments(as_text_list(texts), False)
        if add_special_tokens:
            return [self._template.wrap(e.ids) for e in encoded]
        return [e.ids for e in encoded]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids (no special tokens) and the character span of each in `text`."""
        enc = self._encode_segments([text], True)[0]
        return enc.ids, enc.offsets or []

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of the ids; special tokens (unk too, as in transformers) are dropped, or written out when kept."""
        parts: list[str] = []
        run: list[int] = []
        special = set(self.special.all())
        for i in (int(x) for x in ids):
            if i in special:
                if run:
                    parts.append(self._sp.decode(run))
                    run = []
                if not skip_special_tokens:
                    parts.append(self._sp.id_to_piece(i))
            else:
                run.append(i)
        if run:
            parts.append(self._sp.decode(run))
        return " ".join(p for p in parts if p)

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self._sp.id_to_piece(int(i)) for i in ids]

    def token_to_id(self, token: str) -> int | None:
        token_id = self._sp.piece_to_id(token)
        return token_id if self._sp.id_to_piece(token_id) == token else None

    def get_vocab(self) -> dict[str, int]:
        return {self._sp.id_to_piece(i): i for i in range(self.vocab_size)}

    def save(self, directory: str | Path) -> None:
        """Writes spiece.model, tokenizer_config.json (AlbertTokenizer / XLNetTokenizer), special_tokens_map.json."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / "spiece.model").write_bytes(self._sp.serialized_model_proto())
        names = {f"{role}_token": self.special_names[role] for role in ROLES}
        xlnet = self.template == "xlnet"
        config: dict[str, Any] = {
            "tokenizer_class": "XLNetTokenizer" if xlnet else "AlbertTokenizer",
            "do_lower_case": self.lowercase,
            "keep_accents": self.keep_accents,
            "remove_space": self.remove_space,
            "bos_token": "<s>" if xlnet else self.special_names["cls"],
            "eos_token": "</s>" if xlnet else self.special_names["sep"],
            **names,
            "model_max_length": 512,
        }
        if xlnet:
            config.update(padding_side="left", additional_special_tokens=["<eop>", "<eod>"])
        write_json(path / "special_tokens_map.json", names)
        write_json(path / "tokenizer_config.json", config)

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer({self.model_file}, vocab_size={self.vocab_size}, lowercase={self.lowercase})"


def _to_original(span: Span, origins: Origins, shift: int) -> Span:
    """A span of the cleaned text as a span of the original text (`origins` maps cleaned -> original)."""
    begin, end = span
    if begin >= end:
        # An empty span ("▁" alone) sits where the next character came from.
        point = origins[begin][0] if begin < len(origins) else (origins[-1][1] if origins else 0)
        return shift + point, shift + point
    return shift + origins[begin][0], shift + origins[end - 1][1]
