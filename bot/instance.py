"""One serving process per database, held with a lock file beside it.

Two processes serving one database would both deliver its outbox (every notice twice) and both
hold a Discord gateway session (every event handled twice, under different session keys). So `run`
holds an exclusive lock on `<database>.lock` while it serves: a second `run` stops with one line,
and `remind` (cron) finds the bot running and leaves delivery to it. The lock is the kernel's
(flock), so a process killed with -9 drops it; the file keeps the holder's pid for messages only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from bot.errors import StoreError

try:
    import fcntl
except ImportError:  # Windows: no flock; one process per database is then up to the operator
    fcntl = None  # type: ignore[assignment]


class AlreadyRunningError(StoreError):
    """Another process serves this database."""

    def __init__(self, database: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"another reviewrelay ({who}) is already running on {database}; "
            "stop it first (one running bot per database)"
        )
        self.pid = pid


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def serving(database: Path | str) -> Iterator[None]:
    """Hold the serving lock of `database` for the block, or raise AlreadyRunningError."""
    if fcntl is None or not isinstance(database, Path):  # ":memory:" is nobody else's
        yield
        return
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunningError(database, _pid(fd)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # the lock itself goes with the descriptor
    finally:
        os.close(fd)


def _pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
