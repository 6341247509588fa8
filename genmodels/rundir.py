"""One writer per run directory, and resume bookkeeping that survives a moved or respelled run.

**Lock.** ``genmodels fit`` takes an advisory lock (``flock``) on ``<run>/.genmodels.lock`` before it
writes anything there, and records the holder's host and PID in it. A second launch into the
same directory (a SLURM double submit, a relaunch while the first still trains) gets one line
naming the holder. The kernel drops the lock when the holder dies, however it dies; a record
left by a dead process is taken over with a line saying so. On the same host the record's PID
is also checked (a filesystem whose locks do not work is not trusted with a live holder's run).

**Newest checkpoint.** ``--ckpt_path last`` means the checkpoint with the highest iteration in the
checkpoint folder (``last.ckpt``, ``iter_*.ckpt``, and ``last-v*.ckpt`` left by older versions),
whatever the path's spelling: checkpoint names are the bookkeeping, not absolute paths.

**Fork.** Resuming from an earlier checkpoint than the folder's newest would overwrite later
checkpoints: it is refused unless ``--fork``; then the later checkpoints are moved aside into
``checkpoints/forked-<time>/`` (nothing is deleted) and the fork is announced.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch

from genmodels.errors import UserError

__all__ = ["RunLock", "RunLockedError", "checkpoint_iteration", "newest_checkpoint", "check_fork", "LOCK_FILE",
           "changed_settings", "checkpoint_settings", "recorded_config"]

LOCK_FILE = ".genmodels.lock"
_ITER_NAME = re.compile(r"^iter_(\d+)\.ckpt$")
_LAST_NAME = re.compile(r"^last(-v\d+)?\.ckpt$")


def _warn(message: str) -> None:
    print(f"genmodels: warning: {message}", file=sys.stderr, flush=True)


class RunLockedError(UserError):
    """Another live process holds the run directory."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


class RunLock:
    """The advisory lock of one run directory (see the module docstring)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: Optional[int] = None
        self.made_run_dir = False  # the folder did not exist before this launch

    def acquire(self) -> "RunLock":
        self.made_run_dir = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise RunLockedError(f"{self.run_dir} is in use by {_describe(holder)}: one run directory has one writer. "
                                 "Wait for that run to end (or stop it), or launch into another --trainer.default_root_dir")
        previous = _read(fd)
        host, pid = previous.get("host"), previous.get("pid")
        if host == socket.gethostname() and isinstance(pid, int) and pid != os.getpid() and _pid_alive(pid):
            os.close(fd)  # the lock is ours but its recorded holder lives: locks do not work on this filesystem
            raise RunLockedError(f"{self.run_dir} is in use by {_describe(previous)} (its lock file says so, and that "
                                 "process is alive); wait for it to end, or use another --trainer.default_root_dir")
        if previous:
            _warn(f"taking over {self.path}: {_describe(previous)} left it and has ended without releasing it")
        record = f"host={socket.gethostname()}\npid={os.getpid()}\nsince={time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def discard(self) -> None:
        """Release and delete the lock file: the launch made nothing else worth keeping in the folder."""
        held = self._fd is not None
        self.release()
        if held:
            self.path.unlink(missing_ok=True)

    def discard_if_unused(self) -> None:
        """After a refused launch: a run folder this launch made and left holding only the lock goes too."""
        held = self._fd is not None
        self.release()
        if held and self.made_run_dir and [p.name for p in self.run_dir.iterdir()] == [LOCK_FILE]:
            self.path.unlink(missing_ok=True)
            try:
                self.run_dir.rmdir()
            except OSError:  # something appeared meanwhile: keep it
                pass

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)  # an empty record: a clean end, nothing to take over
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> dict[str, Any]:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return {}
    record: dict[str, Any] = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in ("host", "since"):
            record[key] = value.strip()
        elif key == "pid" and value.strip().isdigit():
            record[key] = int(value)
    return record


def _describe(record: dict[str, Any]) -> str:
    if not record:
        return "another process (no host/PID recorded yet)"
    since = f", since {record['since']}" if record.get("since") else ""
    return f"PID {record.get('pid', '?')} on host {record.get('host', '?')}{since}"


# ---------------------------------------------------------------------------------------------
# Which checkpoint is the newest


def checkpoint_iteration(path: Path) -> Optional[int]:
    """The iteration a checkpoint holds: from an ``iter_N.ckpt`` name, else read from the file (mmap)."""
    match = _ITER_NAME.match(path.name)
    if match:
        return int(match.group(1))
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        value = checkpoint["genmodels"]["iteration"]
    except Exception:  # unreadable: not a candidate (the loader names the problem if it is chosen)
        return None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _candidates(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_file() and (_ITER_NAME.match(p.name) or _LAST_NAME.match(p.name))]


def newest_checkpoint(folder: Path) -> Optional[tuple[Path, int]]:
    """The checkpoint with the highest iteration in ``folder`` (``last.ckpt`` wins a tie), or None."""
    found = [(p, it) for p in _candidates(folder) if (it := checkpoint_iteration(p)) is not None]
    if not found:
        return None
    return max(found, key=lambda item: (item[1], item[0].name == "last.ckpt", _LAST_NAME.match(item[0].name) is not None))


def check_fork(ckpt_path: Path, checkpoint_dir: Path, fork: bool) -> None:
    """Refuse resuming an earlier checkpoint than the folder's newest unless ``fork``; then move the later ones aside."""
    resumed = checkpoint_iteration(ckpt_path)
    newest = newest_checkpoint(checkpoint_dir)
    if resumed is None or newest is None or newest[1] <= resumed:
        return
    later = sorted(p for p in _candidates(checkpoint_dir)
                   if (it := checkpoint_iteration(p)) is not None and it > resumed and p.resolve() != ckpt_path.resolve())
    if not fork:
        raise UserError(
            f"--ckpt_path {ckpt_path} is iteration {resumed}, but {checkpoint_dir} already holds iteration {newest[1]} "
            f"({newest[0].name}); resuming it would overwrite the later checkpoints. Resume the newest with "
            "--ckpt_path last, pass --fork true to branch from this one (the later checkpoints are moved aside), "
            "or resume it into another --trainer.default_root_dir"
        )
    aside = checkpoint_dir / f"forked-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir()
    for path in later:
        os.replace(path, aside / path.name)
    _warn(f"--fork: resuming iteration {resumed} of {ckpt_path}; the later checkpoints "
          f"({', '.join(p.name for p in later)}, up to iteration {newest[1]}) were moved to {aside}")


