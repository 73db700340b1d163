"""SQuAD: reading, document-stride windows on real data, gold answers recovered through offsets, n-best
postprocessing back to the exact original text (unicode included), v2.0 null answers, bad answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxbert.data.squad import (
    CLS_INDEX,
    SquadDataError,
    SquadExample,
    doc_windows,
    postprocess_squad,
    read_squad,
    squad_features,
)
from jaxbert.tokenize import load_tokenizer

# Articles with many non-ASCII contexts (accents, IPA, Tibetan and Sanskrit transliterations).
UNICODE_ARTICLES = ("Beyoncé", "Frédéric_Chopin", "Sino-Tibetan_relations_during_the_Ming_dynasty", "Buddhism")
MAX_SEQ, STRIDE, MAX_QUERY = 128, 32, 64


@pytest.fixture(scope="module")
def tok(minilm_dir: Path):
    """bert-base-uncased WordPiece, as jaxbert loads it from the MiniLM checkpoint."""
    return load_tokenizer(minilm_dir)


@pytest.fixture(scope="module")
def reference_tok(minilm_dir: Path):
    """transformers' own fast tokenizer for the same checkpoint: the reference for ids and offsets."""
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(minilm_dir))


@pytest.fixture(scope="module")
def sample(shared_data: Path):
    data = read_squad(shared_data / "squad" / "train-sample.json")
    return data, [e for e in data.examples if e.title in UNICODE_ARTICLES]


@pytest.fixture(scope="module")
def windows(sample, tok):
    _, examples = sample
    return examples, squad_features(examples, tok, max_seq_len=MAX_SEQ, doc_stride=STRIDE, max_query_len=MAX_QUERY)


def test_reads_the_whole_sample(sample):
    data, subset = sample
    # README of shared/data: 44 articles, 11,877 questions, one answer each, all answerable.
    assert len(data) == 11877 and data.version == "1.1" and not data.skipped
    assert len({e.title for e in data.examples}) == 44
    assert len({e.id for e in data.examples}) == 11877
    assert all(len(e.answers) == 1 and not e.is_impossible for e in data.examples)
    assert sum(any(ord(c) > 127 for c in e.context) for e in subset) > 1000


_BOUNDS: dict[tuple[int, str], tuple[set[int], set[int]]] = {}


