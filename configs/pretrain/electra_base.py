"""ELECTRA-Base (Clark et al. 2020, appendix Table 6): 12 layers, hidden 768, 12 heads; generator at 1/3
width (generator_size=1/3: hidden 256, 4 heads); batch 256 × 512 tokens, lr 2e-4, 766k steps (BERT-Base's
compute). The rest of the recipe is ELECTRA-Small's (configs/pretrain/electra_small.py).

    jaxbert pretrain --config configs/pretrain/electra_base.py --workdir DIR [--config.data.tokenizer=VOCAB_DIR]

`jaxbert.load(DIR)` gives the discriminator, the model the paper fine-tunes.
"""

from pathlib import Path

from jaxbert.train.experiment import load_config


def get_config():
    seq_len = 512
    c = load_config(Path(__file__).with_name("electra_small.py"))
    c.model = "electra-base"
    c.objective.generator_size = 1 / 3  # the original code's commented Base setting: 0.33333
    c.objective.max_predictions = int((0.15 + 0.005) * seq_len)
    c.train.update(dict(steps=766_000, batch_size=256, seq_len=seq_len, lr=2e-4))
    return c
