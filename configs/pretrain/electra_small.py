"""ELECTRA-Small (Clark et al. 2020, appendix Table 6): 12 layers, hidden 256, 4 heads, embeddings 128;
generator at 1/4 width (generator_size=0.25, the original code's generator_hidden_size: hidden 64, 1 head,
all 12 layers) sharing the embeddings; batch 128 × 128 tokens, lr 5e-4,
1M steps, linear decay after 10k warmup steps, Adam(0.9, 0.999, eps 1e-6), weight decay 0.01,
dropout 0.1, 15% masking (85% [MASK], 15% kept), discriminator loss weight 50, sampling temperature 1,
global-norm clipping at 1.0 (the reference code's optimizer). Corpus: Wikipedia + BooksCorpus with
BERT's uncased WordPiece vocabulary.

    jaxbert pretrain --config configs/pretrain/electra_small.py --workdir DIR [--config.data.tokenizer=VOCAB_DIR]

`jaxbert.load(DIR)` gives the discriminator, the model the paper fine-tunes.
"""

import ml_collections

from jaxbert.train.experiment import pretrain_config


def get_config():
    seq_len = 128
    c = pretrain_config("electra-small", pair_task="none")
    c.objective = ml_collections.ConfigDict(dict(
        name="electra",
        pair_task="none",  # the data format: packed full sentences, no sentence-pair labels
        # The generator as the original code sizes it from the discriminator (configure_pretraining.py):
        # hidden x generator_size, layers x generator_layers, intermediate 4 x hidden, heads hidden // 64.
        generator_size=0.25, generator_layers=1.0,
        generator="",  # or an explicit model (a preset such as "electra-small-generator", or a dict)
        disc_weight=50.0, gen_weight=1.0, temperature=1.0,
        mask_prob=0.15,
        max_predictions=int((0.15 + 0.005) * seq_len),  # the reference code's max_predictions_per_seq
        mask_replace_prob=0.85, random_replace_prob=0.0, whole_word=False))
    # Wikipedia from TFDS; BooksCorpus has no public TFDS build: add its text files to this tuple.
    # Pass --config.data.tokenizer=DIR (bert-base-uncased's vocab.txt) to match the released checkpoints;
    # empty trains a 30522-id uncased WordPiece vocabulary on the corpus.
    c.data.corpus = ("tfds:wikipedia/20230601.en",)
    c.data.vocab_size = 30522
    c.data.lowercase = True
    c.train.update(dict(steps=1_000_000, batch_size=128, seq_len=seq_len, lr=5e-4, warmup_steps=10_000,
                        schedule="linear", end_lr=0.0, optimizer="adamw", b1=0.9, b2=0.999, eps=1e-6,
                        weight_decay=0.01, clip_norm=1.0, log_every=100, eval_every=10_000))
    c.checkpoint.update(dict(every=10_000, keep=3))
    return c
