"""QNLI: does the sentence answer the question; metric accuracy.

    jaxbert finetune --config configs/finetune/qnli.py --workdir DIR --config.init=PRETRAINED

The BERT paper (Devlin et al. 2019) fine-tunes GLUE with batch 32 for 3 epochs, choosing the
learning rate among {5e-5, 4e-5, 3e-5, 2e-5} on dev (section 4.1); its appendix A.3 gives the ranges
that work well on all tasks: batch {16, 32}, lr {5e-5, 3e-5, 2e-5}, epochs {2, 3, 4}, dropout 0.1,
warmup over the first 10% of steps then linear decay. Small sets (CoLA, MRPC, STS-B, RTE) are
unstable: run several seeds (--config.seed) and keep the best on dev.
Data: $JAXBERT_DATA/glue/qnli/{train,dev}.tsv in the GLUE layout (override with --config.data.train /
--config.data.eval); with no dev file, data.eval_size of train is held out, deterministically.
"""

from jaxbert.finetune.config import finetune_config


def get_config():
    return finetune_config("qnli", lr=2e-05, batch_size=32, epochs=3, seq_len=128)
