"""BERT-base pretraining (Devlin et al. 2019): MLM + NSP on BooksCorpus + English Wikipedia.

Batch 256 sequences, 1M steps, Adam lr 1e-4 (beta2 0.999, weight decay 0.01), 10k warmup steps
then linear decay, dropout 0.1; seq 128 for 90% of the steps, then seq 512 (phase 2):

    jaxbert pretrain --config configs/pretrain/bert_base.py --workdir gs://BUCKET/bert-p1 \\
        --config.data.corpus=gs://BUCKET/wiki.txt,gs://BUCKET/books.txt --config.data.tokenizer=gs://BUCKET/vocab
    jaxbert pretrain --config configs/pretrain/bert_base.py:phase2 --workdir gs://BUCKET/bert-p2 \\
        --config.init=gs://BUCKET/bert-p1 --config.data.corpus=gs://BUCKET/wiki.txt,gs://BUCKET/books.txt

On a TPU pod, start it on every host with tpu_scripts/launch.sh (docs/tpu_pods.md).

BooksCorpus is not redistributed; point data.corpus at your copy (text/jsonl files or tfds: names).
An empty data.tokenizer trains a 30522-id WordPiece vocabulary on the corpus.
"""

from jaxbert.train.experiment import bert_phases, pretrain_config


def get_config(phase: str = "phase1"):
    c = pretrain_config("bert-base", pair_task="nsp")
    c.data.corpus = ("tfds:wikipedia/20230601.en:train",)
    c.train.update(dict(batch_size=256, lr=1e-4, warmup_steps=10_000, optimizer="adamw", b1=0.9, b2=0.999,
                        eps=1e-6, weight_decay=0.01, clip_norm=1.0, log_every=100))
    c.checkpoint.update(dict(every=10_000, keep=3, keep_every=100_000))
    return bert_phases(c, phase, steps=1_000_000, lr=1e-4)
