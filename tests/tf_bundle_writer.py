"""A test-side writer of TensorFlow checkpoints (tensor bundles) for tests that run without TensorFlow.

It writes what TF's BundleWriter writes: `PREFIX.index` (a sorted table: prefix-compressed keys with a
restart every 16 entries, block CRCs, an empty metaindex, the footer) and one `PREFIX.data-00000-of-00001`
shard, plus the `checkpoint` state file Saver writes. tests/test_tf_checkpoint.py checks, where the
reference environment has TensorFlow, that TensorFlow reads these files back exactly.
"""

from __future__ import annotations

import struct
from pathlib import Path

import google_crc32c
import numpy as np

_DTYPES = {np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int32"): 3, np.dtype("int64"): 9,
           np.dtype("float16"): 19}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _masked(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _block(items: list[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(items):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = next((j for j, (a, b) in enumerate(zip(previous, key, strict=False)) if a != b),
                          min(len(previous), len(key)))
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        previous = key
    restarts = restarts or [0]
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def _append_block(buf: bytearray, block: bytes) -> bytes:
    """Appends a block and its trailer (type 0 = uncompressed, masked CRC); returns its handle."""
    handle = _varint(len(buf)) + _varint(len(block))
    buf += block + b"\x00" + struct.pack("<I", _masked(block + b"\x00"))
    return handle


def write_checkpoint(prefix: str | Path, variables: dict[str, np.ndarray], state_file: bool = True) -> Path:
    """Writes `variables` (name -> array) as the TF checkpoint `prefix`; returns the prefix."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray()
    entries = []
    for name in sorted(variables):
        array = np.asarray(variables[name], order="C")  # (ascontiguousarray would make a scalar 1-d)
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        dims = b"".join(_field(2, _field(1, int(d))) for d in array.shape)
        entry = (_field(1, _DTYPES[array.dtype]) + _field(2, dims) + _field(4, len(data)) + _field(5, len(raw))
                 + _varint(6 << 3 | 5) + struct.pack("<I", _masked(raw)))
        entries.append((name.encode(), entry))
        data += raw
    header = _field(1, 1) + _field(3, _field(1, 1))  # num_shards = 1; version { producer: 1 }
    index = bytearray()
    data_handle = _append_block(index, _block([(b"", header), *entries]))
    meta_handle = _append_block(index, _block([]))
    last_key = entries[-1][0] if entries else b""
    index_handle = _append_block(index, _block([(last_key, data_handle)], restart_interval=1))
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<II", 0x8B80FB57, 0xDB477524)
    Path(f"{prefix}.index").write_bytes(bytes(index + footer))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    if state_file:
        (prefix.parent / "checkpoint").write_text(
            f'model_checkpoint_path: "{prefix.name}"\nall_model_checkpoint_paths: "{prefix.name}"\n')
    return prefix
