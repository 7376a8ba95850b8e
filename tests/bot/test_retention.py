"""Retention: event keys and sent notices are forgotten after KEEP, once a day, in short units; what
a later event still needs (relay posts, keys reconcile keeps meeting, the record) stays."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from bot import retention
from bot.model import NoticeKind, Status
from storage.sqlite import SqliteStore
from tests.factories import channel_text, command, direct, enqueue, reaction

LATER = {"days": retention.KEEP.days + 1}


def _rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "test.db") as raw:
        return raw.execute(sql).fetchall()


async def _seen(store, key: str, at) -> bool:
    return await store.run(lambda tx: tx.seen_event(key, at))


async def test_an_old_request_keeps_its_post_and_record_and_loses_the_rest(  # noqa: PLR0917 - fixtures
    store, clock, dispatcher, worker, sender, tmp_path
):
    """Past KEEP, the ask's event key and the notices already sent are gone; the request, its
    relay post and a notice not yet sent stay, and a claim still edits the post in place."""
    await dispatcher.handle(command("https://example.com/a #python", "riley", at=clock.now()))
    await enqueue(store, clock.now(), direct("sam", "hello"))
    await worker.drain()
    post = next(i for i, n in enumerate(sender.sent) if n.kind is NoticeKind.RELAY_POST)
    message_id = f"m{post + 1}"  # RecordingSender numbers what it sends
    await enqueue(store, clock.now(), channel_text("gone-quiet", "not sent yet"))
    sent_before = _rows(tmp_path, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'")[0][0]

    clock.advance(**LATER)
    gone = await retention.prune(store, clock.now())

    assert _rows(tmp_path, "SELECT kind, status FROM outbox ORDER BY id") == [
        ("relay_post", "sent"),
        ("channel_text", "pending"),
    ]
    assert _rows(tmp_path, "SELECT COUNT(*) FROM inbound_events") == [(0,)]
    assert gone == 1 + sent_before - 1  # the ask's key, every sent notice but the post
    await dispatcher.handle(reaction(message_id, "eyes", "sam", at=clock.now()))
    await worker.drain()
    edits = [n.message_id for n in sender.sent if n.kind is NoticeKind.POST_UPDATE]
    assert edits == [message_id]
    request = await store.run(lambda tx: tx.request(1))
    assert request is not None
    assert request.status is Status.CLAIMED


async def test_a_key_seen_again_starts_its_age_over(store, clock):
    """Reconcile meets the same reactions at each new session: a key it met 80 days after the
    first time outlives KEEP from the first; a key met once does not."""
    start = clock.now()
    assert await _seen(store, "discord:reconcile:again", start) is False
    assert await _seen(store, "slack:event:once", start) is False
    clock.advance(days=80)
    assert await _seen(store, "discord:reconcile:again", clock.now()) is True

    clock.advance(days=20)
    assert await retention.prune(store, clock.now()) == 1

    assert await _seen(store, "discord:reconcile:again", clock.now()) is True
    assert await _seen(store, "slack:event:once", clock.now()) is False  # forgotten: new again


async def test_a_refused_reaction_reconcile_keeps_meeting_is_refused_once(
    store, clock, dispatcher, worker, sender
):
    """The case the age reset is for: the requester's own 👀 on a request kept open past KEEP,
    fed by reconcile at each new session with the same key, is refused (a DM) once, not again
    after retention ran."""
    await dispatcher.handle(command("https://example.com/a #python", "riley", at=clock.now()))
    await worker.drain()
    post = next(i for i, n in enumerate(sender.sent) if n.kind is NoticeKind.RELAY_POST)
    own = dataclasses.replace(
        reaction(f"m{post + 1}", "eyes", "riley", at=clock.now()),
        event_key="discord:reconcile:own-eyes",
    )

    for days in (0, 60, 60):  # sessions at day 0, 60 and 120; retention runs each day
        clock.advance(days=days)
        await retention.prune(store, clock.now())
        await dispatcher.handle(dataclasses.replace(own, received_at=clock.now()))
        await worker.drain()

    refusals = [n for n in sender.sent if n.user_id == "riley" and "own request" in n.text]
    assert len(refusals) == 1


async def test_once_a_day_across_restarts(store, clock, tmp_path):
    """The day's pass is marked in the store: a second check that day (in this process or after a
    restart) forgets nothing; the next day's does."""
    old = clock.now()
    await _seen(store, "first", old)
    clock.advance(**LATER)
    assert await retention.prune(store, clock.now()) == 1

    await _seen(store, "second", old)
    assert await retention.prune(store, clock.now()) == 0
    async with await SqliteStore.open(tmp_path / "test.db") as restarted:
        assert await retention.prune(restarted, clock.now()) == 0
        clock.advance(days=1)
        assert await retention.prune(restarted, clock.now()) == 1


async def test_a_pass_looks_at_every_row_a_few_at_a_time(
    store, clock, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    """Three rows of each table a unit, old and young mixed: every old key goes and every young
    one stays; of the notices only old sent ones go, not a relay post, the queue or a dead
    letter, whatever their age."""
    monkeypatch.setattr(retention, "SCAN", 3)
    old, young = clock.now(), clock.now() + timedelta(days=30)
    for i in range(12):  # a whole number of units: the last one finds nothing
        await _seen(store, f"k{i:02}", young if i % 3 == 1 else old)
    await enqueue(store, old, *(channel_text(f"c{i}", "x") for i in range(10)))
    with sqlite3.connect(tmp_path / "test.db") as raw:
        raw.execute("UPDATE outbox SET status = 'sent', sent_at = created_at WHERE id <= 7")
        raw.execute("UPDATE outbox SET kind = 'relay_post' WHERE id = 3")
        raw.execute("UPDATE outbox SET status = 'dead' WHERE id = 8")
        raw.execute("UPDATE outbox SET status = 'sent', sent_at = ? WHERE id = 10", (young,))

    clock.advance(**LATER)
    assert await retention.prune(store, clock.now()) == 8 + 6

    assert _rows(tmp_path, "SELECT event_key FROM inbound_events ORDER BY event_key") == [
        ("k01",),
        ("k04",),
        ("k07",),
        ("k10",),
    ]
    assert _rows(tmp_path, "SELECT id, status FROM outbox ORDER BY id") == [
        (3, "sent"),
        (8, "dead"),
        (9, "pending"),
        (10, "sent"),
    ]


async def test_nothing_younger_than_keep_goes(store, clock, worker, tmp_path):
    """A day short of KEEP, keys and sent notices all stay."""
    await _seen(store, "recent", clock.now())
    await enqueue(store, clock.now(), channel_text("a", "x"))
    await worker.drain()
    clock.advance(days=retention.KEEP.days - 1)
    assert await retention.prune(store, clock.now()) == 0
    assert _rows(tmp_path, "SELECT status FROM outbox") == [("sent",)]
    assert await _seen(store, "recent", clock.now()) is True
