"""The README's main job, `python -m jaxbert.quickstart`, end to end at a few steps."""

from __future__ import annotations

import collections
import json
import re

from jaxbert.quickstart import frequency_baseline, main


def test_quickstart_trains_loads_compares_with_a_frequency_baseline_and_fills_a_mask(tmp_path, capsys):
    assert main(["--workdir", str(tmp_path / "qs"), "--steps", "6"]) == 0
    out = capsys.readouterr().out
    assert "1/3 pretraining" in out and "2/3 loading it back" in out and "3/3 fill in the mask" in out
    held = re.search(r"held-out MLM accuracy ([0-9.]+); always guessing the most frequent token \('(.+)'\) would "
                     r"score ([0-9.]+)", out)
    assert held, out
    rows = [json.loads(line) for line in (tmp_path / "qs/metrics.jsonl").read_text().splitlines()]
    eval_rows = [r for r in rows if "eval/mlm_accuracy" in r]
    assert eval_rows and abs(float(held.group(1)) - eval_rows[-1]["eval/mlm_accuracy"]) < 1e-3
    predictions = out.split("3/3 fill in the mask")[1].splitlines()[1]
    assert len(re.findall(r"\(\d\.\d\d\)", predictions)) == 5  # five (token, probability) guesses

    # The baseline's share, counted independently token by token.
    import jaxbert

    model = jaxbert.load(tmp_path / "qs")
    eval_file = tmp_path / "qs/corpus/python-docs.eval.txt"
    if not eval_file.is_file():
        eval_file = next((tmp_path / "qs").rglob("python-docs.eval.txt"))
    counts = collections.Counter()
    for line in eval_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            counts.update(model.tokenizer.encode(line, add_special_tokens=False))
    top, n = counts.most_common(1)[0]
    token, share = frequency_baseline(model.tokenizer, eval_file)
    assert token == model.tokenizer.convert_ids_to_tokens([top])[0] == held.group(2)
    assert abs(share - n / sum(counts.values())) < 1e-12 and abs(float(held.group(3)) - share) < 1e-3
