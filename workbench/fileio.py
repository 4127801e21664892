"""Atomic file writes: the one place the project replaces a file on disk.

A temp file in the destination folder is written, flushed and fsynced, then ``os.replace``-d over
the destination, so a crash or an error at any point leaves either the old file or the new one,
never half of either.

The temp file is ``.<name>.<16 hex digits>.tmp``, created with ``O_CREAT | O_EXCL | O_NOFOLLOW``:
a fresh name per write, so two writers never share one and a planted file or symbolic link of that
name is never opened (``os.replace`` then replaces a link at the destination itself, never what it
points to). Its mode is the destination's if that exists, else 0o666 less the user's umask (the OS
applies it), as any file the user's programs create. While it is written the temp file holds an
advisory lock (``flock`` where the OS has it); a write killed half-way leaves it behind, and
:func:`remove_stale_temps` (called before every write) removes such orphans: only names of this
pattern, only regular files untouched for :data:`STALE_AFTER_S` seconds and not locked, so a live
writer's temp file is never removed.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import BinaryIO, Callable

try:  # POSIX advisory locks (flock: released by the OS when the holder dies, even by SIGKILL)
    import fcntl
except ImportError:  # pragma: no cover - Windows: a byte-range lock, also released at exit
    fcntl = None  # type: ignore[assignment]
    try:
        import msvcrt
    except ImportError:
        msvcrt = None  # type: ignore[assignment]

__all__ = ["atomic_write", "atomic_write_text", "remove_stale_temps", "is_temp_name", "open_temp", "try_lock",
           "STALE_AFTER_S"]

#: A temp file untouched for this many seconds (and not locked) is an orphan of a killed write.
STALE_AFTER_S = 60.0

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)
# ours: 16 hex digits; Python's mkstemp (what earlier versions used): 8 of [a-z0-9_]
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?:[0-9a-f]{16}|[a-z0-9_]{8})\.tmp$")


def is_temp_name(file_name: str, dest_name: str | None = None) -> bool:
    """Whether ``file_name`` is one of our temp names (for ``dest_name``, or for any destination)."""
    match = _TEMP_RE.match(file_name)
    return match is not None and (dest_name is None or match.group("name") == dest_name)


def try_lock(fd: int) -> bool:
    """Take an exclusive advisory lock on open file ``fd`` without waiting; True when taken.

    The lock lasts until ``fd`` is closed or the process ends (however it ends). Two descriptors
    opened separately conflict even within one process. Where the OS has no locks, True."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif msvcrt is not None:  # pragma: no cover - Windows
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def remove_stale_temps(folder: str | os.PathLike[str], dest_name: str | None = None) -> int:
    """Remove orphaned temp files of killed writes in ``folder`` (for ``dest_name``, or all of ours).

    Only regular files named like our temps, not modified for :data:`STALE_AFTER_S` seconds and not
    locked by a writer are removed; never raises. Returns how many were removed."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    now = time.time()
    for name in names:
        if not is_temp_name(name, dest_name):
            continue
        path = os.path.join(folder, name)
        try:
            before = os.lstat(path)
            if not stat.S_ISREG(before.st_mode) or now - before.st_mtime < STALE_AFTER_S:
                continue
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _BINARY)
        except OSError:
            continue
        try:
            now_st = os.fstat(fd)
            if (now_st.st_ino, now_st.st_dev) == (before.st_ino, before.st_dev) and try_lock(fd):
                os.unlink(path)
                removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def open_temp(folder: Path, dest_name: str, suffix: str = "") -> tuple[int, Path]:
    """A fresh temp file ``.<dest_name>.<16 hex>.tmp<suffix>`` in ``folder``, created O_EXCL (never an
    existing file or link), mode 0o666 less the umask: its open descriptor and path."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
    for _ in range(100):
        tmp = folder / f".{dest_name}.{secrets.token_hex(8)}.tmp{suffix}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temp file beside {folder / dest_name}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """Replace ``path`` atomically with what ``write(binary_file)`` writes, creating its folder.

    On any failure the temp file is removed and an existing file at ``path`` is left untouched."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder, path.name)
    keep_mode = None
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            keep_mode = stat.S_IMODE(st.st_mode)
    fd, tmp = open_temp(folder, path.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            try_lock(handle.fileno())
            if keep_mode is not None and hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), keep_mode)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends as given) to ``path`` atomically (see :func:`atomic_write`)."""
    data = text.encode("utf-8")
    atomic_write(path, lambda handle: handle.write(data))
