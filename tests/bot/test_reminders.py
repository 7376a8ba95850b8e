"""The daily digest: stale selection, time zones, and exactly once per local day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.model import Community, NoticeKind, Platform
from bot.reminders import is_due, local_date, run_digests
from tests.factories import command

STALE = timedelta(hours=24)


def _community(tz: str = "UTC", at: str = "09:00") -> Community:
    return Community(
        platform=Platform.CONSOLE,
        community_id="local",
        review_channel_id="reviews",
        timezone=tz,
        reminder_time=at,
    )


def test_due_in_the_communitys_own_time_zone():
    """09:00 in Berlin is 08:00 UTC in winter: due at 08:00 UTC, not at 07:59."""
    berlin = _community("Europe/Berlin")
    assert not is_due(berlin, datetime(2026, 11, 27, 7, 59, tzinfo=UTC))
    assert is_due(berlin, datetime(2026, 11, 27, 8, 0, tzinfo=UTC))


def test_local_date_follows_the_time_zone():
    """Late evening in New York is already the next day in UTC."""
    at = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    assert local_date(at, "America/New_York") == "2026-11-27"
    assert local_date(at, "UTC") == "2026-11-28"


async def test_digest_lists_stale_requests_once_a_day(dispatcher, worker, sender, store, clock):
    """One digest per local day lists the requests unclaimed for a day; a rerun sends nothing."""
    await dispatcher.handle(command("https://example.com/old #python", "riley", at=clock.now()))
    clock.advance(hours=20)
    await dispatcher.handle(command("https://example.com/new", "riley", at=clock.now()))
    clock.advance(hours=5)
    await worker.drain()
    sender.sent.clear()
    first = await run_digests(
        store=store, clock=clock, platforms={Platform.CONSOLE}, stale_after=STALE
    )
    await worker.drain()
    again = await run_digests(
        store=store, clock=clock, platforms={Platform.CONSOLE}, stale_after=STALE
    )
    await worker.drain()
    assert [(r.sent, r.stale) for r in first] == [(True, 1)]
    assert [r.sent for r in again] == [False]
    [digest] = sender.sent
    assert digest.kind is NoticeKind.CHANNEL_TEXT
    assert "https://example.com/old" in digest.text
    assert "https://example.com/new" not in digest.text


async def test_nothing_is_posted_when_nothing_is_stale(dispatcher, worker, sender, store, clock):
    """No stale request, no digest message (but the day still counts as done)."""
    clock.advance(hours=2)
    results = await run_digests(
        store=store, clock=clock, platforms={Platform.CONSOLE}, stale_after=STALE
    )
    await worker.drain()
    assert [(r.sent, r.stale) for r in results] == [(True, 0)]
    assert sender.sent == []


async def test_not_before_the_reminder_time(dispatcher, store, clock):
    """The in-process schedule waits for the community's reminder time."""
    clock.set(datetime(2026, 11, 27, 8, 59, tzinfo=UTC))
    assert (
        await run_digests(store=store, clock=clock, platforms={Platform.CONSOLE}, stale_after=STALE)
        == []
    )
    clock.set(datetime(2026, 11, 27, 9, 1, tzinfo=UTC))
    results = await run_digests(
        store=store, clock=clock, platforms={Platform.CONSOLE}, stale_after=STALE
    )
    assert [r.local_date for r in results] == ["2026-11-27"]
