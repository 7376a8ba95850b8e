"""Fast, schema-exact population of a real SQLite store for the benchmarks.

The store is created (and migrated) by opening `SqliteStore` once; rows then go in through the
stdlib `sqlite3` with `executemany` inside one transaction, which is tens of times faster than the
store's own one-row-at-a-time methods. Column lists are spelled out so a schema change breaks the
benchmark loudly instead of filling the wrong columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.sqlite import SqliteStore

# A fixed "now" keeps runs comparable: a Monday mid-morning UTC.
NOW = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def ts(at: datetime) -> str:
    """A timestamp exactly as the store writes it (UTC ISO-8601 with microseconds), so it sorts."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


async def create_store(path: Path) -> None:
    """Create the database file at the current schema version, then close it."""
    store = await SqliteStore.open(path)
    await store.close()


@contextmanager
def bulk(path: Path) -> Iterator[sqlite3.Connection]:
    """A raw connection for bulk loading: one transaction, no fsync until the end."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -262144")  # 256 MiB while loading
        db.execute("BEGIN IMMEDIATE")
        yield db
        db.execute("COMMIT")
        db.execute("PRAGMA optimize")
    finally:
        db.close()


@contextmanager
def indexes_deferred(db: sqlite3.Connection, tables: Iterable[str]) -> Iterator[None]:
    """Drop the tables' secondary indexes while loading, then recreate them from their own SQL.

    Building an index once over sorted keys is several times faster than maintaining it row by
    row; the recreated indexes are exactly the schema's (their `CREATE INDEX` text is reused).
    """
    names = tuple(tables)
    found = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608
        f"AND tbl_name IN ({','.join('?' * len(names))})",
        names,
    ).fetchall()
    for name, _ in found:
        db.execute(f'DROP INDEX "{name}"')
    yield
    for _, sql in found:
        db.execute(sql)


def insert(db: sqlite3.Connection, table: str, columns: str, rows: Iterable[Any]) -> None:
    count = columns.count(",") + 1
    db.executemany(
        f"INSERT INTO {table} ({columns}) VALUES ({','.join('?' * count)})",  # noqa: S608
        rows,
    )


PERSON_COLUMNS = "id, created_at"
MEMBER_COLUMNS = "platform, community_id, user_id, display_name, person_id"
VOLUNTEER_COLUMNS = (
    "person_id, platform, community_id, user_id, max_open_claims, paused_until, last_notified_at, "
    "quiet_start, quiet_end, quiet_tz, ignored_streak"
)
REQUEST_COLUMNS = (
    "id, link, topics, note, requester_platform, requester_community, requester_user, "
    "requester_person, origin_channel_id, status, created_at, updated_at, claimer_platform, "
    "claimer_community, claimer_user, claimer_person, claimed_at, response"
)
CLAIM_COLUMNS = (
    "id, request_id, person_id, status, claimed_at, ended_at, nudges, nudged_at, "
    "platform, community_id, user_id"
)
OUTBOX_COLUMNS = (
    "id, kind, platform, community_id, channel_id, user_id, text, request_id, mentions, "
    "order_key, status, attempts, next_attempt_at, created_at, sent_at, message_id, last_error, "
    "digest_id"
)
RELAY_POST_COLUMNS = "request_id, platform, community_id, channel_id, message_id"


def people(db: sqlite3.Connection, count: int, *, platform: str, community: str) -> None:
    """Persons 1..count, each with one member `U<id>` in the given community."""
    created = ts(NOW)
    insert(db, "persons", PERSON_COLUMNS, ((i, created) for i in range(1, count + 1)))
    insert(
        db,
        "members",
        MEMBER_COLUMNS,
        ((platform, community, f"U{i}", f"user {i}", i) for i in range(1, count + 1)),
    )
