"""Smoke run: a tiny ALBERT (MLM + SOP, shared layers, SentencePiece, n-gram masking of n <= 3 whole
words as in the paper) pretrained for about a minute on CPU on the bundled Python docs.

    jaxbert pretrain --config configs/smoke/albert.py --workdir /tmp/smoke-albert
"""

from jaxbert.train.experiment import smoke_config


def get_config():
    c = smoke_config("albert")
    c.objective.update(dict(whole_word=True, ngram=3))
    return c