def _token_bounds(reference_tok, context: str) -> tuple[set[int], set[int]]:
    """Character positions where the reference tokenizer's tokens of `context` start and end."""
    key = (id(reference_tok), context)
    if key in _BOUNDS:
        return _BOUNDS[key]
    offsets = reference_tok(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    _BOUNDS[key] = {s for s, _ in offsets}, {e for _, e in offsets}
    return _BOUNDS[key]


def test_gold_answers_come_back_through_offsets_in_every_window(windows, reference_tok):
    examples, feats = windows
    assert len(feats) > 2 * len(examples), "max_seq_len=128, doc_stride=32 should make several windows per example"
    found = np.zeros(len(examples), bool)
    misaligned = 0
    for f in range(len(feats)):
        ex = examples[feats.example_index[f]]
        answer = ex.answers[0]
        s, e = feats.start_positions[f], feats.end_positions[f]
        doc = np.flatnonzero(feats.offset_mapping[f, :, 0] >= 0)
        window_lo, window_hi = feats.offset_mapping[f, doc[0], 0], feats.offset_mapping[f, doc[-1], 1]
        if s == CLS_INDEX:
            assert e == CLS_INDEX
            # No answer here: the window does not hold all of the answer's characters.
            assert not (window_lo <= answer.start and answer.end <= window_hi) or \
                ex.context[answer.start:answer.end].strip() == ""
            continue
        assert doc[0] <= s <= e <= doc[-1] and feats.token_type_ids[f, s] == 1
        found[feats.example_index[f]] = True
        recovered = ex.context[feats.offset_mapping[f, s, 0]:feats.offset_mapping[f, e, 1]]
        starts, ends = _token_bounds(reference_tok, ex.context)
        if answer.start in starts and answer.end in ends:
            assert recovered == answer.text, ex.id
        else:
            # The annotator cut inside a token ("Rober" of "Roberson"): the span is the smallest token cover.
            assert answer.text in recovered and len(recovered) > len(answer.text), ex.id
            misaligned += 1
    assert found.all(), "every answer fits in a 128-token window, so some window must hold it"
    assert misaligned < 0.01 * len(feats)


def test_windows_follow_bert_doc_stride(windows, tok, reference_tok):
    examples, feats = windows
    by_example: dict[int, list[int]] = {}
    for f, ex in enumerate(feats.example_index):
        by_example.setdefault(int(ex), []).append(f)
    cls, sep, pad = tok.special.cls, tok.special.sep, tok.special.pad
    for index in list(by_example)[::7]:
        ex, rows = examples[index], by_example[index]
        doc_ids = reference_tok(ex.context, add_special_tokens=False)["input_ids"]
        q_ids = reference_tok(ex.question, add_special_tokens=False)["input_ids"][:MAX_QUERY]
        max_doc = MAX_SEQ - len(q_ids) - 3
        expected = doc_windows(len(doc_ids), max_doc, STRIDE)
        assert len(rows) == len(expected)
        for f, (start, length) in zip(rows, expected, strict=True):
            ids = feats.input_ids[f].tolist()
            head = [cls, *q_ids, sep]
            assert ids[:len(head)] == head
            assert ids[len(head):len(head) + length] == doc_ids[start:start + length]
            assert ids[len(head) + length] == sep and set(ids[len(head) + length + 1:]) <= {pad}
            n = len(head) + length + 1
            assert feats.attention_mask[f].tolist() == [1] * n + [0] * (MAX_SEQ - n)
            assert feats.token_type_ids[f].tolist() == [0] * len(head) + [1] * (length + 1) + [0] * (MAX_SEQ - n)
        # Windows start doc_stride apart and the last one reaches the end of the document.
        assert [s for s, _ in expected] == [STRIDE * k for k in range(len(expected))]
        assert expected[-1][0] + expected[-1][1] == len(doc_ids)
        # Every document token is scored in exactly one window: the one where it has most context.
        scored = sum(feats.token_is_max_context[f].sum() for f in rows)
        assert scored == len(doc_ids)


def oracle_logits(feats, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise everywhere, plus a clear peak on the gold start/end of the windows holding the answer."""
    start = rng.normal(size=feats.input_ids.shape).astype(np.float32)
    end = rng.normal(size=feats.input_ids.shape).astype(np.float32)
    rows = np.arange(len(feats))
    has = feats.start_positions != CLS_INDEX
    start[rows[has], feats.start_positions[has]] += 20.0
    end[rows[has], feats.end_positions[has]] += 20.0
    return start, end


def test_postprocessing_recovers_gold_text_from_windowed_logits(windows, reference_tok):
    examples, feats = windows
    start, end = oracle_logits(feats, np.random.default_rng(0))
    preds = postprocess_squad(examples, feats, start, end, n_best_size=20, max_answer_length=30)
    correct = 0
    for ex in examples:
        starts, ends = _token_bounds(reference_tok, ex.context)
        answer = ex.answers[0]
        if answer.start in starts and answer.end in ends and len(reference_tok.tokenize(answer.text)) <= 30:
            assert preds.answers[ex.id] == answer.text, ex.id
            correct += 1
        nbest = preds.nbest[ex.id]
        assert nbest == sorted(nbest, key=lambda p: p.score, reverse=True)
        assert len({p.text for p in nbest}) == len(nbest) <= 20
        assert abs(sum(p.probability for p in nbest) - 1.0) < 1e-6
        # Every candidate is an exact slice of the original context.
        assert all(ex.context[p.start:p.end] == p.text for p in nbest)
    assert correct > 0.97 * len(examples)


def _example(qid: str, context: str, answer: str | None, question: str = "what is it?") -> SquadExample:
    from jaxbert.data.squad import SquadAnswer

    answers = () if answer is None else (SquadAnswer(answer, context.index(answer)),)
    return SquadExample(id=qid, title="t", question=question, context=context, answers=answers,
                        is_impossible=answer is None)


UNICODE_CASES = [
    ("accents", "The singer Beyoncé Giselle Knowles-Carter was born in Houston.", "Beyoncé Giselle Knowles-Carter"),
    ("combining", "They met at the Cafe\u0301 de Flore in Paris last spring.", "Cafe\u0301 de Flore"),
    ("cjk", "The capital is 東京都 and it is large.", "東京都"),
    ("emoji", "Everyone cheered 🎉 at the naïve coöperative meeting today.", "naïve coöperative"),
    ("ipa", "Her name is pronounced /biːˈjɒnseɪ/ bee-YON-say by fans.", "/biːˈjɒnseɪ/"),
]


@pytest.mark.parametrize("qid,context,answer", UNICODE_CASES, ids=[c[0] for c in UNICODE_CASES])
def test_unicode_answers_map_back_to_the_exact_original_span(tok, qid, context, answer):
    # Long filler forces several windows, and the answer sits in the middle of the document.
    filler = " ".join(f"word{i}" for i in range(60))
    context = f"{filler} {context} {filler}"
    example = _example(qid, context, answer)
    feats = squad_features([example], tok, max_seq_len=64, doc_stride=16, max_query_len=16)
    assert len(feats) > 3
    holding = np.flatnonzero(feats.start_positions != CLS_INDEX)
    assert holding.size > 0
    for f in holding:
        s, e = feats.start_positions[f], feats.end_positions[f]
        assert context[feats.offset_mapping[f, s, 0]:feats.offset_mapping[f, e, 1]] == answer
    start, end = oracle_logits(feats, np.random.default_rng(1))
    preds = postprocess_squad([example], feats, start, end)
    assert preds.answers[qid] == answer  # not the lower-cased, accent-stripped form the tokenizer saw


def _logits_for(feats, spans: dict[tuple[int, int], tuple[float, float]], null: tuple[float, float] = (0.0, 0.0)):
    """Flat -5 logits except the given (token start, token end) -> (start logit, end logit) and CLS."""
    start = np.full(feats.input_ids.shape, -5.0, np.float32)
    end = np.full(feats.input_ids.shape, -5.0, np.float32)
    for (s, e), (ls, le) in spans.items():
        start[0, s], end[0, e] = ls, le
    start[0, CLS_INDEX], end[0, CLS_INDEX] = null
    return start, end


def test_postprocessing_rules(tok):
    context = "alpha beta gamma delta epsilon zeta eta theta"
    example = _example("q", context, "gamma")
    feats = squad_features([example], tok, max_seq_len=64, doc_stride=16)
    assert len(feats) == 1
    doc = np.flatnonzero(feats.offset_mapping[0, :, 0] >= 0)  # one token per word here
    # The end before the start, and a span longer than max_answer_length, are never answers.
    start, end = _logits_for(feats, {(doc[5], doc[1]): (9.0, 9.0), (doc[2], doc[2]): (3.0, 3.0)})
    assert postprocess_squad([example], feats, start, end).answers["q"] == "gamma"
    start, end = _logits_for(feats, {(doc[0], doc[6]): (9.0, 9.0), (doc[3], doc[3]): (1.0, 1.0)})
    assert postprocess_squad([example], feats, start, end, max_answer_length=7).answers["q"] == \
        "alpha beta gamma delta epsilon zeta eta"
    # Too long at 6: the best pair left is the alpha start with the delta end (9 + 1 beats 1 + 1 and -5s).
    assert postprocess_squad([example], feats, start, end, max_answer_length=6).answers["q"] == \
        "alpha beta gamma delta"
    # Special and question tokens are never answers, whatever their logits.
    start, end = _logits_for(feats, {(1, 1): (50.0, 50.0), (doc[4], doc[4]): (2.0, 2.0)})
    assert postprocess_squad([example], feats, start, end).answers["q"] == "epsilon"


def test_version_2_null_answer_threshold(tok):
    context = "alpha beta gamma delta epsilon"
    example = _example("q", context, None)
    feats = squad_features([example], tok, max_seq_len=64, doc_stride=16)
    assert (feats.start_positions == CLS_INDEX).all() and (feats.end_positions == CLS_INDEX).all()
    doc = np.flatnonzero(feats.offset_mapping[0, :, 0] >= 0)
    # Best span scores 4 + 4 = 8; null scores 5 + 5 = 10: null odds 10 - 8 = 2.
    start, end = _logits_for(feats, {(doc[1], doc[2]): (4.0, 4.0)}, null=(5.0, 5.0))
    preds = postprocess_squad([example], feats, start, end, version_2=True, null_score_diff_threshold=0.0)
    assert preds.answers["q"] == "" and preds.null_odds["q"] == pytest.approx(2.0)
    assert preds.nbest["q"][0].text == ""
    preds = postprocess_squad([example], feats, start, end, version_2=True, null_score_diff_threshold=2.5)
    assert preds.answers["q"] == "beta gamma"
    # v1.1 never answers with the null span.
    assert postprocess_squad([example], feats, start, end).answers["q"] == "beta gamma"


def _write_squad(tmp_path: Path, qas: list[dict], context: str, version: str = "1.1") -> Path:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": version, "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": qas}]}]}), encoding="utf-8")
    return path


def test_version_2_file_with_impossible_questions(tmp_path: Path, tok):
    context = "The river flows north into the sea."
    path = _write_squad(tmp_path, [
        {"id": "a1", "question": "Where does it flow?", "answers": [{"text": "north", "answer_start": 16}],
         "is_impossible": False},
        {"id": "n1", "question": "Who built it?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "river", "answer_start": 4}]},
    ], context, version="v2.0")
    data = read_squad(path)
    assert data.version == "v2.0" and [e.is_impossible for e in data.examples] == [False, True]
    assert data.examples[1].answers == ()
    feats = squad_features(data.examples, tok, max_seq_len=32, doc_stride=8)
    assert feats.start_positions[1] == CLS_INDEX and feats.start_positions[0] != CLS_INDEX


def test_bad_answer_offset_names_the_question(tmp_path: Path):
    context = "Paris is the capital of France."
    qas = [{"id": "good", "question": "capital?", "answers": [{"text": "Paris", "answer_start": 0}]},
           {"id": "q-off-by-one", "question": "country?", "answers": [{"text": "France", "answer_start": 23}]}]
    path = _write_squad(tmp_path, qas, context)
    with pytest.raises(SquadDataError, match=r"question q-off-by-one: answer 'France'.*answer_start 23"):
        read_squad(path)
    data = read_squad(path, on_bad_answer="skip")
    assert [e.id for e in data.examples] == ["good"] and data.skipped["bad_answer"] == 1


def test_bad_files_and_settings(tmp_path: Path, tok):
    with pytest.raises(SquadDataError, match="does not exist"):
        read_squad(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SquadDataError, match="broken.json"):
        read_squad(tmp_path / "broken.json")
    example = _example("q", "a short context here", "short", question="word " * 40)
    with pytest.raises(SquadDataError, match="max_seq_len"):
        squad_features([example], tok, max_seq_len=16, max_query_len=64)


# ---- RoBERTa's byte-level BPE: another pair template (<s> q </s></s> d </s>) and other offsets -----------


@pytest.fixture(scope="module")
def roberta(shared_data: Path):
    transformers = pytest.importorskip("transformers")
    vocab = shared_data / "vocab" / "roberta-base"
    reference = transformers.RobertaTokenizerFast.from_pretrained(str(vocab))
    return load_tokenizer(vocab), reference


def test_roberta_windows_match_its_pair_template_and_recover_answers(sample, roberta):
    tok, reference = roberta
    _, subset = sample
    examples = subset[:400]
    # One window per short example: the feature is exactly transformers' pair encoding of (question, context).
    whole = squad_features(examples, tok, max_seq_len=512, doc_stride=128, max_query_len=64)
    one_window = [i for i in range(len(examples)) if (whole.example_index == i).sum() == 1][:100]
    assert len(one_window) > 50
    for i in one_window:
        f = int(np.flatnonzero(whole.example_index == i)[0])
        want = reference(examples[i].question, examples[i].context)["input_ids"]
        assert whole.input_ids[f, :len(want)].tolist() == want
        assert whole.attention_mask[f].sum() == len(want) and not whole.token_type_ids[f].any()
    # Many windows: gold answers come back through the BPE offsets wherever they sit on token boundaries.
    feats = squad_features(examples, tok, max_seq_len=MAX_SEQ, doc_stride=STRIDE, max_query_len=MAX_QUERY)
    checked = 0
    for f in np.flatnonzero(feats.start_positions != CLS_INDEX):
        ex = examples[feats.example_index[f]]
        answer = ex.answers[0]
        s, e = feats.start_positions[f], feats.end_positions[f]
        recovered = ex.context[feats.offset_mapping[f, s, 0]:feats.offset_mapping[f, e, 1]]
        starts, ends = _token_bounds(reference, ex.context)
        assert answer.text in recovered
        if answer.start in starts and answer.end in ends:
            assert recovered == answer.text, ex.id
            checked += 1
    assert checked > 0.95 * len(np.flatnonzero(feats.start_positions != CLS_INDEX))
