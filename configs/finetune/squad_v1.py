"""SQuAD v1.1 extractive question answering; metrics exact match and F1 (kept best).

    jaxbert finetune --config configs/finetune/squad_v1.py --workdir DIR --config.init=PRETRAINED

The BERT paper (Devlin et al. 2019, section 4.2) fine-tunes SQuAD v1.1 for 3 epochs with lr 5e-5
and batch 32 (appendix A.3 ranges: lr {5e-5, 3e-5}, epochs {2, 3}), on 384-token windows with a
128-token document stride and questions cut to 64 tokens, as BERT's run_squad.py; answers of at
most 30 tokens, picked from the 20 best starts and ends.
Data: $JAXBERT_DATA/squad/{train,dev}-v1.1.json; with no dev file, data.eval_size of the
articles is held out (whole articles, so no paragraph is seen in training).
"""

from jaxbert.finetune.config import finetune_config


def get_config():
    c = finetune_config("squad_v1", lr=5e-5, batch_size=32, epochs=3, seq_len=384)
    c.data.update(dict(doc_stride=128, max_query_length=64, max_answer_length=30, n_best_size=20))
    c.eval.batch_size = 32
    return c
