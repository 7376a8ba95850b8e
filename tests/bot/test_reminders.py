"""Daily reminders: time zones and DST, exactly once across restarts and processes, business days,
the digest edited in place, claim nudges with auto-release, expiry and reopening."""

from __future__ import annotations

import asyncio
import itertools
import zoneinfo
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.app import Core, _daily
from bot.dispatcher import Dispatcher, Rules
from bot.model import Community, NoticeKind, Platform
from bot.reminders import ReminderRules, Reminders, business_age, is_due, local_date
from storage.sqlite import SqliteStore
from tests.factories import command, reaction
from tests.fakes.fake_clock import FakeClock

RULES = ReminderRules(
    stale_after=timedelta(hours=24), nudge_after=timedelta(days=3), expire_after=timedelta(days=14)
)


@pytest.fixture(autouse=True)
def _after_the_reminder_time(clock):
    """Start these tests at 10:00 UTC, after the default 09:00 reminder time."""
    clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))


def reminders(store, clock, rules: ReminderRules = RULES) -> Reminders:
    return Reminders(store=store, clock=clock, rules=rules, platforms={Platform.CONSOLE})


async def _set_timezone(store, tz: str, at: str = "09:00") -> None:
    community = Community(
        platform=Platform.CONSOLE,
        community_id="local",
        review_channel_id="reviews",
        timezone=tz,
        reminder_time=at,
    )
    await store.run(lambda tx: tx.save_community(community))


async def _ask(dispatcher, clock, link: str, who: str = "riley") -> None:
    reply = await dispatcher.handle(command(f"{link} #python", who, at=clock.now()))
    assert reply.text.startswith("Request #")


def _digests(sender):
    return [n for n in sender.sent if n.kind is NoticeKind.CHANNEL_TEXT]


def test_due_in_the_communitys_own_time_zone():
    """09:00 in Berlin is 08:00 UTC in winter: due at 08:00 UTC, not at 07:59."""
    assert not is_due("Europe/Berlin", "09:00", datetime(2026, 11, 27, 7, 59, tzinfo=UTC))
    assert is_due("Europe/Berlin", "09:00", datetime(2026, 11, 27, 8, 0, tzinfo=UTC))


