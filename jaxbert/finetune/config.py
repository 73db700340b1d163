"""The base fine-tuning experiment config: every key `jaxbert finetune` reads, with BERT-paper defaults.

Data files default to a data root laid out like ../shared/data (`glue/<task>/train.tsv`,
`squad/...json`, `conll2003/train.txt`), taken from $JAXBERT_DATA (default "data").
"""

from __future__ import annotations

import os

import ml_collections

from jaxbert.finetune.tasks import get_task
from jaxbert.train.spec import checkpoint_section, log_section, profile_section, resume_section, train_section

# Where each task's files sit under the data root (train, eval); eval files that do not exist
# are replaced by a held-out part of train (see data.eval_size).
DATA_FILES = {
    "sst2": ("glue/sst2/train.tsv", "glue/sst2/dev.tsv"),
    "cola": ("glue/cola/train.tsv", "glue/cola/dev.tsv"),
    "mrpc": ("glue/mrpc/train.tsv", "glue/mrpc/dev.tsv"),
    "stsb": ("glue/stsb/train.tsv", "glue/stsb/dev.tsv"),
    "qqp": ("glue/qqp/train.tsv", "glue/qqp/dev.tsv"),
    "mnli": ("glue/mnli/train.tsv", "glue/mnli/dev_matched.tsv"),
    "qnli": ("glue/qnli/train.tsv", "glue/qnli/dev.tsv"),
    "rte": ("glue/rte/train.tsv", "glue/rte/dev.tsv"),
    "wnli": ("glue/wnli/train.tsv", "glue/wnli/dev.tsv"),
    "squad_v1": ("squad/train-v1.1.json", "squad/dev-v1.1.json"),
    "squad_v2": ("squad/train-v2.0.json", "squad/dev-v2.0.json"),
    "conll2003": ("conll2003/train.txt", "conll2003/valid.txt"),
    "zh_sentiment": ("zh/sentiment/train.tsv", "zh/sentiment/dev.tsv"),
    "zh_ner": ("zh/peoples_daily/199801-train.txt", "zh/peoples_daily/199801-dev.txt"),
}


def data_root() -> str:
    return os.environ.get("JAXBERT_DATA", "data")


def finetune_config(task: str, lr: float = 2e-5, batch_size: int = 32, epochs: float = 3.0,
                    seq_len: int = 128) -> ml_collections.ConfigDict:
    """Every key a fine-tuning run reads. `init` is the pretrained checkpoint (bundle, workdir or HF dir)."""
    spec = get_task(task)
    train_file, eval_file = DATA_FILES[spec.name]
    root = data_root()
    c = ml_collections.ConfigDict()
    c.init = ""  # a jaxbert bundle, training workdir or HF directory; "" = random init of `model` (tests)
    c.model = ml_collections.ConfigDict()  # ModelConfig overrides on top of init's (dropout, dtype, kernel...)
    c.seed = 0
    c.objective = ml_collections.ConfigDict(dict(name="finetune"))
    c.task = ml_collections.ConfigDict(dict(
        name=spec.name, kind=spec.kind, num_labels=spec.num_labels(), classifier_dropout=0.1))
    c.data = ml_collections.ConfigDict(dict(
        train=f"{root}/{train_file}",
        eval=f"{root}/{eval_file}",  # "" or a missing file: hold out eval_size of train instead
        eval_size=0.1,  # a fraction (0, 1) or a count >= 1; SQuAD holds out whole articles
        split_seed=0,
        max_train_examples=0,  # 0 = all; else the first N (after the held-out split)
        max_eval_examples=0,
        on_error="raise",  # bad rows: "raise" (one line naming file/line/id) or "skip" (counted)
        shuffle_seed=0,
        doc_stride=128, max_query_length=64, max_answer_length=30, n_best_size=20,  # SQuAD
        null_score_diff_threshold=0.0,  # SQuAD v2.0
        # Several training examples per row, told apart by segment ids (classification / regression only;
        # jaxbert.data.packing); max_examples_per_row 0 = seq_len // 16. Evaluation stays unpacked.
        pack_examples=False, max_examples_per_row=0))
    # BERT's fine-tuning recipe; every other train/checkpoint field has its spec default (jaxbert.train.spec).
    c.train = ml_collections.ConfigDict(train_section(
        steps=0,  # 0 = epochs x rows / batch_size
        epochs=float(epochs), batch_size=batch_size, seq_len=seq_len, lr=lr,
        warmup_steps=-1, warmup_ratio=0.1,  # warmup_steps < 0: warmup_ratio x steps (BERT: 10%)
        log_every=50, eval_every=0))  # also evaluate every N steps (0: only at the end)
    c.eval = ml_collections.ConfigDict(dict(metric=spec.metric, mode="max", batch_size=64))
    c.checkpoint = ml_collections.ConfigDict(checkpoint_section(keep=1))
    c.log = ml_collections.ConfigDict(log_section())  # trackers: jsonl, tensorboard (+ wandb)
    c.profile = ml_collections.ConfigDict(profile_section())  # a jax.profiler trace of some steps
    c.resume = ml_collections.ConfigDict(resume_section())  # fields a resumed run may change (allow_changes)
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    c.distributed = ml_collections.ConfigDict(dict(coordinator_address="", num_processes=-1, process_id=-1))
    return c
