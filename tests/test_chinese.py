"""Chinese BERT: word boundaries from a segmenter stored with the data, whole-word masking of Chinese words,
the People's Daily NER reader, and transformers parity of a Chinese-vocabulary BertForMaskedLM."""

from __future__ import annotations

import itertools
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest

from jaxbert.data.corpus import read_documents
from jaxbert.data.pretraining import ExampleConfig, create_examples, tokenize_documents
from jaxbert.data.segmenters import SegmenterError, get_segmenter, is_cjk_char, join_words
from jaxbert.data.sentences import sentence_spans
from jaxbert.data.word_starts import split_line, tokenize_lines
from jaxbert.tokenize import train_vocab

SIGMAS = 6.0
MIXED = ["我们用BERT模型做中文NLP任务，playing football很开心。", "他在Google工作了三年，unbelievable的经历。",
         "北京大学的Transformer课程 and English words here.", "１９９８年新年讲话，江泽民发表了tokenization演讲。"]


def pd_lines(shared_data: Path, n: int, start: int = 0) -> list[str]:
    lines = (shared_data / "zh/peoples_daily/199801-train.txt").read_text("utf-8").splitlines()
    return [line for line in lines[start:start + n] if line.strip()]


def pku_words(line: str) -> list[str]:
    """The words of a PKU line, parsed here independently of jaxbert: `word/tag` items split at the last '/'."""
    return [item[:item.rindex("/")] if "/" in item[1:] else item for item in line.split()]


@pytest.fixture(scope="module")
def zh_tok(shared_data, tmp_path_factory):
    """A Chinese WordPiece vocabulary trained by jaxbert on People's Daily text plus English lines."""
    tmp = tmp_path_factory.mktemp("zhvocab")
    english = (shared_data / "corpus/tinyshakespeare.txt").read_text("utf-8").splitlines()[:3000]
    text = ["".join(pku_words(line)) for line in pd_lines(shared_data, 3000)] + english
    (tmp / "c.txt").write_text("\n".join(text) + "\n", encoding="utf-8")
    return train_vocab(tmp / "c.txt", "wordpiece", 6000, tmp / "vocab", limit_alphabet=4000)


def groups(word_starts: np.ndarray) -> list[list[int]]:
    """Token indices of each masking word: a start token and the continuation tokens after it."""
    out: list[list[int]] = []
    for i, s in enumerate(word_starts):
        if s or not out:
            out.append([i])
        else:
            out[-1].append(i)
    return out


def test_word_start_masks_equal_the_pku_words(zh_tok, shared_data):
    """Brute force over 400 lines: every all-Chinese PKU word is exactly one masking word, and no masking word
    holding a Chinese character reaches outside the PKU word it starts in."""
    lines = pd_lines(shared_data, 400, start=5000)
    seg = get_segmenter("pku")
    checked = 0
    for line in lines:
        words = pku_words(line)
        text = seg.segment(line).text
        spans, at = [], 0  # character span of each PKU word in the running text
        for w in words:
            at = text.index(w, at)
            spans.append((at, at + len(w)))
            at += len(w)
        (sentence,) = tokenize_lines([line], zh_tok, seg, "lines")[0]
        ids, offsets = zh_tok.encode_with_offsets(text)
        assert ids == sentence.ids
        token_groups = {(offsets[g[0]][0], offsets[g[-1]][1]): g for g in groups(sentence.word_starts)}
        for (lo, hi), w in zip(spans, words, strict=True):
            if all(is_cjk_char(c) for c in w):
                assert (lo, hi) in token_groups, f"PKU word {w!r} is not one masking word in {text[:40]!r}"
                checked += 1
        word_of = np.zeros(len(text), int)
        for k, (lo, hi) in enumerate(spans):
            word_of[lo:hi] = k
        for lo, hi in token_groups:
            if any(is_cjk_char(c) for c in text[lo:hi]):
                assert len(set(word_of[lo:hi])) == 1, f"masking word {text[lo:hi]!r} spans several PKU words"
    assert checked > 5000


