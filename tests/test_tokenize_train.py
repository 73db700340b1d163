"""Training vocabularies (train_vocab, `jaxbert vocab`), reading corpora, ALBERT's text clean-up, the benchmark.

Trained vocabularies are checked by loading their files into transformers' tokenizers (BertTokenizer fast and
the pure-Python BertTokenizerLegacy, RobertaTokenizer, AlbertTokenizer) and comparing encodings.
"""

from __future__ import annotations

import gzip
import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxbert import cli
from jaxbert.tokenize import (
    BPETokenizer,
    CorpusError,
    SentencePieceTokenizer,
    TokenizerError,
    WordPieceTokenizer,
    benchmark_encode,
    iter_corpus,
    load_tokenizer,
    train_vocab,
)
from jaxbert.tokenize.albert_text import albert_clean, albert_clean_text

transformers = pytest.importorskip("transformers", reason="install the test extra: pip install -e '.[test]'")

CHINESE = [
    "我们今天去北京的大学看书。",
    "中文的每个汉字都会被分开。",
    "天气很好，我们一起去公园散步吧！",
    "这本书讲的是一个关于时间和记忆的故事。",
    "他说：“学习语言需要很多耐心。”",
    "电影的音乐非常动人，演员也很出色。",
]
CASED_AND_ACCENTED = ["Café au lait in São Paulo.", "Ångström and Éclair, naïve Zoë.", "The U.S. Senate met in June."]
PROBES = [
    "北京大学的中文课程 and English words.",
    "Café Ångström São Paulo NAÏVE naïve",
    "Hello World hello world HELLO",
    "emoji 😀 and ctrl\x00chars\u200b here\ttab",
    "",
    "x" * 205,
]


def _lines(path: Path, n: int) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:n]


@pytest.fixture(scope="module")
def shakespeare(shared_data) -> list[str]:
    return _lines(shared_data / "corpus/tinyshakespeare.txt", 6000)


@pytest.fixture(scope="module")
def sst(shared_data) -> list[str]:
    return [line.split("\t")[0] for line in _lines(shared_data / "glue/sst2/train.tsv", 3001)[1:]]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ---- WordPiece ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cased_wordpiece(tmp_path_factory, shakespeare) -> Path:
    tmp = tmp_path_factory.mktemp("wp")
    corpus = _write(tmp / "mixed.txt", CHINESE * 20 + CASED_AND_ACCENTED * 20 + shakespeare)
    tok = train_vocab([corpus], "wordpiece", 2500, tmp / "vocab", lowercase=False)
    assert isinstance(tok, WordPieceTokenizer)
    return tmp / "vocab"


def test_cased_wordpiece_matches_bert_tokenizers(cased_wordpiece, shakespeare):
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    ours = load_tokenizer(cased_wordpiece)
    fast = transformers.BertTokenizer.from_pretrained(str(cased_wordpiece))
    slow = BertTokenizerLegacy(str(cased_wordpiece / "vocab.txt"), do_lower_case=False)
    for text in PROBES + CHINESE + shakespeare[:300]:
        assert ours.encode(text) == fast(text)["input_ids"] == slow(text)["input_ids"], text
    assert ours.special.all() == (0, 1, 2, 3, 4)  # [PAD] [UNK] [CLS] [SEP] [MASK]


