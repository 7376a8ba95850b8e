"""Commits never checkpoint; a second connection does it in the background, and the writer helps
when writes never pause (the WAL stays small)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from storage import sqlite as store_module
from storage.sqlite import SqliteStore
from tests.factories import channel_text


async def _write(store: SqliteStore, clock, count: int) -> None:
    for i in range(count):
        notice = channel_text("reviews", f"notice {i} " + "x" * 2000)
        await store.run(lambda tx, notice=notice: tx.enqueue([notice], clock.now()))


def _rows_in_main_file(path: Path, tmp: Path) -> int | None:
    """Outbox rows in the database file alone, without its WAL: what checkpoints copied back.

    None when the copy caught a checkpoint halfway through writing its pages (a torn file)."""
    copy = tmp / "main-file-only.db"
    copy.write_bytes(path.read_bytes())
    try:
        with sqlite3.connect(copy) as raw:
            return int(raw.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    except sqlite3.DatabaseError:
        return None


async def test_commits_leave_checkpoints_to_the_background(tmp_path, clock, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY", 3600.0)  # never, within this test
    path = tmp_path / "wal.db"
    store = await SqliteStore.open(path)
    try:
        before = path.stat().st_size
        await _write(store, clock, 1500)  # 3 MB: past SQLite's automatic checkpoint at 1,000 pages
        assert path.stat().st_size == before  # no commit copied the WAL into the database file
    finally:
        await store.close()


async def test_the_background_checkpoint_copies_the_wal_back(tmp_path, clock, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY", 0.05)
    path = tmp_path / "wal.db"
    store = await SqliteStore.open(path)
    try:
        await _write(store, clock, 300)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if _rows_in_main_file(path, tmp_path) == 300:
                break
        else:
            pytest.fail("in 5 s the background checkpoint did not copy all 300 rows back")
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM outbox").fetchone() == (300,)
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_the_wal_starts_over_while_writes_never_pause(tmp_path, clock, monkeypatch) -> None:
    """50 writers that never pause: each background pass ends behind the writer, so SQLite would
    never start the WAL over, and it would hold every frame ever written. The writer finishing
    the copy between its commits lets the next write start it over: the file stays a fraction of
    what went through it."""
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY", 0.05)
    monkeypatch.setattr(store_module, "RESTART_AFTER_FRAMES", 1000)  # 4 MB, not 64
    path = tmp_path / "wal.db"
    store = await SqliteStore.open(path)
    try:
        await asyncio.gather(*(_write(store, clock, 300) for _ in range(50)))
        wal = path.with_name(f"{path.name}-wal").stat().st_size
    finally:
        await store.close()
    # 15,000 notices of 2 KB: 30 MB of text alone, ~75 MB of frames here (what the WAL grew to
    # without the writer's help). Started over, it held ~10 MB at most.
    assert wal < 30_000_000


async def test_close_stops_the_checkpointer(tmp_path) -> None:
    store = await SqliteStore.open(tmp_path / "wal.db")
    await store.close()
    assert not [t for t in asyncio.all_tasks() if "_checkpoint_forever" in repr(t)]
