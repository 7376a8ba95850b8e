"""Abuse: one person flooding `/review` gets the hourly quota, and nobody else waits longer for it.

Latency is measured through the real Slack app over HTTP on 127.0.0.1 (sign, bolt, core, SQLite,
ack). The bound asserted is generous (Slack's own limit is 3 s per ack); the figures are reported.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

from bot import texts
from tests.adapters.slack.conftest import SlackHarness
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack
from tests.reliability.conftest import Figures, db_path, percentile, query, slack_bot

FLOOD = 100
QUOTA = 10  # REQUESTS_PER_HOUR's default
ABUSER = ("U0FLOOD", "flood")
OTHERS = 40


async def _ack(bot: SlackHarness, text: str, who: tuple[str, str]) -> tuple[str, float]:
    started = time.perf_counter()
    answer = await bot.command(text, who)
    elapsed = time.perf_counter() - started
    assert answer.status == 200
    return str(answer.json()["text"]), elapsed


async def _others(bot: SlackHarness, tag: str) -> list[float]:
    """Ack latency of asks by OTHERS different people, one after another."""
    latencies = []
    for i in range(OTHERS):
        reply, elapsed = await _ack(
            bot, f"https://example.com/{tag}{i} #python", (f"U0{tag}{i}", tag)
        )
        assert reply.startswith("Request #"), reply
        latencies.append(elapsed)
    return latencies


async def test_a_flood_of_asks_meets_the_hourly_quota(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, figures: Figures
) -> None:
    """100 asks in a minute from one person: the quota opens, the rest hear when to try again."""
    first = clock.now()
    replies = []
    async with slack_bot(tmp_path, slack, clock, requests_per_hour=QUOTA) as bot:
        for i in range(FLOOD):
            reply, _ = await _ack(bot, f"https://example.com/flood{i} #python", ABUSER)
            replies.append(reply)
            clock.advance(milliseconds=600)

    opened = [r for r in replies if r.startswith("Request #")]
    assert len(opened) == QUOTA
    assert replies[:QUOTA] == opened
    limited = texts.RATE_LIMITED.format(limit=QUOTA, at=first + timedelta(hours=1))
    assert replies[QUOTA:] == [limited] * (FLOOD - QUOTA)
    assert "try again at 09:00 UTC" in limited
    assert query(db_path(tmp_path), "SELECT COUNT(*) FROM requests") == [(QUOTA,)]
    figures["opened"] = len(opened)
    figures["told_when"] = FLOOD - QUOTA


async def test_a_flood_does_not_slow_down_other_people(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, figures: Figures
) -> None:
    """While 100 asks from one person arrive at once, other people's acks stay well inside 3 s."""
    async with slack_bot(tmp_path, slack, clock, requests_per_hour=QUOTA) as bot:
        await _others(bot, "warm")  # first requests pay for imports and caches
        alone = await _others(bot, "calm")
        flood = asyncio.gather(
            *(bot.command(f"https://example.com/f{i} #python", ABUSER) for i in range(FLOOD))
        )
        during = await _others(bot, "busy")
        answers = await flood

    assert all(a.status == 200 for a in answers)
    assert sum(a.json()["text"].startswith("Request #") for a in answers) == QUOTA
    p50_alone, p50_during = percentile(alone, 0.5), percentile(during, 0.5)
    figures["p50_alone_ms"] = 1000 * p50_alone
    figures["p50_during_flood_ms"] = 1000 * p50_during
    figures["p95_during_flood_ms"] = 1000 * percentile(during, 0.95)
    figures["max_during_flood_ms"] = 1000 * max(during)
    assert p50_during < 1.0  # generous: Slack allows 3 s
    assert max(during) < 3.0
