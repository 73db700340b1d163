"""Smoke run: a tiny DistilBERT student distilled for about a minute on CPU on the bundled Python docs
from a random 4-layer BERT teacher (the student starts from teacher layers 0 and 2).

    jaxbert distill --config configs/smoke/distilbert.py --workdir /tmp/smoke-distilbert

Distil from a trained teacher instead with --config.objective.teacher=WORKDIR_OR_BUNDLE (e.g. the
workdir of configs/smoke/bert.py); its tokenizer is then used. `jaxbert.load(WORKDIR)` gives the student.
"""

import ml_collections

from jaxbert.train.experiment import smoke_config

TEACHER = {"preset": "bert-tiny", "num_layers": 4, "intermediate_size": 512, "max_position_embeddings": 128}


def get_config():
    c = smoke_config("bert")  # the smoke runs' data, schedule and checkpointing
    c.model = {"preset": "distilbert-base", "num_layers": 2, "hidden_size": 128, "num_heads": 2,
               "intermediate_size": 512, "max_position_embeddings": 128}
    c.objective = ml_collections.ConfigDict(dict(
        name="distill",
        pair_task="none",  # the data format: packed full sentences, no NSP labels
        teacher="",  # a checkpoint path; empty: a random teacher_model (vocabulary fitted to the tokenizer)
        teacher_model=TEACHER, teacher_seed=0,
        temperature=2.0, alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0, init_layers="skip",
        # configs/distill/distilbert_base.py explains these; the smoke run masks uniformly and trains every table.
        ce_positions="all", init_mlm_transform=False, fold_token_type=False, freeze_position_embeddings=False,
        mask_smoothing=0.0, token_counts="",
        mask_prob=0.15, max_predictions=10, mask_replace_prob=0.8, random_replace_prob=0.1, whole_word=False))
    return c
