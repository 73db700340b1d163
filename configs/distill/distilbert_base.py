"""DistilBERT (Sanh et al. 2019) as the authors' code trains it: a 6-layer student of BERT-Base (uncased).

    jaxbert distill --config configs/distill/distilbert_base.py --workdir DIR --config.objective.teacher=BERT_DIR

BERT_DIR: a jaxbert bundle, training workdir or Hugging Face directory of bert-base-uncased; its tokenizer
is used. `jaxbert.load(DIR)` gives the student. "The code" below is huggingface/transformers
examples/research_projects/distillation (train.py, distiller.py, scripts/extract_distilbert.py,
scripts/token_counts.py, training_configs/distilbert-base-uncased.json, and the training command in its
README); "the paper" is Sanh et al. 2019.

Every default and its source:
- student: 6 layers, hidden 768, 12 heads, no segment embeddings, no pooler (the paper; the code's
  training_configs/distilbert-base-uncased.json).
- init_layers="spread": teacher layers [0, 2, 4, 7, 9, 11] (scripts/extract_distilbert.py; the paper's
  "one layer out of two" is init_layers="skip", layers 0, 2, ..., 10). The extraction also copies the word
  and position embeddings, the embedding LayerNorm and the MLM output bias (the decoder is tied to the
  word embeddings); it leaves the MLM transform (dense + LayerNorm) at its fresh init unless run with
  --vocab_transform: init_mlm_transform=False. It copies no segment embeddings and folds none into the
  positions: fold_token_type=False (True adds the teacher's segment-0 vector to the position table, so the
  student's embedding output starts equal to the teacher's).
- loss = 5 · soft-target CE + 2 · MLM + 1 · cosine on the last hidden states, T = 2 (the README's
  --alpha_ce 5.0 --alpha_mlm 2.0 --alpha_cos 1.0; train.py's --temperature 2.0).
- ce_positions="all": the soft targets cover every real token (distiller.py; "masked" is its
  --restrict_ce_to_mask). The cosine loss covers every real token, the MLM loss the masked ones (distiller.py).
- masking: 15% of the tokens, of them 80% [MASK] / 10% random / 10% kept (train.py --mlm_mask_prop,
  --word_mask, --word_rand, --word_keep); tokens picked with probability ∝ max(count, 1)^-0.7, special
  tokens never (train.py --mlm_smoothing 0.7 with scripts/token_counts.py): mask_smoothing=0.7, and
  `jaxbert distill` counts the training data's token ids once into WORKDIR/token_counts.npy unless
  objective.token_counts names a .npy file of counts. mask_smoothing=0 masks uniformly, as BERT.
- freeze_position_embeddings=True: the position table stays at the teacher's values (the README's
  command passes --freeze_pos_embs; the student config's sinusoidal_pos_embds=true makes transformers'
  DistilBERT position table untrainable, and the extracted teacher table is loaded into it).
- optimizer: AdamW, lr 5e-4, betas (0.9, 0.98), eps 1e-6, weight decay 0, linear warmup over 5% of the
  steps then linear decay to 0, gradient-norm clipping at 5 (distiller.py, train.py's defaults).
- data: Wikipedia + Toronto BookCorpus, batches of up to 4K sequences (the paper), 3 epochs (train.py
  --n_epoch 3). The step count is our estimate: 3 epochs of the ~3.3B-word corpus packed in 512-token
  sequences at 4096 sequences a step (the paper gives epochs, not steps).

Where jaxbert still departs from the code, and why:
- how many tokens are masked: the code draws ceil(15% of the batch's tokens) over the whole batch at once;
  jaxbert draws BERT's per-sequence count, min(max_predictions, round(15% of the sequence's maskable
  tokens)), so the masked slots have a fixed shape [B, max_predictions] inside the jitted step.
  Within a sequence the draw is the code's: without replacement, in proportion to the smoothed
  probabilities (Gumbel top-k).
- random replacements are drawn from the non-special ids (the code draws from the whole vocabulary).
- examples are the pretraining pipeline's packed sequences of `train.seq_len` tokens (the code batches
  one line of "several coherent sentences" each, grouped by length, up to 512 tokens).
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
        temperature=2.0, alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0,
        ce_positions="all",  # "masked": soft targets at the masked slots only (--restrict_ce_to_mask)
        init_layers="spread",  # teacher layers [0, 2, 4, 7, 9, 11]
        init_mlm_transform=False, fold_token_type=False,
        freeze_position_embeddings=True,
        mask_smoothing=0.7,  # 0: uniform masking
        token_counts="",  # a .npy of per-id counts; empty: `jaxbert distill` counts the training data
        mask_prob=0.15, max_predictions=round(0.15 * seq_len), mask_replace_prob=0.8, random_replace_prob=0.1,
        whole_word=False))
    # Wikipedia from TFDS; Toronto BookCorpus has no public TFDS build: add its text files to this tuple.
    c.data.corpus = ("tfds:wikipedia/20230601.en",)
    c.train.update(dict(steps=6_000, batch_size=4096, seq_len=seq_len, lr=5e-4, warmup_steps=300,
                        schedule="linear", end_lr=0.0, optimizer="adamw", b1=0.9, b2=0.98, eps=1e-6,
                        weight_decay=0.0, clip_norm=5.0, log_every=50, eval_every=1_000))
    c.checkpoint.update(dict(every=500, keep=3))
    return c
