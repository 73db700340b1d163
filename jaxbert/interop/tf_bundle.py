"""Reading TensorFlow's checkpoint format (a "tensor bundle") with numpy alone, no TensorFlow.

A checkpoint `PREFIX` is `PREFIX.index` plus `PREFIX.data-00000-of-0000N` shards. The index is a
LevelDB-style sorted table (blocks of prefix-compressed keys, a block index, a 48-byte footer) whose
entry "" is a BundleHeaderProto and whose other entries map each variable name to a BundleEntryProto
(dtype, shape, shard, offset, size, masked CRC32C). A variable's value is the raw little-endian bytes
at that offset of its shard. Every TF 1.x/2.x `Saver` / `tf.train.Checkpoint` writes this format (the
"V2" checkpoints of 2016 on); TF writes the index without compression (TableBuilderOptions,
kNoCompression), and this reader refuses the few Snappy-compressed indexes TF 1.1 could write.

Checksums are verified when `google-crc32c` is importable (a jaxbert dependency).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxbert.errors import JaxbertError

INDEX_SUFFIX = ".index"
_DATA_RE = re.compile(r"^(?P<prefix>.+)\.data-(?P<shard>\d{5})-of-(?P<shards>\d{5})$")
_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER = 5
_CRC_MASK_DELTA = 0xA282EAD8

# tensorflow/core/framework/types.proto: the DataTypes whose values are plain fixed-width numbers.
_DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 9: "int64", 10: "bool",
           14: "bfloat16", 17: "uint16", 19: "float16", 22: "uint32", 23: "uint64"}
_DTYPE_NAMES = {7: "string", 8: "complex64", 18: "complex128", 20: "resource", 21: "variant"}


class TFCheckpointError(JaxbertError):
    """A TensorFlow checkpoint is missing, damaged or holds something jaxbert cannot read."""


@dataclass(frozen=True)
class Entry:
    """Where one variable lives: its TF dtype number, shape, shard, byte range and masked CRC32C."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool

    @property
    def dtype_name(self) -> str:
        return _DTYPES.get(self.dtype) or _DTYPE_NAMES.get(self.dtype) or f"DataType {self.dtype}"


# ---- protobuf wire format (the two small messages of tensor_bundle.proto) ------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _fields(buf: bytes) -> dict[int, list[int | bytes]]:
    """Field number -> values (ints for varint/fixed fields, bytes for length-delimited ones)."""
    out: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos:pos + length]), pos + length
            if pos > len(buf):
                raise ValueError("truncated field")
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _entry(name: str, value: bytes) -> Entry:
    f = _fields(value)
    dims = []
    for shape in f.get(2, []):
        for dim in _fields(shape).get(2, []):  # TensorShapeProto.dim: Dim{size = 1, name = 2}
            dims.append(_signed(int(_fields(dim).get(1, [0])[0])))
    crc = f.get(6)
    return Entry(name=name, dtype=int(f.get(1, [0])[0]), shape=tuple(dims), shard=int(f.get(3, [0])[0]),
                 offset=int(f.get(4, [0])[0]), size=int(f.get(5, [0])[0]),
                 crc32c=int(crc[0]) if crc else None, sliced=bool(f.get(7)))


# ---- the sorted table of the .index file ---------------------------------------------------------

def _block(data: bytes, handle: bytes, source: Path) -> bytes:
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if offset + size + _BLOCK_TRAILER > len(data):
        raise ValueError("a block runs past the end of the file")
    kind = data[offset + size]
    stored = struct.unpack_from("<I", data, offset + size + 1)[0]
    actual = _masked_crc32c(data[offset:offset + size + 1])
    if actual is not None and actual != stored:
        raise ValueError("an index block fails its CRC32C check")
    if kind != 0:
        raise TFCheckpointError(f"{source} has a compressed index block (type {kind}, written by TensorFlow 1.1); "
                                "re-save the checkpoint with any later TensorFlow")
    return data[offset:offset + size]


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 * (restarts + 1)
    key = b""
    pos = 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + length]
        pos += length


def _table(path: Path) -> Iterator[tuple[bytes, bytes]]:
    data = path.read_bytes()
    if len(data) < _FOOTER_SIZE:
        raise ValueError(f"{len(data)} bytes is too short for a table footer")
    footer = data[-_FOOTER_SIZE:]
    low, high = struct.unpack_from("<II", footer, _FOOTER_SIZE - 8)
    if (high << 32) | low != _TABLE_MAGIC:
        raise ValueError("no table magic number at the end of the file")
    _, pos = _varint(footer, 0)  # metaindex handle: offset, size (unused)
    _, pos = _varint(footer, pos)
    for _, handle in _block_entries(_block(data, footer[pos:], path)):
        yield from _block_entries(_block(data, handle, path))


# ---- the bundle ----------------------------------------------------------------------------------

def _masked_crc32c(data: bytes) -> int | None:
    try:
        import google_crc32c
    except ImportError:
        return None
    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _CRC_MASK_DELTA) & 0xFFFFFFFF


