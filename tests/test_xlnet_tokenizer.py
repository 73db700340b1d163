"""An XLNet SentencePiece vocabulary (`jaxbert vocab --kind xlnet`) against transformers' XLNetTokenizer
reading the same spiece.model: ids, segment ids and masks of singles and pairs, padded on the left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaxbert.tokenize import load_tokenizer, train_vocab

transformers = pytest.importorskip("transformers", reason="install the test extra: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def vocab(shared_data: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("xlnet-vocab")
    train_vocab([shared_data / "glue" / "sst2" / "train.tsv"], "xlnet", 800, out)
    return out


def _texts(shared_data: Path, n: int = 300) -> list[str]:
    lines = (shared_data / "glue" / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:n + 1]
    return [line.split("\t")[0] for line in lines] + ["a résumé of `` quotes '' , 1,000 clichés", "", "<mask> ok"]


def test_vocabulary_has_xlnets_layout(vocab: Path) -> None:
    tok = load_tokenizer(vocab)
    assert tok.template == "xlnet" and not tok.lowercase
    assert [tok.convert_ids_to_tokens([i])[0] for i in range(9)] == \
        ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>"]
    assert (tok.special.pad, tok.special.cls, tok.special.sep, tok.special.mask) == (5, 3, 4, 6)
    assert tok.encode("ok")[-2:] == [4, 3]  # ... <sep> <cls>


@pytest.mark.parametrize("pairs", [False, True])
def test_encodings_equal_transformers_xlnet_tokenizer(vocab: Path, shared_data: Path, pairs: bool) -> None:
    texts = _texts(shared_data)
    second = texts[::-1] if pairs else None
    ours = load_tokenizer(vocab)(texts, second, max_length=48, padding="max_length", truncation=True)
    ref = transformers.XLNetTokenizer.from_pretrained(vocab)
    assert ref.padding_side == "left"
    theirs = ref(texts, second, max_length=48, padding="max_length", truncation=True, return_token_type_ids=True)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(ours[key], np.array(theirs[key]), err_msg=key)
    assert (ours["attention_mask"][:, -1] == 1).all()  # <cls> is every row's last token
