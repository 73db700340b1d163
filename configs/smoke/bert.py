"""Smoke run: a tiny BERT (MLM + NSP) pretrained for about a minute on CPU on the bundled Python docs.

    jaxbert pretrain --config configs/smoke/bert.py --workdir /tmp/smoke-bert
"""

from jaxbert.train.experiment import smoke_config


def get_config():
    return smoke_config("bert")
