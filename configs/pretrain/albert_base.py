"""ALBERT-base pretraining (Lan et al. 2020, section 4.1): MLM + SOP, all layers shared, E=128.

Batch 4096 sequences of 512 tokens (10% shorter, short_seq_prob 0.1), 125k steps, LAMB lr 0.00176,
3125 warmup steps then linear decay, max 20 predictions per sequence, no dropout, a 30000-id
SentencePiece vocabulary. Masking is ALBERT's n-gram masking (section 4.1; create_pretraining_data.py
--ngram=3 --do_whole_word_mask): spans of n <= 3 whole words with p(n) ∝ 1/n, 15% of tokens (BERT's
count), drawn on device every step; see jaxbert.data.masking for where the span choice departs from the
reference script. --config.objective.ngram=1 gives plain (whole-word) masking.
"""

from jaxbert.train.experiment import pretrain_config


def get_config():
    c = pretrain_config("albert-base", pair_task="sop")
    c.data.corpus = ("tfds:wikipedia/20230601.en:train",)
    c.data.vocab_size = 30000
    c.objective.max_predictions = 20
    c.objective.update(dict(whole_word=True, ngram=3))
    c.train.update(dict(steps=125_000, batch_size=4096, seq_len=512, lr=0.00176, warmup_steps=3_125,
                        optimizer="lamb", b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01, clip_norm=1.0,
                        log_every=100))
    c.checkpoint.update(dict(every=5_000, keep=3, keep_every=25_000))
    return c
