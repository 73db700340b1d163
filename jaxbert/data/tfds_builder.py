"""Build a pretraining dataset (TFDS, array_record files) from a corpus, with no TensorFlow needed.

The dataset is a TFDS GeneratorBasedBuilder written with `file_format="array_record"`: TFDS's numpy
example serializer and array_record writer run without TensorFlow (checked with TF absent). Records keep
creation order (TFDS shuffling is off; the loader shuffles). The finished directory holds TFDS's
dataset_info.json / features.json, the array_record shards and `jaxbert_pretraining.json` (the example
config, the tokenizer's special ids and the build summary), so `tfds.builder_from_directory(out_dir)` and
`jaxbert.data.loader` both open it.

Atomic: the dataset is built in a local staging directory and committed to `out_dir` through
`jaxbert.storage.staged_dir` (renamed into place locally; uploaded to gs:// with jaxbert_pretraining.json,
the marker, last), so a killed build leaves no directory that looks complete. array_record writes
local files only, which is why a gs:// dataset is built locally first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxbert import storage
from jaxbert.data.corpus import CorpusStats, read_documents, resolve_corpus_paths
from jaxbert.data.pretraining import PACKED, ExampleConfig, ExampleStats, create_examples, record_fields
from jaxbert.errors import JaxbertError
from jaxbert.tokenize.base import Tokenizer

log = logging.getLogger(__name__)

META_FILE = "jaxbert_pretraining.json"
BUILDER_VERSION = "1.0.0"
SPLIT = "train"


class DatasetBuildError(JaxbertError, RuntimeError):
    """A pretraining dataset cannot be built or opened; the message names the directory and the fix."""


@dataclasses.dataclass
class BuildSummary:
    """What a build read, skipped and wrote (also stored in the dataset's jaxbert_pretraining.json)."""

    format: str
    max_seq_len: int
    corpus: CorpusStats
    examples: ExampleStats
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildSummary:
        return cls(format=d["format"], max_seq_len=d["max_seq_len"], corpus=CorpusStats(**d["corpus"]),
                   examples=ExampleStats(**d["examples"]), seconds=d.get("seconds", 0.0))

    def describe(self) -> str:
        c, e = self.corpus, self.examples
        rows = f" packed into {e.rows} rows" if e.rows and e.rows != e.examples else ""
        return (f"{e.examples} {self.format} examples{rows} of {self.max_seq_len} tokens ({e.tokens} real tokens, "
                f"{e.padding_tokens} padding: {e.padding_share:.1%}) from {c.files} files, {c.documents} documents, "
                f"{c.sentences} sentences; skipped {c.empty_documents + e.empty_documents} empty documents, "
                f"{e.single_sentence_documents} one-sentence documents"
                f"{' (skipped)' if self.format not in PACKED else ' (kept)'}, {e.skipped_chunks} one-token "
                f"chunks; {e.cut_sentences} sentences longer than an example cut; {c.replaced_lines} lines had "
                f"invalid UTF-8 replaced; {self.seconds:.1f} s")


def build_pretraining_dataset(
    corpus_paths: str | os.PathLike | Sequence[str | os.PathLike],
    tokenizer: Tokenizer,
    out_dir: str | os.PathLike,
    format: str = "nsp",
    max_seq_len: int = 128,
    seed: int = 0,
    dupe_factor: int = 1,
    short_seq_prob: float = 0.1,
    *,
    text_field: str = "text",
    errors: str = "strict",
    chunk_documents: int = 50_000,
    word_segmenter: str = "",
    sentence_split: str = "lines",
    line_documents: bool = False,
    pack_examples: bool = False,
    max_examples_per_row: int = 0,
    overwrite: bool = False,
) -> BuildSummary:
    """Tokenize a corpus, cut pretraining examples and write them as an array_record TFDS dataset at `out_dir`.

    `word_segmenter` (see `jaxbert.data.segmenters`) stores a word-start mask with every example;
    `sentence_split="rules"` splits lines into sentences first (see `jaxbert.data.sentences`);
    `line_documents` reads every text line as a document (see `jaxbert.data.corpus`);
    `pack_examples` puts up to `max_examples_per_row` examples in each record (`jaxbert.data.packing`).
    If `out_dir` already holds a dataset built with the same options, tokenizer and corpus (by file names,
    sizes and contents: `corpus_key`) it is reused (its summary is returned); a different one raises unless
    `overwrite=True`.
    """
    config = ExampleConfig(format=format, max_seq_len=max_seq_len, short_seq_prob=short_seq_prob,
                           dupe_factor=dupe_factor, seed=seed, chunk_documents=chunk_documents,
                           word_segmenter=word_segmenter, sentence_split=sentence_split,
                           pack_examples=pack_examples, max_examples_per_row=max_examples_per_row)
    paths = resolve_corpus_paths(corpus_paths)  # a missing path fails before anything is written
    out = storage.path(out_dir)
    common = {"example_config": _example_options(config), "text_field": text_field, "errors": errors,
              "special": dataclasses.asdict(tokenizer.special), "vocab_size": int(tokenizer.vocab_size),
              "tokenizer_kind": tokenizer.kind}
    if line_documents:
        common["line_documents"] = True
    options = {"corpus": corpus_key(paths), **common}
    existing = _existing_meta(out)
    if existing is not None and not overwrite:
        saved = existing["options"]
        legacy = {"corpus": [p if p.startswith("tfds:") or storage.is_url(p) else os.path.abspath(p) for p in paths],
                  **common}  # datasets built before corpus_key: absolute paths
        if saved in (json.loads(json.dumps(options)), json.loads(json.dumps(legacy))):
            log.info("reusing pretraining dataset %s", out)
            return BuildSummary.from_dict(existing["summary"])
        differing = sorted(k for k in {**saved, **options} if saved.get(k) != json.loads(json.dumps(options.get(k))))
        raise DatasetBuildError(f"{out} already holds a pretraining dataset built with other options; pass "
                                "overwrite=True (from Python) or remove it to rebuild, or set data.data_dir to another "
                                f"directory (they differ in: {', '.join(differing)})")
    if out.exists() and existing is None and any(out.iterdir()):
        raise DatasetBuildError(f"{out} exists and is not a jaxbert pretraining dataset; remove it or choose "
                                "another output directory")

    corpus_stats, example_stats = CorpusStats(), ExampleStats()

    def examples() -> Iterator[dict[str, np.ndarray]]:
        documents = read_documents(paths, text_field=text_field, errors=errors, stats=corpus_stats,
                                   line_documents=line_documents)
        yield from create_examples(documents, tokenizer, config, example_stats)

    start = time.perf_counter()
    with storage.staged_dir(out, META_FILE, replace=True) as staged, _build_area(staged) as area:
        built = _write_tfds(examples, record_fields(config), area)
        if example_stats.examples == 0:
            raise DatasetBuildError(f"corpus {', '.join(paths)} gave no {format} examples; check that it holds "
                                    "text (documents separated by blank lines)")
        summary = BuildSummary(format, max_seq_len, corpus_stats, example_stats, time.perf_counter() - start)
        _move_files(built, staged)
        (staged / META_FILE).write_text(json.dumps(
            {"options": options, "summary": summary.to_dict(), "fields": record_fields(config)}, indent=2))
    log.info("built %s: %s", out, summary.describe())
    return summary


_SAMPLE_BYTES = 1 << 20  # a corpus file is fingerprinted by its first and last MiB (whole when smaller)


def corpus_key(paths: Sequence[str]) -> list[Any]:
    """What identifies a corpus for reuse: each file's name, size and a content fingerprint (a tfds: name as it
    is), not where it lies, so a workdir (and the builtin corpus written inside it) can be copied or moved and
    still be resumed, while an edited corpus file is not mistaken for the one the dataset was built from."""
    out: list[Any] = []
    for p in paths:
        if p.startswith("tfds:"):
            out.append(p)
            continue
        size = int(storage.path(p).stat().length)
        digest = hashlib.sha256()
        with storage.path(p).open("rb") as f:
            digest.update(f.read(_SAMPLE_BYTES))
            if size > 2 * _SAMPLE_BYTES:
                f.seek(size - _SAMPLE_BYTES)
            digest.update(f.read())
        out.append({"name": os.path.basename(p.rstrip("/")), "size": size, "sha256": digest.hexdigest()})
    return out


def _example_options(config: ExampleConfig) -> dict[str, Any]:
    """The example config as stored for reuse checks; options left at their defaults since they were added
    are left out, so a dataset built before them is still recognised."""
    options = dataclasses.asdict(config)
    for key, default in (("word_segmenter", ""), ("sentence_split", "lines"), ("pack_examples", False),
                         ("max_examples_per_row", 0)):
        if options[key] == default:
            del options[key]
    return options


def read_dataset_meta(data_dir: str | os.PathLike) -> dict[str, Any]:
    """The jaxbert_pretraining.json of a finished dataset; a clear error for anything else."""
    meta = _existing_meta(storage.path(data_dir))
    if meta is None:
        raise DatasetBuildError(f"{data_dir} is not a complete jaxbert pretraining dataset (no {META_FILE}); "
                                "build it with build_pretraining_dataset")
    return meta


def _existing_meta(out: storage.Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / META_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetBuildError(f"{out / META_FILE} is unreadable ({e}); rebuild the dataset") from None


@contextlib.contextmanager
def _build_area(staged: storage.Path) -> Iterator[Path]:
    """A local directory TFDS builds in: inside the local staging directory (the files then move, not copy),
    or a temporary one when the dataset goes to gs:// (array_record writes local files only)."""
    if storage.is_url(staged):
        with tempfile.TemporaryDirectory(prefix="jaxbert-dataset-") as tmp:
            yield Path(tmp)
        return
    area = Path(os.fspath(staged)) / ".build"
    try:
        yield area
    finally:
        shutil.rmtree(area, ignore_errors=True)


def _move_files(built: Path, target: storage.Path) -> None:
    """The built dataset's files into the staging directory: renamed locally, uploaded to gs://."""
    if storage.is_url(target):
        storage.copy_tree(built, target)
        return
    for f in built.iterdir():
        os.replace(f, Path(os.fspath(target)) / f.name)


def _write_tfds(
    examples: Callable[[], Iterator[dict[str, np.ndarray]]],
    fields: dict[str, tuple[int, ...]],
    data_dir: Path,
) -> Path:
    """Write the examples as TFDS split "train" in array_record format under data_dir; return the dataset dir."""
    import tensorflow_datasets as tfds  # imported here: corpus reading and loading need no TFDS builder

    builder_cls = _builder_class(tfds)
    builder = builder_cls(examples=examples, fields=fields, data_dir=str(data_dir), file_format="array_record")
    # TFDS prints a misleading "Downloading and preparing dataset" line and nested progress bars;
    # the builder's own one-line summary (logged by the caller) says what was built.
    tfds.disable_progress_bar()
    with contextlib.redirect_stdout(io.StringIO()):
        builder.download_and_prepare(
            download_dir=str(data_dir / "downloads"),
            download_config=tfds.download.DownloadConfig(try_download_gcs=False),
        )
    return Path(builder.data_dir)


_BUILDER_CLASS = None


def _builder_class(tfds: Any) -> type:
    """The GeneratorBasedBuilder subclass, defined once (TFDS registers builder classes by name)."""
    global _BUILDER_CLASS
    if _BUILDER_CLASS is not None:
        return _BUILDER_CLASS

    class JaxbertPretraining(tfds.core.GeneratorBasedBuilder):
        """Pretraining examples of int32 token ids (see jaxbert.data.pretraining)."""

        VERSION = tfds.core.Version(BUILDER_VERSION)
        # Creation order is kept (and is deterministic); the loader shuffles with its own seed.
        disable_shuffling = True
        # No checksums file: skips TFDS's package-path lookup, which needs the absent importlib_resources.
        code_path = None

        def __init__(self, *, examples: Callable[[], Iterator[dict[str, np.ndarray]]],
                     fields: dict[str, tuple[int, ...]], **kwargs: Any):
            self._examples = examples
            self._fields = fields
            super().__init__(**kwargs)

        def _info(self) -> Any:
            features = tfds.features.FeaturesDict(
                {name: tfds.features.Tensor(shape=shape, dtype=np.int32) for name, shape in self._fields.items()})
            return tfds.core.DatasetInfo(builder=self, description=self.__doc__, features=features)

        def _split_generators(self, dl_manager: Any) -> dict[str, Any]:
            return {SPLIT: self._generate_examples()}

        def _generate_examples(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
            yield from enumerate(self._examples())

    _BUILDER_CLASS = JaxbertPretraining
    return _BUILDER_CLASS
