"""Dynamic MLM masking: exact BERT counts, 80/10/10 split within 6-sigma binomial bounds, specials never
selected, whole-word masking, gather/dense agreement, determinism and jit."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxbert.data.masking import (
    MaskingConfig,
    MaskingConfigError,
    mask_tokens,
    random_non_special,
)
from jaxbert.tokenize import load_tokenizer

# bert-base-uncased ids: [PAD]=0 [UNK]=100 [CLS]=101 [SEP]=102 [MASK]=103.
PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
VOCAB = 30522
SPECIALS = (PAD, UNK, CLS, SEP, MASK)
SIGMAS = 6.0  # two-sided p ~ 2e-9: a correct implementation never fails, a 5-point bug always does.


def bert_count(n: int, prob: float = 0.15, cap: int = 20) -> int:
    """create_pretraining_data.py: num_to_predict = min(max_predictions, max(1, int(round(n * prob))))."""
    return min(cap, max(1, int(round(n * prob)))) if n else 0


def binomial_bounds(n: int, p: float) -> tuple[float, float]:
    """Fraction interval that a Binomial(n, p) fraction leaves with probability < ~2e-9."""
    half = SIGMAS * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


def random_batch(rows: int = 512, length: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[CLS] words [SEP] [PAD]... with variable real lengths, a few [UNK]s inside; and the attention mask."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, VOCAB, (rows, length)).astype(np.int32)
    ids[rng.random((rows, length)) < 0.01] = UNK
    lengths = rng.integers(8, length + 1, rows)
    attention = np.arange(length)[None, :] < lengths[:, None]
    ids[:, 0] = CLS
    ids[np.arange(rows), lengths - 1] = SEP
    ids[~attention] = PAD
    return ids, attention.astype(np.int32)


def bert_config(**kw) -> MaskingConfig:
    return MaskingConfig(mask_token_id=MASK, vocab_size=VOCAB, special_ids=SPECIALS, **kw)


@pytest.fixture(scope="module")
def big_draw():
    ids, attention = random_batch()
    config = bert_config(max_predictions=20)
    out = jax.tree.map(np.asarray, mask_tokens(jax.random.key(42), ids, config, attention_mask=attention))
    return ids, attention, config, out


def test_exact_bert_count_per_sequence(big_draw):
    ids, _, config, out = big_draw
    maskable = ~np.isin(ids, SPECIALS)
    expected = np.array([bert_count(int(n)) for n in maskable.sum(1)])
    np.testing.assert_array_equal(out.weights.sum(1).astype(int), expected)
    # The overall selected fraction is 15% of maskable tokens up to per-row rounding and the cap.
    uncapped = np.array([bert_count(int(n), cap=10**9) for n in maskable.sum(1)])
    assert abs(uncapped.sum() / maskable.sum() - 0.15) < 0.005


def test_rounding_matches_python_half_even():
    # 30 * 0.15 = 4.5 -> Python rounds to 4; 50 * 0.15 = 7.5 -> 8; 10 * 0.15 = 1.5 -> 2 (float32 would say 5 for 30).
    sizes = (10, 30, 50, 70)
    ids = np.full((len(sizes), 72), 2000, np.int32)
    attention = (np.arange(72)[None, :] < np.array(sizes)[:, None]).astype(np.int32)
    out = mask_tokens(jax.random.key(0), ids, bert_config(max_predictions=64), attention_mask=attention)
    assert np.asarray(out.weights.sum(1)).astype(int).tolist() == [round(n * 0.15) for n in sizes] == [2, 4, 8, 10]


def test_max_predictions_caps_the_count():
    ids, attention = random_batch(rows=64, seed=3)
    out = mask_tokens(jax.random.key(0), ids, bert_config(max_predictions=5), attention_mask=attention)
    maskable = ~np.isin(ids, SPECIALS)
    expected = [bert_count(int(n), cap=5) for n in maskable.sum(1)]
    np.testing.assert_array_equal(np.asarray(out.weights.sum(1)), expected)


def test_specials_and_padding_are_never_selected(big_draw):
    ids, attention, _, out = big_draw
    selected = out.weights > 0
    assert not (selected & np.isin(ids, SPECIALS)).any()
    assert not (selected & (attention == 0)).any()
    # Unselected tokens, specials included, pass through unchanged.
    np.testing.assert_array_equal(out.inputs[~selected], ids[~selected])


def test_attention_mask_excludes_tokens_even_if_not_special():
    ids = np.full((4, 16), 5000, np.int32)
    attention = np.zeros_like(ids)
    attention[:, :6] = 1
    out = mask_tokens(jax.random.key(1), ids, bert_config(), attention_mask=attention)
    assert not np.asarray(out.weights)[:, 6:].any()
    assert (np.asarray(out.weights).sum(1) == bert_count(6)).all()


def test_positions_are_chosen_uniformly():
    # All rows share 126 maskable slots; every slot must be chosen with probability 19/126.
    rows, length = 2048, 128
    ids = np.full((rows, length), 3000, np.int32)
    ids[:, 0], ids[:, -1] = CLS, SEP
    out = mask_tokens(jax.random.key(7), ids, bert_config(max_predictions=20))
    counts = np.asarray(out.weights)[:, 1:-1].sum(0)
    assert counts.sum() == rows * bert_count(length - 2)
    assert stats.chisquare(counts).pvalue > 1e-9


def test_80_10_10_split_within_binomial_bounds(big_draw):
    ids, _, config, out = big_draw
    selected = out.weights > 0
    n = int(selected.sum())
    orig, new = ids[selected], out.inputs[selected]
    to_mask = np.mean(new == MASK)
    kept = np.mean(new == orig)
    to_random = np.mean((new != MASK) & (new != orig))
    # A random draw hits the original id with probability 1 / (non-special vocabulary size).
    hit = 1.0 / config.random_candidates
    expectations = {"mask": (to_mask, 0.8), "random": (to_random, 0.1 * (1 - hit)), "kept": (kept, 0.1 + 0.1 * hit)}
    for name, (seen, p) in expectations.items():
        lo, hi = binomial_bounds(n, p)
        assert lo <= seen <= hi, f"{name}: {seen:.4f} outside [{lo:.4f}, {hi:.4f}] over {n} selections"
    # The bounds are tight enough that an 85/5/10 split would fail.
    assert not binomial_bounds(n, 0.8)[0] <= 0.85 <= binomial_bounds(n, 0.8)[1]
    assert not binomial_bounds(n, 0.1)[0] <= 0.05 <= binomial_bounds(n, 0.1)[1]
    assert not np.isin(new[(new != MASK) & (new != orig)], SPECIALS).any()


def test_random_replacements_are_uniform_over_non_special_vocabulary():
    vocab, specials = 40, (0, 1, 2, 3, 17, 39)
    draws = np.asarray(random_non_special(jax.random.key(3), (200_000,), vocab, specials))
    allowed = np.setdiff1d(np.arange(vocab), specials)
    assert set(np.unique(draws)) == set(allowed)
    counts = np.array([(draws == a).sum() for a in allowed])
    assert stats.chisquare(counts).pvalue > 1e-9

    # Through mask_tokens: with random_replace_prob=1 every selected token becomes a non-special draw.
    config = MaskingConfig(mask_token_id=3, vocab_size=vocab, special_ids=specials, mask_replace_prob=0.0,
                           random_replace_prob=1.0, max_predictions=20)
    ids = np.full((4096, 64), 5, np.int32)
    ids[:, 0], ids[:, -1] = 1, 2
    out = mask_tokens(jax.random.key(4), ids, config)
    replaced = np.asarray(out.inputs)[np.asarray(out.weights) > 0]
    counts = np.array([(replaced == a).sum() for a in allowed])
    assert counts.sum() == replaced.size
    assert stats.chisquare(counts).pvalue > 1e-9


def test_electra_style_masking_has_no_random_tokens():
    ids, attention = random_batch(rows=128, seed=5)
    config = bert_config(mask_replace_prob=0.85, random_replace_prob=0.0)
    out = jax.tree.map(np.asarray, mask_tokens(jax.random.key(0), ids, config, attention_mask=attention))
    selected = out.weights > 0
    new, orig = out.inputs[selected], ids[selected]
    assert ((new == MASK) | (new == orig)).all()
    lo, hi = binomial_bounds(selected.sum(), 0.85)
    assert lo <= np.mean(new == MASK) <= hi


def test_gather_form_agrees_with_dense_form(big_draw):
    ids, _, config, out = big_draw
    rows = ids.shape[0]
    assert out.masked_positions.shape == (rows, config.max_predictions)
    np.testing.assert_array_equal(out.masked_weights.sum(1), out.weights.sum(1))
    for b in range(rows):
        used = out.masked_weights[b] > 0
        # Used slots come first, in ascending position; unused slots are zero.
        assert used.tolist() == sorted(used.tolist(), reverse=True)
        pos = out.masked_positions[b][used]
        assert (np.diff(pos) > 0).all()
        np.testing.assert_array_equal(pos, np.flatnonzero(out.weights[b]))
        np.testing.assert_array_equal(out.masked_ids[b][used], ids[b][pos])
        np.testing.assert_array_equal(out.labels[b][pos], ids[b][pos])
        assert not out.masked_positions[b][~used].any() and not out.masked_ids[b][~used].any()
    assert not out.labels[out.weights == 0].any()


def test_gather_form_pads_when_max_predictions_exceeds_length():
    ids = np.full((3, 8), 4000, np.int32)
    out = mask_tokens(jax.random.key(0), ids, bert_config(max_predictions=12))
    assert out.masked_positions.shape == (3, 12)
    assert int(out.masked_weights.sum()) == 3 * bert_count(8)


def test_deterministic_per_rng_and_dynamic_across_steps():
    ids, attention = random_batch(rows=32, seed=1)
    config = bert_config()
    a = mask_tokens(jax.random.key(9), ids, config, attention_mask=attention)
    b = mask_tokens(jax.random.key(9), ids, config, attention_mask=attention)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    step1 = mask_tokens(jax.random.fold_in(jax.random.key(9), 1), ids, config, attention_mask=attention)
    assert (np.asarray(step1.weights) != np.asarray(a.weights)).any()


def test_runs_inside_a_user_jit():
    ids, attention = random_batch(rows=16, seed=2)
    config = bert_config()

    @jax.jit
    def step(rng, ids, attention):
        out = mask_tokens(rng, ids, config, attention_mask=attention)
        return out.inputs, out.weights.sum()

    inputs, total = step(jax.random.key(0), jnp.asarray(ids), jnp.asarray(attention))
    direct = mask_tokens(jax.random.key(0), ids, config, attention_mask=attention)
    np.testing.assert_array_equal(np.asarray(inputs), np.asarray(direct.inputs))
    assert float(total) == float(direct.weights.sum())


def test_config_validation_names_the_field():
    with pytest.raises(MaskingConfigError, match="mask_prob"):
        bert_config(mask_prob=0.0)
    with pytest.raises(MaskingConfigError, match="random_replace_prob"):
        bert_config(mask_replace_prob=0.8, random_replace_prob=0.3)
    with pytest.raises(MaskingConfigError, match="mask_token_id"):
        MaskingConfig(mask_token_id=VOCAB, vocab_size=VOCAB, special_ids=SPECIALS)
    with pytest.raises(MaskingConfigError, match="word_starts"):
        mask_tokens(jax.random.key(0), np.ones((1, 4), np.int32), bert_config(whole_word=True))


# ---- whole-word masking on real WordPiece tokenization ------------------------------------------------


def words_of(maskable: np.ndarray, starts: np.ndarray) -> list[list[int]]:
    """Spec of a word: a maskable start piece plus the following maskable non-start pieces."""
    words: list[list[int]] = []
    for t in range(len(maskable)):
        if not maskable[t]:
            continue
        if starts[t] or not words or not maskable[t - 1]:
            words.append([t])
        else:
            words[-1].append(t)
    return words


@pytest.fixture(scope="module")
def wikitext_batch(shared_data: Path, minilm_dir: Path):
    """Real wikitext lines through bert-base-uncased WordPiece, with the tokenizer's word starts."""
    tok = load_tokenizer(minilm_dir)
    lines = [ln for ln in (shared_data / "corpus" / "wikitext-2.valid.tokens.txt").read_text("utf-8").splitlines()
             if len(ln.split()) > 20][:256]
    enc = tok(lines, max_length=128, padding="max_length", truncation=True, return_word_starts=True)
    pieces = [tok.convert_ids_to_tokens(row) for row in enc["input_ids"]]
    # The tokenizer's word starts are exactly the pieces without WordPiece's "##" continuation mark.
    assert enc["word_starts"].tolist() == [[not p.startswith("##") for p in row] for row in pieces]
    return enc["input_ids"], enc["word_starts"], enc["attention_mask"]


