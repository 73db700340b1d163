"""BERT-large pretraining (Devlin et al. 2019): the BERT-base recipe on the 24-layer, 1024-wide model.

Batch 256, 1M steps, Adam lr 1e-4, 10k warmup, linear decay; seq 128 for 90% of the steps, then
seq 512 (`bert_large.py:phase2` with --config.init=PHASE1_WORKDIR). On a TPU pod shard the
params with e.g. --config.mesh.fsdp=8.
"""

from jaxbert.train.experiment import bert_phases, pretrain_config


def get_config(phase: str = "phase1"):
    c = pretrain_config("bert-large", pair_task="nsp")
    c.data.corpus = ("tfds:wikipedia/20230601.en:train",)
    c.train.update(dict(batch_size=256, lr=1e-4, warmup_steps=10_000, optimizer="adamw", b1=0.9, b2=0.999,
                        eps=1e-6, weight_decay=0.01, clip_norm=1.0, log_every=100))
    c.checkpoint.update(dict(every=10_000, keep=3, keep_every=100_000))
    return bert_phases(c, phase, steps=1_000_000, lr=1e-4)
