"""zh_ner: Chinese named entities of People's Daily (January 1998), read from the PKU word/tag text directly.

    jaxbert finetune --config configs/finetune/zh_ner.py --workdir DIR --config.init=PRETRAINED
    jaxbert eval --model DIR --task zh_ner --data FILE

Entities (jaxbert.data.pku_ner): PER = consecutive `nr` words (surname + given name), LOC = each `ns`,
ORG = each `nt`, everything else O; tagged per character in BIO (B-/I-PER, ORG, LOC), one example per
sentence (split after 。！？); metric: entity-level F1 by seqeval's rules. Each character's tag goes on
its first token (a Chinese vocabulary has one token per character). Recipe as CoNLL-2003's: batch 32,
lr 5e-5, 3 epochs, 128 tokens (99% of the sentences are shorter; longer ones are cut and their cut
characters count as O). With no dev file, data.eval_size of the sentences is held out.
"""

import os

from jaxbert.finetune.config import finetune_config

DATA = os.environ.get("JAXBERT_DATA", "../shared/data")


def get_config():
    c = finetune_config("zh_ner", lr=5e-5, batch_size=32, epochs=3, seq_len=128)
    c.data.train = f"{DATA}/zh/peoples_daily/199801-train.txt"
    c.data.eval = f"{DATA}/zh/peoples_daily/199801-dev.txt"  # absent in the shared folder: held out of train
    return c
