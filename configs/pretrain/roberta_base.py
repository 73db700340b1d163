"""RoBERTa-base pretraining (Liu et al. 2019, Table 9): MLM only, dynamic masking, FULL-SENTENCES.

Batch 8k sequences of 512 tokens, 500k steps, Adam lr 6e-4 (beta2 0.98, eps 1e-6, weight decay
0.01), 24k warmup then linear decay, no gradient clipping, dropout 0.1, a 50265-id byte-level BPE
vocabulary. Masking is drawn anew every step on device (dynamic masking). On fewer chips keep the
global batch with --config.train.grad_accum=N.

FULL-SENTENCES (section 4.2): whole sentences packed up to 512 tokens, crossing documents with an extra
separator; only a sentence longer than 512 tokens is cut. Wikipedia puts a paragraph on a line, so lines
are split into sentences (sentence_split=rules). --config.data.packing=doc_sentences gives DOC-SENTENCES.
See docs/pretraining_data.md for where this departs from fairseq.
"""

from jaxbert.train.experiment import pretrain_config


def get_config():
    c = pretrain_config("roberta-base", pair_task="none")
    c.data.corpus = ("tfds:wikipedia/20230601.en:train",)
    c.data.vocab_size = 50265
    c.data.update(dict(packing="full_sentences", sentence_split="rules"))
    c.objective.max_predictions = 80
    c.train.update(dict(steps=500_000, batch_size=8192, seq_len=512, lr=6e-4, warmup_steps=24_000,
                        optimizer="adamw", b1=0.9, b2=0.98, eps=1e-6, weight_decay=0.01, clip_norm=0.0,
                        log_every=100))
    c.checkpoint.update(dict(every=5_000, keep=3, keep_every=50_000))
    return c
