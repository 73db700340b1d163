"""CoNLL-2003 English named entities (PER, LOC, ORG, MISC; IOB tags); metric entity-level F1 (kept best).

    jaxbert finetune --config configs/finetune/conll2003.py --workdir DIR --config.init=PRETRAINED

Each word's tag is predicted on its first sub-token (the BERT paper, section 5.3, feeds the
first sub-token of each word to the token classifier; other pieces are ignored by the loss).
The paper gives no separate NER hyperparameters; these lie in its appendix A.3 ranges
(batch {16, 32}, lr {5e-5, 3e-5, 2e-5}, epochs {2, 3, 4}). Words cut off by seq_len count as "O".
Data: $JAXBERT_DATA/conll2003/{train,valid}.txt (token POS chunk NER); with no valid file,
data.eval_size of the training sentences is held out.
"""

from jaxbert.finetune.config import finetune_config


def get_config():
    return finetune_config("conll2003", lr=5e-5, batch_size=32, epochs=3, seq_len=128)
