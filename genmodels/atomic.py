"""The one way genmodels writes a file: temp file in the same folder, fsync, rename, fsync the folder.

A reader (or a requeued job) sees either the previous file or the complete new one, never a
truncated one: the temp file lives beside the target, so the rename is atomic on POSIX (a temp
file elsewhere, e.g. /tmp, is copied across filesystems and can be cut short), and both the file
and the folder entry are flushed to disk before the function returns. A full disk (or quota) is
one line that names the file, and the temp file is removed; the previous file is untouched.
Checkpoints, exports, sample grids, GIFs, cached statistics and pinned classifiers all go through
`atomic_write`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO, Any, Callable, Union

from genmodels.errors import UserError

__all__ = ["atomic_write", "atomic_write_text", "DiskFullError", "OutputError", "check_output_path", "temp_path_of"]

PathLike = Union[str, os.PathLike]

#: errno values that mean "no room", and how the message says it instead of a traceback.
_NO_SPACE = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "over the disk quota",
             errno.EFBIG: "over the file size limit (ulimit -f, or the filesystem's)"}


class DiskFullError(UserError):
    """No space (or quota) left while writing a file; nothing was replaced."""


class OutputError(ValueError, UserError):
    """An output path that cannot be a regular file (a FIFO, a device, a folder)."""


def temp_path_of(path: Path) -> Path:
    """``.<name>.tmp-<pid>`` beside ``path`` (`remove_stale_temp_files` recognises the pattern)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def check_output_path(path: PathLike, what: str = "output") -> Path:
    """Refuse an output that exists and is not a regular file: writing to a FIFO blocks forever,
    a device or a folder cannot be replaced by a file."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError:
        return path
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device or special file")
        raise OutputError(f"{what} {path} is {kind}, not a regular file; give a file path to write")
    return path


def atomic_write(path: PathLike, write: Callable[[IO[Any]], Any], mode: str = "wb") -> Path:
    """Write ``path`` by calling ``write(file)`` on a temp file beside it, then fsync and rename.

    Raises:
        DiskFullError: no space or quota left (one line; the temp file is removed, the old file kept).
        OutputError: ``path`` exists and is not a regular file.
    """
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_of(path)
    try:
        with open(tmp, mode) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno in _NO_SPACE:
            raise DiskFullError(f"cannot write {path}: {_NO_SPACE[err.errno]} ({os.strerror(err.errno)}); "
                                "nothing was replaced and no partial file was left: free space or write elsewhere") from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """`atomic_write` of a text file (UTF-8)."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk; a filesystem that cannot is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
