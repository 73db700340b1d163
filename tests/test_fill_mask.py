"""Fill-mask against transformers' `fill-mask` pipeline (same top-k token ids, probabilities within 1e-4) on
imported and exported Hugging Face models of every family with an MLM head, the CLI, and the errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxbert
from jaxbert.cli import main
from jaxbert.errors import JaxbertError

torch = pytest.importorskip("torch", reason="install the test extra: pip install -e '.[test]'")
transformers = pytest.importorskip("transformers", reason="install the test extra: pip install -e '.[test]'")

TOP_K = 5
TOL = 1e-4
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


# ---- tokenizers: the same files for jaxbert and transformers --------------------------------------------
@pytest.fixture(scope="module")
def vocab_dirs(minilm_dir, shared_data, tmp_path_factory) -> dict[str, Path]:
    from jaxbert.tokenize import train_vocab

    root = tmp_path_factory.mktemp("vocabs")
    bert = root / "wordpiece"
    bert.mkdir()
    shutil.copy2(minilm_dir / "vocab.txt", bert / "vocab.txt")
    roberta = root / "bpe"
    shutil.copytree(shared_data / "vocab/roberta-base", roberta)
    albert = root / "spm"
    train_vocab([shared_data / "corpus/tinyshakespeare.txt"], "sentencepiece", 1000, albert)
    return {"bert": bert, "distilbert": bert, "electra": bert, "roberta": roberta, "albert": albert}


def hf_tokenizer(family: str, directory: Path):
    if family == "roberta":
        from tokenizers import AddedToken

        # As tests/test_tokenize.py: RoBERTa's released tokenizer lets <mask> swallow the space before it.
        mask = AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False)
        return transformers.RobertaTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"),
                                             mask_token=mask)
    if family == "albert":
        return transformers.AlbertTokenizer.from_pretrained(str(directory))
    return transformers.BertTokenizer(str(directory / "vocab.txt"), do_lower_case=True)


def hf_config(family: str, vocab_size: int):
    if family == "distilbert":
        return transformers.DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                             max_position_embeddings=64)
    if family == "roberta":
        return transformers.RobertaConfig(vocab_size=vocab_size, max_position_embeddings=66, pad_token_id=1,
                                          bos_token_id=0, eos_token_id=2, type_vocab_size=1, **SMALL)
    if family == "albert":
        return transformers.AlbertConfig(vocab_size=vocab_size, embedding_size=16, max_position_embeddings=64,
                                         pad_token_id=0, **SMALL)
    if family == "electra":  # an ELECTRA generator (ElectraForMaskedLM), factorised embeddings as ELECTRA-Small's
        return transformers.ElectraConfig(vocab_size=vocab_size, embedding_size=16, max_position_embeddings=64,
                                          **SMALL)
    return transformers.BertConfig(vocab_size=vocab_size, max_position_embeddings=64, **SMALL)


TEXTS = {
    "bert": ["Paris is the [MASK] of France.", "The [MASK] sat on the [MASK] all day.", "[MASK]"],
    "roberta": ["Paris is the <mask> of France.", "The <mask> sat on the <mask> all day.", "<mask>"],
}


def texts_of(family: str) -> list[str]:
    return TEXTS["roberta" if family == "roberta" else "bert"]


def pipeline_top_k(model, tokenizer, texts: list[str]) -> list[list[list[tuple[int, float]]]]:
    """transformers' fill-mask pipeline, reshaped to [text][mask][rank] -> (id, probability)."""
    fill = transformers.pipeline("fill-mask", model=model, tokenizer=tokenizer, device="cpu", top_k=TOP_K)
    out = []
    for text in texts:
        res = fill(text)
        masks = res if isinstance(res[0], list) else [res]
        out.append([[(int(r["token"]), float(r["score"])) for r in mask] for mask in masks])
    return out


