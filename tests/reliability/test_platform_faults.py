"""Platform faults: Slack failing a share of calls, a 429 storm, a revoked token, a lost channel.

The delivery worker is driven round by round (`run_once`) on a FakeClock, so minutes of backoff
take no time. Before each round the test arms FakeSlack (`fail_next`, its public API) with exactly
one entry per call the round will make, chosen at random: a fault, or a harmless 1 µs delay. Each
call then meets the fate drawn for it, however the round's concurrent calls interleave.

The same faults on Discord (5xx, timeouts, resets, 429 storms global and per route, 401 with
Slack carrying on) are in test_discord_faults.py.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.delivery import MAX_ATTEMPTS, UNAUTHORIZED_LIMIT, DeliveryWorker
from bot.model import NoticeKind, Platform
from tests.adapters.slack.conftest import REVIEW_CHANNEL, SlackHarness
from tests.conftest import RecordingSender
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack
from tests.reliability.conftest import (
    CONSOLE,
    OUTGOING,
    POST_ID,
    Figures,
    Harness,
    db_path,
    due_calls,
    posts_by_request,
    query,
    slack_bot,
    worker_rounds,
)

FAULT_SHARE = 0.2
CLIENT_TIMEOUT = 0.25  # seconds; a "timeout" fault answers after TIMEOUT_DELAY
TIMEOUT_DELAY = 0.5
TIMEOUT_SHARE = 0.3  # of the faults: the rest are 500, 502 or 503
_EDITS = (NoticeKind.POST_UPDATE, NoticeKind.TEXT_UPDATE)


async def _ask_many(bot: SlackHarness, count: int, *, topic: str = "python") -> None:
    """`count` requests from `count` people, sent 50 at a time."""
    for first in range(0, count, 50):
        answers = await asyncio.gather(
            *(
                bot.command(f"https://example.com/d{i} #{topic}", (f"U0REQ{i:04d}", f"req{i}"))
                for i in range(first, min(count, first + 50))
            )
        )
        assert all(a.status == 200 and "is open" in a.json()["text"] for a in answers)


async def _claim(bot: SlackHarness, request_ids: range) -> None:
    answers = await asyncio.gather(
        *(bot.command(f"claim {i}", (f"U0CLM{i:04d}", f"claimer{i}")) for i in request_ids)
    )
    assert all(a.json()["text"].startswith("You claimed") for a in answers)


def _outbox(tmp_path: Path) -> Counter[str]:
    return Counter(status for (status,) in query(db_path(tmp_path), "SELECT status FROM outbox"))


# --- 20% of calls failing --------------------------------------------------------------------


@asynccontextmanager
async def _bounded_calls(bot: Harness) -> AsyncIterator[Harness]:
    """Give every Web API call the CLIENT_TIMEOUT deadline (see the xfail on timeouts below)."""
    client = bot.adapter.app.client
    shared = client.session
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)) as own:
        client.session = own
        try:
            yield bot
        finally:
            client.session = shared


async def test_a_hanging_slack_call_is_abandoned_after_the_client_timeout(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock
) -> None:
    """A post Slack answers only after 1 s fails as a timeout when the client timeout is 0.2 s."""
    async with slack_bot(tmp_path, slack, clock) as bot:
        bot.adapter.app.client.timeout = CLIENT_TIMEOUT  # type: ignore[assignment]
        await bot.command("https://example.com/slow #python", ("U0REQ", "req"))
        slack.fail_next("chat.postMessage", delay=1.0)
        started = time.perf_counter()
        await bot.core.worker.run_once()
        elapsed = time.perf_counter() - started
        await asyncio.sleep(1.0)  # let the fake finish the late answer

    assert query(db_path(tmp_path), "SELECT status, last_error FROM outbox") == [
        ("pending", "slack chat.postMessage: TimeoutError")
    ]
    assert elapsed < 0.8


async def test_a_fifth_of_calls_failing_delivers_everything_once(  # noqa: PLR0917 - fixtures
    tmp_path: Path,
    slack: FakeSlack,
    clock: FakeClock,
    rng: random.Random,
    figures: Figures,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With 20% of calls answering 5xx or timing out, all 300 requests' notices arrive, once.

    Slack does the work of a timed-out call after the client gave up; the rounds let those late
    answers land before each clock jump (`settle`), as they would within the seconds it skips.
    """
    caplog.set_level(logging.INFO, logger="bot.delivery")
    drawn: Counter[str] = Counter()

    def arm(calls: int) -> None:
        for _ in range(calls):
            roll = rng.random()
            if roll < FAULT_SHARE * (1 - TIMEOUT_SHARE):
                status = rng.choice([500, 502, 503])
                slack.fail_next("*", status=status)
                drawn[f"http_{status}"] += 1
            elif roll < FAULT_SHARE:
                slack.fail_next("*", delay=TIMEOUT_DELAY)  # answered, but after we gave up
                drawn["timeout"] += 1
            else:
                slack.fail_next("*", delay=1e-6)
                drawn["ok"] += 1

    async with (
        slack_bot(tmp_path, slack, clock, requests_per_hour=1_000) as bot,
        _bounded_calls(bot) as bot,
    ):
        for volunteer in ("U0VOL1", "U0VOL2"):
            await bot.command("volunteer python", (volunteer, volunteer.lower()))
        await _ask_many(bot, 300)
        await _claim(bot, range(1, 101))
        started = clock.now()
        rounds = await worker_rounds(
            bot.clock, db_path(tmp_path), bot.core.worker, arm, settle=slack.settled
        )
        await asyncio.sleep(TIMEOUT_DELAY + 0.1)  # let the late answers land in the fake
        span = clock.now() - started

    outbox = _outbox(tmp_path)
    assert outbox == {"sent": outbox.total()}  # nothing pending, nothing dead
    posts = posts_by_request(slack, REVIEW_CHANNEL)
    assert sorted(posts) == list(range(1, 301))
    dms = Counter(
        (c.args["channel"], c.args["text"])
        for c in slack.calls("chat.postMessage")
        if c.status == 200 and c.args["channel"].startswith("U0REQ")
    )
    assert len(dms) == 100  # one "claimed your request" DM per claim ...
    # ... and nothing twice: a call the client gave up on was looked for before its resend (it
    # went through: Slack did the work), the drawn ones and any a busy machine made slow itself.
    assert set(posts.values()) == {1}
    assert set(dms.values()) == {1}
    timeouts = caplog.text.count("(slack chat.postMessage: TimeoutError)")
    found = caplog.text.count("on slack already (its answer was lost); not sending it again")
    assert found >= timeouts > 0
    figures["requests"] = 300
    figures["calls"] = len([c for c in slack.calls() if c.method in OUTGOING])
    figures["faults"] = dict(drawn)
    figures["rounds"] = rounds
    figures["fake_minutes_to_drain"] = span.total_seconds() / 60
    figures["post_timeouts_logged"] = timeouts
    figures["found_not_resent"] = found
    figures["duplicates"] = 0


