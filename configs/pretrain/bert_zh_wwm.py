"""Chinese-BERT-wwm pretraining (Cui et al. 2019, "Pre-Training with Whole Word Masking for Chinese BERT").

HFL's recipe for BERT-wwm: BERT-base initialised from Google's BERT-base, Chinese, keeping its 21,128-id
vocabulary; Chinese Wikipedia (0.4B tokens), segmented into words by LTP; MLM with whole-word masking
(15% of tokens, 80/10/10) plus NSP; 100k steps at 128 tokens with batch 2,560, then 100k at 512 with
batch 384; LAMB, lr 1e-4 with 10% warmup. As in BERT, phase 2 starts from phase 1 (`:phase2`).

    jaxbert pretrain --config configs/pretrain/bert_zh_wwm.py --workdir W1 \\
        --config.init=BERT_BASE_CHINESE --config.data.tokenizer=BERT_BASE_CHINESE
    jaxbert pretrain --config configs/pretrain/bert_zh_wwm.py:phase2 --workdir W2 --config.init=W1

BERT_BASE_CHINESE is a transformers save_pretrained folder of bert-base-chinese (jaxbert.load opens it).
Where jaxbert departs: the segmenter is jieba (`data.word_segmenter`; LTP plugs in as
'package.module:function'), the corpus is the TFDS Wikipedia dump (lines are paragraphs: split into
sentences after 。！？ with sentence_split=rules; TFDS keeps no traditional-to-simplified conversion,
which HFL applied), masking is dynamic (drawn every step) where HFL fixed masks when building the data,
and Adam's moments restart between the phases.
"""

from jaxbert.train.experiment import pretrain_config


def get_config(phase: str = "phase1"):
    c = pretrain_config("bert-base", pair_task="nsp")
    c.data.corpus = ("tfds:wikipedia/20230601.zh:train",)
    c.data.update(dict(word_segmenter="jieba", sentence_split="rules", vocab_size=21128, limit_alphabet=20000))
    c.objective.update(dict(whole_word=True, max_predictions=20))
    c.train.update(dict(optimizer="lamb", lr=1e-4, warmup_steps=10_000, steps=100_000, batch_size=2560,
                        seq_len=128, weight_decay=0.01, log_every=100))
    if phase == "phase2":
        c.phase = "phase2"
        c.objective.max_predictions = 80
        c.train.update(dict(seq_len=512, batch_size=384))
    c.checkpoint.update(dict(every=5_000, keep=3))
    return c
