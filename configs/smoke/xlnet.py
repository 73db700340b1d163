"""Smoke run: a tiny XLNet (permutation LM, two-stream attention, an XLNet SentencePiece vocabulary)
pretrained for about a minute on CPU on the bundled Python docs.

    jaxbert pretrain --config configs/smoke/xlnet.py --workdir /tmp/smoke-xlnet
"""

import ml_collections

from jaxbert.train.experiment import smoke_config


def get_config():
    c = smoke_config("xlnet")
    c.objective = ml_collections.ConfigDict(dict(
        name="plm",
        pair_task="nsp",  # the data layout only: two segments, B random half the time, as XLNet's data
        partial_k=6,  # predict the last 1/K of each factorization order
        max_predictions=10,  # target slots per sequence: seq_len // partial_k
        max_gram=5, mask_alpha=6, mask_beta=1,  # span targets as XLNet's _sample_mask
        perm_size=0,  # 0: one permutation over the whole sequence
        word_spans=True))  # spans start at word starts
    c.data.lowercase = False  # XLNet's vocabulary is cased
    return c
