"""A Slack review channel the bot lost (F7), as an operator sees it under `bot.app.serve`:
/healthz lists it (and stays 200), /metrics counts it, `reviewrelay check` says how to fix it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from adapters.slack import build_slack
from bot import texts
from bot.app import check, serve
from tests.adapters.slack.conftest import BOT_TOKEN, REVIEW_CHANNEL, SECRET, slack_settings
from tests.fakes import slack_payloads as p
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack, sign
from tests.net import free_port


async def _until_degraded(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    """/healthz once the worker (running on its own under serve) has marked the channel."""
    async with asyncio.timeout(5):
        while True:
            async with http.get(f"{base}/healthz") as health:
                body = await health.json()
                if body.get("degraded_channels"):
                    return health.status, body
            await asyncio.sleep(0.02)


async def test_healthz_metrics_and_check_show_a_lost_channel(tmp_path: Path, clock: FakeClock):
    """Slack says channel_not_found: /healthz is 200 and lists the channel, the gauge reads 1,
    and `check` fails that row with the fix."""
    async with FakeSlack(bot_token=BOT_TOKEN, strict=True) as slack:  # no review channel
        slack.add_user("U0ALICE", name="alice")
        settings = slack_settings(tmp_path, slack, http_port=free_port())
        started, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            serve(settings, [build_slack(settings, clock)], clock, started=started, stop=stop)
        )
        base = f"http://127.0.0.1:{settings.http_port}"
        try:
            await asyncio.wait_for(started.wait(), 5)
            body = p.slash_command_body("https://example.com/d #go", user_id="U0ALICE")
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{base}/slack/events", data=body, headers=sign(body, SECRET)
                ) as answer:
                    assert answer.status == 200
                status, health = await _until_degraded(http, base)
                async with http.get(f"{base}/metrics") as scraped:
                    metrics = await scraped.text()
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
    rows = await check(settings, offline=True)

    assert status == 200
    assert health["status"] == "ok"
    [lost] = health["degraded_channels"]
    assert (lost["platform"], lost["channel"], lost["parked"]) == ("slack", REVIEW_CHANNEL, 0)
    assert lost["reason"] == "slack chat.postMessage: channel_not_found (HTTP 200)"
    assert 'reviewrelay_degraded_channels{platform="slack"} 1.0' in metrics
    [row] = [r for r in rows if REVIEW_CHANNEL in r.name]
    assert not row.ok
    assert "channel_not_found" in row.detail
    assert row.fix == texts.DEGRADED_FIX
