"""`jaxbert embed`: sentence embeddings of a text file (one text a line) written to .npy in bounded memory.

Input and output may be local paths or gs:// URLs; a gs:// output is written locally first and uploaded
whole, so a failed run leaves nothing at --output. A text longer than --max-length tokens is truncated to
it (and counted in a warning); only its start is tokenized (`clip_text`), so one huge line costs no more
memory than a normal one.
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
from pathlib import Path

import numpy as np

from jaxbert import storage
from jaxbert.errors import JaxbertError

log = logging.getLogger("jaxbert.embed")
# A first guess of how many characters --max-length tokens cover; grown until the guess holds.
CHARS_PER_TOKEN = 16
_SPACE = re.compile(r"\s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="jaxbert bundle, training workdir or HF directory")
    parser.add_argument("--input", required=True, help="UTF-8 text file, one text per line")
    parser.add_argument("--output", required=True, help="output .npy file [N, H] float32")
    parser.add_argument("--pooling", default="mean", choices=("mean", "cls", "max"),
                        help="how token vectors become one: mean over real tokens (default), the [CLS] vector, "
                             "or the element-wise max")
    parser.add_argument("--normalize", action="store_true", help="L2-normalise each embedding")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="texts per forward pass (default 64); memory grows with it")
    parser.add_argument("--max-length", type=int, default=256,
                        help="tokens per text, [CLS]/[SEP] included (default 256); longer texts are truncated")


def count_lines(path: storage.Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def iter_batches(path: storage.Path, batch_size: int):
    """Yield lists of lines; a non-UTF-8 line is reported with its line number."""
    batch: list[str] = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                batch.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as e:
                raise JaxbertError(f"{path}:{lineno}: not valid UTF-8 ({e.reason}); fix or re-encode the file") from e
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def clip_text(text: str, tokenizer, max_length: int) -> tuple[str, bool]:
    """(the start of `text` that gives the model the same tokens as all of it, whether it is truncated).

    Tokenizers split at whitespace first (WordPiece, byte-level BPE, SentencePiece all do), so the text up
    to a whitespace gives exactly the first tokens of the whole; once that start has more tokens than
    fit, the rest cannot change what the model sees. Without whitespace in reach the cut is made anyway
    at 64 x the first guess, so memory stays bounded."""
    budget = max_length - tokenizer.num_special_tokens_to_add()
    chars = max(max_length, 1) * CHARS_PER_TOKEN
    while len(text) > chars:
        cut = max((m.start() for m in _SPACE.finditer(text, max(0, chars - 1000), chars)), default=-1)
        head = text[:cut] if cut > 0 else text[:chars]
        if len(tokenizer.encode(head, add_special_tokens=False)) > budget and (cut > 0 or chars >= 64 * max_length
                                                                                * CHARS_PER_TOKEN):
            return head, True
        chars *= 4
    return text, len(tokenizer.encode(text, add_special_tokens=False)) > budget


def run(args: argparse.Namespace) -> int:
    import jaxbert

    for flag, value in (("--batch-size", args.batch_size), ("--max-length", args.max_length)):
        if value < 1:
            raise JaxbertError(f"{flag}={value}: must be a positive number")
    src, dst = storage.path(args.input), storage.path(args.output)
    if not src.is_file():
        raise JaxbertError(f"input file {args.input} does not exist")
    model = jaxbert.load(args.model)
    n = count_lines(src)
    if storage.is_url(dst):
        with tempfile.TemporaryDirectory() as tmp_dir:
            local = Path(tmp_dir) / dst.name
            row = _write_embeddings(model, src, local, n, args)
            storage.path(local).copy(dst, overwrite=True)  # complete: uploaded whole
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        row = _write_embeddings(model, src, Path(str(dst)), n, args)
    print(f"wrote {row} embeddings of size {model.config.hidden_size} to {args.output}")
    return 0


def _write_embeddings(model, src: storage.Path, dst: Path, n: int, args: argparse.Namespace) -> int:
    """Embed every line of `src` into the local .npy `dst` (via dst.partial, renamed when complete)."""
    from tqdm import tqdm

    tmp = dst.with_name(dst.name + ".partial")
    # A memory-mapped .npy is written batch by batch, so any number of texts fits in bounded memory.
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, model.config.hidden_size))
    row = truncated = 0
    try:
        with tqdm(total=n, unit="text", desc="embed") as bar:
            for lines in iter_batches(src, args.batch_size):
                clipped = ([clip_text(text, model.tokenizer, args.max_length) for text in lines]
                           if model.tokenizer is not None else [(text, False) for text in lines])
                truncated += sum(cut for _, cut in clipped)
                batch = [text for text, _ in clipped]
                emb = model.embed(batch, pooling=args.pooling, normalize=args.normalize,
                                  batch_size=args.batch_size, max_length=args.max_length)
                out[row:row + len(batch)] = emb
                row += len(batch)
                bar.update(len(batch))
        out.flush()
        del out
        tmp.replace(dst)
        if truncated:
            log.warning("%d of %d texts were longer than --max-length=%d tokens and were truncated to it",
                        truncated, row, args.max_length)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed run leaves no partial output behind
        raise
    return row
