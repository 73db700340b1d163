"""SQuAD v2.0: extractive QA with unanswerable questions; metrics exact match and F1 (kept best).

    jaxbert finetune --config configs/finetune/squad_v2.py --workdir DIR --config.init=PRETRAINED

The BERT paper (Devlin et al. 2019, section 4.3) fine-tunes SQuAD v2.0 for 2 epochs with lr 5e-5
and batch 48; an unanswerable question's answer span is [CLS], and a question gets no answer
when the null score beats the best span by more than data.null_score_diff_threshold (tuned on
dev in the paper). Windows as for v1.1: 384 tokens, stride 128, questions up to 64 tokens.
Data: $JAXBERT_DATA/squad/{train,dev}-v2.0.json; with no dev file, whole articles are held out.
"""

from jaxbert.finetune.config import finetune_config


def get_config():
    c = finetune_config("squad_v2", lr=5e-5, batch_size=48, epochs=2, seq_len=384)
    c.data.update(dict(doc_stride=128, max_query_length=64, max_answer_length=30, n_best_size=20,
                       null_score_diff_threshold=0.0))
    c.eval.batch_size = 32
    return c
