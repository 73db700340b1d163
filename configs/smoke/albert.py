"""Smoke run: a tiny ALBERT (MLM + SOP, shared layers, SentencePiece)
pretrained for about a minute on CPU on the bundled Python docs.

    jaxbert pretrain --config configs/smoke/albert.py --workdir /tmp/smoke-albert
"""

from jaxbert.train.experiment import smoke_config


def get_config():
    return smoke_config("albert")