def test_jieba_word_starts_and_english_keeps_the_wordpiece_rule(zh_tok):
    jieba = pytest.importorskip("jieba", reason="the zh extra (pip install 'jaxbert[zh]') provides jieba")
    seg = get_segmenter("jieba")
    english_tokens = continued = 0
    for text in MIXED:
        (sentence,) = tokenize_lines([text], zh_tok, seg, "lines")[0]
        words = jieba.lcut(text)
        starts, at = set(), 0
        for w in words:
            starts.add(text.index(w, at))
            at = text.index(w, at) + len(w)
        ids, offsets = zh_tok.encode_with_offsets(text)
        pieces = zh_tok.convert_ids_to_tokens(ids)
        for piece, (lo, _), start in zip(pieces, offsets, sentence.word_starts, strict=True):
            if is_cjk_char(text[lo]):
                assert start == (lo in starts), (text, piece)
            else:  # English (and every non-CJK) word: WordPiece's ## marks the continuations
                assert start == (not piece.startswith("##")), (text, piece)
                english_tokens += 1
                continued += piece.startswith("##")
    assert english_tokens > 15 and continued > 3


def test_presegmented_forms_and_plug_in_segmenters():
    assert join_words(["我们", "用", "Windows", "95", "。"]).text == "我们用Windows 95。"
    pku = get_segmenter("pku").segment("江/nr  泽民/nr  发表/v  //w  Windows/nx  95/m")
    assert pku.text == "江泽民发表/Windows 95" and pku.word_starts == (0, 1, 3, 5, 6, 14)
    spaces = get_segmenter("spaces").segment("中国  人民  银行")
    assert spaces.text == "中国人民银行" and spaces.word_starts == (0, 2, 4)
    custom = get_segmenter("tests.test_chinese:_two_char_words").segment("一二三四五")
    assert custom.word_starts == (0, 2, 4)
    with pytest.raises(SegmenterError, match="word_segmenter='ltp'"):
        get_segmenter("ltp")
    with pytest.raises(SegmenterError, match="does not follow"):
        get_segmenter("tests.test_chinese:_wrong_words").segment("一二三")


def _two_char_words(line: str) -> list[str]:
    return [line[i:i + 2] for i in range(0, len(line), 2)]


def _wrong_words(line: str) -> list[str]:
    return ["四"]


def test_sentence_rules_split_chinese_and_english():
    text = "他说：“今天很好。”我们走吧！Mr. Smith went to Washington. It rained. 3.14 is pi? Yes."
    got = [text[lo:hi] for lo, hi in sentence_spans(text)]
    assert got == ["他说：“今天很好。”", "我们走吧！", "Mr. Smith went to Washington.", "It rained.",
                   "3.14 is pi?", "Yes."]
    segmented = split_line("中国/ns  很/d  大/a  。/w  人民/n  好/a  ！/w", get_segmenter("pku"), "rules")
    assert [(s.text, s.word_starts) for s in segmented] == [("中国很大。", (0, 2, 3, 4)), ("人民好！", (0, 2, 3))]


# ---- stored word starts through the example formats and on-device masking -------------------------------


def _pd_documents(shared_data: Path, tmp_path: Path, n: int) -> Path:
    path = tmp_path / "pd.txt"
    path.write_text("\n".join(pd_lines(shared_data, n, start=200)) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["nsp", "sop", "full_sentences"])
