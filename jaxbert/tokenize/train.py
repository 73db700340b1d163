"""Training new vocabularies: WordPiece and byte-level BPE with `tokenizers`, unigram with `sentencepiece`."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sentencepiece as spm
import tokenizers
from tokenizers import normalizers, pre_tokenizers, trainers
from tokenizers.implementations import ByteLevelBPETokenizer
from tokenizers.models import WordPiece

from jaxbert import storage
from jaxbert.data.corpus import resolve_corpus_paths
from jaxbert.data.segmenters import get_segmenter
from jaxbert.tokenize.albert_text import albert_clean_text
from jaxbert.tokenize.base import Tokenizer, TokenizerError
from jaxbert.tokenize.bpe import BPE_SPECIALS, BPETokenizer
from jaxbert.tokenize.corpus import CorpusError, iter_corpus
from jaxbert.tokenize.load import load_tokenizer
from jaxbert.tokenize.spiece import SPM_SPECIALS, SentencePieceTokenizer
from jaxbert.tokenize.wordpiece import PREFIX, WORDPIECE_SPECIALS, WordPieceTokenizer

KINDS = ("wordpiece", "bpe", "sentencepiece", "xlnet")
# Smallest sizes that still hold the special tokens and (byte-level BPE) all 256 bytes.
MIN_SIZE = {"wordpiece": 6, "bpe": 256 + len(BPE_SPECIALS), "sentencepiece": 6, "xlnet": 10}


def _wordpiece_backend(lowercase: bool, strip_accents: bool) -> tokenizers.Tokenizer:
    """BERT's normalizer and pre-tokenizer in front of an empty WordPiece model (what the trainer fills)."""
    backend = tokenizers.Tokenizer(WordPiece(unk_token=WORDPIECE_SPECIALS["unk"]))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return backend


def _char_counts(lines: Iterable[str], normalizer: Any) -> Counter:
    """How often each character occurs in the normalized text, whitespace left out (the trainer's words)."""
    counts: Counter = Counter()
    for line in lines:
        counts.update(normalizer.normalize_str(line))
    for c in [c for c in counts if c.isspace()]:
        del counts[c]
    return counts