# ---------------------------------------------------------------------------------------------
# What changed since the recorded config


#: Settings whose change on resume is legal but changes the experiment: each is announced.
WATCHED = ("seed_everything", "trainer.precision", "trainer.accumulate_grad_batches", "data.class_path")


def recorded_config(run_dir: Path) -> Optional[dict[str, Any]]:
    """The newest resolved config of the run (``config.resume-N.yaml``, else ``config.yaml``)."""
    from genmodels.yamlsafe import load_yaml

    resumes = sorted(run_dir.glob("config.resume-*.yaml"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    for path in [*reversed(resumes), run_dir / "config.yaml"]:
        if path.is_file():
            try:
                value = load_yaml(path)
            except UserError:
                return None
            return value if isinstance(value, dict) else None
    return None


_ABSENT = object()  # a key one config does not have (another datamodule class, an older version)


def _get(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def _plain(value: Any) -> Any:
    """Tuples and lists alike (a checkpoint's record and a YAML config spell sequences differently)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def changed_settings(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for each watched setting and each datamodule argument that differs.

    A key only one side has is not compared: after a change of datamodule class its own arguments
    are not changes of the old ones (the class line says what changed).
    """
    keys = list(WATCHED)
    for config in (recorded, current):
        args = _get(config, "data.init_args")
        if isinstance(args, dict):
            keys += [f"data.init_args.{k}" for k in args if f"data.init_args.{k}" not in keys]
    changes = []
    for key in keys:
        old, new = _get(recorded, key), _get(current, key)
        if old is _ABSENT or new is _ABSENT or _plain(old) == _plain(new):
            continue
        if not (key == "trainer.precision" and str(old) == str(new)):
            changes.append(f"{key}: {old!r} -> {new!r}")
    return changes


def checkpoint_settings(checkpoint: dict[str, Any], ckpt_path: Path) -> Optional[dict[str, Any]]:
    """What a checkpoint was trained with, for a resume into another run directory.

    The config of the run that wrote it (``<run>/checkpoints/<file>``), else what the checkpoint
    itself records: the datamodule's arguments (Lightning's ``datamodule_hyper_parameters``) and
    the precision (genmodels' record).
    """
    ckpt_path = Path(ckpt_path).resolve()
    if ckpt_path.parent.name == "checkpoints":
        recorded = recorded_config(ckpt_path.parent.parent)
        if recorded is not None:
            return recorded
    settings: dict[str, Any] = {}
    data = checkpoint.get("datamodule_hyper_parameters")
    if isinstance(data, dict) and isinstance(data.get("_class_path"), str):
        settings["data"] = {"class_path": data["_class_path"],
                            "init_args": {k: v for k, v in data.items() if not str(k).startswith("_")}}
    precision = (checkpoint.get("genmodels") or {}).get("precision")
    if isinstance(precision, str):
        settings["trainer"] = {"precision": precision}
    return settings or None
