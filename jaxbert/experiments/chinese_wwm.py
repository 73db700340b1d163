"""The Chinese-BERT-wwm experiment (Cui et al. 2019) at small scale: character masking vs whole-word masking.

The same tiny Chinese BERT is pretrained twice, for the same steps and seed, on People's Daily text (the
PKU word segmentation gives the words): once masking characters (BERT's Chinese masking: every CJK
character is its own WordPiece token) and once masking whole words. Both share one vocabulary and one
dataset; only `objective.whole_word` differs. Each model is then scored on held-out lines by masked-LM
accuracy under both maskings, and fine-tuned on zh_ner (entity F1 on held-out lines) and zh_sentiment
(accuracy on held-out reviews).

    python -m jaxbert.experiments.chinese_wwm --config configs/experiments/chinese_wwm.py --workdir DIR

Prints the table, writes DIR/results.json. HFL report People's Daily NER F1 95.2 (avg 94.9) for BERT and
95.3 (95.1) for BERT-wwm, at BERT-base size on Wikipedia: whole-word masking a little ahead downstream.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxbert.errors import JaxbertError

log = logging.getLogger("jaxbert.chinese_wwm")
MASKINGS = {"char": False, "wwm": True}  # name -> objective.whole_word


def split_corpus(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, Path]:
    """Pretraining / held-out parts of the People's Daily file (whole lines, PKU form) under DIR/data."""
    d = config.data
    lines = [line for line in Path(d.peoples_daily).read_text("utf-8").splitlines() if line.strip()]
    lo, hi = int(d.heldout_start), int(d.heldout_end) if int(d.heldout_end) > 0 else len(lines)
    if not 0 < int(d.train_lines) <= lo < hi <= len(lines):
        raise JaxbertError(f"config.data: need 0 < train_lines ({d.train_lines}) <= heldout_start ({lo}) < "
                           f"heldout_end ({hi}) <= {len(lines)} lines")
    out = workdir / "data"
    out.mkdir(parents=True, exist_ok=True)
    files = {"train": out / "pd-train.txt", "heldout": out / "pd-heldout.txt"}
    files["train"].write_text("\n".join(lines[:int(d.train_lines)]) + "\n", encoding="utf-8")
    files["heldout"].write_text("\n".join(lines[lo:hi]) + "\n", encoding="utf-8")
    return files