# --- a 429 storm -------------------------------------------------------------------------------

TEN_MINUTES = timedelta(minutes=10)  # the window Discord counts invalid answers in
STEP = timedelta(seconds=1)


async def _storm(
    bot: SlackHarness, path: Path, slack: FakeSlack, length: timedelta, retry_after: int
) -> list[tuple[float, str]]:
    """Answer every call with 429 for `length` of fake time; returns (when, channel) per call."""
    seen, timeline = len(slack.calls()), []
    start = bot.clock.now()

    def arm(calls: int) -> None:
        if calls:
            slack.fail_next("*", status=429, retry_after=retry_after, times=calls)

    while bot.clock.now() < start + length:
        await worker_rounds(
            bot.clock,
            path,
            bot.core.worker,
            arm,
            until=bot.clock.now() + STEP,
            step=STEP,
            max_rounds=10,
        )
        at = (bot.clock.now() - start).total_seconds()
        timeline += [(at, c.args["channel"]) for c in slack.calls()[seen:] if c.status == 429]
        seen = len(slack.calls())
    return timeline


async def _storm_backlog(bot: SlackHarness) -> None:
    """30 posts waiting in the review channel, 10 claims: 10 post edits and 10 requester DMs."""
    await _ask_many(bot, 30, topic="ops")
    await _claim(bot, range(1, 11))


