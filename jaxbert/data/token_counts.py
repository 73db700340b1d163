"""Token frequencies of a pretraining dataset and DistilBERT's frequency-smoothed masking probabilities.

The DistilBERT authors' code (huggingface/transformers examples/research_projects/distillation,
after XLM) counts every token id of the binarized corpus once (`scripts/token_counts.py`) and masks
token `v` with probability proportional to `max(count_v, 1) ** -mlm_smoothing` (0.7), special tokens
never (`train.py`), so rare tokens are predicted more often than under uniform masking.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from jaxbert import storage
from jaxbert.errors import JaxbertError

COUNTS_FILE = "token_counts.npy"


def count_tokens(batches: Iterable[Mapping[str, np.ndarray]], vocab_size: int) -> np.ndarray:
    """int64 [vocab_size]: how often each id occurs among the real tokens (attention_mask 1) of `batches`."""
    counts = np.zeros(vocab_size, np.int64)
    for batch in batches:
        ids = np.asarray(batch["input_ids"])
        real = np.asarray(batch["attention_mask"]).astype(bool) if "attention_mask" in batch else np.ones(ids.shape,
                                                                                                         bool)
        kept = ids[real]
        if kept.size and (kept.min() < 0 or kept.max() >= vocab_size):
            raise JaxbertError(f"token id {int(kept.max())} is outside the vocabulary (size {vocab_size}); "
                               "count with the tokenizer the dataset was built with")
        counts += np.bincount(kept.ravel(), minlength=vocab_size).astype(np.int64)
    return counts


def count_dataset_tokens(data_dir: str | os.PathLike, vocab_size: int) -> np.ndarray:
    """Token counts of one pass over every example of a built pretraining dataset, local or gs:// (real tokens
    only)."""
    from jaxbert.data.loader import _raw_data_source, _record_decoder
    from jaxbert.data.tfds_builder import read_dataset_meta

    decode = _record_decoder(read_dataset_meta(data_dir)["fields"])
    source = _raw_data_source(storage.local_copy(data_dir))  # array_record reads local files only

    def chunks(size: int = 4096):
        for start in range(0, len(source), size):
            examples = [decode(source[i]) for i in range(start, min(start + size, len(source)))]
            yield {"input_ids": np.concatenate([e["input_ids"][:int(e["length"])] for e in examples])}

    return count_tokens(chunks(), vocab_size)


def smoothed_token_probs(counts: Sequence[int] | np.ndarray, smoothing: float = 0.7,
                         special_ids: Sequence[int] = ()) -> np.ndarray:
    """float64 [V]: `max(count, 1) ** -smoothing` with the special ids at 0, normalised to sum to 1."""
    if smoothing < 0:
        raise JaxbertError(f"config.objective.mask_smoothing: must be >= 0, got {smoothing}")
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise JaxbertError(f"token counts must be a non-empty 1-d array, got shape {counts.shape}")
    probs = np.maximum(counts, 1.0) ** -float(smoothing)
    specials = [int(s) for s in special_ids if 0 <= int(s) < counts.size]
    probs[specials] = 0.0
    total = probs.sum()
    if total <= 0:
        raise JaxbertError("every token id is special: no token can be masked")
    return probs / total


def save_counts(counts: np.ndarray, path: str | os.PathLike) -> storage.Path:
    """Write counts as .npy, local or gs://, in one write (a local file through a temporary name)."""
    target = storage.path(path)
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(counts, np.int64))
    target.parent.mkdir(parents=True, exist_ok=True)
    if storage.is_url(target):
        target.write_bytes(buffer.getvalue())  # an object appears whole or not at all
    else:
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(target)
    return target


def load_counts(path: str | os.PathLike, vocab_size: int) -> np.ndarray:
    """Counts from a .npy file (local or gs://) of shape [vocab_size]; a one-line error for a missing or
    mismatched file."""
    source = storage.path(path)
    try:
        counts = np.load(io.BytesIO(source.read_bytes()), allow_pickle=False)
    except (OSError, ValueError) as e:
        raise JaxbertError(f"config.objective.token_counts: cannot read {storage.display(source)} ({e}); give a .npy "
                           "file of per-id counts, or leave it empty for `jaxbert distill` to count the training "
                           "data") from e
    if counts.shape != (vocab_size,):
        raise JaxbertError(f"config.objective.token_counts: {storage.display(source)} holds {counts.shape} counts but "
                           f"the vocabulary has {vocab_size} ids; count with the run's tokenizer")
    return counts