def pretrain_config(config: ml_collections.ConfigDict, files: dict[str, Path], tokenizer_dir: Path,
                    whole_word: bool) -> ml_collections.ConfigDict:
    from jaxbert.train.experiment import smoke_config

    p = config.pretrain
    c = smoke_config("bert")
    c.seed = int(config.seed)
    with c.ignore_type():
        c.model = {"preset": "bert-tiny", "num_layers": int(p.layers), "hidden_size": int(p.hidden),
                   "num_heads": int(p.heads), "intermediate_size": 4 * int(p.hidden),
                   "max_position_embeddings": int(p.seq_len), "hidden_dropout": 0.0, "attention_dropout": 0.0}
    c.data.update(dict(corpus=(str(files["train"]),), eval_corpus=(str(files["heldout"]),),
                       tokenizer=str(tokenizer_dir), word_segmenter="pku", sentence_split="rules",
                       line_documents=True))
    c.objective.update(dict(whole_word=whole_word, max_predictions=int(p.max_predictions)))
    c.train.update(dict(steps=int(p.steps), batch_size=int(p.batch_size), seq_len=int(p.seq_len), lr=float(p.lr),
                        warmup_steps=int(p.warmup_steps), log_every=max(1, int(p.steps) // 10),
                        eval_every=int(p.steps), eval_batches=int(p.eval_batches), progress=False))
    c.checkpoint.update(dict(every=int(p.steps), keep=1, async_save=False))
    return c


def masked_lm_accuracy(model: Any, data_dir: Path, whole_word: bool, batch_size: int, batches: int,
                       seed: int) -> float:
    """MLM accuracy of a pretrained model on a held-out dataset under one masking (same masks for every model)."""
    from jaxbert.data.loader import make_pretraining_loader
    from jaxbert.data.masking import MaskingConfig
    from jaxbert.objectives.masking_setup import FROM_DATA
    from jaxbert.objectives.mlm import MaskedLM

    special = model.tokenizer.special
    masking = MaskingConfig(mask_token_id=special.mask, vocab_size=model.config.vocab_size,
                            special_ids=special.all(), whole_word=whole_word)
    objective = MaskedLM(model.config, masking, "nsp", FROM_DATA if whole_word else None)
    fields = objective.batch_fields(batch_size, 1)
    loss = jax.jit(lambda params, batch, rng: objective.loss(params, {}, batch, rng, deterministic=True)[1])
    accuracies = []
    loader = make_pretraining_loader(data_dir, batch_size, shuffle=False, num_epochs=1, num_threads=1)
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        metrics = loss(model.params, {k: batch[k] for k in fields}, jax.random.fold_in(jax.random.key(seed), i))
        accuracies.append(float(metrics["mlm_accuracy"]))
    return float(np.mean(accuracies))


def finetune(config: ml_collections.ConfigDict, task: str, init: Path, files: dict[str, Path],
             workdir: Path) -> dict[str, float]:
    """Best held-out metrics of fine-tuning `init` on a task (jaxbert finetune's pipeline)."""
    from jaxbert.finetune.config import finetune_config
    from jaxbert.finetune.run import run_finetuning

    f = config.finetune
    d = config.data
    c = finetune_config(task, lr=float(f.lr), batch_size=int(f.batch_size), epochs=float(f.epochs),
                        seq_len=int(f.seq_len))
    c.init = str(init)
    c.seed = int(config.seed)
    if task == "zh_ner":
        c.data.update(dict(train=str(files["train"]), eval=str(files["heldout"]),
                           max_train_examples=int(d.ner_train), max_eval_examples=int(d.ner_eval)))
    else:
        c.data.update(dict(train=str(d.sentiment), eval="", eval_size=int(d.sentiment_eval),
                           max_train_examples=int(d.sentiment_train)))
    c.train.update(dict(progress=False, log_every=50))
    c.checkpoint.update(dict(async_save=False))
    result = run_finetuning(c, workdir)
    return result.best or result.final


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Both pretraining runs, their MLM accuracies and their fine-tuned scores; writes DIR/results.json."""
    from jaxbert.api import load
    from jaxbert.pretrain import run_pretraining
    from jaxbert.pretrain.datasets import dataset_dir
    from jaxbert.tokenize import train_vocab

    workdir = Path(workdir).absolute()
    start = time.perf_counter()
    files = split_corpus(config, workdir)
    tokenizer_dir = workdir / "vocab"
    if not (tokenizer_dir / "vocab.txt").is_file():
        train_vocab(files["train"], "wordpiece", int(config.pretrain.vocab_size), tokenizer_dir, segmenter="pku",
                    limit_alphabet=int(config.pretrain.limit_alphabet))
    results: dict[str, Any] = {"models": {}, "config": config.to_dict()}
    eval_data = None
    for name in config.maskings:
        if name not in MASKINGS:
            raise JaxbertError(f"config.maskings: unknown {name!r}; use {', '.join(MASKINGS)}")
        run = workdir / f"pretrain-{name}"
        pc = pretrain_config(config, files, tokenizer_dir, MASKINGS[name])
        # Both runs read one dataset (built by the first): the same examples, only the masking differs.
        pc.data.data_dir = str(workdir / "datasets")
        t0 = time.perf_counter()
        pretrained = run_pretraining(pc, run)
        eval_data = dataset_dir(pc, run, "eval")
        model = load(run)
        row: dict[str, Any] = {"pretrain_s": round(time.perf_counter() - t0, 1),
                               "train_mlm_accuracy": pretrained.metrics.get("mlm_accuracy")}
        for masked, whole in MASKINGS.items():
            row[f"mlm_accuracy_{masked}_masks"] = masked_lm_accuracy(
                model, eval_data, whole, int(config.pretrain.batch_size), int(config.pretrain.eval_batches),
                int(config.seed) + 7)
        for task, key in (("zh_ner", "entity_f1"), ("zh_sentiment", "accuracy")):
            t0 = time.perf_counter()
            metrics = finetune(config, task, run, files, workdir / f"{task}-{name}")
            row[f"{task}_{key}"] = metrics.get(key)
            row[f"{task}_s"] = round(time.perf_counter() - t0, 1)
        results["models"][name] = row
        log.info("%s: %s", name, row)
    results["seconds"] = round(time.perf_counter() - start, 1)
    (workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(format_table(results))
    return results


def format_table(results: dict[str, Any]) -> str:
    cols = ("mlm_accuracy_char_masks", "mlm_accuracy_wwm_masks", "zh_ner_entity_f1", "zh_sentiment_accuracy")
    heads = ("MLM acc (char masks)", "MLM acc (word masks)", "zh_ner entity F1", "zh_sentiment acc")
    lines = ["| pretraining masking | " + " | ".join(heads) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in results["models"].items():
        cells = [f"{row[c]:.4f}" if isinstance(row.get(c), float) else "-" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| HFL paper (BERT-base, Wikipedia) | - | - | BERT 95.2 (94.9) < BERT-wwm 95.3 (95.1) | - |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from jaxbert.logs import setup_logging
    from jaxbert.train.experiment import apply_overrides, load_config

    parser = argparse.ArgumentParser(prog="python -m jaxbert.experiments.chinese_wwm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--workdir", required=True)
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if not a.startswith("--config.")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    setup_logging()
    config = load_config(args.config)
    apply_overrides(config, extra)
    run_experiment(config, args.workdir)
    return 0


if __name__ == "__main__":
    import sys

    try:
        sys.exit(main())
    except JaxbertError as e:
        print(f"chinese_wwm: error: {e}", file=sys.stderr)
        sys.exit(1)
