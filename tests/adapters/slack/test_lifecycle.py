"""Starting, serving, failing and stopping: the adapter inside `bot.app.serve` and on its own."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from adapters.http import HttpServer
from adapters.slack import build_slack
from bot import retention
from bot.app import serve
from bot.errors import ConfigError
from storage.sqlite import SqliteStore
from tests.adapters.slack.conftest import BOB, SECRET, BrokenInbox, slack_settings
from tests.fakes import slack_payloads as p
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack, sign
from tests.net import free_port


async def test_serve_runs_slack_over_http(tmp_path: Path, slack: FakeSlack, clock: FakeClock):
    """Under serve(): the route answers, /healthz reports Slack connected, the worker posts, the
    day's retention pass forgets an event key older than it keeps; start-up's objects stay out of
    full garbage collections while it serves, and only then."""
    settings = slack_settings(tmp_path, slack, http_port=free_port())
    long_ago = clock.now() - retention.KEEP - timedelta(days=1)
    async with await SqliteStore.open(settings.database_path) as store:
        await store.run(lambda tx: tx.seen_event("slack:event:Ev0LONGAGO", long_ago))
    adapter = build_slack(settings, clock)
    started, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, [adapter], clock, started=started, stop=stop))
    base = f"http://127.0.0.1:{settings.http_port}"
    try:
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(0)  # serve goes on from `started` to its wait
        frozen = gc.get_freeze_count()
        body = p.slash_command_body(
            "https://example.com/d #go", user_id="U0ALICE", trigger_id="1.2.serve"
        )
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as health:
                checks = (await health.json())["checks"]
            async with http.post(
                f"{base}/slack/events", data=body, headers=sign(body, SECRET)
            ) as r:
                answer = await r.json()
            [post] = await slack.wait_for_call("chat.postMessage")
            async with http.get(f"{base}/metrics") as scraped:
                metrics = await scraped.text()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)

    assert checks == {"store": True, "outbox": True, "slack": True}
    assert frozen > 10_000
    assert gc.get_freeze_count() == 0
    assert answer["text"].startswith("Request #1 is open")
    assert post.args["channel"] == settings.slack_review_channel
    assert not adapter.connected
    assert 'reviewrelay_requests{platform="slack",status="open"} 1.0' in metrics
    assert 'reviewrelay_handler_seconds_count{event="CommandReceived",platform="slack"} 1.0' in (
        metrics
    )
    assert 'reviewrelay_deliveries{platform="slack",result="sent"} 1.0' in metrics
    assert _event_keys(settings.database_path) == ["slack:command:1.2.serve"]


async def test_a_failing_reminder_sweep_does_not_hold_up_retention(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, caplog: pytest.LogCaptureFixture
):
    """A community whose stored time zone this machine no longer knows (tzdata renames zones)
    fails every reminder sweep: logged, and the day's retention pass still runs."""
    settings = slack_settings(tmp_path, slack, http_port=free_port())
    long_ago = clock.now() - retention.KEEP - timedelta(days=1)
    async with await SqliteStore.open(settings.database_path) as store:
        await store.run(lambda tx: tx.seen_event("slack:event:Ev0LONGAGO", long_ago))
    with sqlite3.connect(settings.database_path) as raw:
        raw.execute(
            "INSERT INTO communities (platform, community_id, name, review_channel_id, timezone, "
            "reminder_time) VALUES ('slack', 'T0GONE', 'gone', 'C0GONE', 'Atlantis/Capital', "
            "'09:00')"
        )
    started, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve(settings, [build_slack(settings, clock)], clock, started=started, stop=stop)
    )
    try:
        await asyncio.wait_for(started.wait(), 5)
        async with asyncio.timeout(5):
            while _event_keys(settings.database_path):  # noqa: ASYNC110 - the store has no event
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)

    assert "reminders failed; trying again in 60s" in caplog.text
    assert "Atlantis/Capital" in caplog.text


def _event_keys(path: Path) -> list[str]:
    with sqlite3.connect(path) as raw:
        return [k for (k,) in raw.execute("SELECT event_key FROM inbound_events")]


async def test_handler_failures_apologise_or_ask_for_a_retry(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, caplog: pytest.LogCaptureFixture
):
    """A failing command acks a one-line apology; a failing event or click answers 500."""
    adapter = build_slack(slack_settings(tmp_path, slack), clock)
    inbox = BrokenInbox()
    server = HttpServer(host="127.0.0.1", port=0, checks={}, routes=adapter.routes())
    command = p.slash_command_body("volunteer go", trigger_id="1.2.broken")
    event = p.event_callback_body(
        p.reaction_event(ts="1700000000.000100", user=BOB[0]), event_id="Ev0BROKEN"
    )
    click = p.block_actions_body("review_claim", "1", message_ts="1700000000.000100")
    answers = []
    try:
        await adapter.start(inbox)
        await server.start()
        url = f"http://127.0.0.1:{server.port}/slack/events"
        async with aiohttp.ClientSession() as http:
            for body in (command, event, click):
                async with http.post(url, data=body, headers=sign(body, SECRET)) as resp:
                    answers.append((resp.status, await resp.text()))
    finally:
        await server.stop()
        await adapter.stop()

    assert answers[0][0] == 200
    assert "Sorry, something went wrong" in answers[0][1]
    assert "database is locked" not in answers[0][1]
    assert [a[0] for a in answers[1:]] == [500, 500]
    logged = caplog.text
    assert "slack:command:1.2.broken" in logged
    assert "slack:event:Ev0BROKEN" in logged
    assert "slack:action:" in logged
    assert [(c.community_id, c.name, c.review_channel_id) for c in inbox.communities] == [
        (p.TEAM_ID, "Fake Team", "C0REVIEW")
    ]


async def test_rejected_token_at_start_is_a_config_error(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock
):
    """A revoked bot token stops the bot with one line naming SLACK_BOT_TOKEN."""
    slack.set_token_revoked(True)
    adapter = build_slack(slack_settings(tmp_path, slack), clock)

    with pytest.raises(ConfigError, match=r"SLACK_BOT_TOKEN: .*token_revoked"):
        await adapter.start(BrokenInbox())
    assert not adapter.connected


@pytest.mark.parametrize("secret", [None, ""])
async def test_http_mode_without_signing_secret_is_refused(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, secret: str | None
):
    """Without a signing secret, HTTP mode could not tell Slack from a forger: refuse to build."""
    settings = slack_settings(tmp_path, slack, slack_signing_secret=secret)

    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        build_slack(settings, clock)


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
