"""Versioned migrations: the numbered SQL files in storage/migrations, applied in order when a
store opens, each with its version bump in one transaction; progress reports for
`reviewrelay db upgrade`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import aiosqlite

from bot.errors import StoreError

log = logging.getLogger(__name__)


def migrations() -> list[tuple[int, str]]:
    """The numbered SQL files in storage/migrations, in order."""
    folder = resources.files("storage") / "migrations"
    found = [
        (int(item.name.split("_", 1)[0]), item.read_text(encoding="utf-8"))
        for item in folder.iterdir()
        if item.name.endswith(".sql")
    ]
    return sorted(found)


async def user_version(db: aiosqlite.Connection) -> int:
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


PROGRESS_EVERY = 100_000  # SQLite VM instructions between progress reports in a long statement


@dataclass(frozen=True, slots=True)
class MigrationStep:
    """Where one migration is: at its start, every PROGRESS_EVERY VM instructions while a long
    statement runs (from SQLite's progress handler, on the database thread), and at its end."""

    number: int  # the migration's number: 5 for 0005
    index: int  # its place among the migrations this open applies, from 1
    total: int  # how many this open applies
    elapsed: float  # seconds since it began
    rows: int  # rows its finished statements wrote (SQLite counts a statement when it ends)
    steps: int  # VM instructions so far, in PROGRESS_EVERY units; 0 at the start
    done: bool


MigrationProgress = Callable[[MigrationStep], None]


class _MigrationClock:
    """Times and counts the migration in progress; `tick` is SQLite's progress handler."""

    def __init__(
        self, db: aiosqlite.Connection, progress: MigrationProgress | None, total: int
    ) -> None:
        self._db, self._progress, self._total = db, progress, total
        self._number = self._index = self._changes = self._steps = 0
        self._started = 0.0

    def begin(self, number: int, index: int) -> None:
        self._number, self._index, self._steps = number, index, 0
        self._started, self._changes = time.monotonic(), self._db.total_changes
        self._report(done=False)

    def tick(self) -> int:
        self._steps += PROGRESS_EVERY
        self._report(done=False)
        return 0  # non-zero would abort the statement

    def end(self) -> MigrationStep:
        return self._report(done=True)

    def _report(self, *, done: bool) -> MigrationStep:
        step = MigrationStep(
            number=self._number,
            index=self._index,
            total=self._total,
            elapsed=time.monotonic() - self._started,
            rows=self._db.total_changes - self._changes,
            steps=self._steps,
            done=done,
        )
        if self._progress is not None:
            try:
                self._progress(step)
            except Exception:  # a closed stderr must not abort (and roll back) the migration
                log.exception("migration progress report failed; not reporting any more")
                self._progress = None
        return step


async def migrate(db: aiosqlite.Connection, progress: MigrationProgress | None = None) -> None:
    current = await user_version(db)
    known = migrations()
    newest = known[-1][0] if known else 0
    if current > newest:
        msg = f"the database is at schema version {current}, newer than this reviewrelay ({newest})"
        raise StoreError(msg)
    pending = [(number, sql) for number, sql in known if number > current]
    clock = _MigrationClock(db, progress, len(pending))
    if progress is not None and pending:
        await db.set_progress_handler(clock.tick, PROGRESS_EVERY)
    try:
        for index, (number, sql) in enumerate(pending, 1):
            clock.begin(number, index)
            await _apply(db, number, sql)
            done = clock.end()
            log.info(
                "applied migration %04d (%d of %d) in %.2fs, %d row(s) written",
                number, index, len(pending), done.elapsed, done.rows,
            )  # fmt: skip
    finally:
        if progress is not None and pending:
            await db.set_progress_handler(None, 0)  # type: ignore[arg-type]  # None removes it


async def _apply(db: aiosqlite.Connection, number: int, sql: str) -> None:
    """One migration and its version bump in one transaction (all of it, or none)."""
    try:
        await db.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
    except sqlite3.Error as exc:
        await db.rollback()
        msg = f"migration {number:04d} failed: {exc}"
        raise StoreError(msg) from exc