def test_cased_wordpiece_keeps_case_accents_and_splits_chinese(cased_wordpiece):
    tok = load_tokenizer(cased_wordpiece)
    vocab = tok.get_vocab()
    hanzi = {c for line in CHINESE for c in line if unicodedata.category(c) == "Lo"}
    assert hanzi <= set(vocab)  # every character of the corpus is a token of its own
    pieces = tok.convert_ids_to_tokens(tok.encode("北京大学", add_special_tokens=False))
    assert pieces == ["北", "京", "大", "学"]
    assert tok.encode("Hello") != tok.encode("hello")
    assert "é" in "".join(tok.convert_ids_to_tokens(tok.encode("Café", add_special_tokens=False)))
    config = json.loads((cased_wordpiece / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is False and config["tokenizer_class"] == "BertTokenizer"


def test_uncased_wordpiece_strips_accents(tmp_path, shakespeare):
    corpus = _write(tmp_path / "c.txt", CASED_AND_ACCENTED * 20 + shakespeare[:2000])
    tok = train_vocab(corpus, "wordpiece", 800, tmp_path / "v")
    fast = transformers.BertTokenizer.from_pretrained(str(tmp_path / "v"))
    assert tok.encode("Ångström CAFÉ") == tok.encode("angstrom cafe") == fast("Ångström CAFÉ")["input_ids"]


# ---- byte-level BPE ------------------------------------------------------------------------------------
def test_bpe_training_has_roberta_layout(tmp_path, shakespeare, sst):
    corpus = _write(tmp_path / "c.txt", shakespeare + sst[:1000])
    tok = train_vocab(corpus, "bpe", 700, tmp_path / "bpe")
    assert isinstance(tok, BPETokenizer)
    vocab = tok.get_vocab()
    assert [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert vocab["<mask>"] == tok.vocab_size - 1 == 699
    assert (tok.cls_token_id, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    reference = transformers.RobertaTokenizer.from_pretrained(str(tmp_path / "bpe"))
    files = transformers.RobertaTokenizer(str(tmp_path / "bpe/vocab.json"), str(tmp_path / "bpe/merges.txt"))
    for text in PROBES + sst[1000:1200]:
        ids = tok.encode(text)
        assert ids == reference(text)["input_ids"] == files(text)["input_ids"], text
        assert tok.unk_token_id not in ids  # every byte has a token
    assert tok.decode(tok.encode(PROBES[0])) == PROBES[0]


def test_bpe_cannot_be_lowercased(tmp_path, shakespeare):
    with pytest.raises(TokenizerError, match="cased"):
        train_vocab(_write(tmp_path / "c.txt", shakespeare[:10]), "bpe", 400, tmp_path / "v", lowercase=True)


# ---- SentencePiece ---------------------------------------------------------------------------------------
def test_cased_sentencepiece_matches_albert(tmp_path, shakespeare):
    corpus = _write(tmp_path / "c.txt", CASED_AND_ACCENTED * 20 + shakespeare)
    tok = train_vocab(corpus, "sentencepiece", 1500, tmp_path / "sp", lowercase=False)
    assert isinstance(tok, SentencePieceTokenizer)
    assert not tok.lowercase and tok.keep_accents
    reference = transformers.AlbertTokenizer.from_pretrained(str(tmp_path / "sp"))
    assert reference.do_lower_case is False
    for text in PROBES + shakespeare[-200:]:
        assert tok.encode(text) == reference(text)["input_ids"], text
    assert tok.encode("Hello") != tok.encode("hello")
    assert tok.special.all() == (0, 1, 2, 3, 4)


# ---- corpus reading ----------------------------------------------------------------------------------------
def test_txt_gz_and_jsonl_give_the_same_vocabulary(tmp_path, sst):
    lines = sst[:1500]
    plain = _write(tmp_path / "a.txt", lines)
    zipped = tmp_path / "b.txt.gz"
    with gzip.open(zipped, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    jsonl = _write(tmp_path / "c.jsonl", [json.dumps({"text": line, "id": i}) for i, line in enumerate(lines)])
    stripped = [line.strip() for line in lines]  # SST-2 lines end in a space; the reader strips each line
    assert list(iter_corpus([plain])) == list(iter_corpus([zipped])) == list(iter_corpus([jsonl])) == stripped
    vocabs = []
    for name, path in (("a", plain), ("b", zipped), ("c", jsonl)):
        # (SentencePiece training is deterministic; tokenizers' WordPiece breaks count ties at random)
        train_vocab(path, "sentencepiece", 600, tmp_path / f"out_{name}")
        vocabs.append((tmp_path / f"out_{name}/spiece.model").read_bytes())
    assert vocabs[0] == vocabs[1] == vocabs[2]


def test_corpus_folder_and_blank_lines(tmp_path):
    # Vocabularies read a folder as pretraining does: every non-hidden file (WikiExtractor's shards have no
    # suffix), sorted by name, blank lines skipped.
    (tmp_path / "docs").mkdir()
    _write(tmp_path / "docs/one.txt", ["first", "", "   ", "second"])
    _write(tmp_path / "docs/wiki_00", ["third"])
    _write(tmp_path / "docs/.hidden.txt", ["not read"])
    assert list(iter_corpus([tmp_path / "docs"])) == ["first", "second", "third"]


def test_vocabulary_reads_the_text_pretraining_reads(tmp_path, sst):
    from jaxbert.data.corpus import read_documents

    jsonl = _write(tmp_path / "d.jsonl", [json.dumps({"body": "\n".join(sst[i:i + 3])}) for i in range(0, 90, 3)])
    sentences = [s for doc in read_documents([jsonl], text_field="body") for s in doc]
    assert list(iter_corpus([jsonl], text_field="body")) == sentences == [line.strip() for line in sst[:90]]


def test_non_utf8_names_file_and_line(tmp_path, shakespeare):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nsecond line\ncaf\xe9 latin-1 line\n")
    for kind in ("wordpiece", "bpe", "sentencepiece"):
        bad_byte = r"bad\.txt, line 3: invalid UTF-8 byte 0xe9 at byte 4; .*--encoding-errors replace"
        with pytest.raises(CorpusError, match=bad_byte) as info:
            train_vocab(bad, kind, 300, tmp_path / f"out_{kind}")
        assert "\n" not in str(info.value)
        assert not (tmp_path / f"out_{kind}").exists()  # nothing written half-way
    assert list(iter_corpus([bad], errors="replace"))[2] == "caf\ufffd latin-1 line"
    good = _write(tmp_path / "good.txt", shakespeare[:3000])
    tok = train_vocab([good, bad], "wordpiece", 500, tmp_path / "replaced", errors="replace")
    assert tok.vocab_size == 500


def test_bad_corpus_inputs(tmp_path):
    with pytest.raises(CorpusError, match=r"corpus path .*missing\.txt not found"):
        train_vocab(tmp_path / "missing.txt", "wordpiece", 100, tmp_path / "out")
    empty = _write(tmp_path / "empty.txt", ["", "  "])
    with pytest.raises(CorpusError, match="no text lines"):
        train_vocab(empty, "wordpiece", 100, tmp_path / "out")
    no_text = _write(tmp_path / "x.jsonl", ['{"text": "ok"}', '{"body": "no text field"}'])
    with pytest.raises(CorpusError, match=r"x\.jsonl, line 2: no string field 'text'"):
        list(iter_corpus([no_text]))
    broken = _write(tmp_path / "y.jsonl", ["{not json"])
    with pytest.raises(CorpusError, match=r"y\.jsonl, line 1: invalid JSON"):
        list(iter_corpus([broken]))
    with pytest.raises(TokenizerError, match="not one of"):
        train_vocab(empty, "wordpeace", 100, tmp_path / "out")
    with pytest.raises(TokenizerError, match="size >= 261"):
        train_vocab(empty, "bpe", 100, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_sentencepiece_size_too_large_is_a_clear_error(tmp_path):
    tiny = _write(tmp_path / "tiny.txt", ["a b c", "d e f"])
    with pytest.raises(TokenizerError, match="Vocabulary size too high") as info:
        train_vocab(tiny, "sentencepiece", 500, tmp_path / "out")
    assert "\n" not in str(info.value)


# ---- command line ------------------------------------------------------------------------------------------
def test_cli_vocab_trains_and_reports(tmp_path, shakespeare, capsys):
    corpus = _write(tmp_path / "c.txt", shakespeare[:3000])
    args = ["vocab", "--corpus", str(corpus), "--kind", "sentencepiece", "--size", "700", "--out", str(tmp_path / "v")]
    assert cli.main(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["kind"] == "sentencepiece" and report["vocab_size"] == 700
    assert report["special"] == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    assert isinstance(load_tokenizer(tmp_path / "v"), SentencePieceTokenizer)
    args = ["vocab", "--corpus", str(corpus), "--kind", "wordpiece", "--size", "400", "--out", str(tmp_path / "w")]
    assert cli.main([*args, "--cased"]) == 0
    assert load_tokenizer(tmp_path / "w").encode("The") != load_tokenizer(tmp_path / "w").encode("the")


def test_cli_vocab_errors_are_one_line(tmp_path, capsys):
    args = ["vocab", "--corpus", str(tmp_path / "nope.txt"), "--kind", "bpe", "--size", "300", "--out", str(tmp_path)]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("jaxbert vocab: error:") and "nope.txt" in err and "\n" not in err


# ---- ALBERT's text clean-up ------------------------------------------------------------------------------------
TEXTS = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" \t\n\u3000\u00a0`'\"ΣσςİÅéñ中ﬁ①\u0301\u200b")),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.booleans(), st.booleans(), st.booleans())
def test_albert_clean_tracks_every_character(text, lowercase, keep_accents, remove_space):
    clean, origins = albert_clean(text, lowercase, keep_accents, remove_space)
    assert clean == albert_clean_text(text, lowercase, keep_accents, remove_space)
    assert len(origins) == len(clean)
    for (start, end), previous in zip(origins, [(0, 0), *origins], strict=False):
        assert 0 <= start < end <= len(text)
        assert start >= previous[0]  # spans move left to right


def test_albert_clean_spans_read_back():
    text = "  Ångström ``quoted''\t\tﬁne  "
    clean, origins = albert_clean(text)
    assert clean == 'angstrom "quoted" fine'
    spans = [text[start:end] for start, end in origins]
    assert spans[:3] == ["Å", "n", "g"]  # the a of Å (its ring is stripped) maps back to Å
    assert spans[9] == "``" and spans[16] == "''"  # each " spans both quote marks it replaced
    assert spans[17] == "\t\t"  # one space stands for the run of whitespace
    assert spans[18] == spans[19] == "ﬁ"  # f and i both come from the ligature


# ---- benchmark ------------------------------------------------------------------------------------------------------
def test_benchmark_encode_counts_tokens(minilm_dir, sst):
    tok = load_tokenizer(minilm_dir)
    lines = sst[:300]
    result = benchmark_encode(tok, lines, batch_size=64, max_length=64, repeats=1)
    assert result["tokens"] == sum(len(ids) for ids in tok.encode_batch(lines))
    assert result["call_tokens"] == int(tok(lines, max_length=64)["attention_mask"].sum())
    assert result["lines"] == 300 and result["tokens_per_s"] > 0 and result["kind"] == "wordpiece"


# ---- reproducibility ------------------------------------------------------------------------------------
def _pd_text(shared_data: Path, n: int) -> list[str]:
    """People's Daily lines with the PKU tags stripped: ~3,000 distinct characters, more than limit_alphabet."""
    lines = _lines(shared_data / "zh/peoples_daily/199801-train.txt", n)
    return ["".join(w.rsplit("/", 1)[0] for w in line.split()) for line in lines]


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "sentencepiece"])
def test_three_vocab_runs_give_identical_files(kind, tmp_path, shared_data, shakespeare):
    """Each `jaxbert vocab` run is its own process, as a rerun is: Rust's HashMap seeds differ per process."""
    import subprocess
    import sys

    corpus = _write(tmp_path / "c.txt", shakespeare[:3000] + _pd_text(shared_data, 600))
    outs = []
    for run in range(3):
        out = tmp_path / f"run{run}"
        subprocess.run([sys.executable, "-m", "jaxbert.cli", "vocab", "--corpus", str(corpus), "--kind", kind,
                        "--size", "4000", "--out", str(out)], check=True, capture_output=True)
        outs.append({f.name: f.read_bytes() for f in sorted(out.iterdir())})
    assert outs[0] and outs[0] == outs[1] == outs[2]
    if kind == "wordpiece":  # the limit_alphabet path was taken: more distinct characters than 1000
        assert len({c for line in _pd_text(shared_data, 600) for c in line}) > 1000
        vocab = outs[0]["vocab.txt"].decode().split("\n")
        assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