def test_whole_word_masking_selects_whole_words_only(wikitext_batch):
    ids, starts, attention = wikitext_batch
    config = bert_config(whole_word=True, max_predictions=20)
    maskable = ~np.isin(ids, SPECIALS) & (attention > 0)
    multi_piece_chosen = 0
    rows_at_budget = 0
    for seed in range(3):
        out = jax.tree.map(np.asarray, mask_tokens(jax.random.key(seed), ids, config, attention_mask=attention,
                                                   word_starts=starts))
        selected = out.weights > 0
        assert not (selected & ~maskable).any()
        for b in range(ids.shape[0]):
            budget = bert_count(int(maskable[b].sum()))
            words = words_of(maskable[b], starts[b])
            count = int(selected[b].sum())
            assert count <= budget
            rows_at_budget += count == budget
            for word in words:
                flags = selected[b, word]
                assert flags.all() or not flags.any(), f"row {b}: word {word} partially masked"
                multi_piece_chosen += int(flags.all() and len(word) > 1)
                # Greedy fill: a word left out did not fit in what remained of the budget.
                if not flags.any():
                    assert count + len(word) > budget
        np.testing.assert_array_equal(np.flatnonzero(out.masked_weights[0]).size, selected[0].sum())
    assert multi_piece_chosen > 0, "whole-word masking never chose a multi-piece word"
    # Skipping words that overshoot and filling with later ones reaches BERT's exact count on real text.
    assert rows_at_budget >= 0.99 * 3 * ids.shape[0]


