"""SqliteStore: the Store on one aiosqlite connection (its SQL: `storage.sqlite_transaction`; its
schema: `storage.migrate`).

Units of work run whole on aiosqlite's thread, as one call on the connection's queue: BEGIN
IMMEDIATE, each unit inside a savepoint (rolled back to it when the unit raises), COMMIT. Units
that arrive while others are being committed wait and go together in the next call: one commit
for all of them ("group commit"); alone, a unit goes at once. Units never interleave, nobody waits
for a lock, and a caller cancelled meanwhile cannot leave the connection inside a transaction: its
unit finishes or rolls back on that thread regardless, and its result is then not delivered.

Going statement by statement (aiosqlite's public API) costs a round trip between the threads per
statement, with the write lock held across them: an ask is a dozen statements, and those trips
were most of its latency (#7).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Self, TypeVar, cast

import aiosqlite

from bot.errors import StoreError, StoreFailureError
from bot.logs import RepeatedFailure
from storage.base import Transaction
from storage.migrate import MigrationProgress, migrate, user_version
from storage.sqlite_transaction import SqliteTransaction

log = logging.getLogger(__name__)
T = TypeVar("T")

PRAGMAS = (
    "journal_mode = WAL",
    "synchronous = NORMAL",
    "foreign_keys = ON",
    "busy_timeout = 5000",
    "journal_size_limit = 67108864",  # a WAL that grew in a burst shrinks back to 64 MiB
    # The temporary tables of IN lists, UNION, ORDER BY and RETURNING stay in memory: as a file
    # they cost ~20 us each per transaction. The units sort only bounded sets (LIMIT, one person).
    "temp_store = MEMORY",
)
CHECKPOINT_EVERY = 1.0  # seconds between background checkpoints
# A WAL this long (pages: journal_size_limit's 64 MiB) after a background checkpoint: the writer
# copies the rest itself. Its commits wait meanwhile, for the sync of the pages the background
# passes copied: tens of ms, up to ~300 under a burst of deletes (bench/retention.py).
RESTART_AFTER_FRAMES = 16_384
FAILING_SHOWN_FOR = 60.0  # seconds a failure of the database itself keeps /healthz failing
# Answers that say the database itself failed, not the unit: a full disk, a file that cannot be
# read or written. They reach the caller as StoreFailureError (a StoreError, which `reviewrelay`
# reports in one line), whether a unit's statement or the group's COMMIT met them; in WAL mode a
# full disk mostly shows at COMMIT, when the pages are written.
_STORAGE_FAILURES = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    }
)


class SqliteStore:
    """The store on one SQLite file (WAL, foreign keys, busy timeout).

    Commits never checkpoint: SQLite's automatic checkpoint would copy the WAL into the database
    (and fsync) inside whichever commit crosses 1,000 pages, a stall of milliseconds for the
    unlucky command (the p99 of the ack benchmark). A second connection checkpoints in the
    background instead (PASSIVE: it never blocks the writer). Only when writes never pause does
    the writer copy the last frames itself, between two commits, so that the WAL starts over.
    """

    def __init__(
        self, db: aiosqlite.Connection, checkpointer: aiosqlite.Connection | None = None
    ) -> None:
        self._db = db
        self._waiting: list[_Unit[Any]] = []  # units to go in the next commit
        self._committer: asyncio.Task[None] | None = None
        self._closed = False
        self._failure: tuple[float, str] | None = None  # when (monotonic) and why
        self._checkpointer = checkpointer
        self._checkpoints = (
            asyncio.create_task(self._checkpoint_forever()) if checkpointer is not None else None
        )

    @classmethod
    async def open(cls, path: Path | str, *, progress: MigrationProgress | None = None) -> Self:
        """Open (creating if needed) and migrate the database at `path`.

        `progress` hears how each pending migration goes (`reviewrelay db upgrade` prints it).
        """
        db = await _connect(path)
        try:
            await migrate(db, progress)
            await db.execute("PRAGMA wal_autocheckpoint = 0")
            checkpointer = await _connect(path)
        except BaseException:
            await db.close()
            raise
        return cls(db, checkpointer)

    async def _checkpoint_forever(self) -> None:
        assert self._checkpointer is not None  # noqa: S101 - started only with one
        # A reader or a backup in the way: next time. A full disk: each second, so logged less.
        failures = RepeatedFailure(
            log, "WAL checkpoint", every=60, level=logging.WARNING, traceback=False
        )
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            try:
                [(_, frames, _)] = await self._checkpointer.execute_fetchall(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                )
                if frames > RESTART_AFTER_FRAMES:
                    # Writes never paused, so the WAL never started over: SQLite restarts it only
                    # when a write begins with every frame copied back, and this pass ends behind
                    # the writer. The writer copies what is left between two of its commits.
                    await _on_db_thread(
                        self._db, lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    )
            except sqlite3.Error as exc:
                failures.failed(exc)
            else:
                failures.worked()

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
        if self._checkpointer is not None:
            await self._checkpointer.close()
        self._closed = True
        try:
            if self._committer is not None:
                await self._committer  # the units already handed in
        finally:
            await self._db.close()  # the last connection out checkpoints

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def backup(self, target: Path | str, progress: Callable[[int, int], None]) -> None:
        """A consistent copy with SQLite's online backup API, in steps, while others write."""
        await _backup(self._db, target, progress)

    @staticmethod
    async def backup_file(
        source: Path | str, target: Path | str, progress: Callable[[int, int], None]
    ) -> None:
        """The same copy of the database at `source`, opened without migrating it: a backup
        taken before an upgrade, with the new version installed, is of the schema it had."""
        db = await _connect(source)
        try:
            await _backup(db, target, progress)
        finally:
            await db.close()

    @property
    def failing(self) -> str | None:
        """Why the database failed a unit (a full disk, say) in the last FAILING_SHOWN_FOR
        seconds; None when it has not (/healthz). Not "until a write succeeds": on a full disk
        writes that need no new page still do."""
        if self._failure is None or time.monotonic() - self._failure[0] >= FAILING_SHOWN_FOR:
            return None
        return self._failure[1]

    async def schema_version(self) -> int:
        return await user_version(self._db)

    async def run(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run `work` as one unit, whole, on the database's thread; return what it returned once
        committed. When it raises, what it wrote is rolled back and the exception re-raised.

        `work` must await only the transaction: the event loop is not on that thread. It may run
        more than once (when SQLite rolls back its whole group for a neighbour's full disk, say),
        so it changes nothing but the store: what it has to tell, it returns.
        """
        if self._closed:
            msg = "the store is closed"
            raise StoreError(msg)
        # Log context (platform, event) is in context variables: the unit keeps the caller's.
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        unit = _Unit(work, contextvars.copy_context(), done)
        self._waiting.append(unit)
        if self._committer is None or self._committer.done():
            # A context of its own, not the log context of whichever caller started it.
            self._committer = asyncio.create_task(
                self._commit_waiting(), context=contextvars.Context()
            )
            self._committer.add_done_callback(self._committer_ended)
        return await unit.done

    def _committer_ended(self, committer: asyncio.Task[None]) -> None:
        if committer.cancelled():  # the loop is shutting down: so are the callers still waiting
            for unit in self._waiting:
                unit.done.cancel()
            self._waiting = []

    async def _commit_waiting(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            again: list[_Unit[Any]] = []
            try:
                again = await _on_db_thread(self._db, functools.partial(_commit, group))
            except asyncio.CancelledError:
                for unit in group:  # its outcome is unknown here; the waiting ones: see below
                    unit.done.cancel()
                raise
            except Exception as exc:  # BEGIN or COMMIT failed: none of the group stayed
                for unit in group:
                    if unit.error is None:
                        unit.error = _storage_failure(exc) or StoreError(f"not committed: {exc}")
                        unit.error.__cause__ = exc
            for unit in group:
                if isinstance(unit.error, StoreFailureError):
                    self._failure = (time.monotonic(), str(unit.error))
                if unit not in again:
                    unit.deliver()
            # First, in their order. A unit may go round again while later ones keep failing
            # their groups, but each round answers at least the unit that failed it.
            self._waiting = again + self._waiting


@dataclass(slots=True, eq=False)  # units are compared by identity
class _Unit(Generic[T]):
    work: Callable[[Transaction], Awaitable[T]]
    context: contextvars.Context
    done: asyncio.Future[T]
    result: T | None = None  # these two are set on the database thread
    error: Exception | None = None

    def apply(self, db: sqlite3.Connection) -> bool:
        """Run the unit to its end, on the database thread, in its caller's context; True if it
        deferred foreign-key checks."""
        tx = SqliteTransaction(db)
        try:
            self.result = self.context.run(lambda: _complete(self.work(tx)))
        except Exception as exc:
            self.error = _storage_failure(exc) or exc
        except BaseException as exc:  # a unit that awaited a cancelled future, say
            self.error = RuntimeError(f"a unit of work raised {exc!r}")
            self.error.__cause__ = exc
        return tx.deferred_foreign_keys

    def deliver(self) -> None:
        if self.done.done():  # its caller was cancelled
            return
        if self.error is not None:
            self.done.set_exception(self.error)
        else:
            self.done.set_result(cast("T", self.result))


def _rolled_back(unit: _Unit[Any], db: sqlite3.Connection) -> bool:
    """True if SQLite rolled the whole transaction back under `unit`; it then fails. (A unit
    that caught what SQLite raised would be failed too, though what it wrote after would have
    committed on its own; none catches sqlite3 errors.)"""
    if db.in_transaction:
        return False
    if unit.error is None:
        unit.error = StoreError("not committed: SQLite rolled the transaction back")
    return True


def _storage_failure(exc: Exception) -> StoreFailureError | None:
    """`exc` as a StoreFailureError if it says the database failed (_STORAGE_FAILURES), or None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None or code & 0xFF not in _STORAGE_FAILURES:
        return None  # extended codes (SQLITE_IOERR_WRITE, ...) keep the primary in the low byte
    error = StoreFailureError(f"the database failed: {exc}")
    error.__cause__ = exc
    return error


def _commit(group: Sequence[_Unit[Any]], db: sqlite3.Connection) -> list[_Unit[Any]]:
    """One transaction for `group`, each unit in a savepoint of its own (on the database thread).

    Returns the units to run again in a new transaction: on a full disk or an I/O error SQLite
    may roll back the whole transaction, not just the failing statement; that unit keeps its
    error, and the others, undone or not yet run, go again rather than fail with it.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        if len(group) == 1:  # alone, a unit's transaction is all the savepoint it needs
            group[0].apply(db)
            _rolled_back(group[0], db)
            kept = group[0].error is None
        else:
            kept = False
            for unit in group:
                db.execute("SAVEPOINT unit")
                deferred = unit.apply(db)
                if _rolled_back(unit, db):
                    return [other for other in group if other is not unit and other.error is None]
                if unit.error is None:
                    kept = True
                else:
                    db.execute("ROLLBACK TO unit")
                db.execute("RELEASE unit")
                # A unit may defer foreign-key checks (forget does); that lasts until COMMIT, so
                # it would defer the next units' checks too and fail the whole group for one of
                # them. Only then: setting it expires every prepared statement (~2 ms to prepare
                # again).
                if deferred:
                    db.execute("PRAGMA defer_foreign_keys = OFF")
        if kept:
            db.commit()
        else:  # a group of refusals ends as it began: not even an empty commit touches the file
            db.rollback()
    except BaseException:
        db.rollback()
        raise
    return []


async def _on_db_thread(db: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn(raw connection)` as one call on aiosqlite's queue, on its thread.

    aiosqlite's public methods are each this with one sqlite3 call; it has no public way to queue
    several. `_execute` and `_conn` are the private names we rely on: pyproject pins the aiosqlite
    versions that have them, and tests/storage/test_sqlite.py fails first if they change.
    """
    result: T = await db._execute(lambda: fn(db._conn))  # type: ignore[no-untyped-call]
    return result


def _complete(work: Awaitable[T]) -> T:
    """Drive `work` to its end without an event loop; it must not suspend."""
    steps = work.__await__()
    try:
        awaited = steps.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    steps.close()
    msg = f"a unit of work awaited something other than its transaction: {awaited!r}"
    raise RuntimeError(msg)


async def _backup(
    db: aiosqlite.Connection, target: Path | str, progress: Callable[[int, int], None]
) -> None:
    try:
        async with aiosqlite.connect(str(target)) as copy:
            await db.backup(
                copy,
                pages=256,
                progress=lambda _status, remaining, total: progress(total - remaining, total),
            )
    except sqlite3.Error as exc:  # a full disk, say: a StoreError is reported in one line
        msg = f"the backup to {target} failed: {exc}"
        raise StoreError(msg) from exc


async def _connect(path: Path | str) -> aiosqlite.Connection:
    connecting = aiosqlite.connect(str(path), isolation_level=None)
    try:
        db = await connecting
    except sqlite3.Error as exc:
        # aiosqlite stops its thread without waiting for it; if the loop closed first (a CLI
        # command that reports the error and exits), the thread died with a traceback.
        # `_thread`: a private name like those of `_on_db_thread`, pinned the same way.
        await asyncio.to_thread(connecting._thread.join, 5)
        msg = f"cannot open the database at {path}: {exc}"
        raise StoreError(msg) from exc
    db.row_factory = sqlite3.Row
    try:
        for pragma in PRAGMAS:
            await db.execute(f"PRAGMA {pragma}")
    except BaseException:
        await db.close()
        raise
    return db