def assert_same_predictions(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    diff = 0.0
    for text_ours, text_theirs in zip(ours, theirs, strict=True):
        assert len(text_ours) == len(text_theirs)
        for mask_ours, mask_theirs in zip(text_ours, text_theirs, strict=True):
            assert [i for i, _ in mask_ours] == [i for i, _ in mask_theirs]
            np.testing.assert_allclose([p for _, p in mask_ours], [p for _, p in mask_theirs], atol=TOL)
            assert mask_ours[0][1] > mask_ours[-1][1]  # spread out: a real ranking, not a tie
            diff = max(diff, *(abs(p - q) for (_, p), (_, q) in zip(mask_ours, mask_theirs, strict=True)))
    print(f"\nfill-mask vs transformers' pipeline: same top-{TOP_K} ids, max |probability difference| {diff:.2e}")


def _spread(model) -> None:
    """Move every weight off its init and give the output bias a wide spread, so the top-k are well apart."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
        bias = model.get_output_embeddings().bias
        bias.copy_(torch.randn(bias.shape, generator=gen) * 3.0)


FAMILIES = ["bert", "roberta", "albert", "distilbert", "electra"]


@pytest.mark.parametrize("family", FAMILIES)
def test_imported_hf_model_fills_masks_like_the_pipeline(family, vocab_dirs, tmp_path):
    from jaxbert.inference import fill_mask_ids

    tokenizer = hf_tokenizer(family, vocab_dirs[family])
    torch.manual_seed(0)
    vocab_size = max(tokenizer.get_vocab().values()) + 1  # RoBERTa's ids have gaps (fairseq's madeupwords)
    model = transformers.AutoModelForMaskedLM.from_config(hf_config(family, vocab_size)).eval()
    _spread(model)
    out = tmp_path / "hf"
    model.save_pretrained(out)
    for f in vocab_dirs[family].iterdir():
        shutil.copy2(f, out / f.name)
    p = jaxbert.load(out)
    assert "mlm" in p.config.heads and p.tokenizer is not None
    texts = texts_of(family)
    ours = fill_mask_ids(p.config, p.params, p.tokenizer, texts, TOP_K)
    assert_same_predictions(ours, pipeline_top_k(model, tokenizer, texts))
    # The public method: the same ranking, each id as its token text.
    named = p.fill_mask(texts, top_k=TOP_K)
    assert [[[t for t, _ in m] for m in text] for text in named] == \
        [[[p.tokenizer.decode([i], skip_special_tokens=False) for i, _ in m] for m in text] for text in ours]


@pytest.mark.parametrize("family", FAMILIES)
def test_exported_model_fills_masks_like_the_pipeline(family, vocab_dirs, tmp_path):
    from jaxbert.config import get_preset

    preset = {"bert": "bert-tiny", "roberta": "roberta-base", "albert": "albert-base", "distilbert": "distilbert-base",
              "electra": "electra-small-generator"}
    tok = jaxbert.load_tokenizer(vocab_dirs[family])
    overrides = dict(num_layers=2, hidden_size=32, num_heads=2, intermediate_size=64, vocab_size=tok.vocab_size,
                     max_position_embeddings=66 if family == "roberta" else 64, heads=("mlm",),
                     pad_token_id=tok.special.pad, pooler=False)
    if family in ("albert", "electra"):
        overrides["embedding_size"] = 16
    config = get_preset(preset[family]).replace(**overrides)
    p = jaxbert.init(config, seed=1, tokenizer=vocab_dirs[family])
    rng = np.random.default_rng(1)
    p.params = jax.tree_util.tree_map(lambda x: np.asarray(x) + rng.normal(0, 0.05, x.shape).astype(np.float32),
                                      p.params)
    p.params["mlm_head"]["bias"] = rng.normal(0, 3.0, config.vocab_size).astype(np.float32)
    out = jaxbert.export_hf(p, tmp_path / "hf")
    model = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
    texts = texts_of(family)
    from jaxbert.inference import fill_mask_ids

    ours = fill_mask_ids(p.config, p.params, p.tokenizer, texts, TOP_K)
    assert_same_predictions(ours, pipeline_top_k(model, hf_tokenizer(family, vocab_dirs[family]), texts))


# ---- a model the smoke config pretrained ------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_bert(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("smoke") / "bert"
    assert main(["pretrain", "--config", "configs/smoke/bert.py", "--workdir", str(workdir),
                 "--config.train.steps=150", "--config.data.eval_corpus=", "--config.train.progress=false",
                 "--config.checkpoint.every=150"]) == 0
    return workdir


@pytest.mark.slow
def test_smoke_pretrained_bert_fills_masks_like_the_pipeline(smoke_bert, tmp_path, capsys):
    from jaxbert.inference import fill_mask_ids

    p = jaxbert.load(smoke_bert)
    texts = ["Return the [MASK] of the list.", "The [MASK] function returns an [MASK] object."]
    ours = fill_mask_ids(p.config, p.params, p.tokenizer, texts, TOP_K)
    out = jaxbert.export_hf(p, tmp_path / "hf")
    model = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    assert_same_predictions(ours, pipeline_top_k(model, hf_tok, texts))
    capsys.readouterr()  # only the command's own lines below
    assert main(["fill-mask", "--model", str(smoke_bert), "--top-k", "3", *texts]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["text"] for line in lines] == texts
    assert [len(line["masks"]) for line in lines] == [1, 2]
    for line in lines:
        for mask in line["masks"]:
            probs = [prob for _, prob in mask]
            assert len(mask) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
            # Trained, not uniform: the best token holds far more than 1/vocab (1/2000) of the mass.
            assert probs[0] > 20 / p.config.vocab_size


# ---- errors ------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_fill_mask_errors_are_one_line(minilm_dir, capsys, tmp_path):
    no_head = jaxbert.load(minilm_dir)  # all-MiniLM-L6-v2: a bare BertModel, no MLM head
    with pytest.raises(JaxbertError, match="no MLM head") as err:
        no_head.fill_mask(["Paris is the [MASK] of France."])
    assert "\n" not in str(err.value)
    assert main(["fill-mask", "--model", str(minilm_dir), "a [MASK] b"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    config = no_head.config.replace(heads=("mlm",))
    p = jaxbert.init(config, tokenizer=minilm_dir)
    with pytest.raises(JaxbertError, match=r"no mask token '\[MASK\]'"):
        p.fill_mask(["a text without one"])
    with pytest.raises(JaxbertError, match="top_k"):
        p.fill_mask(["a [MASK]"], top_k=0)
    one = p.fill_mask("the [MASK] [MASK]", top_k=2)
    assert len(one) == 1 and len(one[0]) == 2 and all(len(m) == 2 for m in one[0])
