"""Smoke run: a tiny ELECTRA (generator MLM + discriminator replaced-token detection, tied embeddings)
pretrained for about a minute on CPU on the bundled Python docs.

    jaxbert pretrain --config configs/smoke/electra.py --workdir /tmp/smoke-electra

`jaxbert.load(WORKDIR)` then gives the discriminator (out.logits["rtd"]).
"""

import ml_collections

from jaxbert.train.experiment import smoke_config


def get_config():
    c = smoke_config("bert")  # the smoke runs' data, schedule and checkpointing
    # Discriminator: 2 layers, hidden 128, embeddings factorised to 64 (shared with the generator).
    c.model = {"preset": "electra-small", "num_layers": 2, "hidden_size": 128, "num_heads": 2,
               "intermediate_size": 512, "embedding_size": 64, "max_position_embeddings": 128}
    c.objective = ml_collections.ConfigDict(dict(
        name="electra",
        pair_task="none",  # the data format: packed full sentences, no NSP labels
        # Generator at 1/4 of the discriminator's width, as in the paper's ELECTRA-Small: hidden 32, 1 head.
        generator_size=0.25, generator_layers=1.0, generator="",
        disc_weight=50.0, gen_weight=1.0, temperature=1.0,
        mask_prob=0.15, max_predictions=10, mask_replace_prob=0.85, random_replace_prob=0.0, whole_word=False))
    return c