async def test_429_storm_is_waited_out_then_the_backlog_drains(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, figures: Figures
) -> None:
    """In a 10-minute 429 storm each queue waits Retry-After between calls; then all arrives."""
    retry_after = 60  # long enough that no notice runs out of attempts in 10 minutes (see F3)
    async with slack_bot(tmp_path, slack, clock, requests_per_hour=1_000) as bot:
        await _storm_backlog(bot)
        timeline = await _storm(bot, db_path(tmp_path), slack, TEN_MINUTES, retry_after)
        rounds = await worker_rounds(bot.clock, db_path(tmp_path), bot.core.worker, lambda _: None)

    by_queue: dict[str, list[float]] = {}
    for at, channel in timeline:
        by_queue.setdefault(channel, []).append(at)
    gaps = [b - a for times in by_queue.values() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= retry_after  # Retry-After honoured on every queue
    assert _outbox(tmp_path)["pending"] == 0
    assert _outbox(tmp_path)["dead"] == 0
    assert sorted(posts_by_request(slack, REVIEW_CHANNEL)) == list(range(1, 31))
    figures["retry_after_s"] = retry_after
    figures["queues"] = len(by_queue)
    figures["invalid_answers_in_10_min"] = len(timeline)
    figures["per_queue_in_10_min"] = len(timeline) / len(by_queue)
    figures["rounds_to_drain_after"] = rounds


async def test_429_storm_costs_under_100_invalid_answers_per_10_minutes(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, figures: Figures
) -> None:
    """A 10-minute storm at Retry-After 10 over 11 queues draws fewer than 100 429s."""
    async with slack_bot(tmp_path, slack, clock, requests_per_hour=1_000) as bot:
        await _storm_backlog(bot)
        timeline = await _storm(bot, db_path(tmp_path), slack, TEN_MINUTES, retry_after=10)
    figures["invalid_answers_in_10_min"] = len(timeline)
    figures["dead_letters"] = _outbox(tmp_path)["dead"]

    assert len(timeline) < 100


async def test_429_storm_longer_than_the_attempt_budget_loses_nothing(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock
) -> None:
    """A storm lasting MAX_ATTEMPTS + 3 Retry-After periods still ends with nothing dead."""
    retry_after = 10
    length = timedelta(seconds=(MAX_ATTEMPTS + 3) * retry_after)
    async with slack_bot(tmp_path, slack, clock, requests_per_hour=1_000) as bot:
        await _storm_backlog(bot)
        await _storm(bot, db_path(tmp_path), slack, length, retry_after)
        await worker_rounds(bot.clock, db_path(tmp_path), bot.core.worker, lambda _: None)

    assert _outbox(tmp_path)["dead"] == 0


# --- a revoked token ---------------------------------------------------------------------------


async def test_revoked_token_stops_slack_calls_and_the_other_platform_carries_on(
    tmp_path: Path,
    slack: FakeSlack,
    clock: FakeClock,
    figures: Figures,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a few 401s Slack is not called again (logged CRITICAL); console delivery goes on."""
    # With FakeDiscord as the platform that carries on (and the other way round):
    # test_discord_faults.py::test_revoked_token_stops_that_platform_and_the_other_carries_on.
    caplog.set_level(logging.INFO)
    console = RecordingSender()
    async with slack_bot(
        tmp_path, slack, clock, senders={Platform.CONSOLE: console}, communities=[CONSOLE]
    ) as bot:
        await _ask_many(bot, 5)
        await bot.deliver()
        slack.set_token_revoked(True)
        before = len(slack.calls())
        await _ask_many_more(bot, range(5, 15))
        await _claim(bot, range(1, 4))
        for _ in range(20):  # hours of retries, in fake time
            await bot.core.worker.drain()
            clock.advance(minutes=15)
        after = [c for c in slack.calls()[before:] if c.method in OUTGOING]
        pending_slack = query(
            db_path(tmp_path),
            "SELECT COUNT(*) FROM outbox WHERE platform = 'slack' AND status = 'pending'",
        )[0][0]
        # The token is fixed and the bot restarted: what waited is delivered.
        slack.set_token_revoked(False)
        restarted = DeliveryWorker(
            store=bot.core.store, clock=clock, senders={Platform.SLACK: bot.adapter.sender}
        )
        await restarted.drain()

    assert bot.core.worker.disabled(Platform.SLACK)
    assert UNAUTHORIZED_LIMIT <= len(after) <= UNAUTHORIZED_LIMIT + 3  # one round's queues at most
    assert all(c.response.get("error") == "token_revoked" for c in after)
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) >= 1
    assert "slack rejects our token" in critical[0].getMessage()
    posted_on_console = {
        n.request.id for n in console.sent if n.kind is NoticeKind.RELAY_POST and n.request
    }
    assert posted_on_console == set(range(1, 16))
    assert pending_slack > 0
    assert sorted(posts_by_request(slack, REVIEW_CHANNEL)) == list(range(1, 16))
    figures["slack_calls_after_revocation"] = len(after)
    figures["unauthorized_limit"] = UNAUTHORIZED_LIMIT
    figures["critical_lines"] = len(critical)
    figures["slack_notices_held"] = pending_slack
    figures["console_posts"] = len(posted_on_console)


async def _ask_many_more(bot: SlackHarness, indexes: range) -> None:
    answers = await asyncio.gather(
        *(
            bot.command(f"https://example.com/d{i} #python", (f"U0REQ{i:04d}", f"req{i}"))
            for i in indexes
        )
    )
    assert all(a.status == 200 and "is open" in a.json()["text"] for a in answers)


# --- a channel the bot lost --------------------------------------------------------------------


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived"])
async def test_permanent_channel_error_dead_letters_that_notice_only(
    tmp_path: Path,
    slack: FakeSlack,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    error: str,
) -> None:
    """A post refused for good is dead-lettered and logged; DMs and the other platform go on."""
    caplog.set_level(logging.WARNING)
    console = RecordingSender()
    async with slack_bot(
        tmp_path, slack, clock, senders={Platform.CONSOLE: console}, communities=[CONSOLE]
    ) as bot:
        await bot.command("https://example.com/lost #python", ("U0REQ", "req"))

        assert await due_calls(bot.core.worker) == 1  # only the Slack relay post
        slack.fail_next("chat.postMessage", error=error)
        await bot.core.worker.run_once()
        await bot.command("claim 1", ("U0CLM", "claimer"))
        await bot.deliver()

    assert query(
        db_path(tmp_path),
        "SELECT platform, status, last_error FROM outbox WHERE kind = 'relay_post' "
        "ORDER BY platform",
    ) == [("console", "sent", ""), ("slack", "dead", f"slack chat.postMessage: {error} (HTTP 200)")]
    assert f"dead-lettered: slack chat.postMessage: {error}" in caplog.text
    assert bot.core.worker.stats[Platform.SLACK, "dead"] == 1
    assert [n.kind for n in console.sent] == [NoticeKind.RELAY_POST, NoticeKind.POST_UPDATE]
    dms = [c for c in slack.calls("chat.postMessage") if c.args["channel"] == "U0REQ"]
    assert [c.status for c in dms] == [200]  # the requester still hears of the claim
    assert slack.calls("chat.update") == []  # no edit of a post that never was


async def test_a_lost_channel_is_marked_degraded(
    tmp_path: Path, clock: FakeClock, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    """After channel_not_found the bot stops posting to that channel until it is set up again;
    then every request held meanwhile is posted, in order."""
    caplog.set_level(logging.WARNING)
    async with (
        FakeSlack(strict=True) as strict_slack,  # the review channel does not exist
        slack_bot(tmp_path, strict_slack, clock, requests_per_hour=1_000) as bot,
    ):
        await _ask_many(bot, 3)
        await bot.deliver()
        tried = [
            c for c in strict_slack.calls("chat.postMessage") if c.args["channel"] == REVIEW_CHANNEL
        ]
        figures["posts_tried_in_lost_channel"] = len(tried)
        degraded = await bot.core.store.run(lambda tx: tx.degraded_channels())

        strict_slack.add_channel(REVIEW_CHANNEL)  # the bot is let back in
        strict_slack.add_user("U0ADMIN", name="admin", is_admin=True)
        setup = await bot.command("setup", ("U0ADMIN", "admin"), channel_id=REVIEW_CHANNEL)
        await bot.deliver()
        after = await bot.core.store.run(lambda tx: tx.degraded_channels())

    assert len(tried) == 1
    assert [(d.platform, d.channel_id, d.parked) for d in degraded] == [
        (Platform.SLACK, REVIEW_CHANNEL, 2)
    ]
    assert degraded[0].reason == "slack chat.postMessage: channel_not_found (HTTP 200)"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"slack channel {REVIEW_CHANNEL}" in errors[0]
    assert "3 held notices go out now" in setup.json()["text"]
    assert after == []
    posted = [
        int(m.group(1))
        for c in strict_slack.calls("chat.postMessage")
        if c.response.get("ok") and (m := POST_ID.match(str(c.args.get("text", ""))))
    ]
    assert posted == [1, 2, 3]
    figures["posts_held_then_posted"] = len(posted)
