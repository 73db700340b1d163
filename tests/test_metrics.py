"""jaxbert.evaluate against its references: scikit-learn, scipy.stats, seqeval, and the SQuAD scripts' rules.

Randomized checks draw many small seeded cases; SQuAD cases are hand-made, their expected values
worked out in the comments, plus random cases checked against a plain re-statement of the official
scripts written here.
"""

from __future__ import annotations

import json
import math
import re
import string
import warnings
from collections import Counter

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics
from seqeval import metrics as seqeval_metrics
from seqeval import scheme as seqeval_scheme
from seqeval.metrics.sequence_labeling import get_entities as seqeval_get_entities

from jaxbert.errors import JaxbertError
from jaxbert.evaluate import (
    accuracy,
    average_ranks,
    entity_report,
    entity_scores,
    exact_match,
    f1,
    find_best_thresh,
    flatten_squad,
    get_entities,
    matthews_corrcoef,
    normalize_answer,
    pearson,
    spearman,
    squad_v1,
    squad_v2,
    task_metrics,
    task_name,
    token_f1,
)

TOL = 1e-9


def quietly(fn, *args, **kwargs):
    """Call a reference implementation with its warnings (undefined metric, constant input) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def same(ours: float, theirs: float) -> bool:
    theirs = float(theirs)
    return (math.isnan(ours) and math.isnan(theirs)) or abs(ours - theirs) <= TOL


# ---------------------------------------------------------------- classification vs scikit-learn


def random_labels(rng: np.random.Generator, n: int, k: int, as_strings: bool) -> np.ndarray:
    labels = rng.integers(0, k, size=n)
    return np.array([f"c{v}" for v in labels]) if as_strings else labels


def test_accuracy_f1_mcc_match_sklearn_on_random_multiclass():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n, k = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        as_strings = trial % 3 == 0
        preds, refs = random_labels(rng, n, k, as_strings), random_labels(rng, n, k, as_strings)
        if trial % 4 == 0:  # mostly-right predictions, so high scores are exercised too
            keep = rng.random(n) < 0.8
            preds = np.where(keep, refs, preds)
        case = f"trial {trial}: preds={preds.tolist()} refs={refs.tolist()}"
        assert same(accuracy(preds, refs), sklearn.metrics.accuracy_score(refs, preds)), case
        for average in ("macro", "micro"):
            expected = quietly(sklearn.metrics.f1_score, refs, preds, average=average)
            assert same(f1(preds, refs, average=average), expected), f"{average} {case}"
        assert same(matthews_corrcoef(preds, refs), quietly(sklearn.metrics.matthews_corrcoef, refs, preds)), case


def test_binary_f1_matches_sklearn_including_missing_positive_class():
    rng = np.random.default_rng(1)
    for trial in range(300):
        n = int(rng.integers(1, 30))
        # Label sets {0,1}, {0} only, {1} only, and string labels with their own positive label.
        kind = trial % 4
        if kind == 3:
            preds, refs, pos = rng.choice(["no", "yes"], size=n), rng.choice(["no", "yes"], size=n), "yes"
        else:
            values = {0: [0, 1], 1: [0], 2: [1]}[kind]
            preds, refs, pos = rng.choice(values, size=n), rng.choice(values, size=n), 1
        expected = quietly(sklearn.metrics.f1_score, refs, preds, pos_label=pos)
        assert same(f1(preds, refs, pos_label=pos), expected), f"trial {trial}: {preds} {refs}"


def test_degenerate_classification_cases_match_sklearn_without_warnings():
    all_zero = np.zeros(5, dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # No positive anywhere: tp = fp = fn = 0, F1 is 0 (sklearn's zero_division default).
        assert f1(all_zero, all_zero) == 0.0
        # One class on both sides: the MCC denominator is 0, reported as 0.
        assert matthews_corrcoef(all_zero, all_zero) == 0.0
        # Predictions constant, references vary: still a zero denominator.
        assert matthews_corrcoef(all_zero, [0, 1, 0, 1, 1]) == 0.0
    assert quietly(sklearn.metrics.f1_score, all_zero, all_zero) == 0.0
    assert quietly(sklearn.metrics.matthews_corrcoef, all_zero, all_zero) == 0.0


def test_mcc_binary_case_worked_by_hand():
    # refs [1,1,1,0], preds [1,0,1,1]: TP=2, FN=1, FP=1, TN=0 -> (2*0 - 1*1) / sqrt(3*3*1*1) = -1/3.
    assert abs(matthews_corrcoef([1, 0, 1, 1], [1, 1, 1, 0]) - (-1 / 3)) < TOL
    # Perfect 3-class prediction: MCC 1; perfectly swapped binary: MCC -1.
    assert abs(matthews_corrcoef([0, 1, 2, 2], [0, 1, 2, 2]) - 1.0) < TOL
    assert abs(matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, 1]) + 1.0) < TOL


@pytest.mark.parametrize(
    "call",
    [
        lambda: accuracy([1, 0], [1]),
        lambda: accuracy([], []),
        lambda: accuracy([[1, 0]], [[1, 0]]),
        lambda: f1([0, 1, 2], [0, 1, 2]),  # three labels cannot be binary
        lambda: f1([0, 2], [2, 0]),  # two labels, neither is pos_label=1
        lambda: f1([0, 1], [0, 1], average="weighted"),
        lambda: matthews_corrcoef([1, 2, 3], [1, 2]),
    ],
)
def test_bad_classification_input_raises_jaxbert_error(call):
    with pytest.raises(JaxbertError):
        call()


# ---------------------------------------------------------------- correlation vs scipy.stats


def test_pearson_spearman_match_scipy_with_ties():
    rng = np.random.default_rng(2)
    for trial in range(300):
        n = int(rng.integers(2, 40))
        x = rng.normal(size=n) * 10.0 ** rng.integers(-3, 4)
        y = 0.5 * x + rng.normal(size=n)
        if trial % 2 == 0:  # coarse rounding makes many ties, as STS-B's 0-5 scores have
            x, y = np.round(x, 0), np.round(y * 2) / 2
        case = f"trial {trial}: x={x.tolist()} y={y.tolist()}"
        assert same(pearson(x, y), quietly(scipy.stats.pearsonr, x, y).statistic), case
        assert same(spearman(x, y), quietly(scipy.stats.spearmanr, x, y).statistic), case


def test_average_ranks_match_scipy_rankdata():
    rng = np.random.default_rng(3)
    for _ in range(200):
        values = rng.integers(0, 6, size=int(rng.integers(1, 30))).astype(float)
        np.testing.assert_array_equal(average_ranks(values), scipy.stats.rankdata(values, method="average"))


def test_degenerate_correlations_are_nan_as_in_scipy():
    constant, varying = [2.0, 2.0, 2.0], [1.0, 2.0, 3.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ours warns about nothing
        assert math.isnan(pearson(constant, varying))
        assert math.isnan(spearman(varying, constant))
        assert math.isnan(pearson([1.0, float("nan"), 3.0], varying))
        assert math.isnan(spearman([1.0, float("nan"), 3.0], varying))
        # Two points are always perfectly (anti-)correlated.
        assert pearson([0.0, 1.0], [5.0, 3.0]) == -1.0
    assert math.isnan(quietly(scipy.stats.pearsonr, constant, varying).statistic)
    assert math.isnan(quietly(scipy.stats.spearmanr, varying, constant).statistic)
    with pytest.raises(JaxbertError):
        pearson([1.0], [2.0])
    with pytest.raises(JaxbertError):
        spearman([1.0, 2.0], [2.0, 3.0, 4.0])


# ---------------------------------------------------------------- SQuAD, hand-made cases


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The  Quick, Brown fox!", "quick brown fox"),  # lower, punctuation and article out, spaces collapsed
        ("An apple AND the pear", "apple and pear"),
        ("Theatre and Anthem", "theatre and anthem"),  # articles only as whole words
        ("a.b", "ab"),  # punctuation goes first, joining the letters
        ("the-end", "theend"),  # "-" goes before articles are looked for, so "the" is no longer a word
        ("(the) answer", "answer"),  # ...while "(the)" becomes the word "the", then removed
        ("L'été à Paris", "lété à paris"),  # ASCII apostrophe removed, accents kept
        ("«Beyoncé» — Halo", "«beyoncé» — halo"),  # non-ASCII punctuation is not removed (string.punctuation)
        ("anécdota the école", "anécdota école"),  # "é" is a word character: "an" inside "anécdota" stays
        ("ÆTHER", "æther"),
        ("", ""),
        ("  the a an ", ""),
    ],
)
def test_normalize_answer_follows_the_official_rules(text, normalized):
    assert normalize_answer(text) == normalized


def test_exact_match_and_token_f1_worked_by_hand():
    assert exact_match("the Eiffel Tower", "Eiffel tower.") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0.0
    assert exact_match("Café Noir", "café noir.") == 1.0
    # pred -> [cat, sat, on, mat], gold -> [cat, on, mat]: overlap 3, P = 3/4, R = 1, F1 = 2*(3/4)/(7/4) = 6/7.
    assert abs(token_f1("the cat sat on the mat", "a cat on a mat") - 6 / 7) < TOL
    # Repeated tokens count once per match: [new, new, york] vs [new, york]: overlap 2, P = 2/3, R = 1 -> 0.8.
    assert abs(token_f1("new new york", "New York") - 0.8) < TOL
    # "«beyoncé»" and "beyoncé" are different tokens: no overlap.
    assert token_f1("«Beyoncé»", "Beyoncé") == 0.0
    # v1.1: an empty side scores 0 F1 (though the two empty strings are an exact match).
    assert token_f1("", "") == 0.0 and exact_match("", "") == 1.0
    # v2.0: both empty means both say "no answer" -> 1; one empty -> 0. "The" normalizes to empty.
    assert token_f1("", "", empty_is_answer=True) == 1.0
    assert token_f1("The", "", empty_is_answer=True) == 1.0
    assert token_f1("Paris", "", empty_is_answer=True) == 0.0
    assert token_f1("", "Paris", empty_is_answer=True) == 0.0


def test_squad_v1_worked_by_hand():
    references = [
        {"id": "q1", "answers": ["Saint Bernadette Soubirous"]},
        {"id": "q2", "answers": [{"text": "a copper statue of Christ"}, {"text": "copper statue"}]},
        {"id": "q3", "answers": {"text": ["the Main Building"], "answer_start": [279]}},
    ]
    # q1: [bernadette, soubirous] vs [saint, bernadette, soubirous]: EM 0, P = 1, R = 2/3, F1 = 0.8.
    # q2: "copper statue" equals the second gold: EM 1, F1 1 (the best over golds).
    # q3: no prediction: 0 and 0, still counted.  EM = 100 * 1/3, F1 = 100 * 1.8/3 = 60.
    scores = squad_v1({"q1": "Bernadette Soubirous", "q2": "Copper statue."}, references)
    assert abs(scores["exact_match"] - 100 / 3) < TOL
    assert abs(scores["f1"] - 60.0) < TOL
    aligned = squad_v1(["Bernadette Soubirous", "Copper statue.", "Main Building"], references)
    assert abs(aligned["exact_match"] - 200 / 3) < TOL and abs(aligned["f1"] - 280 / 3) < TOL


V2_REFERENCES = [
    {"id": "q1", "answers": ["Denver Broncos", "The Broncos"]},
    {"id": "q2", "answers": []},
    {"id": "q3", "answers": ["1858"]},
    {"id": "q4", "answers": []},
]
V2_PREDICTIONS = {"q1": "broncos", "q2": "", "q3": "in 1858", "q4": "Lourdes"}
V2_PROBS = {"q1": 0.1, "q2": 0.9, "q3": 0.4, "q4": 0.7}


def test_squad_v2_splits_worked_by_hand():
    # q1 EM 1 F1 1 ("the broncos" -> "broncos"); q2 EM 1 F1 1 (both empty);
    # q3 EM 0, F1: [in, 1858] vs [1858] -> P 1/2, R 1, F1 2/3; q4 EM 0 F1 0 (answer where there is none).
    scores = squad_v2(V2_PREDICTIONS, V2_REFERENCES)
    expected = {
        "exact": 50.0,
        "f1": 100 * (8 / 3) / 4,
        "total": 4,
        "HasAns_exact": 50.0,
        "HasAns_f1": 100 * (5 / 3) / 2,
        "HasAns_total": 2,
        "NoAns_exact": 50.0,
        "NoAns_f1": 50.0,
        "NoAns_total": 2,
    }
    assert scores.keys() == expected.keys()
    for key, value in expected.items():
        assert abs(scores[key] - value) < TOL, key


def test_squad_v2_threshold_and_best_threshold_worked_by_hand():
    # With threshold 0.5, q2 (0.9) and q4 (0.7) are predicted unanswerable: both right.
    # EM = (1+1+0+1)/4 = 75, F1 = (1+1+2/3+1)/4 = 91.67.
    scores = squad_v2(V2_PREDICTIONS, V2_REFERENCES, no_answer_probs=V2_PROBS, no_answer_threshold=0.5)
    assert abs(scores["exact"] - 75.0) < TOL and abs(scores["f1"] - 100 * (11 / 3) / 4) < TOL
    # Best threshold, exact: start at 2 (all abstain); q1 (0.1) +1 -> 3 (best, thresh 0.1); q3 (0.4) +0;
    # q4 (0.7) non-empty on a no-answer question -1 -> 2; q2 (0.9) empty +0.  Best 3/4 = 75 at 0.1.
    # F1: q1 +1 -> 3 at 0.1; q3 +2/3 -> 11/3 at 0.4 (best); then -1, +0.  Best (11/3)/4 = 91.67 at 0.4.
    assert abs(scores["best_exact"] - 75.0) < TOL and scores["best_exact_thresh"] == 0.1
    assert abs(scores["best_f1"] - 100 * (11 / 3) / 4) < TOL and scores["best_f1_thresh"] == 0.4
    assert find_best_thresh(
        V2_PREDICTIONS,
        {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 0.0},
        V2_PROBS,
        {"q1": True, "q2": False, "q3": True, "q4": False},
    ) == (75.0, 0.1)


def test_squad_bad_input_raises_jaxbert_error():
    with pytest.raises(JaxbertError, match="no prediction"):
        squad_v2({"q1": "x"}, V2_REFERENCES)
    with pytest.raises(JaxbertError, match="entries for"):
        squad_v1(["a"], V2_REFERENCES)
    with pytest.raises(JaxbertError, match="no gold answer"):
        squad_v1({"q2": ""}, V2_REFERENCES)
    with pytest.raises(JaxbertError, match="not unique"):
        squad_v1({}, [{"id": "a", "answers": ["x"]}, {"id": "a", "answers": ["y"]}])
    with pytest.raises(JaxbertError, match="SQuAD JSON"):
        flatten_squad({"data": [{"title": "no paragraphs"}]})


# ---------------------------------------------------------------- SQuAD, random cases vs a plain re-statement


def plain_normalize(s: str) -> str:
    s = s.lower()
    s = re.sub("[" + re.escape(string.punctuation) + "]", "", s)
    s = re.sub(r"\b(?:a|an|the)\b", " ", s)
    return " ".join(s.split())


def plain_f1(pred: str, gold: str, v2: bool) -> float:
    p, g = plain_normalize(pred).split(), plain_normalize(gold).split()
    if v2 and (len(p) == 0 or len(g) == 0):
        return 1.0 if p == g else 0.0
    same_count = sum(min(count, g.count(tok)) for tok, count in Counter(p).items())
    if same_count == 0:
        return 0.0
    precision, recall = same_count / len(p), same_count / len(g)
    return 2 * precision * recall / (precision + recall)


def plain_v1(dataset: dict, predictions: dict) -> dict:
    em = f1_total = n = 0.0
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                n += 1
                if qa["id"] in predictions:
                    golds = [a["text"] for a in qa["answers"]]
                    pred = predictions[qa["id"]]
                    em += max(float(plain_normalize(pred) == plain_normalize(g)) for g in golds)
                    f1_total += max(plain_f1(pred, g, v2=False) for g in golds)
    return {"exact_match": 100 * em / n, "f1": 100 * f1_total / n}


def plain_v2_best(dataset: dict, predictions: dict, probs: dict) -> dict:
    """Best EM / F1 by trying every threshold directly (probabilities are distinct here)."""
    qas = [qa for article in dataset["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    raw_em, raw_f1 = {}, {}
    for qa in qas:
        golds = [a["text"] for a in qa["answers"] if plain_normalize(a["text"])] or [""]
        pred = predictions[qa["id"]]
        raw_em[qa["id"]] = max(float(plain_normalize(pred) == plain_normalize(g)) for g in golds)
        raw_f1[qa["id"]] = max(plain_f1(pred, g, v2=True) for g in golds)
    out = {}
    for name, raw in (("exact", raw_em), ("f1", raw_f1)):
        # Threshold t answers the questions with probability <= t; candidates: abstain on all (0.0), or each p.
        candidates = [(0.0, [])] + [(probs[q["id"]], [o for o in qas if probs[o["id"]] <= probs[q["id"]]]) for q in qas]
        best_value, best_t = -1.0, None
        for t, answered in sorted(candidates, key=lambda c: len(c[1])):
            ids = {qa["id"] for qa in answered}
            value = 0.0
            for qa in qas:
                has = bool(qa["answers"])
                if qa["id"] not in ids:
                    value += 0.0 if has else 1.0
                elif has:
                    value += raw[qa["id"]]
                else:  # the official rule: a non-empty raw prediction on a no-answer question scores 0
                    value += 0.0 if predictions[qa["id"]] else 1.0
            if value > best_value:
                best_value, best_t = value, t
        out[f"best_{name}"], out[f"best_{name}_thresh"] = 100 * best_value / len(qas), best_t
    return out


# Words that exercise the normalizer: articles, case, accents, non-ASCII and ASCII punctuation.
WORDS = ["the", "a", "an", "The", "Paris", "paris", "café", "Café", "théâtre", "anécdota", "1858"]
WORDS += ["new", "york", "«x»", "l'été", "U.S.", "!", "--", "statue", "of", "Christ"]


def random_text(rng: np.random.Generator, max_words: int) -> str:
    words = rng.choice(WORDS, size=int(rng.integers(0, max_words + 1)))
    seps = rng.choice([" ", "  ", ", ", "\t"], size=len(words))
    return "".join(w + s for w, s in zip(words, seps, strict=True)).strip(" ") if len(words) else ""


def random_squad(rng: np.random.Generator, n: int, unanswerable: float) -> dict:
    qas = []
    for i in range(n):
        answers = (
            [] if rng.random() < unanswerable else [{"text": random_text(rng, 4)} for _ in range(rng.integers(1, 4))]
        )
        qas.append({"id": f"q{i}", "question": "?", "answers": answers})
    return {
        "version": "x",
        "data": [
            {"title": "t", "paragraphs": [{"context": "", "qas": qas[: n // 2]}, {"context": "", "qas": qas[n // 2 :]}]}
        ],
    }


def test_squad_v1_matches_plain_restatement_on_random_data():
    rng = np.random.default_rng(4)
    for trial in range(60):
        dataset = random_squad(rng, int(rng.integers(1, 12)), unanswerable=0.0)
        references = flatten_squad(json.loads(json.dumps(dataset)))
        predictions = {r["id"]: random_text(rng, 5) for r in references if rng.random() < 0.9}
        ours, theirs = squad_v1(predictions, references), plain_v1(dataset, predictions)
        for key in ("exact_match", "f1"):
            assert abs(ours[key] - theirs[key]) < TOL, f"trial {trial} {key}: {dataset} {predictions}"


def test_squad_v2_best_thresholds_match_exhaustive_search_on_random_data():
    rng = np.random.default_rng(5)
    for trial in range(60):
        dataset = random_squad(rng, int(rng.integers(1, 12)), unanswerable=0.4)
        references = flatten_squad(dataset)
        predictions = {r["id"]: random_text(rng, 3) for r in references}
        probs = {r["id"]: float(p) for r, p in zip(references, rng.random(len(references)), strict=True)}
        ours, theirs = (
            squad_v2(predictions, references, no_answer_probs=probs),
            plain_v2_best(dataset, predictions, probs),
        )
        for key, value in theirs.items():
            assert abs(ours[key] - value) < TOL, f"trial {trial} {key}: {ours} {theirs}"
        # At threshold 1.0 nothing is abstained: "exact" is the mean raw score.
        no_thresh = squad_v2(predictions, references)
        assert no_thresh["exact"] <= ours["best_exact"] + TOL and no_thresh["f1"] <= ours["best_f1"] + TOL


def test_squad_on_real_sample_gold_answers_score_100(shared_data):
    references = flatten_squad(json.loads((shared_data / "squad" / "train-sample.json").read_text()))
    assert len(references) == 11_877
    gold = {r["id"]: r["answers"][0] for r in references}
    assert squad_v1(gold, references) == {"exact_match": 100.0, "f1": 100.0}
    empty = squad_v2({r["id"]: "" for r in references}, references)
    assert empty["exact"] == 0.0 and empty["HasAns_total"] == 11_877 and "NoAns_total" not in empty


# ---------------------------------------------------------------- entities vs seqeval

TYPES = ["PER", "LOC", "ORG"]


def random_tags(rng: np.random.Generator, prefixes: str, n_sentences: int, bare: bool = False) -> list[list[str]]:
    vocab = ["O", "O"] + [f"{p}-{t}" for p in prefixes for t in TYPES] + (list(prefixes) if bare else [])
    return [list(rng.choice(vocab, size=int(rng.integers(0, 10)))) for _ in range(n_sentences)]


def perturb(rng: np.random.Generator, sentences: list[list[str]], pool: list[list[str]]) -> list[list[str]]:
    """A prediction: each reference tag kept with probability 0.7, else replaced by a tag from `pool`."""
    flat_pool = [t for s in pool for t in s] or ["O"]
    return [[t if rng.random() < 0.7 else str(rng.choice(flat_pool)) for t in s] for s in sentences]


def check_against_seqeval(refs, preds, scheme, seqeval_kwargs, case):
    ours = entity_scores(preds, refs, scheme=scheme)
    for key, fn in (
        ("precision", seqeval_metrics.precision_score),
        ("recall", seqeval_metrics.recall_score),
        ("f1", seqeval_metrics.f1_score),
    ):
        assert same(ours[key], quietly(fn, refs, preds, **seqeval_kwargs)), f"{key} {case}"
    report = entity_report(preds, refs, scheme=scheme)
    expected = quietly(seqeval_metrics.classification_report, refs, preds, output_dict=True, **seqeval_kwargs)
    assert report.keys() == expected.keys(), case
    for row, values in expected.items():
        for key, theirs in (
            ("precision", values["precision"]),
            ("recall", values["recall"]),
            ("f1", values["f1-score"]),
            ("support", values["support"]),
        ):
            assert same(report[row][key], theirs), f"{row}/{key} {case}"


def test_default_mode_matches_seqeval_on_random_iob_and_iobes_tags():
    rng = np.random.default_rng(6)
    for trial in range(200):
        prefixes = ["BI", "BIES", "I"][trial % 3]  # IOB2/IOB1-like, IOBES, and I-only (every entity lacks its B-)
        refs = random_tags(rng, prefixes, int(rng.integers(1, 6)), bare=trial % 5 == 0)
        preds = perturb(rng, refs, random_tags(rng, prefixes, 3))
        case = f"trial {trial}: refs={refs} preds={preds}"
        for sentence in refs:
            assert get_entities(sentence) == seqeval_get_entities(sentence), case
        check_against_seqeval(refs, preds, None, {}, case)


@pytest.mark.parametrize(("scheme", "prefixes"), [("IOB2", "BI"), ("IOB1", "BI"), ("IOBES", "BIES")])
def test_strict_mode_matches_seqeval_strict(scheme, prefixes):
    rng = np.random.default_rng(7)
    seqeval_class = getattr(seqeval_scheme, scheme)
    for trial in range(150):
        refs = random_tags(rng, prefixes, int(rng.integers(1, 6)))
        preds = perturb(rng, refs, random_tags(rng, prefixes, 3))
        case = f"{scheme} trial {trial}: refs={refs} preds={preds}"
        for n, sentence in enumerate(refs):
            theirs = seqeval_scheme.Tokens(sentence, seqeval_class, sent_id=n).entities
            assert [(t, s, e) for t, s, e in get_entities(sentence, scheme)] == [
                (e.tag, e.start, e.end - 1) for e in theirs
            ], case
        check_against_seqeval(refs, preds, scheme, {"mode": "strict", "scheme": seqeval_class}, case)


def test_entities_worked_by_hand():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]
    # conlleval: I-LOC after O opens LOC; B-LOC opens another; I-ORG after a LOC opens ORG.
    assert get_entities(tags) == [("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 4), ("ORG", 5, 5)]
    # Strict IOB2 keeps only chunks that open with B-: I-LOC and I-ORG are dropped.
    assert get_entities(tags, "IOB2") == [("PER", 0, 1), ("LOC", 4, 4)]
    # IOBES strict: a chunk must close with E- (or be S-): "B-X I-X O" is not an entity.
    assert get_entities(["B-PER", "I-PER", "O", "S-LOC", "B-ORG", "E-ORG"], "IOBES") == [("LOC", 3, 3), ("ORG", 4, 5)]
    # One of two reference entities found, plus one wrong entity: P = 1/2, R = 1/2, F1 = 1/2.
    scores = entity_scores([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
    assert scores == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    # No entities anywhere: everything 0; the macro average of no type is nan, as in seqeval.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = entity_report([["O", "O"]], [["O", "O"]])
    assert empty["micro avg"]["f1"] == 0.0 and math.isnan(empty["macro avg"]["f1"])


def test_entities_on_real_conll_tags_match_seqeval(shared_data):
    sentences, current = [], []
    with open(shared_data / "conll2003" / "train.txt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                current.append(line.split()[-1])
            elif current:
                sentences.append(current)
                current = []
            if len(sentences) == 1500:
                break
    rng = np.random.default_rng(8)
    preds = perturb(rng, sentences, sentences[:200])
    check_against_seqeval(sentences, preds, None, {}, "conll2003 default")
    check_against_seqeval(sentences, preds, "IOB2", {"mode": "strict", "scheme": seqeval_scheme.IOB2}, "conll IOB2")
    assert entity_scores(sentences, sentences)["f1"] == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: get_entities(["B-PER", "X-PER"]),
        lambda: get_entities(["B-"]),
        lambda: get_entities(["E-PER"], "IOB2"),
        lambda: get_entities(["B-PER"], "BILOU"),
        lambda: entity_scores([["O", "O"]], [["O"]]),
        lambda: entity_scores([["O"], ["O"]], [["O"]]),
        lambda: entity_scores("B-PER", "B-PER"),
    ],
)
def test_bad_tags_raise_jaxbert_error(call):
    with pytest.raises(JaxbertError):
        call()


# ---------------------------------------------------------------- task_metrics


def test_task_metrics_give_each_task_its_official_metrics():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 2, size=50)
    logits = rng.normal(size=(50, 2))
    preds = logits.argmax(-1)
    for task in ("sst2", "qnli", "rte", "mnli", "SST-2", "MNLI-mm"):
        assert task_metrics(task, logits, labels) == {"accuracy": accuracy(preds, labels), "examples": 50}
    for task in ("mrpc", "qqp"):
        got = task_metrics(task, preds, labels)
        assert got.keys() == {"accuracy", "f1", "examples"}
        assert same(got["f1"], sklearn.metrics.f1_score(labels, preds))
    assert same(task_metrics("cola", preds, labels)["mcc"], sklearn.metrics.matthews_corrcoef(labels, preds))
    scores, gold = rng.normal(size=(50, 1)), rng.uniform(0, 5, size=50)
    got = task_metrics("STS-B", scores, gold)
    assert got.keys() == {"pearson", "spearman", "examples"}
    assert same(got["pearson"], scipy.stats.pearsonr(scores[:, 0], gold).statistic)
    assert same(got["spearman"], scipy.stats.spearmanr(scores[:, 0], gold).statistic)
    squad = task_metrics("squad", {"q1": "broncos"}, V2_REFERENCES[:1])
    assert squad == {"exact_match": 100.0, "f1": 100.0, "examples": 1}
    v2 = task_metrics("squad_v2", V2_PREDICTIONS, V2_REFERENCES, no_answer_probs=V2_PROBS)
    assert v2.keys() == {
        "exact_match",
        "f1",
        "HasAns_exact_match",
        "HasAns_f1",
        "HasAns_total",
        "NoAns_exact_match",
        "NoAns_f1",
        "NoAns_total",
        "best_exact_match",
        "best_exact_match_thresh",
        "best_f1",
        "best_f1_thresh",
        "examples",
    }
    assert v2["best_f1_thresh"] == 0.4 and v2["examples"] == 4
    refs = [["B-PER", "I-PER", "O"], ["B-LOC"]]
    conll = task_metrics("conll2003", [["B-PER", "I-PER", "O"], ["O"]], refs)
    assert conll == {
        "entity_f1": quietly(seqeval_metrics.f1_score, refs, [["B-PER", "I-PER", "O"], ["O"]]),
        "precision": 1.0,
        "recall": 0.5,
        "examples": 2,
    }
    assert task_name("SQuAD v2") == "squad_v2" and task_name("mnli_mismatched") == "mnli_mismatched"


def test_task_metrics_rejects_unknown_task_and_misplaced_options():
    with pytest.raises(JaxbertError, match="unknown task"):
        task_metrics("imdb", [1], [1])
    with pytest.raises(JaxbertError, match="squad_v2"):
        task_metrics("sst2", [1], [1], no_answer_probs=[0.5])
