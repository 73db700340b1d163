"""Pretraining example creation: token ids only (masking happens on device), deterministic given a seed.

Four formats:
  * "nsp" (BERT, google-research/bert create_pretraining_data.py): `[CLS] A [SEP] B [SEP]`; B is the
    actual continuation of A or, with probability 1/2, a span of another document; `next_sentence_label`
    1 = random (HF BertForPreTraining convention). A fraction `short_seq_prob` of documents targets a
    shorter length; over-long pairs are truncated from either end at random, longer side first.
  * "sop" (ALBERT): A and B are consecutive segments of one document, swapped with probability 1/2;
    `sentence_order_label` 1 = swapped (HF AlbertForPreTraining convention).
  * "full_sentences" (RoBERTa's FULL-SENTENCES, Liu et al. 2019 section 4.2): whole sentences packed
    contiguously into `<s> ... </s>` blocks of at most max_seq_len tokens, from one or more documents:
    when a document ends the next one's sentences follow after an extra separator (`sep`). A sentence
    that does not fit in what is left of a block starts the next block; only a sentence longer than a
    whole block is cut (it fills the rest of the current block and continues in the next ones).
  * "doc_sentences" (RoBERTa's DOC-SENTENCES): the same, but a block never crosses a document boundary.
    RoBERTa raises the batch size for the shorter blocks at document ends; jaxbert keeps it fixed.

Sentences are the corpus's lines, or, with `sentence_split="rules"`, the lines split after
sentence-final punctuation (`jaxbert.data.sentences`). Where fairseq (RoBERTa's code) ends every line
with `</s>`, jaxbert puts a separator only between documents, as the paper describes.

With a `word_segmenter` (`jaxbert.data.segmenters`: jieba, a pre-segmented corpus, ...) every example
also holds `word_starts`, 1 on the first token of each word (special tokens count as words, padding 0),
which whole-word and n-gram masking read on device instead of the vocabulary's `##` rule.

One deliberate change from BERT's script: BERT forces "random next" whenever a chunk holds one sentence,
which skews NSP towards random (and makes SOP impossible) on paragraph-a-line corpora. Here the label is
drawn first with probability 1/2 and a one-sentence chunk is split at a random token for a consecutive
pair, so labels are independent fair coin flips.

Documents are held as one int32 token array plus sentence end offsets (and the word-start mask beside
it), so a segment is a slice.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from jaxbert.data.corpus import Document
from jaxbert.data.masking import WORD_STARTS
from jaxbert.data.packing import SEGMENT_IDS, check_packing, default_max_per_row, join_row, pack_rows
from jaxbert.data.segmenters import check_segmenter_name, get_segmenter
from jaxbert.data.sentences import check_split
from jaxbert.data.word_starts import tokenize_lines
from jaxbert.errors import JaxbertError
from jaxbert.tokenize.base import SpecialTokens, Tokenizer

FORMATS = ("nsp", "sop", "full_sentences", "doc_sentences")
PACKED = ("full_sentences", "doc_sentences")
LABEL_FIELD = {"nsp": "next_sentence_label", "sop": "sentence_order_label", "full_sentences": None,
               "doc_sentences": None}
_ENCODE_BATCH = 4096  # sentences per tokenizer batch call: large enough to amortise the call


class ExampleConfigError(JaxbertError, ValueError):
    """An example-creation option is out of range; the message names the option and the fix."""


@dataclasses.dataclass(frozen=True)
class ExampleConfig:
    """How pretraining examples are cut from documents."""

    format: str = "nsp"
    max_seq_len: int = 128
    short_seq_prob: float = 0.1
    dupe_factor: int = 1
    seed: int = 0
    # Documents held in memory at once; "random next" segments are drawn from the same chunk.
    chunk_documents: int = 50_000
    word_segmenter: str = ""  # "" (no stored word starts), "jieba", "pku", "spaces" or "module:function"
    sentence_split: str = "lines"  # "lines" (a line is a sentence) or "rules" (split after 。！？ . ...)
    # Several examples per row, told apart by segment ids (jaxbert.data.packing); 0: seq_len // 16 of them.
    pack_examples: bool = False
    max_examples_per_row: int = 0

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExampleConfigError(f"format {self.format!r} is unknown; use one of {', '.join(FORMATS)}")
        if self.max_seq_len < 8:
            raise ExampleConfigError(f"max_seq_len={self.max_seq_len} is too short; use at least 8")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ExampleConfigError(f"short_seq_prob={self.short_seq_prob} must lie in [0, 1]")
        if self.dupe_factor < 1:
            raise ExampleConfigError(f"dupe_factor={self.dupe_factor} must be >= 1")
        if self.chunk_documents < 2:
            raise ExampleConfigError(f"chunk_documents={self.chunk_documents} must be >= 2")
        if not 0 <= self.seed < 2**63:
            raise ExampleConfigError(f"seed={self.seed} must be a non-negative integer below 2**63")
        check_segmenter_name(self.word_segmenter)
        check_split(self.sentence_split)
        if self.max_examples_per_row < 0:
            raise ExampleConfigError(f"max_examples_per_row={self.max_examples_per_row} must be >= 0 (0: automatic)")
        if self.pack_examples:
            try:
                check_packing(self.max_seq_len, self.examples_per_row)
            except JaxbertError as e:
                raise ExampleConfigError(str(e)) from None

    @property
    def examples_per_row(self) -> int:
        """How many examples a row holds: 1 unpacked, else max_examples_per_row (or its automatic value)."""
        if not self.pack_examples:
            return 1
        return self.max_examples_per_row or default_max_per_row(self.max_seq_len)

    @property
    def label_field(self) -> str | None:
        return LABEL_FIELD[self.format]

    @property
    def word_starts(self) -> bool:
        """Whether examples store a word-start mask (a segmenter gives the words)."""
        return bool(self.word_segmenter)


@dataclasses.dataclass
class ExampleStats:
    """Counts gathered while creating examples."""

    documents_used: int = 0
    corpus_tokens: int = 0  # tokens of the documents used, counted once whatever the dupe_factor
    empty_documents: int = 0  # no tokens after tokenization: skipped
    single_sentence_documents: int = 0  # skipped by the pair formats (nsp, sop), used by the packed ones
    skipped_chunks: int = 0  # pair chunks of a single one-token sentence: no pair can be cut from them
    examples: int = 0
    tokens: int = 0  # real tokens in examples, special tokens included
    padding_tokens: int = 0
    positive_labels: int = 0  # examples with label 1 (random next / swapped)
    cut_sentences: int = 0  # packed formats: sentences longer than a block, cut across examples
    rows: int = 0  # records written: the examples, or with pack_examples the packed rows holding them

    @property
    def padding_share(self) -> float:
        """Share of the written positions that hold padding."""
        total = self.tokens + self.padding_tokens
        return self.padding_tokens / total if total else 0.0


@dataclasses.dataclass
class TokenizedDocument:
    """One document's tokens back to back; sentence i spans tokens[ends[i-1]:ends[i]] (ends[-1] = len).

    `word_starts` (bool, like `tokens`) is there when a segmenter gave the words.
    """

    tokens: np.ndarray
    ends: list[int]
    word_starts: np.ndarray | None = None

    def start(self, sentence: int) -> int:
        return self.ends[sentence - 1] if sentence else 0

    def starts_of(self, lo: int, hi: int) -> np.ndarray | None:
        return None if self.word_starts is None else self.word_starts[lo:hi]


def record_fields(config: ExampleConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the int32 fields of every example of this config."""
    fields: dict[str, tuple[int, ...]] = {
        "input_ids": (config.max_seq_len,),
        "token_type_ids": (config.max_seq_len,),
        "length": (),
    }
    if config.label_field:
        fields[config.label_field] = ()
    if config.word_starts:
        fields[WORD_STARTS] = (config.max_seq_len,)
    if config.pack_examples:
        fields[SEGMENT_IDS] = (config.max_seq_len,)
        if config.label_field:
            fields[config.label_field] = (config.examples_per_row,)
    return fields


