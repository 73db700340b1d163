"""Parameter counts of every preset against the papers' figures: writes docs/param_counts.md.

    python -m jaxbert.interop.param_table --output docs/param_counts.md

Counts come from the model's own param shapes (no allocation); tests/test_param_counts.py checks
that they equal transformers' counts and that the doc is up to date.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from jaxbert.config import PRESETS, ModelConfig
from jaxbert.model import count_params, param_shapes


@dataclass(frozen=True)
class Figure:
    """A parameter count as a paper prints it: `millions` rounded to `decimals` places."""

    millions: float
    decimals: int
    source: str

    def matches(self, count: int) -> bool:
        return abs(count / 1e6 - self.millions) <= 0.5 * 10 ** -self.decimals + 1e-9

    def __str__(self) -> str:
        return f"{self.millions:.{self.decimals}f}M"


DEVLIN, TURC = "Devlin et al. 2019", "Turc et al. 2019 (google-research/bert README)"
LIU, FAIRSEQ = "Liu et al. 2019, §5", "fairseq RoBERTa README"
LAN, CLARK, SANH = "Lan et al. 2020, Table 1", "Clark et al. 2020, Table 1/8", "Sanh et al. 2019"

PAPER: dict[str, Figure] = {
    "bert-tiny": Figure(4.4, 1, TURC), "bert-mini": Figure(11.3, 1, TURC),
    "bert-small": Figure(29.1, 1, TURC), "bert-medium": Figure(41.7, 1, TURC),
    "bert-base": Figure(110, 0, DEVLIN), "bert-large": Figure(340, 0, DEVLIN),
    "roberta-base": Figure(125, 0, FAIRSEQ), "roberta-large": Figure(355, 0, LIU),
    "albert-base": Figure(12, 0, LAN), "albert-large": Figure(18, 0, LAN),
    "albert-xlarge": Figure(60, 0, LAN), "albert-xxlarge": Figure(235, 0, LAN),
    "electra-small": Figure(14, 0, CLARK), "electra-base": Figure(110, 0, CLARK),
    "electra-large": Figure(335, 0, CLARK), "distilbert-base": Figure(66, 0, SANH),
}

# Why a figure matches neither our encoder-only count nor our count with the pretraining heads.
NOTES: dict[str, str] = {
    "bert-large": (
        "No count of the published shape gives 340M: the encoder is 335.1M (transformers' BertModel of the same "
        "config agrees, see tests/test_param_counts.py), 336.2M with the MLM+NSP heads. ALBERT's Table 1 lists "
        "BERT-large at 334M, which is our count without the pooler and with ALBERT's 30,000-token vocabulary "
        "(333.6M). 340M is a loose rounding in the BERT paper."),
    "electra-base": (
        "ELECTRA-Base has BERT-Base's encoder shape and the paper quotes BERT-Base's 110M. The discriminator has "
        "no pooler (0.59M) and a 0.59M replaced-token head instead of BERT's MLM+NSP heads (0.62M), so it counts "
        "109.5M in all."),
    "albert-xlarge": (
        "Not explained: one shared layer (50.4M) + pooler (4.2M) + factorized embeddings (3.9M) + E->H projection "
        "(0.26M) give 58.7M, 59.0M with the MLM+SOP heads; transformers' AlbertForPreTraining of the same config "
        "counts 59.0M too. The paper's 60M is 1M above any count we can construct."),
    "albert-xxlarge": (
        "Not explained: one shared layer of H=4096, FFN 16384 is 201.4M, + pooler 16.8M + embeddings 3.9M + "
        "projection 0.5M = 222.6M (223.2M with heads), and transformers' AlbertForPreTraining of the same config "
        "counts 223.2M. The paper's 235M is 12M above the architecture it describes (from memory, the released "
        "albert-xxlarge checkpoints also hold 223M)."),
}

# Lan et al. 2020, Tables 3 and 4: ALBERT-base (H=768, 12 layers, 30k vocab) by sharing mode and E.
# Figures are quoted from memory of the paper; each agrees with the architecture's arithmetic.
ALBERT_ABLATION: dict[tuple[str, int], int] = {
    ("none", 64): 87, ("none", 128): 89, ("none", 256): 93, ("none", 768): 108,
    ("all", 64): 10, ("all", 128): 12, ("all", 256): 16, ("all", 768): 31,
    ("attention", 128): 64, ("attention", 768): 83,
    ("ffn", 128): 38, ("ffn", 768): 57,
}
SHARING_NAMES = {"none": "not-shared", "attention": "shared-attention", "ffn": "shared-FFN", "all": "all-shared"}


def encoder_only(config: ModelConfig) -> int:
    """Embeddings + encoder + pooler: every param outside the pretraining heads."""
    shapes = param_shapes(config)
    return count_params({k: v for k, v in shapes.items() if not k.endswith("_head")})


def pooler_params(config: ModelConfig) -> int:
    return count_params(param_shapes(config).get("pooler", {}))


def _m(count: int, decimals: int = 2) -> str:
    return f"{count / 1e6:.{decimals}f}M"


def preset_rows() -> list[tuple[str, int, int, Figure | None]]:
    """(preset, total with heads, encoder-only, paper figure or None) for every preset."""
    return [(name, count_params(param_shapes(cfg)), encoder_only(cfg), PAPER.get(name))
            for name, cfg in PRESETS.items()]


def _preset_table() -> list[str]:
    lines = ["| preset | ours, with pretraining heads | ours, encoder-only | paper | paper's figure is | source |",
             "|---|---:|---:|---:|---|---|"]
    notes = []
    for name, total, encoder, figure in preset_rows():
        if figure is None:
            lines.append(f"| {name} | {total:,} | {encoder:,} | – | – | – |")
            continue
        if figure.matches(encoder):
            verdict = "encoder-only" + (" (and with heads)" if figure.matches(total) else "")
        elif figure.matches(total):
            verdict = "with heads"
        else:
            if name not in NOTES:
                raise ValueError(f"{name}: paper figure {figure} matches neither count; add a note to NOTES")
            verdict = f"neither, note {len(notes) + 1}"
            notes.append(f"{len(notes) + 1}. **{name}** ({figure} vs ours {_m(encoder)} / {_m(total)}): "
                         f"{NOTES[name]}")
        lines.append(f"| {name} | {total:,} | {encoder:,} | {figure} | {verdict} | {figure.source} |")
    return lines + [""] + notes


def _ablation_table() -> list[str]:
    base = PRESETS["albert-base"]
    widths = (64, 128, 256, 768)
    lines = ["| sharing | " + " | ".join(f"E={e}: ours (paper)" for e in widths) + " |",
             "|---|" + "---:|" * len(widths)]
    mismatches = []
    for sharing in ("none", "attention", "ffn", "all"):
        cells = []
        for e in widths:
            cfg = base.replace(sharing=sharing, embedding_size=e)
            ours, paper = encoder_only(cfg), ALBERT_ABLATION.get((sharing, e))
            if paper is None:
                cells.append(f"{_m(ours, 1)} (–)")
                continue
            ok = Figure(paper, 0, "").matches(ours)
            cells.append(f"{_m(ours, 1)} ({paper}M{'' if ok else ' ✗'})")
            if not ok:
                mismatches.append((sharing, e, ours, paper, ours - pooler_params(cfg)))
        lines.append(f"| {SHARING_NAMES[sharing]} | " + " | ".join(cells) + " |")
    lines.append("")
    if mismatches:
        lines.append("✗ marks a figure beyond the paper's rounding of our encoder-only count. Without the pooler "
                     "(0.59M) those counts are: " + "; ".join(
                         f"{SHARING_NAMES[s]} E={e}: {_m(n, 2)} (paper {p}M"
                         f"{', matches' if Figure(p, 0, '').matches(n) else ', still off'})"
                         for s, e, _, p, n in mismatches) + ".")
    return lines


def render() -> str:
    """The whole docs/param_counts.md text."""
    parts = [
        "# Parameter counts",
        "",
        "Generated by `python -m jaxbert.interop.param_table --output docs/param_counts.md`; "
        "`tests/test_param_counts.py` fails when this page is stale, and checks that every preset's total "
        "equals the parameter count of the matching transformers pretraining model (BertForPreTraining, "
        "RobertaForMaskedLM, AlbertForPreTraining, ElectraForPreTraining / ElectraForMaskedLM, "
        "DistilBertForMaskedLM, XLNetLMHeadModel; tied decoder weights counted once).",
        "",
        "*With pretraining heads*: the family's pretraining model (MLM decoder tied to the word embeddings, "
        "so only its bias counts). *Encoder-only*: embeddings + encoder layers + pooler (where the family has one). "
        "A paper's figure *matches* a count when it equals the count rounded the way the paper prints it.",
        "",
        "## Presets",
        "",
        *_preset_table(),
        "",
        "Summary: the compact BERTs' README figures, BERT-base's 110M and RoBERTa's figures count the "
        "pretraining heads; ALBERT's and DistilBERT's count the encoder alone. ELECTRA generators have no "
        "separate figure in the paper (their size is given as a fraction of the discriminator's width). "
        "The XLNet paper gives no parameter counts (XLNet-Large has BERT-Large's shape); XLNet's layers hold "
        "an extra relative-position projection and bias vectors per layer, and no position table or pooler.",
        "",
        "## ALBERT-base by sharing mode and embedding size (Lan et al. 2020, Tables 3 and 4)",
        "",
        "Encoder-only counts of `albert-base` with `sharing` and `embedding_size` changed. Paper figures are "
        "quoted from memory of Tables 3 and 4; each agrees with the arithmetic of the architecture "
        "(shared-attention E=768: 108M - 11 x 2.36M of attention = 82.5M, printed 83M; shared-FFN "
        "E=128: 89M - 11 x 4.72M of FFN = 37.7M, printed 38M), which rules out other figures sometimes quoted "
        "for these cells (e.g. 102M / 64M). Our model creates no E->H projection when E = H (transformers' "
        "ALBERT always has one, +0.59M at E=768); the paper's E=768 figures match counts without it.",
        "",
        *_ablation_table(),
        "",
        "The not-shared row matches the paper only without the pooler, in every E column, while the other rows "
        "match with it; ALBERT's Table 1 counts BERT models the same way (BERT-base 108M = our bert-base without "
        "the pooler, 30k vocabulary). The paper seems to count its BERT-style baselines without the pooler.",
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write here instead of printing")
    args = parser.parse_args(argv)
    text = render()
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
