"""`python -m jaxbert.quickstart`: pretrain a tiny BERT on CPU in about a minute, with no download.

It writes a small corpus from the Python documentation that ships with every CPython (the
`pydoc_data.topics` help topics and the standard library's docstrings), trains a WordPiece
vocabulary on it, pretrains a tiny BERT (MLM + NSP) with a progress bar, saves checkpoints,
loads the result back with `jaxbert.load(workdir)`, compares its held-out MLM accuracy with always
guessing the most frequent token, and fills in a masked word.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

CORPUS_FILES = ("python-docs.train.txt", "python-docs.eval.txt")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
_HELD_OUT_EVERY = 10  # every 10th documentation topic is held out for eval


def prose_sentences(text: str) -> list[str]:
    """The sentences of a text's prose paragraphs (indented code, doctests and headings dropped)."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = paragraph.splitlines()
        if not lines or lines[0].startswith((" ", "\t", ">>>")) or set(lines[-1].strip()) <= set("*=-^~"):
            continue
        joined = " ".join(line.strip() for line in lines)
        sentences.extend(s.strip() for s in _SENTENCE_END.split(joined) if len(s.split()) >= 3)
    return sentences


def topic_documents() -> list[list[str]]:
    """The language reference's help topics (`pydoc_data.topics`), one document each."""
    from pydoc_data.topics import topics

    return [doc for doc in (prose_sentences(topics[name]) for name in sorted(topics)) if len(doc) >= 2]


def docstring_documents() -> list[list[str]]:
    """The docstrings of the standard library's modules, one document per module, read with `ast`
    (nothing is imported, so no module's import-time side effects run)."""
    import ast
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "site-packages", "lib2to3", "__phello__"}
    docs = []
    for path in sorted(root.rglob("*.py")):
        if skip & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        doc: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc.extend(prose_sentences(ast.get_docstring(node) or ""))
        if len(doc) >= 2:
            docs.append(doc)
    return docs


def python_docs_documents() -> list[list[str]]:
    """Every document of the bundled corpus: the help topics, then the standard library's docstrings."""
    return topic_documents() + docstring_documents()


def write_python_docs_corpus(directory: str | Path) -> tuple[Path, Path]:
    """Write the corpus (one sentence a line, blank line between documents): (train file, eval file)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    train, held_out = (out / name for name in CORPUS_FILES)
    if train.is_file() and held_out.is_file():
        return train, held_out
    docs = python_docs_documents()
    parts: tuple[list[str], list[str]] = ([], [])
    for i, doc in enumerate(docs):
        parts[i % _HELD_OUT_EVERY == _HELD_OUT_EVERY - 1].append("\n".join(doc))
    for path, chunks in ((train, parts[0]), (held_out, parts[1])):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n\n".join(chunks) + "\n", encoding="utf-8")
        tmp.replace(path)
    return train, held_out


def fill_mask(model, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-k (token, probability) for every [MASK] in `text` (`Pretrained.fill_mask` on one text)."""
    return model.fill_mask([text], top_k=top_k, max_length=64)[0]


def frequency_baseline(tokenizer, path: str | Path) -> tuple[str, float]:
    """(the most frequent token of a corpus file, its share of all tokens): the MLM accuracy of always
    guessing it, which a model must beat to have learned more than token frequencies."""
    import numpy as np

    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = np.concatenate([np.asarray(row, dtype=np.int64) for row in tokenizer.encode_batch(lines)])
    counts = np.bincount(ids, minlength=tokenizer.vocab_size)
    top = int(np.argmax(counts))
    return tokenizer.convert_ids_to_tokens([top])[0], float(counts[top] / counts.sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxbert.quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/quickstart", help="where the corpus, vocab and checkpoints go")
    parser.add_argument("--steps", type=int, default=0, help="train steps (default: the smoke config's)")
    args = parser.parse_args(argv)

    from jaxbert.commands.pretrain import corpus_paths, run_pretraining, setup_logging
    from jaxbert.train.experiment import smoke_config
    from jaxbert.train.metrics import read_metrics

    setup_logging()
    config = smoke_config("bert")
    if args.steps:
        config.train.steps = args.steps
    workdir = Path(args.workdir).absolute()
    print(f"1/3 pretraining a tiny BERT on the Python docs in {workdir} ...")
    result = run_pretraining(config, workdir)
    # Read back from metrics.jsonl, so that a run that was already complete reports the same figures.
    rows = read_metrics(workdir)
    train = next((r for r in reversed(rows) if "loss" in r), {})
    held_out = next((r["eval/mlm_accuracy"] for r in reversed(rows) if "eval/mlm_accuracy" in r), None)
    print(f"    done: step {result.step}, loss {train.get('loss', float('nan')):.3f}, "
          f"MLM accuracy {train.get('mlm_accuracy', float('nan')):.3f}")

    import jaxbert

    print(f"2/3 loading it back with jaxbert.load({str(workdir)!r})")
    model = jaxbert.load(workdir)
    print(f"    {model}")
    if held_out is not None:
        token, share = frequency_baseline(model.tokenizer, corpus_paths(config, workdir, "eval_corpus")[0])
        print(f"    held-out MLM accuracy {held_out:.3f}; always guessing the most frequent token "
              f"({token!r}) would score {share:.3f}")
    text = "The [MASK] statement is used to bind names to values."
    print(f"3/3 fill in the mask: {text}")
    for preds in fill_mask(model, text):
        print("    " + ", ".join(f"{t} ({p:.2f})" for t, p in preds))
    print(textwrap.dedent(f"""
        Beating the frequency baseline on held-out text means the model uses context; after a minute
        of CPU training its guesses for one blank are still generic words. Train longer for specific
        ones (run again with --steps N: it resumes where it stopped).
        Metrics: {workdir / 'metrics.jsonl'}   TensorBoard: tensorboard --logdir {workdir / 'tensorboard'}"""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
