"""ALBERT-xxlarge pretraining (Lan et al. 2020): the ALBERT-base recipe on H=4096, 64 heads, 12 layers.

Batch 4096 x 512 tokens, 125k steps, LAMB lr 0.00176, 3125 warmup steps, SOP, n-gram masking (n <= 3
whole words, p(n) ∝ 1/n). The 4096-wide FFN
(16384) and attention shard over "tensor" (e.g. --config.mesh.tensor=4 --config.mesh.fsdp=8);
remat keeps activations in memory: --config.model.remat=dots.
"""

from jaxbert.train.experiment import pretrain_config


def get_config():
    c = pretrain_config("albert-xxlarge", pair_task="sop")
    c.data.corpus = ("tfds:wikipedia/20230601.en:train",)
    c.data.vocab_size = 30000
    c.objective.max_predictions = 20
    c.objective.update(dict(whole_word=True, ngram=3))
    c.train.update(dict(steps=125_000, batch_size=4096, seq_len=512, lr=0.00176, warmup_steps=3_125,
                        optimizer="lamb", b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.01, clip_norm=1.0,
                        log_every=100))
    c.checkpoint.update(dict(every=2_500, keep=3, keep_every=25_000))
    c.mesh.update(dict(data=-1, fsdp=8, tensor=1))
    return c
