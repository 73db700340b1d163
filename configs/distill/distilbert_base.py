"""DistilBERT (Sanh et al. 2019): a 6-layer student of BERT-Base (uncased), started from the teacher's
layers 0, 2, ..., 10 ("one layer out of two"), trained with soft-target cross-entropy at T = 2 (weight 5),
MLM (weight 2) and the cosine loss on the last hidden states (weight 1), dynamic 15% masking (80/10/10),
no NSP, on Wikipedia + Toronto BookCorpus, batches of about 4K sequences, Adam lr 5e-4 with 5% warmup,
eps 1e-6, no weight decay, gradient-norm clipping at 5 (the authors' training script), 3 epochs.

    jaxbert distill --config configs/distill/distilbert_base.py --workdir DIR --config.objective.teacher=BERT_DIR

BERT_DIR: a jaxbert bundle, training workdir or Hugging Face directory of bert-base-uncased; its
tokenizer is used. The step count is 3 epochs of the ~3.3B-word corpus packed in 512-token sequences at
4096 sequences a step (our estimate; the paper gives epochs, not steps). Hugging Face's released
model used teacher layers [0, 2, 4, 7, 9, 11]: --config.objective.init_layers="[0,2,4,7,9,11]".
Not reproduced: the authors' token-frequency smoothing of the masking probabilities, and their
frozen position embeddings. `jaxbert.load(DIR)` gives the student.
"""

import ml_collections

from jaxbert.train.experiment import pretrain_config


def get_config():
    seq_len = 512
    c = pretrain_config("distilbert-base", pair_task="none")
    c.objective = ml_collections.ConfigDict(dict(
        name="distill",
        pair_task="none",  # the data format: packed full sentences, no NSP labels
        teacher="",  # required: the teacher checkpoint (bundle, workdir or Hugging Face dir)
        teacher_model="", teacher_seed=0,
        temperature=2.0, alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0, init_layers="skip",
        mask_prob=0.15, max_predictions=round(0.15 * seq_len), mask_replace_prob=0.8, random_replace_prob=0.1,
        whole_word=False))
    # Wikipedia from TFDS; Toronto BookCorpus has no public TFDS build: add its text files to this tuple.
    c.data.corpus = ("tfds:wikipedia/20230601.en",)
    c.train.update(dict(steps=6_000, batch_size=4096, seq_len=seq_len, lr=5e-4, warmup_steps=300,
                        schedule="linear", end_lr=0.0, optimizer="adamw", b1=0.9, b2=0.999, eps=1e-6,
                        weight_decay=0.0, clip_norm=5.0, log_every=50, eval_every=1_000))
    c.checkpoint.update(dict(every=500, keep=3))
    return c
