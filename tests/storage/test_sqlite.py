"""SqliteStore on real files: units of work (atomic, isolated, cancellable), migrations, outbox."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import random
import sqlite3
import sys
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.model import Notice, NoticeKind, Outgoing, Platform, Request, Status
from storage.base import Transaction
from storage.migrate import migrations
from storage.sqlite import SqliteStore
from tests.factories import channel_text, direct, member
from tests.fakes.fake_clock import FakeClock


async def _open_request(store: SqliteStore, clock: FakeClock) -> int:
    async def ask(tx: Transaction) -> Request:
        riley = await tx.member(member("riley"), clock.now())
        return await tx.add_request(
            link="https://example.com/d",
            topics=["python"],
            note="",
            requester=riley,
            origin_channel_id="reviews",
            at=clock.now(),
        )

    return (await store.run(ask)).id


async def test_quota_and_duplicate_lookups_see_only_the_person_and_the_window(store, clock):
    """`nth_newest_request` counts all of a person's requests in the window (cancelled ones
    too, as the hourly quota does); `active_request_for` finds their newest open or claimed
    request for that link."""
    start = clock.now()

    async def ask(name: str, link: str, tx: Transaction) -> int:
        asker = await tx.member(member(name), clock.now())
        request = await tx.add_request(
            link=link, topics=[], note="", requester=asker, origin_channel_id="c", at=clock.now()
        )
        return request.id

    first = await store.run(lambda tx: ask("riley", "https://a", tx))
    clock.advance(minutes=5)
    await store.run(lambda tx: ask("sam", "https://b", tx))
    clock.advance(minutes=5)
    await store.run(lambda tx: ask("riley", "https://b", tx))
    clock.advance(minutes=10)
    third = await store.run(lambda tx: ask("riley", "https://a", tx))
    riley = await store.run(lambda tx: tx.member(member("riley"), clock.now()))

    async def cancel(tx: Transaction) -> None:
        await tx.change_status(third, Status.OPEN, Status.CANCELLED, actor=riley, at=clock.now())

    async def lookups(
        tx: Transaction,
    ) -> tuple[list[int | None], datetime | None, list[int | None]]:
        nth = [await tx.nth_newest_request(riley.person_id, start, n) for n in (1, 2, 3, 4)]
        later = await tx.nth_newest_request(riley.person_id, start + timedelta(seconds=1), 3)
        active = [
            await tx.active_request_for(riley.person_id, link, since)
            for link, since in (
                ("https://a", start),
                ("https://a", clock.now()),
                ("https://c", start),
            )
        ]
        minutes = [None if t is None else int((t - start).total_seconds() // 60) for t in nth]
        return minutes, later, active

    assert await store.run(lookups) == ([20, 10, 0, None], None, [third, third, None])
    await store.run(cancel)
    assert await store.run(lookups) == ([20, 10, 0, None], None, [first, None, None])


async def test_fifty_concurrent_claims_have_one_winner(store, clock):
    """Fifty volunteers claiming one request at once: exactly one claim succeeds, none errors."""
    request_id = await _open_request(store, clock)

    async def claim(name: str, tx: Transaction) -> Request | None:
        actor = await tx.member(member(name), clock.now())
        return await tx.change_status(
            request_id, Status.OPEN, Status.CLAIMED, actor=actor, at=clock.now()
        )

    results = await asyncio.gather(
        *(store.run(lambda tx, i=i: claim(f"v{i}", tx)) for i in range(50))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    final = await store.run(lambda tx: tx.request(request_id))
    assert final is not None
    assert final.status is Status.CLAIMED
    assert final.claimer == winners[0].claimer


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as raw:
        return int(raw.execute(sql).fetchone()[0])


async def test_a_failing_unit_does_not_undo_the_others(store, clock, tmp_path):
    """One unit of work failing midway rolls back only its own writes."""

    async def write(i: int, tx: Transaction) -> None:
        await tx.member(member(f"user{i}"), clock.now())
        if i == 7:
            raise RuntimeError("boom")

    results = await asyncio.gather(
        *(store.run(lambda tx, i=i: write(i, tx)) for i in range(20)), return_exceptions=True
    )
    assert [i for i, r in enumerate(results) if isinstance(r, RuntimeError)] == [7]
    db = tmp_path / "test.db"
    assert _count(db, "SELECT COUNT(*) FROM members") == 19
    assert _count(db, "SELECT COUNT(*) FROM members WHERE user_id = 'user7'") == 0
    assert _count(db, "SELECT COUNT(*) FROM persons") == 19


async def test_cancelled_callers_leave_the_store_usable_and_units_atomic(store, clock, tmp_path):
    """A thousand units whose callers are cancelled at random points, waiting or while their unit
    runs: each unit wrote all or nothing, every caller that returned has its rows, and the store
    goes on. (A unit already on the database thread finishes there; its caller just stops
    waiting.)"""
    rng = random.Random(7)
    waiting: set[int] = set()

    async def write(i: int, tx: Transaction) -> None:
        for part in range(3):
            await tx.seen_event(f"t{i}:{part}", clock.now())
            if i % 10 == 3 and part == 1:
                raise RuntimeError("midway")  # and some fail halfway through

    async def caller(i: int) -> None:
        waiting.add(i)
        try:
            await store.run(lambda tx: write(i, tx))
        finally:
            waiting.discard(i)

    tasks = [asyncio.create_task(caller(i)) for i in range(1000)]
    victims = set(rng.sample(range(1000), 500))  # the others wait for their answer
    while pending := sorted(v for v in victims if not tasks[v].done()):
        for _ in range(rng.randrange(1, 12)):
            await asyncio.sleep(0)
        inside = sorted(victims & waiting)
        if inside and rng.random() < 0.5:
            tasks[rng.choice(inside)].cancel()  # its unit queued or running
        else:
            tasks[rng.choice(pending)].cancel()  # perhaps before it even started
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = {i for i, r in enumerate(results) if isinstance(r, RuntimeError)}
    expected = asyncio.CancelledError | RuntimeError | None
    assert [r for r in results if not isinstance(r, expected)] == []
    assert failed
    assert all(i % 10 == 3 for i in failed)

    with sqlite3.connect(tmp_path / "test.db") as raw:
        parts = dict(
            raw.execute(
                "SELECT substr(event_key, 2, instr(event_key, ':') - 2) AS t, COUNT(*) "
                "FROM inbound_events GROUP BY t"
            ).fetchall()
        )
    assert set(parts.values()) <= {3}
    assert not {str(i) for i in range(1000) if i % 10 == 3} & set(parts)
    returned = {str(i) for i, t in enumerate(tasks) if not t.cancelled() and i not in failed}
    assert returned <= set(parts)
    assert sum(1 for t in tasks if t.cancelled()) > 0
    assert await store.run(lambda tx: tx.seen_event("after", clock.now())) is False


async def test_a_unit_that_awaits_anything_else_is_refused_and_rolled_back(store, clock):
    """Units run on the database thread without the event loop: awaiting a timer or the network
    there is a bug, reported as one, and nothing it wrote stays."""

    async def strays(tx: Transaction) -> None:
        await tx.seen_event("stray", clock.now())
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaited something other than its transaction"):
        await store.run(strays)
    assert await store.run(lambda tx: tx.seen_event("stray", clock.now())) is False


async def test_a_unit_runs_on_the_database_thread_with_the_callers_context(store):
    """One trip per unit (off the event loop's thread), and the caller's context variables (the
    log context) come along."""
    where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")
    where.set("the handler's")
    seen: list[tuple[int, str]] = []

    async def look(tx: Transaction) -> None:
        seen.append((threading.get_ident(), where.get()))

    await store.run(look)
    assert seen == [(seen[0][0], "the handler's")]
    assert seen[0][0] != threading.get_ident()


async def test_event_keys_survive_a_restart(tmp_path: Path, clock):
    """An inbound event key recorded before a restart is still known after it."""
    path = tmp_path / "keys.db"
    async with await SqliteStore.open(path) as first:
        assert await first.run(lambda tx: tx.seen_event("slack:Ev1", clock.now())) is False
    async with await SqliteStore.open(path) as second:
        assert await second.run(lambda tx: tx.seen_event("slack:Ev1", clock.now())) is True


async def test_fresh_file_migrates_to_the_newest_schema(tmp_path: Path):
    """A new database file ends at the newest migration's version with WAL and foreign keys on."""
    async with await SqliteStore.open(tmp_path / "new.db") as store:
        assert await store.schema_version() == migrations()[-1][0]
    with sqlite3.connect(tmp_path / "new.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_old_file_keeps_its_data_when_migrated(tmp_path: Path, clock):
    """A file written at schema version 1 reopens at the newest version with its data intact."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(migrations()[0][1] + "\nPRAGMA user_version = 1;")
        raw.execute("INSERT INTO inbound_events VALUES ('old-key', '2026-01-01T00:00:00+00:00')")
    async with await SqliteStore.open(path) as store:
        assert await store.schema_version() == migrations()[-1][0]
        assert await store.run(lambda tx: tx.seen_event("old-key", clock.now())) is True


async def test_newer_schema_is_refused(tmp_path: Path):
    """A database from a newer reviewrelay is not opened (and not damaged)."""
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 999")
    with pytest.raises(StoreError, match="newer"):
        await SqliteStore.open(path)


async def test_due_notices_of_one_platform(store, clock):
    """Asked for one platform, the store hands out that platform's channel heads only, each
    channel's oldest still, whatever the other platforms have waiting."""
    slack = [
        Outgoing(
            kind=NoticeKind.CHANNEL_TEXT,
            platform=Platform.SLACK,
            community_id="T1",
            channel_id=channel,
            text=text,
        )
        for channel, text in (("C1", "s1"), ("C1", "s2"), ("C2", "s3"))
    ]
    console = [channel_text(c, c) for c in ("a", "b")]
    discord = [replace(direct("123", "d"), platform=Platform.DISCORD)]

    async def read(tx: Transaction) -> dict[Platform | None, list[str]]:
        await tx.enqueue([*console, *slack, *discord], clock.now())
        platforms = (None, Platform.SLACK, Platform.CONSOLE, Platform.DISCORD)
        return {p: [n.text for n in await tx.due_notices(clock.now(), 10, p)] for p in platforms}

    assert await store.run(read) == {
        None: ["a", "b", "s1", "s3", "d"],
        Platform.SLACK: ["s1", "s3"],
        Platform.CONSOLE: ["a", "b"],
        Platform.DISCORD: ["d"],
    }


async def test_due_notices_hand_out_one_per_channel_in_order(store, clock):
    """Only the oldest pending notice of each channel is due, so a channel keeps its order."""
    request_id = await _open_request(store, clock)

    async def enqueue_and_read(tx: Transaction) -> list[Notice]:
        await tx.enqueue(
            [
                Outgoing(
                    kind=NoticeKind.RELAY_POST,
                    platform=Platform.CONSOLE,
                    community_id="local",
                    channel_id="a",
                    request_id=request_id,
                ),
                Outgoing(
                    kind=NoticeKind.POST_UPDATE,
                    platform=Platform.CONSOLE,
                    community_id="local",
                    channel_id="a",
                    request_id=request_id,
                ),
                Outgoing(
                    kind=NoticeKind.DIRECT,
                    platform=Platform.CONSOLE,
                    community_id="local",
                    user_id="riley",
                    text="hi",
                ),
            ],
            clock.now(),
        )
        return await tx.due_notices(clock.now(), 10)

    due = await store.run(enqueue_and_read)
    assert [(n.kind, n.channel_id or n.user_id) for n in due] == [
        (NoticeKind.RELAY_POST, "a"),
        (NoticeKind.DIRECT, "riley"),
    ]


async def test_one_post_update_settles_the_edits_queued_before_it(store, clock):
    """Pending edits of one post coalesce: sending the first marks the earlier-queued ones sent."""
    request_id = await _open_request(store, clock)
    update = Outgoing(
        kind=NoticeKind.POST_UPDATE,
        platform=Platform.CONSOLE,
        community_id="local",
        channel_id="a",
        request_id=request_id,
    )

    async def send_then_edit(tx: Transaction) -> None:
        await tx.enqueue(
            [
                Outgoing(
                    kind=NoticeKind.RELAY_POST,
                    platform=Platform.CONSOLE,
                    community_id="local",
                    channel_id="a",
                    request_id=request_id,
                )
            ],
            clock.now(),
        )
        [post] = await tx.due_notices(clock.now(), 10)
        await tx.mark_sent(post, "m1", clock.now())
        await tx.enqueue([update, update, update], clock.now())
        [first] = await tx.due_notices(clock.now(), 10)
        assert first.message_id == "m1"
        await tx.mark_sent(first, None, clock.now())
        assert await tx.due_notices(clock.now(), 10) == []

    await store.run(send_then_edit)


async def test_fifty_concurrent_claims_on_an_x2_request_have_two_winners(store, clock, tmp_path):
    """Fifty volunteers claiming a request that wants two reviewers: exactly two claims win,
    the request is claimed by both, and the stored ranking keys count each claim once."""

    async def ask(tx: Transaction) -> Request:
        riley = await tx.member(member("riley"), clock.now())
        asked = await tx.add_request(
            link="https://example.com/d",
            topics=["python"],
            note="",
            requester=riley,
            origin_channel_id="reviews",
            at=clock.now(),
            reviewers=2,
        )
        for i in range(50):
            volunteer = await tx.member(member(f"v{i}"), clock.now())
            await tx.save_volunteer(volunteer, frozenset({"python"}), None)
        return asked

    asked = await store.run(ask)

    async def claim(name: str, tx: Transaction) -> Request | None:
        actor = await tx.member(member(name), clock.now())
        return await tx.claim(asked.id, actor, clock.now())

    results = await asyncio.gather(
        *(store.run(lambda tx, i=i: claim(f"v{i}", tx)) for i in range(50))
    )
    assert len([r for r in results if r is not None]) == 2
    final = await store.run(lambda tx: tx.request(asked.id))
    assert final is not None
    assert final.status is Status.CLAIMED
    assert len({m.person_id for m in final.claimers}) == 2
    db = tmp_path / "test.db"
    assert _count(db, "SELECT SUM(active_claims) FROM volunteers") == 2
    assert _count(db, "SELECT SUM(active_claims) FROM volunteer_topics") == 2
    assert _count(db, "SELECT COUNT(*) FROM claims WHERE status = 'active'") == 2


async def test_a_new_request_reads_back_as_it_was_returned(store, clock):
    """`add_request` builds its answer without reading the row: it must equal what is stored."""

    async def ask_and_read(tx: Transaction) -> None:
        riley = await tx.member(member("riley"), clock.now())
        added = await tx.add_request(
            link="https://example.com/a",
            topics=("python", "writing"),
            note="the intro",
            requester=riley,
            origin_channel_id="general",
            at=clock.now(),
            local=True,
            reviewers=2,
        )
        assert await tx.request(added.id) == added

    await store.run(ask_and_read)


@pytest.mark.parametrize("seed", range(3))
async def test_due_notices_are_each_channels_oldest_pending_one(store, clock, tmp_path, seed):
    """Random outboxes (channels and DMs, sent, retried into the future, dead, a degraded
    channel): due_notices hands out exactly what its definition says, the oldest pending notice
    of each channel or DM, if due and not parked, in id order."""
    rng = random.Random(seed)
    targets = [f"c{i}" for i in range(6)] + [f"@u{i}" for i in range(6)]
    outgoing = [
        direct(t[1:], str(n)) if t.startswith("@") else channel_text(t, str(n))
        for n, t in enumerate(rng.choice(targets) for _ in range(300))
    ]

    def row(notice_id: int, channel: str = "") -> Notice:
        """Outbox row `notice_id` as the mark_* calls read it (by id; degrading, by channel)."""
        return Notice(
            id=notice_id,
            kind=NoticeKind.CHANNEL_TEXT,
            platform=Platform.CONSOLE,
            community_id="local",
            channel_id=channel,
        )

    async def shuffle(tx: Transaction) -> None:
        await tx.enqueue(outgoing, clock.now())
        for notice_id in range(1, 301):
            head = row(notice_id)
            match rng.random():
                case r if r < 0.3:
                    await tx.mark_sent(head, "m", clock.now())
                case r if r < 0.4:
                    await tx.mark_retry(
                        head, clock.now() + timedelta(minutes=5), "429", maybe_sent=False
                    )
                case r if r < 0.45:
                    await tx.mark_dead(head, "gone", clock.now())
        await tx.degrade_channel(row(1, "c5"), "channel_not_found", clock.now())

    await store.run(shuffle)
    due = await store.run(lambda tx: tx.due_notices(clock.now(), 1000))
    with sqlite3.connect(tmp_path / "test.db") as raw:
        expected = [
            row[0]
            for row in raw.execute(
                "SELECT o.id FROM outbox o WHERE o.id IN (SELECT MIN(id) FROM outbox "
                "WHERE status = 'pending' GROUP BY order_key) AND o.next_attempt_at <= ? "
                "AND o.channel_id IS NOT 'c5' ORDER BY o.id",
                (clock.now().isoformat(timespec="microseconds"),),
            )
        ]
    assert [n.id for n in due] == expected
    assert 0 < len(expected) < 12


async def test_a_unit_that_defers_foreign_keys_does_not_defer_the_next_ones(store, clock):
    """`forget` defers foreign-key checks to the commit. In a group of units committed together,
    a later unit's violation still fails that unit alone, not the whole group."""
    riley = await store.run(lambda tx: tx.member(member("riley"), clock.now()))

    async def dangling(tx: Transaction) -> None:
        await tx.mark_notified([999_999], clock.now(), 999_999)  # no such person or request

    results = await asyncio.gather(  # handed in together: one group
        store.run(lambda tx: tx.forget_person(riley.person_id)),
        store.run(dangling),
        store.run(lambda tx: tx.seen_event("unrelated", clock.now())),
        return_exceptions=True,
    )
    assert results[0] is None
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert results[2] is False
    assert await store.run(lambda tx: tx.seen_event("unrelated", clock.now())) is True


async def test_a_unit_raising_a_base_exception_fails_alone(store, clock):
    """A unit that awaits an already-cancelled future raises CancelledError on the database
    thread: its caller gets an error, the others in its group are committed and answered."""

    async def cancelled(tx: Transaction) -> None:
        await tx.seen_event("cancelled", clock.now())
        gone = asyncio.Future[None](loop=loop)
        gone.cancel()
        await gone

    loop = asyncio.get_running_loop()
    results = await asyncio.wait_for(
        asyncio.gather(
            store.run(cancelled),
            store.run(lambda tx: tx.seen_event("kept", clock.now())),
            return_exceptions=True,
        ),
        5,
    )
    assert isinstance(results[0], RuntimeError)
    assert results[1] is False
    assert await store.run(lambda tx: tx.seen_event("cancelled", clock.now())) is False
    assert await store.run(lambda tx: tx.seen_event("kept", clock.now())) is True


async def test_a_full_disk_fails_the_unit_as_a_store_error_and_keeps_the_others(
    store, clock, tmp_path
):
    """A write SQLite answers "database or disk is full" (here: the file capped at its size)
    fails its unit as a StoreError naming the cause, the one line `reviewrelay` prints. SQLite
    may roll back the whole transaction then, not just the statement: the units in the same
    group go again in a new one, with their own outcomes (a unit's other errors unchanged)."""
    [(pages,)] = await store._db.execute_fetchall("PRAGMA page_count")
    await store._db.execute(f"PRAGMA max_page_count = {pages}")

    runs: list[str] = []  # only a test may: a unit that can run twice changes just the store

    async def fill(tx: Transaction) -> None:
        runs.append("fill")
        for i in range(10_000):  # far more than the free pages hold
            await tx.seen_event(f"filler-{i:05d}-{'x' * 200}", clock.now())

    async def duplicate(tx: Transaction) -> None:
        runs.append("duplicate")
        await tx.member(member("riley"), clock.now())
        raise sqlite3.IntegrityError("not ours to translate")

    async def seen(key: str, tx: Transaction) -> bool:
        runs.append(key)
        return await tx.seen_event(key, clock.now())

    results = await asyncio.gather(
        store.run(functools.partial(seen, "kept")),
        store.run(duplicate),
        store.run(fill),
        store.run(functools.partial(seen, "after")),
        return_exceptions=True,
    )
    kept, refused, full, after = results
    assert isinstance(full, StoreError)
    assert str(full) == "the database failed: database or disk is full"
    assert isinstance(full.__cause__, sqlite3.OperationalError)
    assert type(refused) is sqlite3.IntegrityError  # its own outcome: not run again
    assert kept is False  # its first run went back with the group; its second is the one
    assert after is False
    # The group ran up to the full unit; the ones without an outcome of their own went again, in
    # their order.
    assert runs == ["kept", "duplicate", "fill", "kept", "after"]
    await store._db.execute("PRAGMA max_page_count = 4294967294")
    assert await store.run(lambda tx: tx.seen_event("kept", clock.now())) is True
    assert _count(tmp_path / "test.db", "SELECT COUNT(*) FROM members") == 0  # rolled back
    filler = "filler-00000-" + "x" * 200  # the full unit's first write, rolled back
    assert await store.run(lambda tx: tx.seen_event(filler, clock.now())) is False


_ROOT = Path(__file__).resolve().parents[2]
# Runs in a child process: RLIMIT_FSIZE holds for the whole process.
_COMMIT_REFUSED = """
import asyncio, json, os, resource, signal, sys
from datetime import datetime, UTC
from storage import sqlite

async def main(path):
    sqlite.CHECKPOINT_EVERY = 3600  # the WAL only grows: the next commit writes past its end
    store = await sqlite.SqliteStore.open(path)
    now = datetime.now(UTC)
    await store.run(lambda tx: tx.seen_event("first", now))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, not the process
    wal = os.path.getsize(path + "-wal")
    resource.setrlimit(resource.RLIMIT_FSIZE, (wal, resource.RLIM_INFINITY))

    async def big(tx):
        for i in range(200):
            await tx.seen_event(f"k{i}-" + "x" * 300, now)

    results = await asyncio.gather(
        store.run(lambda tx: tx.seen_event("a", now)), store.run(big),
        store.run(lambda tx: tx.seen_event("b", now)), return_exceptions=True,
    )
    failing = store.failing
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    again = await store.run(lambda tx: tx.seen_event("a", now))
    await store.close()
    print(json.dumps({"errors": [f"{type(r).__name__}: {r}" for r in results],
                      "failing": failing, "again": again}))

asyncio.run(main(sys.argv[1]))
"""


async def test_a_commit_the_disk_refuses_fails_its_group_as_a_store_failure(tmp_path: Path):
    """In WAL mode a full disk mostly shows at COMMIT, when the pages are written (here: the
    file size limit of the process): every unit of the group fails as a StoreFailureError, the
    store says it is failing (/healthz), and nothing of the group stays."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _COMMIT_REFUSED, str(tmp_path / "limited.db"),
        stdout=asyncio.subprocess.PIPE, cwd=_ROOT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0
    found = json.loads(out)
    assert {e.split(":")[0] for e in found["errors"]} == {"StoreFailureError"}
    assert found["failing"].startswith("the database failed: ")
    assert found["again"] is False  # "a" was not kept: the group's commit failed whole


@pytest.mark.parametrize("turns", [1, 3], ids=["before-it-starts", "while-its-group-runs"])
async def test_a_closed_store_refuses_units_and_a_cancelled_committer_releases_its_callers(
    tmp_path: Path, clock, turns: int
):
    """Cancelling the committer (the loop shutting down) cancels the callers waiting on it
    instead of leaving them hanging, and close() still closes the database (its thread ends);
    after close, a unit gets a StoreError."""
    store = await SqliteStore.open(tmp_path / "shutdown.db")
    waiting = asyncio.ensure_future(store.run(lambda tx: tx.seen_event("k", clock.now())))
    for _ in range(turns):  # handed in; the committer is created, then running
        await asyncio.sleep(0)
    assert store._committer is not None
    store._committer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 5)
    with contextlib.suppress(asyncio.CancelledError):
        await store.close()
    # aiosqlite answers close() just before its thread returns: give it that moment.
    thread = store._db._thread  # type: ignore[attr-defined]
    await asyncio.to_thread(thread.join, 5)
    assert not thread.is_alive()
    with pytest.raises(StoreError, match="closed"):
        await store.run(lambda tx: tx.seen_event("late", clock.now()))