def test_every_format_stores_the_segmenters_word_starts(zh_tok, shared_data, tmp_path, fmt):
    """Each example's word_starts: 1 on specials, 0 on padding, and on every token the flag of that token in
    its tokenized sentence (found by searching the example's runs of tokens in the corpus's sentences)."""
    path = _pd_documents(shared_data, tmp_path, 300)
    config = ExampleConfig(format=fmt, max_seq_len=64, word_segmenter="pku", sentence_split="rules")
    docs = list(read_documents(path, line_documents=True))
    examples = list(create_examples(docs, zh_tok, config))
    reference = tokenize_documents(docs, zh_tok, config)
    stream = np.concatenate([d.tokens for d in reference])
    stream_starts = np.concatenate([d.word_starts for d in reference]).astype(np.int32)
    special = set(zh_tok.special.added())
    for e in examples[:150]:
        n = int(e["length"])
        ids, starts = e["input_ids"], e["word_starts"]
        assert (starts[n:] == 0).all()
        runs = [list(g) for k, g in itertools.groupby(range(n), key=lambda i: int(ids[i]) in special) if not k]
        for run in runs:
            if len(run) < 6:
                continue
            hits = [i for i in np.flatnonzero(stream == ids[run[0]])
                    if np.array_equal(stream[i:i + len(run)], ids[run])]
            assert hits, "example tokens not found in the corpus"
            # A segment's first token may start mid-word after truncation: its word there starts anew.
            assert any(np.array_equal(stream_starts[h + 1:h + len(run)], starts[run[1:]]) for h in hits)
        assert all(starts[i] == 1 for i in range(n) if int(ids[i]) in special)


def _objective_batch(zh_tok, shared_data, tmp_path, ngram: int):
    from jaxbert.config import resolve_model_config
    from jaxbert.data.loader import make_pretraining_loader
    from jaxbert.data.tfds_builder import build_pretraining_dataset
    from jaxbert.objectives.masking_setup import FROM_DATA, draw_mask, masking_from_options

    path = _pd_documents(shared_data, tmp_path, 250)
    build_pretraining_dataset(path, zh_tok, tmp_path / "ds", format="nsp", max_seq_len=128, word_segmenter="pku",
                              sentence_split="rules", line_documents=True)
    batch = next(make_pretraining_loader(tmp_path / "ds", 128, num_threads=1))
    opts = ml_collections.ConfigDict(dict(whole_word=True, ngram=ngram, max_predictions=20))
    model = resolve_model_config({"preset": "bert-tiny", "vocab_size": zh_tok.vocab_size})
    masking, words = masking_from_options(opts, model, zh_tok, data={"word_segmenter": "pku"})
    assert words == FROM_DATA
    out = jax.tree.map(np.asarray, draw_mask(jax.random.key(0), batch["input_ids"], batch["attention_mask"],
                                             masking, words, batch))
    return batch, out


@pytest.mark.parametrize("ngram", [1, 3])
def test_masking_never_splits_a_chinese_word_and_keeps_berts_count(zh_tok, shared_data, tmp_path, ngram):
    batch, out = _objective_batch(zh_tok, shared_data, tmp_path, ngram)
    ids, starts = batch["input_ids"], batch["word_starts"]
    maskable = ~np.isin(ids, zh_tok.special.all()) & (batch["attention_mask"] > 0)
    selected = out.weights > 0
    assert not (selected & ~maskable).any()
    multi_char = at_budget = 0
    for b in range(len(ids)):
        budget = min(20, max(1, round(int(maskable[b].sum()) * 0.15)))  # BERT's count, in tokens
        count = int(selected[b].sum())
        assert count <= budget
        at_budget += count == budget
        for g in groups(starts[b]):
            g = [i for i in g if maskable[b, i]]
            flags = selected[b, g]
            assert flags.all() or not flags.any(), "a Chinese word was partly masked"
            multi_char += int(flags.all() and len(g) > 1)
    assert multi_char > 100 and at_budget >= 0.97 * len(ids)
    # 80/10/10 on the selected tokens (per-token draws): within 6 sigma of BERT's split.
    chosen = out.inputs[selected]
    total = int(selected.sum())
    for share, want in (((chosen == zh_tok.special.mask).mean(), 0.8),
                        ((chosen == ids[selected]).mean(), 0.1 + 0.1 / zh_tok.vocab_size)):
        assert abs(share - want) <= SIGMAS * np.sqrt(want * (1 - want) / total)


# ---- the People's Daily NER reader -------------------------------------------------------------------