def special_tokens_mask(input_ids: Any, special_ids: Sequence[int]) -> Any:
    """1 where `input_ids` holds one of `special_ids` (cls, sep, pad, ...), else 0; numpy or jax arrays.

    Works inside jit: `special_tokens_mask(jnp_ids, tokenizer.special.all())`.
    """
    mask = input_ids == special_ids[0]
    for token_id in special_ids[1:]:
        mask = mask | (input_ids == token_id)
    return mask.astype(input_ids.dtype)


def tokenize_documents(documents: Sequence[Document], tokenizer: Tokenizer, config: ExampleConfig | None = None
                       ) -> list[TokenizedDocument]:
    """Tokenize every sentence (and, with `config.word_segmenter`, find its word starts); drop sentences
    without tokens. `config.sentence_split="rules"` first splits lines into sentences."""
    config = config or ExampleConfig()
    segmenter = get_segmenter(config.word_segmenter)
    lines = [s for doc in documents for s in doc]
    sentences: list = []
    for i in range(0, len(lines), _ENCODE_BATCH):
        sentences.extend(tokenize_lines(lines[i:i + _ENCODE_BATCH], tokenizer, segmenter, config.sentence_split))
    out = []
    k = 0
    for doc in documents:
        kept = [s for line in sentences[k:k + len(doc)] for s in line if s.ids]
        k += len(doc)
        ends = list(itertools.accumulate(len(s.ids) for s in kept))
        count = ends[-1] if ends else 0
        tokens = np.fromiter(itertools.chain.from_iterable(s.ids for s in kept), np.int32, count=count)
        starts = None
        if segmenter is not None:
            starts = np.concatenate([s.word_starts for s in kept]) if kept else np.zeros(0, bool)
        out.append(TokenizedDocument(tokens, ends, starts))
    return out


