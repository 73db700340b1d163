"""Helpers for the fine-tuning tests: small slices of the real task data, and a tiny BERT with MiniLM's vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

import jaxbert
from jaxbert.config import ModelConfig
from jaxbert.model import param_shapes

TINY_BERT = ModelConfig(vocab_size=30522, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                        max_position_embeddings=128)


def tiny_pretrained(tokenizer_dir: Path, seed: int = 0) -> jaxbert.Pretrained:
    """A randomly initialised tiny BERT (MLM + NSP heads) with MiniLM's WordPiece tokenizer.

    Values are drawn from the shapes alone (BERT's N(0, 0.02), LayerNorm scale 1, biases 0), which
    is much faster than tracing the model's init eagerly.
    """
    rng = np.random.default_rng(seed)

    def leaf(path: tuple, s: jax.ShapeDtypeStruct) -> np.ndarray:
        name = str(getattr(path[-1], "key", path[-1]))
        if name == "scale":
            return np.ones(s.shape, np.float32)
        if name == "bias":
            return np.zeros(s.shape, np.float32)
        return rng.normal(0.0, 0.02, s.shape).astype(np.float32)

    params = jax.tree_util.tree_map_with_path(leaf, param_shapes(TINY_BERT))
    return jaxbert.Pretrained(TINY_BERT, params, jaxbert.load_tokenizer(tokenizer_dir), tokenizer_dir=tokenizer_dir)


def head_lines(src: Path, dst: Path, count: int, skip: int = 0, header: bool = True) -> Path:
    """The header (if any) and `count` data lines after `skip` of a TSV file."""
    lines = src.read_text(encoding="utf-8").split("\n")
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    dst.write_text("\n".join(head + body[skip:skip + count]) + "\n", encoding="utf-8")
    return dst


def conll_sentences(src: Path, dst: Path, count: int, skip: int = 0) -> Path:
    """`count` sentences (after `skip`) of a CoNLL file, blank-line separated."""
    blocks = [b for b in src.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    dst.write_text("\n\n".join(blocks[skip:skip + count]) + "\n", encoding="utf-8")
    return dst


def squad_subset(src: Path, dst: Path, article: int, paragraphs: int, questions: int = 3) -> Path:
    """One article's first `paragraphs` paragraphs with at most `questions` questions each."""
    data = json.loads(src.read_text(encoding="utf-8"))
    art = data["data"][article]
    paras = [dict(p, qas=p["qas"][:questions]) for p in art["paragraphs"][:paragraphs]]
    dst.write_text(json.dumps({"version": data.get("version", "1.1"),
                               "data": [{"title": art["title"], "paragraphs": paras}]}), encoding="utf-8")
    return dst
