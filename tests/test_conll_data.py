"""CoNLL-2003: real file counts, first-sub-token label alignment against transformers' word_ids recipe,
round trip gold tags -> features -> words, truncation, and named errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxbert.data.conll import (
    IGNORE,
    STANDARD_TAGS,
    ConllDataError,
    encode_conll,
    label_list,
    predictions_to_words,
    read_conll,
    tag_counts,
)
from jaxbert.tokenize import load_tokenizer

SUBSET = 1500


@pytest.fixture(scope="module")
def tok(minilm_dir: Path):
    """bert-base-uncased WordPiece, as jaxbert loads it from the MiniLM checkpoint."""
    return load_tokenizer(minilm_dir)


@pytest.fixture(scope="module")
def sentences(shared_data: Path):
    return read_conll(shared_data / "conll2003" / "train.txt")


@pytest.fixture(scope="module")
def features(sentences, tok):
    return encode_conll(sentences[:SUBSET], tok, STANDARD_TAGS, max_length=160)


def test_reads_the_standard_train_split(sentences):
    # shared/data README: 14,041 sentences, 203,621 tokens, B- tags PER 6,600 / LOC 7,140 / ORG 6,321 / MISC 3,438.
    assert len(sentences) == 14041
    assert sum(len(s.words) for s in sentences) == 203621
    counts = tag_counts(sentences)
    assert (counts["B-PER"], counts["B-LOC"], counts["B-ORG"], counts["B-MISC"]) == (6600, 7140, 6321, 3438)
    first = sentences[0]
    assert first.words[:3] == ("EU", "rejects", "German") and first.tags[:3] == ("B-ORG", "O", "B-MISC")
    assert first.pos[:2] == ("NNP", "VBZ") and first.chunks[:2] == ("B-NP", "B-VP") and first.line == 1
    assert all(len(s.words) == len(s.tags) == len(s.pos) for s in sentences)


def test_label_list_from_data_is_sorted_and_stable(sentences):
    tags = label_list(sentences)
    assert set(tags) == set(STANDARD_TAGS) and tags[0] == "O"
    assert tags == label_list(reversed(sentences))
    assert tags == ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert label_list() == STANDARD_TAGS


def test_alignment_matches_transformers_word_ids_recipe(sentences, features, minilm_dir: Path):
    """The token-classification recipe of transformers' run_ner: the tag on each word's first token, -100 elsewhere."""
    transformers = pytest.importorskip("transformers")
    reference = transformers.AutoTokenizer.from_pretrained(str(minilm_dir))
    subset = sentences[:SUBSET]
    enc = reference([list(s.words) for s in subset], is_split_into_words=True, max_length=160,
                    padding="max_length", truncation=True)
    np.testing.assert_array_equal(features.input_ids, np.asarray(enc["input_ids"]))
    tag_id = {t: i for i, t in enumerate(STANDARD_TAGS)}
    multi_piece_words = 0
    for i, sentence in enumerate(subset):
        word_ids = enc.word_ids(i)
        expected, previous = [], None
        for w in word_ids:
            expected.append(IGNORE if w is None or w == previous else tag_id[sentence.tags[w]])
            previous = w
        assert features.labels[i].tolist() == expected, f"sentence {i}"
        assert features.word_ids[i].tolist() == [-1 if w is None else w for w in word_ids]
        pieces = np.bincount(features.word_ids[i][features.word_ids[i] >= 0], minlength=len(sentence.words))
        multi_piece_words += int((pieces > 1).sum())
    assert multi_piece_words > 1000, "the subset should exercise words split into several pieces"
    assert not features.truncated.any()


def test_gold_tags_round_trip_through_features(sentences, features):
    subset = sentences[:SUBSET]
    # Ignored positions carry a wrong tag on purpose: only first pieces may be read back.
    as_predictions = np.where(features.labels == IGNORE, STANDARD_TAGS.index("B-MISC"), features.labels)
    back = predictions_to_words(as_predictions, features.word_ids, features.num_words)
    assert back == [list(s.tags) for s in subset]
    logits = np.eye(len(STANDARD_TAGS), dtype=np.float32)[as_predictions]
    assert predictions_to_words(logits, features.word_ids, features.num_words) == back


def test_truncated_words_are_counted_and_default_to_o(sentences, tok):
    long = max(sentences[:500], key=lambda s: len(s.words))
    feats = encode_conll([long], tok, max_length=16)
    kept = len(np.unique(feats.word_ids[0][feats.word_ids[0] >= 0]))
    assert feats.truncated[0] == len(long.words) - kept > 0
    back = predictions_to_words(np.where(feats.labels == IGNORE, 0, feats.labels), feats.word_ids, feats.num_words)
    assert back[0][:kept] == list(long.tags[:kept]) and back[0][kept:] == ["O"] * (len(long.words) - kept)


def test_docstart_and_blank_lines(tmp_path: Path):
    path = tmp_path / "mini.txt"
    path.write_text("-DOCSTART- -X- -X- O\n\nJohn NNP B-NP B-PER\nlives VBZ B-VP O\n\n\n"
                    "-DOCSTART- -X- -X- O\n\nNew NNP B-NP B-LOC\nYork NNP I-NP I-LOC\n", encoding="utf-8")
    got = read_conll(path)
    assert [(s.words, s.tags, s.line) for s in got] == [(("John", "lives"), ("B-PER", "O"), 3),
                                                        (("New", "York"), ("B-LOC", "I-LOC"), 9)]


def test_bad_files_name_file_and_line(tmp_path: Path, tok):
    path = tmp_path / "bad.txt"
    path.write_text("John NNP B-NP B-PER\nlives VBZ O\n", encoding="utf-8")
    with pytest.raises(ConllDataError, match=r"bad\.txt, line 2: 3 columns, expected 4"):
        read_conll(path)
    path.write_text("John NNP B-NP PER\n", encoding="utf-8")
    with pytest.raises(ConllDataError, match=r"bad\.txt, line 1: NER tag 'PER' is not IOB"):
        read_conll(path)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ConllDataError, match="no sentences"):
        read_conll(path)
    path.write_text("Zed NNP B-NP B-ANIMAL\n", encoding="utf-8")
    with pytest.raises(ConllDataError, match=r"\['B-ANIMAL'\] are not in the label list"):
        encode_conll(read_conll(path), tok)
    assert encode_conll(read_conll(path), tok, label_list(read_conll(path))).labels.max() == 0


def test_roberta_bpe_alignment_round_trips(sentences, shared_data: Path):
    """Byte-level BPE marks word starts with a leading space ("Ġ"); alignment goes by offsets all the same."""
    tok = load_tokenizer(shared_data / "vocab" / "roberta-base")
    subset = sentences[:400]
    feats = encode_conll(subset, tok, max_length=160)
    assert not feats.truncated.any()
    for i, sentence in enumerate(subset):
        labelled = np.flatnonzero(feats.labels[i] != IGNORE)
        # One labelled token per word, in word order, each the first token of its word.
        assert feats.word_ids[i][labelled].tolist() == list(range(len(sentence.words)))
        pieces = tok.convert_ids_to_tokens(feats.input_ids[i][labelled])
        assert all(p.lstrip("Ġ") and sentence.words[w].startswith(p.lstrip("Ġ")) for w, p in enumerate(pieces)
                   if p.isascii() and p.lstrip("Ġ").isalnum())
    back = predictions_to_words(np.where(feats.labels == IGNORE, 0, feats.labels), feats.word_ids, feats.num_words)
    assert back == [list(s.tags) for s in subset]