def test_pku_ner_tags_follow_the_entity_rules(shared_data):
    from jaxbert.data.pku_ner import char_tags, read_pku_ner, split_sentences, tagged_words

    words = tagged_words("中共中央/nt  总书记/n  江/nr  泽民/nr  访问/v  北京/ns  上海/ns  。/w  （/w  新华社/nt  ）/w")
    assert char_tags(words) == ["B-ORG", "I-ORG", "I-ORG", "I-ORG", "O", "O", "O", "B-PER", "I-PER", "I-PER",
                                "O", "O", "B-LOC", "I-LOC", "B-LOC", "I-LOC", "O", "O", "B-ORG", "I-ORG", "I-ORG",
                                "O"]
    assert [len(s) for s in split_sentences(words)] == [8, 3]
    quoted = tagged_words("他/r  说/v  ：/w  “/w  好/a  。/w  ”/w  走/v")
    assert [len(s) for s in split_sentences(quoted)] == [7, 1]
    sentences = read_pku_ner(shared_data / "zh/peoples_daily/199801-train.txt")
    # Entity counts from the raw file, counted here from the tags alone (consecutive nr = one person).
    raw = (shared_data / "zh/peoples_daily/199801-train.txt").read_text("utf-8").splitlines()
    tags = [[item.rsplit("/", 1)[-1] for item in line.split()] for line in raw]
    per = sum(1 for t in tags for i, x in enumerate(t) if x == "nr" and (i == 0 or t[i - 1] != "nr"))
    loc = sum(t.count("ns") for t in tags)
    org = sum(t.count("nt") for t in tags)
    b = {k: sum(s.tags.count(f"B-{k}") for s in sentences) for k in ("PER", "LOC", "ORG")}
    # A sentence break between two nr words (never in this file) would be the only way to differ.
    assert b == {"PER": per, "LOC": loc, "ORG": org}
    assert all(len(s.words) == len(s.tags) for s in sentences)


# ---- transformers parity with a Chinese vocabulary ------------------------------------------------------


def test_hf_bert_for_masked_lm_with_a_chinese_vocabulary_matches_transformers(shared_data, tmp_path):
    torch = pytest.importorskip("torch", reason="install the test extra: pip install -e '.[test]'")
    transformers = pytest.importorskip("transformers", reason="install the test extra")
    from tokenizers import BertWordPieceTokenizer

    import jaxbert

    text = ["".join(pku_words(line)) for line in pd_lines(shared_data, 1500)]
    english = (shared_data / "corpus/tinyshakespeare.txt").read_text("utf-8").splitlines()[:1500]
    trainer = BertWordPieceTokenizer(lowercase=True, handle_chinese_chars=True)
    trainer.train_from_iterator(text + english, vocab_size=5000, limit_alphabet=4000, show_progress=False,
                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    vocab = sorted(trainer.get_vocab().items(), key=lambda kv: kv[1])
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t, _ in vocab), encoding="utf-8")
    hf_tok = transformers.BertTokenizerFast(str(tmp_path / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=128, max_position_embeddings=128)
    model = transformers.BertForMaskedLM(config).eval()
    model.save_pretrained(tmp_path / "hf")
    hf_tok.save_pretrained(tmp_path / "hf")
    ours = jaxbert.load(tmp_path / "hf")
    texts = pd_lines(shared_data, 4, start=9000)
    texts = ["".join(pku_words(t))[:60] for t in texts] + MIXED
    enc = ours.tokenizer(texts, max_length=64, padding="max_length", truncation=True, return_offsets=True)
    ref = hf_tok(texts, max_length=64, padding="max_length", truncation=True, return_offsets_mapping=True)
    np.testing.assert_array_equal(enc["input_ids"], ref["input_ids"])
    np.testing.assert_array_equal(enc["attention_mask"], ref["attention_mask"])
    np.testing.assert_array_equal(enc["offset_mapping"], np.asarray(ref["offset_mapping"]))
    assert (enc["input_ids"] != hf_tok.unk_token_id).mean() > 0.95  # the vocabulary covers the text
    with torch.no_grad():
        want = model(input_ids=torch.tensor(ref["input_ids"]), attention_mask=torch.tensor(ref["attention_mask"]),
                     token_type_ids=torch.tensor(ref["token_type_ids"])).logits.numpy()
    got = np.asarray(ours(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).logits["mlm"])
    real = enc["attention_mask"] > 0
    np.testing.assert_allclose(got[real], want[real], atol=1e-4, rtol=1e-4)
