"""Read an offline W&B run back through wandb's own record schema.

A ``run-<id>.wandb`` file is wandb's transaction log: a 7-byte header (``:W&B``, magic 0xBEE1,
version) followed by LevelDB-style 32 KiB blocks of chunks (crc32, length, type) whose payloads
are ``wandb.proto.wandb_internal_pb2.Record`` messages. The Python SDK no longer ships a reader
(its core is in Go), so the tests carry this small one and decode with wandb's protobuf classes.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes):
    if data[:4] != b":W&B":
        raise ValueError("not a W&B transaction log")
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # block trailer padding
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            pos += BLOCK - pos % BLOCK
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        if zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad checksum at offset {pos}")
        pos += HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


def read_records(path: str | Path) -> list:
    """All Record messages of a ``.wandb`` file."""
    records = []
    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def history(path: str | Path) -> list[dict]:
    """The logged rows (``run.log`` calls) as dicts of decoded JSON values."""
    rows = []
    for record in read_records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
    return rows


def wait_until_closed(path: str | Path, timeout: float = 60.0) -> None:
    """Wait for the run's exit record: wandb's service may still be flushing after finish() returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(r.WhichOneof("record_type") == "exit" for r in read_records(path)):
                return
        except (ValueError, OSError):
            pass  # partially written block: try again
        time.sleep(0.2)
    raise TimeoutError(f"{path} has no exit record after {timeout} s")


def run_ids(path: str | Path) -> set[str]:
    return {r.run.run_id for r in read_records(path) if r.WhichOneof("record_type") == "run"}
