"""Smoke run: a tiny Chinese BERT (MLM + NSP, whole-word masking from the corpus's own word segmentation)
pretrained in a minute or two on CPU on the shared People's Daily text (January 1998, PKU word/tag form).

    jaxbert pretrain --config configs/smoke/bert_zh.py --workdir /tmp/smoke-bert-zh

A Chinese WordPiece vocabulary (every CJK character a token, as in bert-base-chinese) is trained on the
text with the tags stripped; each paragraph line is a document, split into sentences after 。！？; the
word boundaries of the PKU segmentation are stored with the examples, so whole-word masking masks whole
Chinese words (15% of tokens, BERT's count, 80/10/10). Then, from that workdir:

    jaxbert finetune --config configs/finetune/zh_ner.py --workdir /tmp/zh-ner --config.init=/tmp/smoke-bert-zh
    jaxbert finetune --config configs/finetune/zh_sentiment.py --workdir /tmp/zh-sent --config.init=/tmp/smoke-bert-zh
"""

import os

from jaxbert.train.experiment import smoke_config

# The shared data folder beside the checkout (../shared/data), or $JAXBERT_DATA.
DATA = os.environ.get("JAXBERT_DATA", "../shared/data")


def get_config():
    c = smoke_config("bert")
    c.data.corpus = (f"{DATA}/zh/peoples_daily/199801-train.txt",)
    c.data.eval_corpus = ()  # the shared file has no held-out part; configs/experiments/chinese_wwm.py makes one
    c.data.update(dict(word_segmenter="pku", sentence_split="rules", line_documents=True,
                       vocab_size=5000, limit_alphabet=4000))
    c.objective.update(dict(whole_word=True, max_predictions=20))
    c.train.update(dict(seq_len=128, steps=300, batch_size=32, eval_every=0))
    return c