# ---- ALBERT n-gram masking ----------------------------------------------------------------------------


def _one_run_rows(rows: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """maskable [B, T]: one contiguous run per row (after [CLS], before [SEP]); word starts: ~1.3 pieces/word."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(32, length + 1, rows)
    positions = np.arange(length)[None, :]
    maskable = (positions >= 1) & (positions < lengths[:, None] - 1)
    starts = rng.random((rows, length)) < 0.75
    return maskable, starts


def test_ngram_span_lengths_follow_one_over_n_within_six_sigma():
    """ALBERT (Lan et al. 2020, 4.1): p(n) = (1/n) / sum_k 1/k, n <= 3, as its reference code's pvals.

    Every span the masker cuts a row into is counted with its drawn length, the row's last one too (a
    row's span count is a stopping time, so by Wald's identity each length's expected count is p(n) times
    the expected span count: no finite-row bias). Between two span starts lie exactly the drawn words.
    """
    from jaxbert.data.masking import ngram_probabilities, ngram_spans

    maskable, starts = _one_run_rows(1024, 512, seed=3)
    counts = np.zeros(3)
    spans_fn = jax.jit(ngram_spans, static_argnums=3)
    for seed in range(4):
        span_starts, lengths = (np.asarray(x) for x in spans_fn(jax.random.key(seed), maskable, starts, 3))
        assert not (span_starts & ~maskable).any() and ((lengths > 0) == span_starts).all()
        counts += np.bincount(lengths[span_starts], minlength=4)[1:]
        # Observed words between consecutive span starts == the drawn length (all but each row's last span).
        word_index = np.cumsum(maskable & (starts | ~np.pad(maskable[:, :-1], ((0, 0), (1, 0)))), axis=1) - 1
        for b in range(0, 1024, 97):
            at = np.flatnonzero(span_starts[b])
            np.testing.assert_array_equal(np.diff(word_index[b, at]), lengths[b, at[:-1]])
    total = counts.sum()
    assert total > 400_000
    want = np.asarray(ngram_probabilities(3))
    np.testing.assert_allclose(want, np.array([6, 3, 2]) / 11)
    for n in range(3):
        lo, hi = binomial_bounds(int(total), want[n])
        assert lo <= counts[n] / total <= hi, (n + 1, counts[n] / total, want[n])


def test_ngram_masking_masks_whole_spans_of_whole_words_within_berts_budget(wikitext_batch):
    from jaxbert.data.masking import num_to_predict, select_ngrams

    ids, starts, attention = wikitext_batch
    maskable = ~np.isin(ids, SPECIALS) & (attention > 0)
    num = np.asarray(num_to_predict(jnp.asarray(maskable), 0.15, 20))
    np.testing.assert_array_equal(num, [bert_count(int(n)) for n in maskable.sum(1)])
    multi_word = at_budget = 0
    select = jax.jit(select_ngrams, static_argnums=4)
    for seed in range(2):
        selected, span_starts, _ = (np.asarray(x) for x in select(jax.random.key(seed), maskable, starts, num, 3))
        out = jax.tree.map(np.asarray, mask_tokens(jax.random.key(seed), ids, bert_config(whole_word=True,
                           max_ngram=3), attention_mask=attention, word_starts=starts))
        assert not (out.weights.astype(bool) & ~maskable).any()
        for b in range(ids.shape[0]):
            count = int(selected[b].sum())
            assert count <= num[b]
            at_budget += count == num[b]
            assert int(out.weights[b].sum()) <= num[b]
            for word in words_of(maskable[b], starts[b]):
                flags = selected[b, word]
                assert flags.all() or not flags.any(), f"row {b}: word {word} split"
            spans = words_of(maskable[b], span_starts[b])  # a span: its start token to the next span start
            for span in spans:
                flags = selected[b, span]
                assert flags.all() or not flags.any(), f"row {b}: span {span} partly masked"
                multi_word += int(flags.all() and starts[b, span].sum() > 1)
    assert multi_word > 0
    assert at_budget >= 0.99 * 2 * ids.shape[0]  # BERT's exact count in tokens, as whole-word masking reaches


def test_ngram_masking_of_tokens_when_whole_word_is_off():
    """ALBERT's do_whole_word_mask=False: the n-gram units are single tokens."""
    ids, attention = random_batch(rows=64)
    out = jax.tree.map(np.asarray, mask_tokens(jax.random.key(0), ids, bert_config(max_ngram=3),
                                               attention_mask=attention))
    maskable = ~np.isin(ids, SPECIALS) & (attention > 0)
    np.testing.assert_array_equal(out.weights.sum(1), [bert_count(int(n)) for n in maskable.sum(1)])
    runs = [np.diff(np.flatnonzero(np.diff(np.r_[0, row, 0]))) [::2] for row in out.weights.astype(int)]
    assert max(r.max() for r in runs if len(r)) >= 2  # adjacent tokens masked together: spans, not single picks


@pytest.mark.parametrize("name", ["pretrain/albert_base.py", "pretrain/albert_xxlarge.py", "smoke/albert.py"])
def test_albert_configs_mask_ngrams_of_whole_words(name, minilm_dir):
    from jaxbert.config import resolve_model_config
    from jaxbert.objectives.masking_setup import masking_from_options
    from jaxbert.train.experiment import load_config

    config = load_config(f"configs/{name}")
    tok = load_tokenizer(minilm_dir)
    model = resolve_model_config({"preset": "albert-base", "vocab_size": tok.vocab_size})
    masking, tables = masking_from_options(config.objective, model, tok, data=config.data)
    assert masking.max_ngram == 3 and masking.whole_word and tables is not None
