"""Migrations report their progress: each start and end, and ticks from inside a long statement."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from storage import migrate
from storage.migrate import MigrationStep, migrations
from storage.sqlite import SqliteStore

RANKING = 5  # 0005 backfills every volunteer's ranking keys in one UPDATE per table
VOLUNTEERS = 5_000


def _schema_4_with_volunteers(path: Path, count: int) -> None:
    """A database as reviewrelay left it at schema 4, with `count` volunteers on two topics."""
    with sqlite3.connect(path) as raw:
        for number, sql in migrations():
            if number < RANKING:
                raw.executescript(sql)
        raw.execute(f"PRAGMA user_version = {RANKING - 1}")
        raw.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO persons SELECT i, '2026-01-01T00:00:00+00:00' FROM n",
            (count,),
        )
        raw.executescript(
            "INSERT INTO members SELECT 'slack', 'T1', 'U' || id, 'someone', id FROM persons;"
            "INSERT INTO volunteers (person_id, platform, community_id, user_id) "
            "  SELECT id, 'slack', 'T1', 'U' || id FROM persons;"
            "INSERT INTO volunteer_topics SELECT 'python', id FROM persons;"
            "INSERT INTO volunteer_topics SELECT 'go', id FROM persons;"
        )


async def test_a_long_migration_reports_from_inside_its_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0005 over thousands of volunteers reports while it runs, then its rows; in order."""
    monkeypatch.setattr(migrate, "PROGRESS_EVERY", 10_000)
    path = tmp_path / "old.db"
    _schema_4_with_volunteers(path, VOLUNTEERS)
    steps: list[MigrationStep] = []
    started = time.monotonic()
    async with await SqliteStore.open(path, progress=steps.append) as store:
        assert await store.schema_version() == migrations()[-1][0]
    assert time.monotonic() - started < 2
    pending = [number for number, _ in migrations() if number >= RANKING]
    assert [s.number for s in steps if s.done] == pending
    assert {(s.index, s.total) for s in steps if s.done} == {
        (i, len(pending)) for i in range(1, len(pending) + 1)
    }
    ranking = [s for s in steps if s.number == RANKING]
    assert ranking[0].steps == 0
    assert not ranking[0].done
    assert ranking[-1].done
    ticks = [s for s in ranking if s.steps]
    assert len(ticks) > 10
    assert [s.steps for s in ticks] == sorted(s.steps for s in ticks)
    assert ranking[-1].rows >= 3 * VOLUNTEERS  # each volunteer and both its topic rows


async def test_a_failing_progress_report_does_not_stop_the_migration(tmp_path: Path) -> None:
    """A report that raises (a closed terminal) is dropped; the migration still completes."""

    def broken(step: MigrationStep) -> None:
        raise BrokenPipeError

    async with await SqliteStore.open(tmp_path / "new.db", progress=broken) as store:
        assert await store.schema_version() == migrations()[-1][0]