class Bundle:
    """The variables of one TensorFlow checkpoint prefix: names, shapes, and values read on demand."""

    def __init__(self, prefix: str | os.PathLike) -> None:
        self.prefix = Path(prefix)
        index = Path(str(self.prefix) + INDEX_SUFFIX)
        if not index.is_file():
            raise TFCheckpointError(f"{index} does not exist; pass a TensorFlow checkpoint prefix (PREFIX.index + "
                                    "PREFIX.data-*) or its directory")
        self.entries: dict[str, Entry] = {}
        header: dict[int, list[int | bytes]] | None = None
        try:
            for key, value in _table(index):
                name = key.decode("utf-8")
                if name == "":
                    header = _fields(value)
                else:
                    self.entries[name] = _entry(name, value)
        except (ValueError, struct.error, UnicodeDecodeError, IndexError) as e:
            raise TFCheckpointError(f"{index} is not a readable TensorFlow checkpoint index ({e}); the file is "
                                    "truncated or corrupt, download it again") from e
        if header is None:
            raise TFCheckpointError(f"{index} has no bundle header; it is not a TensorFlow V2 checkpoint index")
        self.num_shards = int(header.get(1, [1])[0])
        self.big_endian = int(header.get(2, [0])[0]) == 1

    def names(self) -> list[str]:
        return sorted(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name].shape

    def shard_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def read(self, name: str) -> np.ndarray:
        """The value of variable `name`, read-only (bfloat16 and float16 come back as float32)."""
        entry = self.entries[name]
        where = f"{self.prefix}: variable {name}"
        if entry.sliced:
            raise TFCheckpointError(f"{where} is saved as partitioned slices, which jaxbert does not read; "
                                    "re-save it unpartitioned")
        if entry.dtype not in _DTYPES:
            raise TFCheckpointError(f"{where} has dtype {entry.dtype_name}, not a numeric tensor")
        dtype = np.dtype(_dtype(entry.dtype))
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise TFCheckpointError(f"{where} takes {entry.size} bytes but its shape {entry.shape} needs "
                                    f"{count * dtype.itemsize}; the index is corrupt")
        shard = self.shard_path(entry.shard)
        try:
            with open(shard, "rb") as f:
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except OSError as e:
            raise TFCheckpointError(f"cannot read {shard} ({e.strerror or e}); the checkpoint is incomplete, "
                                    "download its .data-* files too") from e
        if len(raw) != entry.size:
            raise TFCheckpointError(f"{shard} ends before variable {name}; the file is truncated, download it again")
        if entry.crc32c is not None:
            actual = _masked_crc32c(raw)
            if actual is not None and actual != entry.crc32c:
                raise TFCheckpointError(f"{where} fails its CRC32C check; {shard} is corrupt, download it again")
        array = np.frombuffer(raw, dtype.newbyteorder(">") if self.big_endian else dtype).reshape(entry.shape)
        if dtype.name in ("bfloat16", "float16"):
            return array.astype(np.float32)
        return array.astype(dtype.newbyteorder("=")) if self.big_endian else array


def _dtype(number: int) -> np.dtype:
    name = _DTYPES[number]
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


# ---- finding a checkpoint ------------------------------------------------------------------------

def _prefix_from_state_file(directory: Path) -> Path | None:
    """The prefix a directory's `checkpoint` file points at (its model_checkpoint_path), if it is there.

    Google's releases often hold the path of the machine that trained them ("gs://..."), so the name is
    looked up beside the state file when the full path does not exist.
    """
    state = directory / "checkpoint"
    if not state.is_file():
        return None
    try:
        text = state.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = re.search(r'^model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', text, re.MULTILINE)
    if not match:
        return None
    named = Path(match.group(1))
    for candidate in (named if named.is_absolute() else directory / named, directory / named.name):
        if Path(str(candidate) + INDEX_SUFFIX).is_file():
            return candidate
    return None


def find_prefix(path: str | os.PathLike) -> Path | None:
    """The checkpoint prefix `path` names, or None when it is not a TensorFlow checkpoint.

    Accepts the prefix itself (e.g. `.../bert_model.ckpt`), its `.index` or `.data-*` file, or a directory
    holding one checkpoint (several: the one its `checkpoint` file names, else an error listing them).
    """
    p = Path(path)
    if p.name.endswith(INDEX_SUFFIX) and p.is_file():
        return p.with_name(p.name[: -len(INDEX_SUFFIX)])
    data = _DATA_RE.match(p.name)
    if data and p.is_file() and Path(str(p.parent / data["prefix"]) + INDEX_SUFFIX).is_file():
        return p.parent / data["prefix"]
    if Path(str(p) + INDEX_SUFFIX).is_file() and not p.is_dir():
        return p
    if not p.is_dir():
        return None
    prefixes = sorted(q.with_name(q.name[: -len(INDEX_SUFFIX)]) for q in p.glob("*" + INDEX_SUFFIX) if q.is_file())
    prefixes = [q for q in prefixes if any(q.parent.glob(q.name + ".data-*"))]
    if not prefixes:
        return None
    if len(prefixes) == 1:
        return prefixes[0]
    pointed = _prefix_from_state_file(p)
    if pointed is not None:
        return pointed
    raise TFCheckpointError(f"{p} holds {len(prefixes)} TensorFlow checkpoints "
                            f"({', '.join(q.name for q in prefixes[:4])}{', ...' if len(prefixes) > 4 else ''}) "
                            f"and no checkpoint file says which is current; pass one prefix, e.g. {prefixes[-1]}")
