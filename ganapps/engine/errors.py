"""Error types shared by every layer; the CLI turns `InputError` into a one-line message and exit code 2.
Also the one-line error for a failed write (disk full, quota, permissions). Imports the standard library only."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path


class InputError(ValueError):
    """Bad input from the user (file, option, data): the message is one line naming what, where, and
    what was expected. The CLI prints it without a traceback and exits with code 2."""


class DiskFullError(InputError):
    """No space left (disk full or quota reached) while writing into a run folder. The message names the
    folder, the bytes the write needed and the bytes free; nothing half-written is left behind."""


# torch's zip writer reports a short write without an errno (`[enforce fail at inline_container.cc:...] .
# unexpected pos N vs M` or `... file write failed`); safetensors wraps the OS text ("No space left on device").
_SHORT_WRITE = ("unexpected pos", "file write failed", "No space left", "Disk quota exceeded")
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _chain(e: BaseException) -> list[BaseException]:
    """`e` and the exceptions it was raised from or while handling (torch's writer raises a second error
    while closing the zip file after the first short write)."""
    seen: list[BaseException] = []
    while e is not None and not any(e is x for x in seen):
        seen.append(e)
        e = e.__cause__ or e.__context__
    return seen


def out_of_space(e: BaseException) -> bool:
    """Whether `e` says the disk or the quota ran out during a write: an OSError ENOSPC/EDQUOT, torch's zip
    writer's short write (a RuntimeError) or safetensors' wrapped I/O error (a SafetensorError)."""
    for x in _chain(e):
        if isinstance(x, OSError) and x.errno in _NO_SPACE:
            return True
        wrapped = isinstance(x, RuntimeError) or type(x).__name__ == "SafetensorError"
        if wrapped and any(s in str(x) for s in _SHORT_WRITE):
            return True
    return False


def drop_tracebacks(e: BaseException) -> None:
    """Forget the frames of `e`'s chain: a writer that failed half-way may hold its (deleted) file open in
    them, and the space that file takes is freed only when it is closed."""
    for x in _chain(e):
        x.__traceback__ = None


def format_bytes(n: int) -> str:
    """1234567 -> '1,234,567 bytes (1.2 MiB)'."""
    value, unit = float(n), 0
    while value >= 1024 and unit < 4:
        value, unit = value / 1024, unit + 1
    return f"{n:,} bytes" if unit == 0 else f"{n:,} bytes ({value:.1f} {('KiB', 'MiB', 'GiB', 'TiB')[unit - 1]})"


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes on the file system holding `path` (or its nearest existing parent); None if unknown."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def write_error(e: BaseException, folder: str | os.PathLike, what: str,
                needed: Callable[[], int] | None = None) -> InputError | None:
    """The one-line error for a failed write of `what` into `folder`: a `DiskFullError` when the disk or quota
    ran out (with the bytes `needed()` estimates and the bytes free now), an `InputError` for another OS error,
    None when `e` is no write failure (a bug or an interrupt: re-raise it)."""
    if out_of_space(e):
        need = f"needs at least {format_bytes(needed())}, " if needed is not None else ""
        free = free_bytes(folder)
        have = f"{format_bytes(free)} free" if free is not None else "free space unknown"
        return DiskFullError(f"{folder}: disk full while writing {what} ({need}{have})")
    if isinstance(e, OSError):
        return InputError(f"{folder}: cannot write {what} ({e.strerror or e})")
    return None
