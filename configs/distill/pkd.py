"""Patient KD (Sun et al. 2019): a 6-layer BERT student of a 12-layer BERT-Base teacher, started from the
teacher's first 6 layers; loss = (1 − α) · task + α · KL(teacher_T || student_T) · T² + β · normalised
[CLS] MSE of the student's layers 1..5 against teacher layers 2, 4, 6, 8, 10 (PKD-Skip, the paper's
better variant; "pkd.py:last" gives PKD-Last, layers 7..11). T = 10, α = 0.5, β = 100 sit in the
paper's grids (T ∈ {5, 10, 20}, α ∈ {0.2, 0.5, 0.7}, β ∈ {10, 100, 500, 1000}), as does lr 5e-5 with batch 32.

    jaxbert distill --config configs/distill/pkd.py --workdir DIR --config.objective.teacher=BERT_DIR

The paper distils on each GLUE task with a fine-tuned teacher. `jaxbert distill` runs on a corpus, so
this config applies the PKD losses task-agnostically with MLM as the task (soft targets on the MLM
logits at the masked positions); its corpus, sequence length and step count (BERT's phase-1 shape,
100k steps) are our choice, not the paper's. The objective also does the paper's classification setting
(objective.task="classification" with a fine-tuned teacher and a `labels` batch field).
"""

import ml_collections

from jaxbert.train.experiment import pretrain_config


def get_config(strategy: str = "skip"):
    seq_len = 128
    c = pretrain_config({"preset": "bert-base", "num_layers": 6, "heads": ["mlm"], "pooler": False},
                        pair_task="none")
    c.objective = ml_collections.ConfigDict(dict(
        name="pkd",
        pair_task="none",  # the data format: packed full sentences, no NSP labels
        teacher="",  # required: the teacher checkpoint (bundle, workdir or Hugging Face dir)
        teacher_model="", teacher_seed=0,
        task="mlm", strategy=strategy, temperature=10.0, alpha=0.5, beta=100.0, init_layers="first",
        label_field="labels",
        mask_prob=0.15, max_predictions=20, mask_replace_prob=0.8, random_replace_prob=0.1, whole_word=False))
    c.data.corpus = ("tfds:wikipedia/20230601.en",)
    c.train.update(dict(steps=100_000, batch_size=32, seq_len=seq_len, lr=5e-5, warmup_steps=1_000,
                        schedule="linear", weight_decay=0.01, clip_norm=1.0, log_every=100, eval_every=10_000))
    c.checkpoint.update(dict(every=10_000, keep=3))
    return c