def test_a_zone_the_system_lacks_still_resolves():
    """A slim image, or Debian's tzdata-legacy split, can leave a stored zone name (US/Eastern)
    out of the system's zone data: the tzdata package (a dependency) answers instead."""
    zoneinfo.reset_tzpath(to=[])  # no system zone data at all
    zoneinfo.ZoneInfo.clear_cache()
    try:
        assert is_due("US/Eastern", "09:00", datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
        assert not is_due("US/Eastern", "09:00", datetime(2026, 11, 27, 13, 59, tzinfo=UTC))
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


def test_local_date_follows_the_time_zone():
    """Late evening in New York is already the next day in UTC."""
    at = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    assert local_date(at, "America/New_York") == "2026-11-27"
    assert local_date(at, "UTC") == "2026-11-28"


def test_business_age_skips_the_weekend():
    """Friday 17:00 to Monday 09:00 is 16 business hours, not 64."""
    friday = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert business_age(friday, monday, "UTC") == timedelta(hours=16)


async def test_digest_lists_stale_requests_once_a_day(dispatcher, worker, sender, store, clock):
    """One digest per local day lists requests unclaimed for a day; a rerun sends nothing."""
    await _ask(dispatcher, clock, "https://example.com/old")
    clock.advance(hours=20)
    await _ask(dispatcher, clock, "https://example.com/new")
    clock.advance(hours=5)
    await worker.drain()
    sender.sent.clear()
    first = await reminders(store, clock).run()
    again = await reminders(store, clock).run()
    await worker.drain()
    assert [n for _, n in first.digests] == [1]
    assert len(again.skipped) == 1
    [digest] = _digests(sender)
    assert "https://example.com/old" in digest.text
    assert "https://example.com/new" not in digest.text


async def test_nothing_is_posted_when_nothing_is_stale(dispatcher, worker, sender, store, clock):
    """No stale request, no digest message (but the day still counts as done)."""
    clock.advance(hours=2)
    report = await reminders(store, clock).run()
    await worker.drain()
    assert [n for _, n in report.digests] == [0]
    assert sender.sent == []


@pytest.mark.parametrize(("start", "sent"), [("08:59", 0), ("09:01", 1)])
async def test_restart_before_and_after_the_reminder_time(  # noqa: PLR0917 - fixtures
    dispatcher, worker, sender, store, clock, start, sent
):
    """A process started at 08:59 waits for 09:00; one started at 09:01 catches up at once."""
    await _ask(dispatcher, clock, "https://example.com/a")
    hour, minute = map(int, start.split(":"))
    clock.set(datetime(2026, 11, 25, hour, minute, tzinfo=UTC))
    await reminders(store, clock).run()
    await worker.drain()
    assert len(_digests(sender)) == sent
    clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    await reminders(store, clock).run()
    await worker.drain()
    assert len(_digests(sender)) == 1


@pytest.mark.parametrize(
    ("tz", "first_day"),
    [
        ("Europe/Berlin", datetime(2026, 3, 24, tzinfo=UTC)),  # DST starts 2026-03-29
        ("Europe/Berlin", datetime(2026, 10, 20, tzinfo=UTC)),  # DST ends 2026-10-25
        ("America/New_York", datetime(2026, 3, 3, tzinfo=UTC)),  # DST starts 2026-03-08
        ("America/New_York", datetime(2026, 10, 27, tzinfo=UTC)),  # DST ends 2026-11-01
    ],
)
async def test_a_week_across_a_dst_change_has_one_digest_a_day(
    store, worker, sender, tz, first_day
):
    """Ticking every 10 minutes for 9 days across a DST switch gives one digest per local day,
    each at 09:00 local time."""
    clock = FakeClock(first_day)
    dispatcher = Dispatcher(
        store=store, clock=clock, rules=Rules(requests_per_hour=1000), platforms=[Platform.CONSOLE]
    )
    await _set_timezone(store, tz)
    worker._clock = clock  # the worker reads time for retries only; keep it on the same clock
    await _ask(dispatcher, clock, "https://example.com/never-claimed")
    sweeps = reminders(
        store,
        clock,
        ReminderRules(
            stale_after=timedelta(0),
            nudge_after=timedelta(days=99),
            expire_after=timedelta(days=99),
        ),
    )
    local_times = []
    for _ in range(9 * 24 * 6):
        clock.advance(minutes=10)
        report = await sweeps.run()
        local_times += [clock.now() for _, count in report.digests if count]
    seen = [t.astimezone(ZoneInfo(tz)) for t in local_times]
    days = [t.date() for t in seen]
    assert days == sorted(set(days))  # never twice on one local day
    assert days == [days[0] + timedelta(days=i) for i in range(len(days))]  # and never skipped
    assert len(days) >= 9
    assert all((t.hour, t.minute) == (9, 0) for t in seen[1:])


async def test_two_schedulers_on_one_database_send_one_digest(  # noqa: PLR0917 - fixtures
    tmp_path, clock, dispatcher, store, worker, sender
):
    """Two processes racing on one database file record and enqueue the digest once."""
    await _ask(dispatcher, clock, "https://example.com/a")
    clock.advance(days=2)
    other = await SqliteStore.open(tmp_path / "test.db")
    try:
        reports = await asyncio.gather(
            *(reminders(s, clock).run() for s in (store, other, store, other))
        )
    finally:
        await other.close()
    await worker.drain()
    assert sum(1 for r in reports for _, count in r.digests if count) == 1
    assert len(_digests(sender)) == 1


async def test_business_days_keep_a_friday_request_fresh_on_monday(store, worker, sender):
    """Asked Friday 15:00 with a 24 h limit: not stale on Monday 09:00 counting business days."""
    clock = FakeClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    dispatcher = Dispatcher(store=store, clock=clock, rules=Rules(), platforms=[Platform.CONSOLE])
    await _set_timezone(store, "UTC")
    await _ask(dispatcher, clock, "https://example.com/friday")
    clock.set(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    business = ReminderRules(
        stale_after=timedelta(hours=24),
        nudge_after=timedelta(days=9),
        expire_after=timedelta(days=14),
        business_days=True,
    )
    monday = await reminders(store, clock, business).run()
    assert [n for _, n in monday.digests] == [0]
    clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    tuesday = await reminders(store, clock, business).run()
    assert [n for _, n in tuesday.digests] == [1]


async def test_digest_is_edited_in_place_after_a_claim(dispatcher, worker, sender, store, clock):
    """Claiming a request listed in today's digest edits that digest message, not a new one."""
    await _ask(dispatcher, clock, "https://example.com/a")
    await worker.drain()
    clock.advance(days=1, hours=2)
    await reminders(store, clock).run()
    await worker.drain()
    [digest] = _digests(sender)
    await dispatcher.handle(reaction("m1", "eyes", "vera", at=clock.now()))
    await worker.drain()
    [edit] = [n for n in sender.sent if n.kind is NoticeKind.TEXT_UPDATE]
    assert edit.message_id == "m2"  # the digest's own message id (m1 is the relay post)
    assert "claimed by vera" in edit.text
    assert digest.text != edit.text


async def test_nudge_then_second_nudge_then_auto_release(dispatcher, worker, sender, store, clock):
    """A quiet claim gets a nudge after 3 days, another after 6, and is released after 9."""
    await _ask(dispatcher, clock, "https://example.com/a")
    await dispatcher.handle(command("claim 1", "vera", at=clock.now()))
    await worker.drain()
    sender.sent.clear()
    for day in range(1, 10):
        clock.advance(days=1)
        await reminders(store, clock).run()
        await worker.drain()
        nudges = [n for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == "vera"]
        if day in (3, 6):
            assert "Still on it?" in nudges[-1].text
    to_vera = [n.text for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == "vera"]
    to_riley = [n.text for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == "riley"]
    assert sum("Still on it?" in t for t in to_vera) == 2
    assert any("went back to the queue" in t for t in to_vera)
    assert any("is open again" in t for t in to_riley)
    listed = await dispatcher.handle(command("list", "sam", at=clock.now()))
    assert "#1 " in listed.text


async def test_snooze_restarts_the_nudge_clock(dispatcher, worker, sender, store, clock):
    """ "Still on it" (snooze) after the first nudge means no second nudge three days later."""
    await _ask(dispatcher, clock, "https://example.com/a")
    await dispatcher.handle(command("claim 1", "vera", at=clock.now()))
    clock.advance(days=3, hours=1)
    await reminders(store, clock).run()
    clock.advance(hours=1)
    reply = await dispatcher.handle(command("snooze 1", "vera", at=clock.now()))
    assert reply.text.startswith("Noted")
    clock.advance(days=2, hours=23)
    report = await reminders(store, clock).run()
    assert report.nudged == []
    refused = await dispatcher.handle(command("snooze 1", "sam", at=clock.now()))
    assert refused.text == "You do not hold request #1."
    unknown = await dispatcher.handle(command("snooze 99", "sam", at=clock.now()))
    assert unknown.text == "There is no request #99."


async def test_expiry_tells_the_requester_who_can_reopen(dispatcher, worker, sender, store, clock):
    """An open request older than the expiry limit expires; `reopen` puts it back."""
    await _ask(dispatcher, clock, "https://example.com/a")
    clock.advance(days=15)
    report = await reminders(store, clock).run()
    await worker.drain()
    assert report.expired == [1]
    [told] = [n for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == "riley"]
    assert "/review reopen 1" in told.text
    refused = await dispatcher.handle(command("reopen 1", "sam", at=clock.now()))
    assert refused.text == "Only the person who asked (or an admin) can reopen request #1."
    reply = await dispatcher.handle(command("reopen 1", "riley", at=clock.now()))
    assert reply.text == "Request #1 is open again and back in the review channel."
    clock.advance(days=1)
    assert (await reminders(store, clock).run()).expired == []


async def test_dry_run_sends_and_records_nothing(dispatcher, worker, sender, store, clock):
    """A dry run reports the digest it would send, and a real run afterwards still sends it."""
    await _ask(dispatcher, clock, "https://example.com/a")
    await worker.drain()
    clock.advance(days=2)
    dry = await reminders(store, clock).run(dry_run=True)
    await worker.drain()
    assert any(n.kind is NoticeKind.CHANNEL_TEXT for n in dry.notices)
    assert _digests(sender) == []
    await reminders(store, clock).run()
    await worker.drain()
    assert len(_digests(sender)) == 1


async def test_moving_west_after_todays_digest_does_not_post_it_again(
    dispatcher, worker, sender, store, clock
):
    """A community that had today's 09:00 UTC digest and then moves to UTC-11 (where it is
    still yesterday evening, after 09:00) gets its next digest at 09:00 there, and only that."""
    await _ask(dispatcher, clock, "https://example.com/a")
    clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    posted = [clock.now() for _, n in (await reminders(store, clock).run()).digests if n]
    clock.advance(minutes=30)
    reply = await dispatcher.handle(
        command("setup tz=Pacific/Pago_Pago", "boss", admin=True, at=clock.now())
    )
    assert "Pacific/Pago_Pago" in reply.text
    for _ in range(6 * 24):  # a day of ticks every 10 minutes
        clock.advance(minutes=10)
        posted += [clock.now() for _, n in (await reminders(store, clock).run()).digests if n]
    # 09:00 UTC, then 09:00 in Pago Pago (20:00 UTC); nothing in between.
    assert posted == [
        datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 25, 20, 0, tzinfo=UTC),
    ]


async def test_the_second_nudge_comes_three_sweeps_after_the_first(
    dispatcher, worker, sender, store, clock
):
    """The once-a-minute schedule starts each day's sweep at some second after 09:00; a sweep
    a few seconds earlier in the minute than the first nudge's still sends the second one."""
    await _ask(dispatcher, clock, "https://example.com/a")
    await dispatcher.handle(command("claim 1", "vera", at=clock.now()))
    clock.set(datetime(2026, 11, 27, 9, 0, 37, tzinfo=UTC))
    assert (await reminders(store, clock).run()).nudged == [1]
    nudged = []
    for day in (28, 29, 30):
        clock.set(datetime(2026, 11, day, 9, 0, 12, tzinfo=UTC))
        nudged += [(day, i) for i in (await reminders(store, clock).run()).nudged]
    assert nudged == [(30, 1)]


@pytest.mark.parametrize(
    ("at", "first_day"),
    [
        ("00:30", datetime(2026, 3, 24, 12, tzinfo=UTC)),  # Berlin springs forward 2026-03-29
        ("23:30", datetime(2026, 10, 19, 12, tzinfo=UTC)),  # and falls back 2026-10-25
        ("09:00", datetime(2026, 3, 24, 12, tzinfo=UTC)),
    ],
)
async def test_nudges_come_every_third_local_day_across_a_dst_change(store, at, first_day):
    """Ticking every 10 minutes: the nudges and the release of a quiet claim fall three local
    days apart, whatever the reminder time and the DST change between them."""
    clock = FakeClock(first_day)
    dispatcher = Dispatcher(store=store, clock=clock, rules=Rules(), platforms=[Platform.CONSOLE])
    await _ask(dispatcher, clock, "https://example.com/a")
    await dispatcher.handle(command("claim 1", "vera", at=clock.now()))
    berlin = ReminderRules(
        stale_after=timedelta(days=99),
        nudge_after=timedelta(days=3),
        expire_after=timedelta(days=99),
        timezone="Europe/Berlin",
        reminder_time=at,
    )
    sweeps = reminders(store, clock, berlin)
    days = []
    for _ in range(12 * 24 * 6):
        clock.advance(minutes=10)
        report = await sweeps.run()
        if report.nudged or report.released:
            days.append(clock.now().astimezone(ZoneInfo("Europe/Berlin")).date())
    assert len(days) == 3, days
    assert [(b - a).days for a, b in itertools.pairwise(days)] == [3, 3], days


async def _merge(store, keep: str, merge: str) -> None:
    """`merge`'s person joined to `keep`'s, as `link` did before it checked their requests."""

    async def merged(tx) -> None:
        [kept] = (await tx.find_people("console", None, keep)).values()
        [gone] = (await tx.find_people("console", None, merge)).values()
        await tx.merge_persons(keep=kept, merge=gone)

    await store.run(merged)


async def test_a_person_linked_onto_two_slots_of_one_request_stops_no_sweep(
    dispatcher, worker, sender, store, clock
):
    """Two accounts that each took a slot of an x2 request (one finished) and were then linked
    into one person (linking refuses that now; a store may hold it from before): the sweep
    still nudges the others and posts the digest, every day."""
    await _ask(dispatcher, clock, "https://example.com/stale")
    await dispatcher.handle(command("https://example.com/x2 #python x2", "riley", at=clock.now()))
    await dispatcher.handle(command("claim 2", "vera", at=clock.now()))
    await dispatcher.handle(command("claim 2", "vera-on-discord", at=clock.now()))
    await dispatcher.handle(command("done 2", "vera-on-discord", at=clock.now()))
    await _ask(dispatcher, clock, "https://example.com/held")
    await dispatcher.handle(command("claim 3", "sam", at=clock.now()))
    await _merge(store, "vera", "vera-on-discord")
    clock.advance(days=4)
    report = await reminders(store, clock).run()
    assert [n for _, n in report.digests] == [1]
    assert report.nudged == [3]


async def test_business_age_counts_real_hours_across_a_weekday_dst_change(store, worker, sender):
    """Cairo leaves summer time at the end of Thursday 2026-10-29: asked Thursday 11:30 local,
    a request is 24.5 business hours old at Friday's 11:00 digest (not 23.5 on the wall clock)."""
    clock = FakeClock(datetime(2026, 10, 29, 8, 30, tzinfo=UTC))
    dispatcher = Dispatcher(store=store, clock=clock, rules=Rules(), platforms=[Platform.CONSOLE])
    await _set_timezone(store, "Africa/Cairo", "11:00")
    await _ask(dispatcher, clock, "https://example.com/thursday")
    clock.set(datetime(2026, 10, 30, 9, 0, tzinfo=UTC))
    business = ReminderRules(
        stale_after=timedelta(hours=24),
        nudge_after=timedelta(days=9),
        expire_after=timedelta(days=14),
        business_days=True,
    )
    friday = await reminders(store, clock, business).run()
    assert [n for _, n in friday.digests] == [1]


async def test_a_digest_lists_only_requests_posted_in_its_community(
    dispatcher, worker, sender, store, clock
):
    """A community's digest leaves out another's `local` requests, and a share=off community's
    leaves out every other community's requests, as their relay posts do."""
    for name, share in (("other", True), ("quiet", False)):
        community = Community(
            platform=Platform.CONSOLE,
            community_id=name,
            review_channel_id=f"{name}-reviews",
            share=share,
        )
        await store.run(lambda tx, c=community: tx.save_community(c))
    await _ask(dispatcher, clock, "https://example.com/shared")
    await dispatcher.handle(
        command("https://example.com/mine #python local", "riley", at=clock.now())
    )
    await worker.drain()
    posted = {(n.channel_id, n.request.id) for n in sender.sent if n.request}
    clock.advance(days=2)
    report = await reminders(store, clock).run()
    await worker.drain()
    listed = {c.community_id: n for c, n in report.digests}
    assert posted == {("reviews", 1), ("reviews", 2), ("other-reviews", 1)}
    assert listed == {"local": 2, "other": 1, "quiet": 0}
    [other] = [n.text for n in _digests(sender) if n.channel_id == "other-reviews"]
    assert "https://example.com/mine" not in other


async def test_the_schedule_checks_in_every_minute_of_the_day(store, worker, clock):
    """However long the jobs take, the daily loop wakes once in every minute: a minute it
    stepped over was a day without a digest for a community whose reminder time it was."""
    ticks = []

    class SlowReminders(Reminders):
        async def run(self, *, only_when_due=True, dry_run=False):
            ticks.append(clock.now())
            clock.advance(seconds=0.25)  # a sweep and its commit take a moment
            return await super().run(only_when_due=only_when_due, dry_run=dry_run)

    class DayOverError(Exception):
        pass

    async def sleep(seconds: float) -> None:
        if clock.now() >= datetime(2026, 11, 25, tzinfo=UTC):
            raise DayOverError
        clock.advance(seconds=seconds)

    clock.set(datetime(2026, 11, 24, 0, 0, 12, tzinfo=UTC))
    core = Core(
        store=store,
        clock=clock,
        dispatcher=Dispatcher(store=store, clock=clock, rules=Rules(), platforms=[]),
        worker=worker,
        reminders=SlowReminders(store=store, clock=clock, rules=RULES, platforms=[]),
    )
    with pytest.raises(DayOverError):
        await _daily(core, sleep=sleep)
    minutes = {(t.hour, t.minute) for t in ticks if t.day == 24}
    assert len(minutes) == 24 * 60


async def test_expiry_of_a_half_reviewed_x2_request_does_not_say_no_reviewer(
    dispatcher, worker, sender, store, clock
):
    """An x2 request that got one of its two reviews and then expired is not said to have had
    no reviewer; reopened, it waits for the missing review only."""
    await _ask(dispatcher, clock, "https://example.com/a x2")
    for text in ("claim 1", "done 1"):
        await dispatcher.handle(command(text, "vera", at=clock.now()))
    clock.advance(days=15)
    assert (await reminders(store, clock).run()).expired == [1]
    await worker.drain()
    told = [n.text for n in sender.sent if n.kind is NoticeKind.DIRECT and n.user_id == "riley"]
    assert told[-1] == (
        "Request #1 (https://example.com/a) expired after 15 days with 1 of 2 reviews done. "
        "/review reopen 1 puts it back in the queue."
    )
    await dispatcher.handle(command("reopen 1", "riley", at=clock.now()))
    await dispatcher.handle(command("claim 1", "sam", at=clock.now()))
    reply = await dispatcher.handle(command("done 1", "sam", at=clock.now()))
    assert reply.text == "Thank you! Request #1 is marked done."