def create_examples(
    documents: Iterable[Document],
    tokenizer: Tokenizer,
    config: ExampleConfig,
    stats: ExampleStats | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Examples (dicts of int32 arrays, see `record_fields`) cut from `documents`, `dupe_factor` times over;
    with `config.pack_examples` several of them per record (`pack_examples`).

    Deterministic given `config.seed`: each (chunk, dupe) pass has its own random stream.
    """
    stats = stats if stats is not None else ExampleStats()
    examples = _create_unpacked(documents, tokenizer, config, stats)
    if not config.pack_examples:
        for example in examples:
            stats.rows += 1
            yield example
        return
    yield from pack_examples(examples, config, tokenizer.special.pad, stats)


def pack_examples(examples: Iterable[dict[str, np.ndarray]], config: ExampleConfig, pad_id: int,
                  stats: ExampleStats) -> Iterator[dict[str, np.ndarray]]:
    """Records of several examples each (`jaxbert.data.packing`): token fields joined with `segment_ids`,
    the pair label as one slot per example; `stats` counts the rows and their real padding."""
    label = config.label_field
    token_fields = [name for name, shape in record_fields(config).items() if shape == (config.max_seq_len,)
                    and name != SEGMENT_IDS]
    example_fields = [label] if label else []
    k, t = config.examples_per_row, config.max_seq_len
    for row in pack_rows(((int(e["length"]), e) for e in examples), t, k):
        record = join_row(row, t, k, pad_id, token_fields, example_fields, [int(e["length"]) for e in row])
        stats.rows += 1
        yield record
    stats.padding_tokens = stats.rows * t - stats.tokens


def _create_unpacked(
    documents: Iterable[Document],
    tokenizer: Tokenizer,
    config: ExampleConfig,
    stats: ExampleStats,
) -> Iterator[dict[str, np.ndarray]]:
    special = tokenizer.special
    packer = _SentencePacker(config, special, stats) if config.format in PACKED else None
    pending: list[TokenizedDocument] = []
    chunk_index = 0

    def run_chunk(chunk: list[TokenizedDocument]) -> Iterator[dict[str, np.ndarray]]:
        for dupe in range(config.dupe_factor):
            rng = random.Random(int(np.random.SeedSequence([config.seed, chunk_index, dupe]).generate_state(1)[0]))
            if packer is not None:
                order = list(range(len(chunk)))
                if dupe:  # later copies see the documents in another order, so blocks are cut elsewhere
                    rng.shuffle(order)
                for d in order:
                    yield from packer.add(chunk[d])
            else:
                for d in range(len(chunk)):
                    yield from _pair_examples(chunk, d, rng, config, special, stats)

    for batch in _batched(documents, _ENCODE_BATCH):
        for doc in tokenize_documents(batch, tokenizer, config):
            if not doc.ends:
                stats.empty_documents += 1
                continue
            if len(doc.ends) == 1:
                stats.single_sentence_documents += 1
                if packer is None:
                    continue
            stats.documents_used += 1
            stats.corpus_tokens += len(doc.tokens)
            pending.append(doc)
        # Keep at least one chunk in hand so the last chunk never runs short of "other" documents.
        while len(pending) >= 2 * config.chunk_documents:
            yield from run_chunk(pending[:config.chunk_documents])
            pending = pending[config.chunk_documents:]
            chunk_index += 1
    if config.format == "nsp" and chunk_index == 0 and len(pending) < 2:
        # "Random next" segments come from another document.
        raise JaxbertError(f"format 'nsp' needs at least 2 documents of 2 or more sentences, found {len(pending)}; "
                           "separate documents with blank lines, split paragraph lines into sentences "
                           "(sentence_split='rules'), or use format 'sop' or 'full_sentences'")
    if pending:
        yield from run_chunk(pending)
    if packer is not None:
        yield from packer.finish()


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _pair_examples(
    docs: list[TokenizedDocument],
    doc_index: int,
    rng: random.Random,
    config: ExampleConfig,
    special: SpecialTokens,
    stats: ExampleStats,
) -> Iterator[dict[str, np.ndarray]]:
    """NSP or SOP examples of one document (the chunking loop of BERT's create_instances_from_document)."""
    doc = docs[doc_index]
    max_num_tokens = config.max_seq_len - 3
    # As in BERT, the short-sequence choice is made once per document.
    target = rng.randint(2, max_num_tokens) if rng.random() < config.short_seq_prob else max_num_tokens
    first = 0  # first sentence of the current chunk
    i = 0
    num_sentences = len(doc.ends)
    while i < num_sentences:
        chunk_start = doc.start(first)
        if i == num_sentences - 1 or doc.ends[i] - chunk_start >= target:
            chunk_end = doc.ends[i]
            n_segments = i - first + 1
            if n_segments == 1 and chunk_end - chunk_start < 2:
                stats.skipped_chunks += 1
                first = i = i + 1
                continue
            label = int(rng.random() < 0.5)
            if n_segments >= 2:
                a_end_sentence = first + rng.randint(1, n_segments - 1)  # A = sentences first..a_end_sentence-1
                a = (chunk_start, doc.start(a_end_sentence))
            else:  # one long sentence: split it at a random token so A and B are still consecutive
                a_end_sentence = i + 1
                a = (chunk_start, chunk_start + rng.randint(1, chunk_end - chunk_start - 1))
            a_doc = b_doc = doc
            if config.format == "nsp" and label:
                b_doc = _other_document(docs, doc_index, rng)
                if n_segments == 1:  # as in BERT, a lone sentence is all of A
                    a = (chunk_start, chunk_end)
                b_first = rng.randint(0, len(b_doc.ends) - 1)
                b_start = b_doc.start(b_first)
                # Extend B sentence by sentence until it reaches the length A leaves free.
                want = b_start + max(target - (a[1] - a[0]), 1)
                b_last = min(bisect.bisect_left(b_doc.ends, want, lo=b_first), len(b_doc.ends) - 1)
                b = (b_start, b_doc.ends[b_last])
                # Sentences of the chunk not used in A go back to the document for the next chunk.
                i = a_end_sentence - 1
            else:
                b = (a[1], chunk_end)
                if config.format == "sop" and label:
                    a, b = b, a  # both spans lie in `doc`
            a, b = _truncate_pair(a, b, max_num_tokens, rng)
            yield pair_example(a_doc.tokens[a[0]:a[1]], b_doc.tokens[b[0]:b[1]], label, config, special, stats,
                               a_doc.starts_of(*a), b_doc.starts_of(*b))
            first = i + 1
        i += 1


def _other_document(docs: list[TokenizedDocument], doc_index: int, rng: random.Random) -> TokenizedDocument:
    other = rng.randrange(len(docs) - 1)
    return docs[other + (other >= doc_index)]


def truncated_lengths(len_a: int, len_b: int, max_num_tokens: int) -> tuple[int, int]:
    """Lengths after BERT's truncate_seq_pair: drop one token at a time from the longer side (B on ties)."""
    excess = len_a + len_b - max_num_tokens
    if excess <= 0:
        return len_a, len_b
    cut = min(excess, abs(len_a - len_b))
    if len_a > len_b:
        len_a -= cut
    else:
        len_b -= cut
    excess -= cut
    return len_a - excess // 2, len_b - (excess + 1) // 2


def _truncate_pair(
    a: tuple[int, int], b: tuple[int, int], max_num_tokens: int, rng: random.Random
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Truncate two spans like BERT: each dropped token comes off the front or the back with probability 1/2."""
    new_a, new_b = truncated_lengths(a[1] - a[0], b[1] - b[0], max_num_tokens)
    out = []
    for (start, end), new_len in ((a, new_a), (b, new_b)):
        drop = end - start - new_len
        # The number taken off the front is Binomial(drop, 1/2): a popcount of `drop` random bits.
        front = rng.getrandbits(drop).bit_count() if drop else 0
        out.append((start + front, start + front + new_len))
    return out[0], out[1]


def pair_example(
    tokens_a: np.ndarray,
    tokens_b: np.ndarray,
    label: int,
    config: ExampleConfig,
    special: SpecialTokens,
    stats: ExampleStats | None = None,
    word_starts_a: np.ndarray | None = None,
    word_starts_b: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """`[CLS] A [SEP] B [SEP]` padded to max_seq_len, with segment ids 0 for CLS/A/SEP and 1 for B/SEP.

    With `config.word_starts` the segments' word-start masks go into `word_starts` (specials 1, padding 0).
    """
    la, lb = len(tokens_a), len(tokens_b)
    length = la + lb + 3
    if length > config.max_seq_len:
        raise ExampleConfigError(f"segments of {la} + {lb} tokens do not fit max_seq_len={config.max_seq_len}")
    stats = stats if stats is not None else ExampleStats()
    input_ids = np.full(config.max_seq_len, special.pad, np.int32)
    input_ids[0] = special.cls
    input_ids[1:la + 1] = tokens_a
    input_ids[la + 1] = special.sep
    input_ids[la + 2:length - 1] = tokens_b
    input_ids[length - 1] = special.sep
    token_type_ids = np.zeros(config.max_seq_len, np.int32)
    token_type_ids[la + 2:length] = 1
    stats.examples += 1
    stats.tokens += length
    stats.padding_tokens += config.max_seq_len - length
    stats.positive_labels += label
    out = {"input_ids": input_ids, "token_type_ids": token_type_ids, "length": np.int32(length),
           config.label_field: np.int32(label)}
    if config.word_starts:
        starts = np.zeros(config.max_seq_len, np.int32)
        starts[[0, la + 1, length - 1]] = 1
        starts[1:la + 1] = _starts_or_ones(word_starts_a, la)
        starts[la + 2:length - 1] = _starts_or_ones(word_starts_b, lb)
        out[WORD_STARTS] = starts
    return out


def _starts_or_ones(starts: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n, np.int32) if starts is None else np.asarray(starts, np.int32)


class _SentencePacker:
    """FULL-SENTENCES / DOC-SENTENCES: whole sentences into `<s> block </s>` examples (see the module docstring).

    Pending content is a list of (tokens, word starts) pieces: sentences, and the separator put before a
    document's first sentence when it shares a block with the document before it.
    """

    def __init__(self, config: ExampleConfig, special: SpecialTokens, stats: ExampleStats):
        self.config = config
        self.block = config.max_seq_len - 2
        self.cross_documents = config.format == "full_sentences"
        self.special = special
        self.stats = stats
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_len = 0
        self.separator = (np.array([special.sep], np.int32), np.ones(1, bool))

    def add(self, doc: TokenizedDocument) -> Iterator[dict[str, np.ndarray]]:
        """Examples completed by adding one document's sentences."""
        if not self.cross_documents:
            yield from self.finish()
        for i in range(len(doc.ends)):
            lo, hi = doc.start(i), doc.ends[i]
            tokens = doc.tokens[lo:hi]
            starts = doc.word_starts[lo:hi] if doc.word_starts is not None else np.ones(hi - lo, bool)
            separate = i == 0 and self.pending_len > 0
            need = len(tokens) + separate
            if self.pending_len + need > self.block and (len(tokens) <= self.block
                                                           or self.pending_len + separate >= self.block):
                yield from self.finish()  # the sentence fits a block of its own (or nothing of it fits here)
                separate = False
            if separate:
                self._append(self.separator)
            if self.pending_len + len(tokens) <= self.block:
                self._append((tokens, starts))
                continue
            # A sentence longer than a block: fill this block, then whole blocks, and keep the rest pending.
            self.stats.cut_sentences += 1
            at = self.block - self.pending_len
            self._append((tokens[:at], starts[:at]))
            yield from self.finish()
            while len(tokens) - at > self.block:
                self._append((tokens[at:at + self.block], starts[at:at + self.block]))
                yield from self.finish()
                at += self.block
            self._append((tokens[at:], starts[at:]))

    def _append(self, piece: tuple[np.ndarray, np.ndarray]) -> None:
        if len(piece[0]):
            self.pending.append(piece)
            self.pending_len += len(piece[0])

    def finish(self) -> Iterator[dict[str, np.ndarray]]:
        """The pending block as an example, if it holds anything."""
        if self.pending_len:
            yield self._record(np.concatenate([p[0] for p in self.pending]),
                               np.concatenate([p[1] for p in self.pending]))
        self.pending, self.pending_len = [], 0

    def _record(self, content: np.ndarray, word_starts: np.ndarray) -> dict[str, np.ndarray]:
        max_len = self.config.max_seq_len
        length = len(content) + 2
        input_ids = np.full(max_len, self.special.pad, np.int32)
        input_ids[0] = self.special.cls
        input_ids[1:length - 1] = content
        input_ids[length - 1] = self.special.sep
        self.stats.examples += 1
        self.stats.tokens += length
        self.stats.padding_tokens += max_len - length
        out = {"input_ids": input_ids, "token_type_ids": np.zeros(max_len, np.int32), "length": np.int32(length)}
        if self.config.word_starts:
            starts = np.zeros(max_len, np.int32)
            starts[[0, length - 1]] = 1
            starts[1:length - 1] = word_starts
            out[WORD_STARTS] = starts
        return out
