"""Corpus reading and pretraining example creation (NSP / SOP / full-sentence packing) on real text."""

from __future__ import annotations

import gzip
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tokenizers import Tokenizer as HFTokenizer

from jaxbert.data.corpus import CorpusError, CorpusStats, iter_tfds_documents, read_documents, split_sentences
from jaxbert.data.pretraining import (
    ExampleConfig,
    ExampleConfigError,
    ExampleStats,
    create_examples,
    pair_example,
    special_tokens_mask,
    tokenize_documents,
    truncated_lengths,
)
from jaxbert.errors import JaxbertError
from jaxbert.tokenize import load_tokenizer
from jaxbert.tokenize.base import SpecialTokens

# Two-sided normal bound for a binomial count: |k - n/2| <= Z * sqrt(n)/2 fails a fair coin with p < 1e-4.
Z = 3.9


@pytest.fixture(scope="module")
def bert_tok(minilm_dir):
    return load_tokenizer(minilm_dir)


@pytest.fixture(scope="module")
def wiki_docs(shared_data):
    """The first 1200 lines of WikiText-2 (validation) as documents: paragraphs, headings on their own."""
    lines = (shared_data / "corpus" / "wikitext-2.valid.tokens.txt").read_text(encoding="utf-8").splitlines()
    return _docs_of("\n".join(lines[:1200]))


@pytest.fixture(scope="module")
def shakespeare_docs(shared_data):
    """Tiny Shakespeare as documents (speeches are separated by blank lines)."""
    return _docs_of((shared_data / "corpus" / "tinyshakespeare.txt").read_text(encoding="utf-8"))


def _docs_of(text: str) -> list[list[str]]:
    docs, cur = [], []
    for line in text.splitlines():
        if line.strip():
            cur.append(line.strip())
        elif cur:
            docs.append(cur)
            cur = []
    return docs + ([cur] if cur else [])


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# ---- corpus reading ---------------------------------------------------------------------------


def test_text_documents_are_separated_by_blank_lines(tmp_path):
    text = "  One.\nTwo.\n\n \t\n\nThree.\r\nFour.\r\n\r\nFive.\n"
    stats = CorpusStats()
    docs = list(read_documents(_write(tmp_path / "a.txt", text.encode()), stats=stats))
    assert docs == [["One.", "Two."], ["Three.", "Four."], ["Five."]]
    assert (stats.files, stats.documents, stats.sentences) == (1, 3, 5)
    gz = tmp_path / "a.txt.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert list(read_documents(gz)) == docs


def test_jsonl_documents_split_at_newlines_and_count_empty_ones(tmp_path):
    rows = [{"body": "A first.\nA second.\n"}, {"body": "  \n "}, {"body": "Only one."}]
    path = _write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows).encode() + b"\n\n")
    stats = CorpusStats()
    assert list(read_documents(path, text_field="body", stats=stats)) == [["A first.", "A second."], ["Only one."]]
    assert (stats.documents, stats.empty_documents, stats.sentences) == (2, 1, 3)
    with pytest.raises(CorpusError, match=r"c\.jsonl, line 1: no string field 'text'"):
        list(read_documents(path))
    bad = _write(tmp_path / "bad.jsonl", b'{"text": "ok"}\n{"text": \n')
    with pytest.raises(CorpusError, match=r"bad\.jsonl, line 2: invalid JSON"):
        list(read_documents(bad))


def test_non_utf8_names_file_and_line_or_is_replaced_and_counted(tmp_path):
    path = _write(tmp_path / "latin1.txt", "Good line.\n\nCaf\u00e9 au lait.\nAnd \u00fcber.\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.txt, line 3: invalid UTF-8 byte 0xe9") as e:
        list(read_documents(path))
    assert "\n" not in str(e.value) and "encoding_errors=replace" in str(e.value)
    stats = CorpusStats()
    docs = list(read_documents(path, errors="replace", stats=stats))
    assert docs == [["Good line."], ["Caf\ufffd au lait.", "And \ufffdber."]]
    assert stats.replaced_lines == 2