def _train_wordpiece(make_lines, size, out, lowercase, strip_accents, min_frequency, limit_alphabet) -> Tokenizer:
    """WordPiece training made deterministic: byte-identical vocab.txt for the same corpus and options.

    `tokenizers`' trainer gives ids to the "##c" continuation characters in the iteration order of a Rust
    HashMap, which is seeded afresh in every process, and breaks ties between equally frequent merges by
    those ids, so two runs learn different merges (threads are not the cause: one thread differs too). It
    also drops rare characters beyond `limit_alphabet` with an unstable sort over equal counts. Here a first
    pass (no merges) finds the alphabet and its continuation characters; the kept alphabet is the
    `limit_alphabet` most frequent characters, ties by code point; the second pass gets the specials, the
    alphabet and the "##" characters, sorted, as its leading tokens, so every id, and so every merge, is
    fixed before the merges start.
    """
    specials = [WORDPIECE_SPECIALS[r] for r in ("pad", "unk", "cls", "sep", "mask")]
    probe = _wordpiece_backend(lowercase, strip_accents)
    probe.train_from_iterator(make_lines(), trainers.WordPieceTrainer(
        vocab_size=1, special_tokens=specials, show_progress=False))  # vocab_size=1: alphabet only, no merges
    seen = [t for t in probe.get_vocab() if t not in specials]
    alphabet = sorted(t for t in seen if not t.startswith(PREFIX))
    if len(alphabet) > limit_alphabet:
        counts = _char_counts(make_lines(), probe.normalizer)
        alphabet = sorted(sorted(alphabet, key=lambda c: (-counts[c], ord(c)))[:limit_alphabet])
    kept = set(alphabet)
    continuing = sorted(t for t in seen if t.startswith(PREFIX) and len(t) > len(PREFIX) and t[len(PREFIX):] in kept)
    backend = _wordpiece_backend(lowercase, strip_accents)
    backend.train_from_iterator(make_lines(), trainers.WordPieceTrainer(
        vocab_size=size, min_frequency=min_frequency, limit_alphabet=len(alphabet), initial_alphabet=alphabet,
        special_tokens=specials + alphabet + continuing, show_progress=False))
    vocab = backend.get_vocab()
    text = "".join(t + "\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]))
    (out / "vocab.txt").write_text(text, encoding="utf-8")
    return WordPieceTokenizer.from_vocab_file(out / "vocab.txt", lowercase=lowercase, strip_accents=strip_accents)


def _train_bpe(lines, size, out, min_frequency) -> Tokenizer:
    trainer = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    # RoBERTa's layout: <s> <pad> </s> <unk> at 0..3, the merges, and <mask> as the last id.
    first = [BPE_SPECIALS[r] for r in ("cls", "pad", "sep", "unk")]
    trainer.train_from_iterator(
        lines,
        vocab_size=size - 1,
        min_frequency=min_frequency,
        special_tokens=first,
        show_progress=False,
    )
    trainer._tokenizer.model.save(str(out))
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    vocab[BPE_SPECIALS["mask"]] = max(vocab.values()) + 1
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return BPETokenizer.from_files(out / "vocab.json", out / "merges.txt")


# XLNet's released layout: <unk>=0 <s>=1 </s>=2, then the control symbols in this order (<cls>=3 ... <eop>=8).
_XLNET_LAYOUT = dict(unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                     control_symbols=["<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"])
_ALBERT_LAYOUT = dict(pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
                      control_symbols=[SPM_SPECIALS[r] for r in ("cls", "sep", "mask")])


def _train_sentencepiece(lines, size, out, lowercase, strip_accents, character_coverage,
                         template: str = "bert") -> Tokenizer:
    keep_accents = not strip_accents
    failure: list[BaseException] = []

    def sentences():
        # The model learns from text cleaned exactly as it will be encoded (AlbertTokenizer's clean-up).
        # SentencePiece reports errors of this iterator as a bare RuntimeError: keep ours for the user.
        try:
            for line in lines:
                cleaned = albert_clean_text(line, lowercase, keep_accents)
                if cleaned:
                    yield cleaned
        except Exception as e:
            failure.append(e)
            raise

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=sentences(),
            model_writer=model,
            vocab_size=size,
            model_type="unigram",
            **(_XLNET_LAYOUT if template == "xlnet" else _ALBERT_LAYOUT),
            character_coverage=character_coverage,
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as e:
        if failure:
            raise failure[0] from None
        raise TokenizerError(
            f"SentencePiece training failed: {str(e).splitlines()[0]} (check --size against the corpus)"
        ) from e
    (out / "spiece.model").write_bytes(model.getvalue())
    return SentencePieceTokenizer(out / "spiece.model", lowercase=lowercase, keep_accents=keep_accents,
                                  template=template)


def train_vocab(
    corpus_paths: str | Path | Iterable[str | Path],
    kind: str,
    size: int,
    out_dir: str | Path,
    lowercase: bool | None = None,
    strip_accents: bool | None = None,
    *,
    min_frequency: int = 2,
    limit_alphabet: int = 1000,
    character_coverage: float = 0.9995,
    errors: str = "strict",
    text_field: str = "text",
    segmenter: str = "",
) -> Tokenizer:
    """Trains a `kind` vocabulary of `size` ids on the corpus files and saves it to `out_dir`.

    kind "wordpiece": BERT's WordPiece ([PAD] [UNK] [CLS] [SEP] [MASK] at ids 0..4, CJK characters
    split, `lowercase` default True). "bpe": RoBERTa's byte-level BPE (<s> <pad> </s> <unk> at 0..3,
    <mask> last; always cased). "sentencepiece": an ALBERT unigram model (<pad>=0 <unk>=1 [CLS]=2
    [SEP]=3 [MASK]=4; `lowercase` default True). "xlnet": XLNet's unigram model (<unk>=0 <s>=1 </s>=2
    <cls>=3 <sep>=4 <pad>=5 <mask>=6 <eod>=7 <eop>=8; cased by default), `A <sep> B <sep> <cls>` padded
    on the left. `strip_accents` defaults to `lowercase`, as in BERT.
    `errors="replace"` swaps bytes that are not UTF-8 for U+FFFD instead of stopping at them; JSON-lines
    files are read from their `text_field`. `segmenter` "pku" / "spaces" (a pre-segmented corpus, see
    `jaxbert.data.segmenters`) trains on the running text the words make, as pretraining reads it.
    Returns the trained tokenizer; out_dir gets the files `load_tokenizer` and transformers read.
    """
    if kind not in KINDS:
        raise TokenizerError(f"vocabulary kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(size, int) or size < MIN_SIZE[kind]:
        raise TokenizerError(f"a {kind} vocabulary needs size >= {MIN_SIZE[kind]}, got {size!r}")
    if lowercase is None:
        lowercase = kind not in ("bpe", "xlnet")
    if kind == "bpe" and lowercase:
        raise TokenizerError("byte-level BPE vocabularies are cased (as RoBERTa's); train without lowercase")
    if strip_accents is None:  # BERT ties it to lowercasing; XLNet's cased tokenizer strips accents too
        strip_accents = lowercase or kind == "xlnet"
    paths = [corpus_paths] if isinstance(corpus_paths, (str, Path)) else list(corpus_paths)
    resolve_corpus_paths(paths)  # missing paths fail here, before any training starts
    out = storage.path(out_dir)

    rewrite = get_segmenter(segmenter) if segmenter in ("pku", "spaces") else None  # others keep the text

    def make_lines() -> Iterator[str]:  # WordPiece reads the corpus twice (see _train_wordpiece)
        lines = iter_corpus(paths, errors, text_field)
        return lines if rewrite is None else (rewrite.segment(line).text for line in lines)

    lines = make_lines()
    first = next(lines, None)
    if first is None:
        raise CorpusError(f"the corpus {', '.join(map(str, paths))} has no text lines")
    lines = itertools.chain([first], lines)
    # Train into a local scratch folder (trainers write local files) and copy the files to out_dir (local or
    # gs://) only when all went well.
    scratch = Path(tempfile.mkdtemp(prefix="jaxbert-vocab-"))
    try:
        if kind == "wordpiece":
            trained = _train_wordpiece(make_lines, size, scratch, lowercase, strip_accents, min_frequency,
                                       limit_alphabet)
        elif kind == "bpe":
            trained = _train_bpe(lines, size, scratch, min_frequency)
        else:
            trained = _train_sentencepiece(lines, size, scratch, lowercase, strip_accents, character_coverage,
                                           template="xlnet" if kind == "xlnet" else "bert")
        final = scratch / "final"
        trained.save(final)
        storage.copy_tree(final, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return load_tokenizer(out)
