"""Patient KD (Sun et al. 2019) on a GLUE task, as the paper and the authors' code
(intersun/PKD-for-BERT-Model-Compression) run it: a BERT-Base teacher fine-tuned on the task, a 6-layer
student, loss = (1 − α) · task cross-entropy + α · KL(teacher_T || student_T) · T² + β · PT, PT the mean
squared error of the L2-normalised [CLS] vectors of the student's layers 1..5 against teacher layers
2, 4, 6, 8, 10 (PKD-Skip, the paper's better variant; "pkd.py:last" gives PKD-Last, layers 7..11).

    jaxbert distill --config configs/distill/pkd.py --workdir DIR --config.objective.teacher=FINETUNED \\
        [--config.objective.student_init=PRETRAINED] [--config.data.train=FILE --config.data.eval=FILE]

FINETUNED: the teacher fine-tuned on the task (a `jaxbert finetune` workdir, bundle or HF
*ForSequenceClassification dir); its tokenizer is used. The data keys are fine-tuning's (task.name,
data.train, data.eval, eval.metric ...; default SST-2 under $JAXBERT_DATA), and the run is evaluated with
the task's metric, the best student kept in DIR/best. `jaxbert.load(DIR)` gives it.

Defaults and their sources:
- student = the teacher's architecture with model.num_layers = 6 layers, started from the first 6 layers
  (init_layers="first") of objective.student_init. The authors' code takes them from the pretrained
  BERT (--encoder_checkpoint defaults to bert-base-uncased) with a fresh classifier: pass the checkpoint the
  teacher was fine-tuned from. Empty (the default here, as a path cannot be known) takes them, and the
  classifier, from the fine-tuned teacher instead.
- T = 10, α = 0.7, β = 500, lr 1e-5 (the code's predefined PKD setting, src/argument_parser.py
  get_predefine_argv "kd.cls"; the paper searches T ∈ {5, 10, 20}, α ∈ {0.2, 0.5, 0.7},
  β ∈ {10, 100, 500, 1000}, lr ∈ {1e-5, 2e-5, 5e-5} per task); normalised patience vectors
  (--normalize_patience True).
- batch 32, sequences of 128 tokens, 4 epochs, warmup over the first 10% of the steps then linear decay
  (scripts/run_student_patience.py, the parser's --warmup_proportion 0.1).

Departures: the soft-target KL sums over classes per example as in the paper's formula (the code's
KLDivLoss(reduction="mean") also divides by the number of classes, a constant factor on α); AdamW is optax's
(the code uses BertAdam, without bias correction).

"pkd.py:corpus" (or "pkd.py:last,corpus") is the task-agnostic variant on an unlabelled corpus: MLM as the
task (soft targets on the MLM logits at the masked positions) with a pretrained teacher, trained by the
pretraining pipeline; its corpus, sequence length and steps (BERT's phase-1 shape, 100k steps) are our
choice, not the paper's.
"""

import ml_collections

from jaxbert.config import ConfigError
from jaxbert.finetune.config import finetune_config
from jaxbert.train.experiment import pretrain_config


def _objective(strategy: str, task: str, **losses) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        name="pkd",
        task=task,  # "classification": a labelled task file; "mlm": an unlabelled corpus
        teacher="",  # required: the teacher checkpoint (bundle, workdir or Hugging Face dir)
        teacher_model="", teacher_seed=0,
        student_init="",  # a checkpoint whose first layers start the student; empty: the teacher's
        strategy=strategy, init_layers="first", label_field="labels", **losses))


def _task_config(strategy: str) -> ml_collections.ConfigDict:
    c = finetune_config("sst2", lr=1e-5, batch_size=32, epochs=4.0, seq_len=128)
    c.model = ml_collections.ConfigDict(dict(num_layers=6))  # the student: the teacher's architecture, 6 layers
    c.objective = _objective(strategy, "classification", temperature=10.0, alpha=0.7, beta=500.0)
    return c


def _corpus_config(strategy: str) -> ml_collections.ConfigDict:
    seq_len = 128
    c = pretrain_config({"preset": "bert-base", "num_layers": 6, "heads": ["mlm"], "pooler": False},
                        pair_task="none")
    c.objective = _objective(strategy, "mlm", temperature=10.0, alpha=0.5, beta=100.0)
    c.objective.update(dict(pair_task="none",  # the data format: packed full sentences, no NSP labels
                            mask_prob=0.15, max_predictions=20, mask_replace_prob=0.8, random_replace_prob=0.1,
                            whole_word=False))
    c.data.corpus = ("tfds:wikipedia/20230601.en",)
    c.train.update(dict(steps=100_000, batch_size=32, seq_len=seq_len, lr=5e-5, warmup_steps=1_000,
                        schedule="linear", weight_decay=0.01, clip_norm=1.0, log_every=100, eval_every=10_000))
    c.checkpoint.update(dict(every=10_000, keep=3))
    return c


def get_config(arg: str = ""):
    options = {a.strip() for a in arg.split(",") if a.strip()}
    unknown = options - {"skip", "last", "corpus"}
    if unknown:
        raise ConfigError(f"--config pkd.py: unknown option(s) {sorted(unknown)}; use skip or last, and corpus")
    strategy = "last" if "last" in options else "skip"
    return _corpus_config(strategy) if "corpus" in options else _task_config(strategy)