def test_missing_or_unreadable_paths_give_one_line_errors(tmp_path):
    with pytest.raises(CorpusError, match=r"corpus path .*nope\.txt not found") as e:
        list(read_documents([tmp_path / "nope.txt"]))
    assert "\n" not in str(e.value)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(CorpusError, match="holds no files"):
        list(read_documents(tmp_path / "empty_dir"))
    with pytest.raises(CorpusError, match="corrupt gzip"):
        list(read_documents(_write(tmp_path / "x.txt.gz", b"not gzip at all")))
    with pytest.raises(CorpusError, match="errors="):
        list(read_documents(tmp_path, errors="ignore"))


def test_directories_and_globs_expand_sorted(tmp_path):
    for name in ("b.txt", "a.txt", "c.jsonl"):
        _write(tmp_path / name, b'{"text": "J."}\n' if name.endswith("jsonl") else name.encode() + b"\n")
    assert [d[0] for d in read_documents(tmp_path)] == ["a.txt", "b.txt", "J."]
    assert [d[0] for d in read_documents(str(tmp_path / "*.txt"))] == ["a.txt", "b.txt"]


def test_tfds_adapter_reads_a_local_array_record_text_dataset(tmp_path):
    import tensorflow_datasets as tfds

    texts = ["Para one.\nPara two.", "", "Solo."]

    class TinyTextCorpus(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")
        code_path = None  # no checksums file (TFDS's package lookup needs importlib_resources)

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
                {"text": tfds.features.Text()}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i, t in enumerate(texts):
                yield i, {"text": t}

    TinyTextCorpus(data_dir=str(tmp_path), file_format="array_record").download_and_prepare(
        download_dir=str(tmp_path / "dl"))
    stats = CorpusStats()
    docs = list(iter_tfds_documents("tiny_text_corpus", data_dir=str(tmp_path), stats=stats))
    assert sorted(docs) == sorted(split_sentences(t) for t in texts if t)
    assert (stats.documents, stats.empty_documents) == (2, 1)
    with pytest.raises(CorpusError, match="no feature 'body'"):
        list(iter_tfds_documents("tiny_text_corpus", data_dir=str(tmp_path), text_field="body"))
    with pytest.raises(CorpusError, match="could not be opened"):
        list(iter_tfds_documents("no_such_dataset_xyz", data_dir=str(tmp_path)))


# ---- example structure --------------------------------------------------------------------------


def _check_pair_structure(ex, config: ExampleConfig, special: SpecialTokens) -> tuple[np.ndarray, np.ndarray]:
    """Assert `[CLS] A [SEP] B [SEP] pad...` with the right segment ids; return (A, B)."""
    ids, types, length = ex["input_ids"], ex["token_type_ids"], int(ex["length"])
    assert ids.dtype == types.dtype == np.int32 and ids.shape == types.shape == (config.max_seq_len,)
    assert 5 <= length <= config.max_seq_len
    seps = np.flatnonzero(ids[:length] == special.sep)
    assert ids[0] == special.cls and len(seps) == 2 and seps[1] == length - 1
    la = seps[0] - 1
    assert la >= 1 and length - la - 3 >= 1
    assert not np.isin(ids[1:length - 1][ids[1:length - 1] != special.sep], [special.cls, special.pad]).any()
    assert (ids[length:] == special.pad).all()
    assert (types[:la + 2] == 0).all() and (types[la + 2:length] == 1).all() and (types[length:] == 0).all()
    return ids[1:la + 1], ids[la + 2:length - 1]


class DocIndex:
    """Find token runs inside documents (all occurrences), to check where A and B came from."""

    def __init__(self, docs):
        self.docs = docs
        self.offsets = np.cumsum([0] + [len(d.tokens) for d in docs])
        self.blob = np.concatenate([d.tokens for d in docs]).astype("<i4").tobytes()

    def find(self, run: np.ndarray) -> list[tuple[int, int]]:
        """(document, position) of every occurrence of `run` within one document."""
        needle, hits, start = run.astype("<i4").tobytes(), [], 0
        while (at := self.blob.find(needle, start)) >= 0:
            start = at + 1
            if at % 4:
                continue
            pos = at // 4
            d = int(np.searchsorted(self.offsets, pos, side="right") - 1)
            if pos + len(run) <= self.offsets[d + 1]:
                hits.append((d, pos - int(self.offsets[d])))
        return hits

    def follows(self, first: np.ndarray, second: np.ndarray) -> bool:
        """Some occurrence of `second` lies after one of `first` in the same document."""
        return any(d1 == d2 and p2 >= p1 + len(first)
                   for (d1, p1), (d2, p2) in itertools.product(self.find(first), self.find(second)))

    def apart(self, first: np.ndarray, second: np.ndarray) -> bool:
        """The two runs occur in different documents."""
        return any(d1 != d2 for (d1, _), (d2, _) in itertools.product(self.find(first), self.find(second)))


def _pair_docs(docs):
    return [d for d in docs if len(d.ends) >= 2]


def test_nsp_examples_are_actual_next_or_from_another_document(bert_tok, wiki_docs):
    config = ExampleConfig(format="nsp", max_seq_len=64, seed=3)
    stats = ExampleStats()
    examples = list(create_examples(wiki_docs, bert_tok, config, stats))
    index = DocIndex(_pair_docs(tokenize_documents(wiki_docs, bert_tok)))
    assert len(examples) == stats.examples > 300
    for ex in examples:
        a, b = _check_pair_structure(ex, config, bert_tok.special)
        assert index.find(a) and index.find(b)
        if ex["next_sentence_label"] == 0:
            assert index.follows(a, b)
        else:
            assert index.apart(a, b)
    assert stats.tokens == sum(int(e["length"]) for e in examples)
    assert stats.padding_tokens == sum(config.max_seq_len - int(e["length"]) for e in examples)


def test_sop_examples_are_consecutive_and_swapped_when_labelled(bert_tok, wiki_docs):
    config = ExampleConfig(format="sop", max_seq_len=64, seed=5)
    examples = list(create_examples(wiki_docs, bert_tok, config))
    index = DocIndex(_pair_docs(tokenize_documents(wiki_docs, bert_tok)))
    assert len(examples) > 300
    for ex in examples:
        a, b = _check_pair_structure(ex, config, bert_tok.special)
        first, second = (b, a) if ex["sentence_order_label"] == 1 else (a, b)
        assert index.follows(first, second), "A and B must be consecutive in one document"


@pytest.mark.parametrize("fmt", ["nsp", "sop"])
def test_pair_labels_are_fair_coin_flips(bert_tok, shakespeare_docs, fmt):
    config = ExampleConfig(format=fmt, max_seq_len=48, seed=11)
    stats = ExampleStats()
    labels = np.array([int(e[config.label_field]) for e in create_examples(shakespeare_docs, bert_tok, config,
                                                                            stats)])
    n, k = len(labels), int(labels.sum())
    assert n > 2000 and k == stats.positive_labels
    assert abs(k - n / 2) <= Z * math.sqrt(n) / 2, f"{k} of {n} labels are 1; a fair coin rarely strays so far"


def test_short_seq_prob_shortens_about_that_share_of_documents(bert_tok, shakespeare_docs):
    """With short_seq_prob=1 every document aims below max; with 0, pairs fill max_seq_len where text allows."""
    def mean_len(p):
        cfg = ExampleConfig(format="sop", max_seq_len=64, short_seq_prob=p, seed=2)
        return np.mean([int(e["length"]) for e in create_examples(shakespeare_docs[:1500], bert_tok, cfg)])

    assert mean_len(1.0) < mean_len(0.0) - 5


def test_pair_example_matches_the_reference_tokenizers_pair_template(minilm_dir, bert_tok):
    """[CLS] A [SEP] B [SEP], token types and special_tokens_mask as tokenizer.json's post-processor makes them."""
    ref = HFTokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    ref.no_truncation()
    ref.enable_padding(length=40, pad_id=bert_tok.special.pad, pad_token="[PAD]")
    a_text, b_text = "The lobster is blue in life.", "It turns red on cooking, releasing the pigment."
    enc = ref.encode(a_text, b_text)
    a, b = (np.array(x, np.int32) for x in bert_tok.encode_batch([a_text, b_text]))
    ex = pair_example(a, b, 1, ExampleConfig(format="nsp", max_seq_len=40), bert_tok.special)
    np.testing.assert_array_equal(ex["input_ids"], enc.ids)
    np.testing.assert_array_equal(ex["token_type_ids"], enc.type_ids)
    assert int(ex["length"]) == sum(enc.attention_mask)
    special = (bert_tok.special.cls, bert_tok.special.sep, bert_tok.special.pad)
    np.testing.assert_array_equal(special_tokens_mask(ex["input_ids"], special),
                                  np.maximum(enc.special_tokens_mask, 1 - np.array(enc.attention_mask)))
    with pytest.raises(ExampleConfigError, match="do not fit"):
        pair_example(a, b, 0, ExampleConfig(format="nsp", max_seq_len=16), bert_tok.special)


def test_special_tokens_mask_runs_under_jit():
    import jax
    import jax.numpy as jnp

    ids = jnp.array([[101, 7, 102, 8, 102, 0]], jnp.int32)
    got = jax.jit(lambda x: special_tokens_mask(x, (101, 102, 0)))(ids)
    np.testing.assert_array_equal(np.asarray(got), [[1, 0, 1, 0, 1, 1]])


@given(st.integers(1, 300), st.integers(1, 300), st.integers(2, 300))
def test_truncated_lengths_match_berts_token_by_token_loop(la, lb, max_tokens):
    a, b = la, lb
    while a + b > max_tokens:  # google-research/bert truncate_seq_pair, lengths only
        if a > b:
            a -= 1
        else:
            b -= 1
    assert truncated_lengths(la, lb, max_tokens) == (a, b)


# ---- RoBERTa full-sentence packing ---------------------------------------------------------------


@pytest.fixture(scope="module")
def roberta_tok(shared_data):
    return load_tokenizer(shared_data / "vocab" / "roberta-base")  # byte-level BPE: <s>, </s>, <pad>


def _sentences_of(docs, tok, split="lines"):
    """Each document as its sentences' token ids, tokenized here one sentence at a time (the reference)."""
    from jaxbert.data.sentences import sentence_spans

    out = []
    for doc in docs:
        pieces = [line[lo:hi] for line in doc for lo, hi in (sentence_spans(line) if split == "rules"
                                                            else [(0, len(line))])]
        sentences = [ids for ids in (tok.encode(p, add_special_tokens=False) for p in pieces) if ids]
        if sentences:
            out.append(sentences)
    return out


def _check_packing(examples, docs, special, max_seq_len, cross_documents):
    """Walk the examples against the documents' sentences in order (brute force): every example is
    `<s>` + whole sentences (+ one separator where two documents meet inside it, when crossing) + `</s>`;
    an example boundary falls inside a sentence only for a sentence longer than a block, and a block ends
    only when the next sentence (with its separator) would not fit. Returns the real-token share."""
    block = max_seq_len - 2
    items = []  # (document, sentence ids) in corpus order
    for d, sentences in enumerate(docs):
        items.extend((d, s) for s in sentences)
    i, offset = 0, 0  # the next sentence, and how much of it earlier examples already hold (a cut one)
    real = 0
    for e in examples:
        n = int(e["length"])
        real += n
        ids = [int(x) for x in e["input_ids"]]
        assert ids[0] == special.cls and ids[n - 1] == special.sep and all(x == special.pad for x in ids[n:])
        content, at = ids[1:n - 1], 0
        first_doc = items[i][0]
        while at < len(content):
            doc, sentence = items[i]
            if at and offset == 0 and doc != items[i - 1][0]:
                assert cross_documents and content[at] == special.sep, "no separator where documents meet"
                at += 1
            assert doc == first_doc or cross_documents
            rest = sentence[offset:]
            piece = content[at:at + len(rest)]
            assert piece == rest[:len(piece)], f"example content is not sentence {i} of the corpus"
            at += len(piece)
            if len(piece) < len(rest):  # the example ends inside this sentence
                assert at == len(content) == block, "a sentence was cut although the block was not full"
                assert len(sentence) > block, f"sentence {i} ({len(sentence)} tokens) fits a block, yet was cut"
                offset += len(piece)
            else:
                i, offset = i + 1, 0
        if i < len(items) and offset == 0:  # the block ended at a sentence boundary: the next did not fit
            new_doc = items[i][0] != items[i - 1][0]
            if cross_documents or not new_doc:
                assert len(content) + new_doc + len(items[i][1]) > block, "a block was closed with room left"
    assert i == len(items) and offset == 0, "the examples do not hold every sentence of the corpus"
    return real / (len(examples) * max_seq_len)


@pytest.mark.parametrize("corpus,split", [("tinyshakespeare.txt", "lines"), ("wikitext-2.valid.tokens.txt", "rules")])
def test_full_sentences_pack_whole_sentences_across_documents(roberta_tok, shared_data, corpus, split):
    """RoBERTa's FULL-SENTENCES (Liu et al. 2019, 4.2) over a whole shared corpus, at its 512 tokens."""
    docs = list(read_documents(shared_data / "corpus" / corpus))
    config = ExampleConfig(format="full_sentences", max_seq_len=512, sentence_split=split)
    stats = ExampleStats()
    examples = list(create_examples(docs, roberta_tok, config, stats))
    reference = _sentences_of(docs, roberta_tok, split)
    share = _check_packing(examples, reference, roberta_tok.special, 512, cross_documents=True)
    assert share >= 0.95, f"only {share:.3f} of the positions are real tokens"
    assert stats.documents_used == len(reference) > 1000  # many documents meet inside examples
    assert "next_sentence_label" not in examples[0] and not any(e["token_type_ids"].any() for e in examples)


def test_full_sentences_cut_only_sentences_longer_than_a_block(roberta_tok, shared_data):
    """WikiText paragraphs a line at 128 tokens: the over-long ones are cut, everything else stays whole."""
    docs = list(read_documents(shared_data / "corpus" / "wikitext-2.valid.tokens.txt"))[:300]
    stats = ExampleStats()
    examples = list(create_examples(docs, roberta_tok, ExampleConfig(format="full_sentences", max_seq_len=128),
                                    stats))
    reference = _sentences_of(docs, roberta_tok)
    _check_packing(examples, reference, roberta_tok.special, 128, cross_documents=True)
    long = sum(len(s) > 126 for d in reference for s in d)
    assert stats.cut_sentences == long > 10


def test_doc_sentences_never_cross_a_document(roberta_tok, shared_data):
    docs = list(read_documents(shared_data / "corpus" / "tinyshakespeare.txt"))[:2000]
    examples = list(create_examples(docs, roberta_tok, ExampleConfig(format="doc_sentences", max_seq_len=128)))
    _check_packing(examples, _sentences_of(docs, roberta_tok), roberta_tok.special, 128, cross_documents=False)
    assert not any(roberta_tok.special.sep in e["input_ids"][1:int(e["length"]) - 1] for e in examples)


def test_full_sentences_later_copies_pack_documents_in_another_order(roberta_tok, wiki_docs):
    once = list(create_examples(wiki_docs, roberta_tok, ExampleConfig(format="full_sentences", max_seq_len=96)))
    twice = list(create_examples(wiki_docs, roberta_tok, ExampleConfig(format="full_sentences", max_seq_len=96,
                                                                       seed=1, dupe_factor=2)))
    sep = roberta_tok.special.sep
    text_tokens = lambda exs: sum(int((e["input_ids"][1:int(e["length"]) - 1] != sep).sum()) for e in exs)
    assert text_tokens(twice) == 2 * text_tokens(once)  # every sentence twice; separators where documents meet
    ids = lambda exs: [e["input_ids"].tolist() for e in exs]
    assert ids(twice[:len(once) - 1]) == ids(once[:-1])  # the first copy in corpus order
    assert ids(twice[len(once):]) != ids(once[1:])  # the second in another


def test_full_sentences_single_document_matches_robertas_template(roberta_tok, shared_data):
    from transformers import RobertaTokenizerFast

    vocab = shared_data / "vocab" / "roberta-base"  # vocab.json + merges.txt
    ref = RobertaTokenizerFast.from_pretrained(str(vocab))
    doc = ["Homarus gammarus is a large crustacean.", "It lives on the continental shelf."]
    (ex,) = create_examples([doc], roberta_tok, ExampleConfig(format="full_sentences", max_seq_len=64))
    want = ref(doc[0] + doc[1], padding="max_length", max_length=64)  # sentences are joined without a separator
    got_len = int(ex["length"])
    real = [t for t, m in zip(want["input_ids"], want["attention_mask"], strict=True) if m]
    assert list(ex["input_ids"][:got_len]) == real
    assert (ex["input_ids"][got_len:] == ref.pad_token_id).all()


# ---- determinism, dupe_factor, bad input ---------------------------------------------------------


def _as_tuples(examples):
    return [tuple(tuple(np.atleast_1d(v).tolist()) for v in e.values()) for e in examples]


def test_examples_are_deterministic_given_the_seed(bert_tok, wiki_docs):
    def run(seed, chunk=50_000):
        return _as_tuples(create_examples(wiki_docs, bert_tok, ExampleConfig(format="nsp", max_seq_len=64,
                                                                             seed=seed, chunk_documents=chunk)))

    assert run(7) == run(7)
    assert run(7) != run(8)
    small_chunks = run(7, chunk=40)  # chunks change which documents random-next draws from, still deterministic
    assert small_chunks == run(7, chunk=40) and len(small_chunks) > 300


def test_dupe_factor_repeats_the_corpus_with_new_random_choices(bert_tok, wiki_docs):
    one = _as_tuples(create_examples(wiki_docs, bert_tok, ExampleConfig(format="nsp", max_seq_len=64, seed=4)))
    stats = ExampleStats()
    three = _as_tuples(create_examples(wiki_docs, bert_tok, ExampleConfig(format="nsp", max_seq_len=64, seed=4,
                                                                          dupe_factor=3), stats))
    assert three[:len(one)] == one  # the first pass is the dupe_factor=1 output
    rest = three[len(one):]
    assert 1.6 * len(one) < len(rest) < 2.4 * len(one)
    assert len(set(rest) - set(one)) > len(rest) // 2  # later passes cut and pair differently
    assert stats.examples == len(three)


def test_empty_and_one_sentence_documents_are_counted_and_skipped_for_pairs(bert_tok, tmp_path):
    rows = ["First doc, one.\nFirst doc, two.", "", "Lonely sentence.", "\x07\x07", "Second doc.\nMore text.\nEnd."]
    path = _write(tmp_path / "docs.jsonl", "\n".join(json.dumps({"text": r}) for r in rows).encode())
    corpus, ex_stats = CorpusStats(), ExampleStats()
    cfg = ExampleConfig(format="sop", max_seq_len=32, short_seq_prob=0.0)
    examples = list(create_examples(read_documents(path, stats=corpus), bert_tok, cfg, ex_stats))
    assert corpus.empty_documents == 1  # blank text
    assert ex_stats.empty_documents == 1  # text without tokens (control characters)
    assert ex_stats.single_sentence_documents == 1 and ex_stats.documents_used == 2
    assert len(examples) == ex_stats.examples == 2
    packed = ExampleStats()
    list(create_examples(read_documents(path), bert_tok, ExampleConfig(format="full_sentences"), packed))
    assert packed.single_sentence_documents == 1 and packed.documents_used == 3


def test_nsp_needs_two_usable_documents_sop_does_not(bert_tok):
    docs = [["Only one document.", "With two sentences."], ["Single."]]
    with pytest.raises(JaxbertError, match="'nsp' needs at least 2 documents"):
        list(create_examples(docs, bert_tok, ExampleConfig(format="nsp")))
    assert len(list(create_examples(docs, bert_tok, ExampleConfig(format="sop")))) == 1


@pytest.mark.parametrize("field, value, match", [
    ("format", "mlm", "unknown"), ("max_seq_len", 4, "too short"), ("short_seq_prob", 1.5, r"\[0, 1\]"),
    ("dupe_factor", 0, ">= 1"), ("seed", -1, "non-negative"),
])
def test_bad_example_options_are_named(field, value, match):
    with pytest.raises(ExampleConfigError, match=f"{field}.*{match}|{match}"):
        ExampleConfig(**{field: value})
