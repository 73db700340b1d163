"""Smoke run: a tiny RoBERTa (MLM only, FULL-SENTENCES packing, byte-level BPE)
pretrained for about a minute on CPU on the bundled Python docs.

    jaxbert pretrain --config configs/smoke/roberta.py --workdir /tmp/smoke-roberta
"""

from jaxbert.train.experiment import smoke_config


def get_config():
    return smoke_config("roberta")
