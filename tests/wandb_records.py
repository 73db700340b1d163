"""Read the records of a W&B offline run file (run-ID.wandb), for tests: wandb >= 0.2x ships no Python reader.

The file is W&B's datastore: a 7-byte header (":W&B", a 2-byte key, version 0) followed by LevelDB's log
format (32 KiB blocks; each record a 4-byte checksum, a 2-byte little-endian length, a 1-byte type: 1 full,
2 first, 3 middle, 4 last), each whole record a serialized `wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7


def records(path: str | Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B datastore file"
    out, pos, pending = [], HEADER, b""
    while pos + 7 <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < 7:  # the block's tail is padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # zero padding at the end of the written part
            pos += left_in_block
            continue
        body = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            pending = body
        elif kind == 2:
            pending = body
            continue
        elif kind == 3:
            pending += body
            continue
        else:
            pending += body
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        out.append(record)
        pending = b""
    return out


def history(path: str | Path) -> list[dict[str, Any]]:
    """The logged rows ({"_step": ..., key: value}) of a run file."""
    import json

    rows = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item})
    return rows


def run_info(path: str | Path) -> dict[str, Any]:
    """The run record: id, project, and the config it was started with (top-level keys -> values)."""
    import json

    for r in records(path):
        if r.WhichOneof("record_type") == "run":
            config = {u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in r.run.config.update}
            return {"id": r.run.run_id, "project": r.run.project, "config": config}
    raise AssertionError(f"{path} holds no run record")
