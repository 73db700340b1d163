"""The Chinese-BERT-wwm experiment at small scale: character vs whole-word masking, then zh_ner and zh_sentiment.

    python -m jaxbert.experiments.chinese_wwm --config configs/experiments/chinese_wwm.py --workdir DIR

A 2-layer, 128-wide Chinese BERT (MLM + NSP, a 5000-id character WordPiece vocabulary trained on the
pretraining lines) is pretrained twice for pretrain.steps on the first data.train_lines lines of People's
Daily; the lines from data.heldout_start on are held out: masked-LM accuracy is measured on them (under
both maskings, the same masks for both models), and zh_ner is scored on their sentences. zh_sentiment holds
out data.sentiment_eval reviews. Sized for about 15-20 minutes on two CPU cores; HFL pretrained BERT-base
for 200k steps on Wikipedia, so expect differences far smaller than the noise of one seed here.
"""

import os

import ml_collections

DATA = os.environ.get("JAXBERT_DATA", "../shared/data")


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.maskings = ["char", "wwm"]
    c.data = ml_collections.ConfigDict(dict(
        peoples_daily=f"{DATA}/zh/peoples_daily/199801-train.txt", sentiment=f"{DATA}/zh/sentiment/train.tsv",
        train_lines=15000, heldout_start=15000, heldout_end=0,  # 0 = to the end of the file
        ner_train=6000, ner_eval=2000, sentiment_train=6000, sentiment_eval=2000))
    c.pretrain = ml_collections.ConfigDict(dict(
        layers=2, hidden=128, heads=2, vocab_size=5000, limit_alphabet=4000, steps=1500, batch_size=32,
        seq_len=128, lr=1e-3, warmup_steps=150, max_predictions=20, eval_batches=20))
    c.finetune = ml_collections.ConfigDict(dict(lr=1e-4, batch_size=32, epochs=2.0, seq_len=128))
    return c
