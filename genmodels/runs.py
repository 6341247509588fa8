"""Reading logged runs back from disk: W&B offline/online run files and CSV logs.

`genmodels compare` uses this to put runs side by side without the W&B service (offline
clusters). A ``run-<id>.wandb`` file is wandb's transaction log: a 7-byte header (``:W&B``,
magic 0xBEE1, version), then LevelDB-style 32 KiB blocks of chunks (crc32, length, type) whose
payloads are ``wandb_internal_pb2.Record`` messages; the Python SDK no longer ships a reader, so
this small one decodes them with wandb's own protobuf schema.
"""

from __future__ import annotations

import csv
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from genmodels.errors import InvalidValue, MissingFile

__all__ = ["wandb_records", "wandb_history", "run_history", "offline_segments"]

PathLike = Union[str, Path]
_BLOCK, _HEADER = 32768, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> Iterator[bytes]:
    if data[:4] != b":W&B":
        raise InvalidValue("not a W&B transaction log (no ':W&B' header)")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        if _BLOCK - pos % _BLOCK < _HEADER:  # block trailer padding
            pos += _BLOCK - pos % _BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 and length == 0:
            pos += _BLOCK - pos % _BLOCK
            continue
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        if len(chunk) < length or zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF != crc:
            return  # a partially written tail (run still open): stop at the last whole record
        pos += _HEADER + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def wandb_records(path: PathLike) -> list:
    """All ``Record`` messages of a ``run-<id>.wandb`` file."""
    from wandb.proto import wandb_internal_pb2

    records = []
    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def wandb_history(path: PathLike) -> list[dict]:
    """The rows logged with ``run.log``, values decoded from JSON."""
    rows = []
    for record in wandb_records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
    return rows


def run_history(run_dir: PathLike) -> list[dict]:
    """Every logged row of a run directory (all W&B launches, in order; else CSV logs)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MissingFile(f"no run directory at {run_dir}")
    logs = sorted(run_dir.glob("wandb/*run-*/run-*.wandb"), key=lambda p: _launch_order(p.parent))
    rows = [row for log in logs for row in wandb_history(log)]
    if rows:
        return rows
    for metrics in sorted(run_dir.rglob("metrics.csv")):
        with open(metrics, newline="") as f:
            rows += [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
    if not rows:
        raise MissingFile(f"{run_dir} holds no W&B run files (wandb/*run-*/run-*.wandb) and no metrics.csv")
    return rows


def offline_segments(save_dir: Any, run_id: Optional[str] = None) -> list[Path]:
    """The offline segments (one per launch) under ``<save_dir>/wandb``, oldest first; only ``run_id``'s if given."""
    found = []
    for path in Path(save_dir, "wandb").glob("offline-run-*"):
        parts = _SEGMENT.fullmatch(path.name)
        if path.is_dir() and parts and (run_id is None or _names_run(parts["rest"], run_id)):
            found.append(path)
    return sorted(found, key=_launch_order)


# <mode>-YYYYMMDD_HHMMSS-<id>[-N]: W&B adds -N when a run with the same id starts again within the
# same second (a resume or `genmodels test` right after a short fit), so the suffix is part of the order.
_SEGMENT = re.compile(r"(?:offline-)?run-(?P<time>\d{8}_\d{6})-(?P<rest>.+)")


def _names_run(rest: str, run_id: str) -> bool:
    """Whether a segment name's ``<id>[-N]`` tail belongs to ``run_id`` (ids may hold hyphens themselves)."""
    return rest == run_id or re.fullmatch(re.escape(run_id) + r"-\d+", rest) is not None


def _launch_order(segment: Path) -> tuple:
    """Sort key of a segment directory: launch second, then W&B's same-second suffix (none before -1 before -2)."""
    parts = _SEGMENT.fullmatch(segment.name)
    if parts is None:
        return (segment.name, 0)
    again = re.search(r"-(\d+)$", parts["rest"])
    # An id is 8 letters and digits unless the user set one; a purely numeric last part is W&B's suffix.
    return (parts["time"], int(again[1]) if again else 0)
