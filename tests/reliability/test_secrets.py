"""Secrets: a full Slack run at DEBUG leaves no token or signing secret in logs, data or errors.

Three phases share one DEBUG log stream configured by `bot.logs.configure`, as `reviewrelay run`
configures it: the HTTP app through a whole request's life with faults, a revoked token and a
forged request; `bot.app.serve` answering /healthz and /metrics; Socket Mode with the app token.
Then every log line, every database row (iterdump), every ack, error text, metrics page and
every argument the bot sent to Slack is searched for each secret. A second, unredacted handler
counts how often the redactor itself had to step in.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from adapters.slack import build_slack
from bot.app import build_core, serve
from bot.errors import ConfigError
from bot.model import Community, InboundEvent, Platform, Reply
from storage.sqlite import SqliteStore
from tests.adapters.slack.conftest import slack_settings
from tests.fakes import slack_payloads as p
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack, sign
from tests.logcapture import debug_logs
from tests.net import free_port
from tests.reliability.conftest import Figures, Harness, slack_bot

BOT_TOKEN = "xoxb-20261123-4242424242-rEliAbIliTyBoTsEcReT"
APP_TOKEN = "xapp-1-A0APP-20261123-rEliAbIliTyApPsEcReT"
SIGNING_SECRET = "5f0c3a9d1e7b4c2a8f6e0d9c7b5a3e1f"
SECRETS = {"bot token": BOT_TOKEN, "app token": APP_TOKEN, "signing secret": SIGNING_SECRET}
# The distinctive middles too: a cut or re-encoded secret is still a leak.
VOLUNTEERS = (("U0VERA", "vera"), ("U0OTTO", "otto"))
NEEDLES = {**SECRETS, "bot token part": "rEliAbIliTyBoTsEcReT", "app token part": "ApPsEcReT"}


async def _http_phase(bot: Harness, slack: FakeSlack, texts: list[str]) -> None:
    """A request's whole life over HTTP, with faults, refusals, a forgery and a revoked token."""
    texts.extend([(await bot.command("volunteer python", who)).text for who in VOLUNTEERS])
    texts.append(
        (await bot.command("https://example.com/d #python see 2", ("U0RILEY", "riley"))).text
    )
    slack.fail_next("chat.postMessage", status=500)
    await bot.deliver()
    bot.clock.advance(minutes=10)
    await bot.deliver()
    ts = bot.post_ts()
    texts.append((await bot.react(ts, ("U0VERA", "vera"))).text)
    texts.append((await bot.react(ts, ("U0OTTO", "otto"))).text)  # refused: already claimed
    texts.append((await bot.click("done", 1, ("U0VERA", "vera"), ts)).text)
    texts.extend([(await bot.submit(f, VOLUNTEERS[0], "looks good")).text for f in bot.forms()])
    texts.append((await bot.command("setup", ("U0ADMIN", "admin"))).text)
    texts.append((await bot.command("claim 99", ("U0OTTO", "otto"))).text)
    forged = p.slash_command_body("https://example.com/forged", user_id="U0EVIL")
    texts.append((await bot.post(forged, secret="not-the-secret")).text)
    slack.fail_next("*", status=429, retry_after=1)
    await bot.deliver()
    bot.clock.advance(minutes=10)
    await bot.deliver()
    slack.set_token_revoked(True)
    texts.append((await bot.command("https://example.com/e #python", ("U0RILEY", "riley"))).text)
    for _ in range(5):
        await bot.deliver()
        bot.clock.advance(minutes=10)
    slack.set_token_revoked(False)


async def _serve_phase(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, texts: list[str]
) -> None:
    """`bot.app.serve` with the same secrets: a command, /healthz and /metrics."""
    (tmp_path / "serve").mkdir()
    settings = slack_settings(
        tmp_path / "serve",
        slack,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        http_port=free_port(),
    )
    adapter = build_slack(settings, clock)
    started, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, [adapter], clock, started=started, stop=stop))
    base = f"http://127.0.0.1:{settings.http_port}"
    try:
        await asyncio.wait_for(started.wait(), 5)
        body = p.slash_command_body("https://example.com/s #python", user_id="U0SERVE")
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/slack/events", data=body, headers=sign(body, SIGNING_SECRET)
            ) as answer:
                texts.append(await answer.text())
            await slack.wait_for_call("chat.postMessage", count=1)
            for page in ("healthz", "metrics"):
                async with http.get(f"{base}/{page}") as answer:
                    texts.append(await answer.text())
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def _socket_phase(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, texts: list[str]
) -> None:
    """Socket Mode with the app token: a command envelope, acked over the websocket."""
    (tmp_path / "socket").mkdir()
    settings = slack_settings(
        tmp_path / "socket",
        slack,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_signing_secret=None,
    )
    adapter = build_slack(settings, clock)
    store = await SqliteStore.open(settings.database_path)
    core = build_core(settings, store, {Platform.SLACK: adapter.sender}, clock)
    try:
        await adapter.start(core.dispatcher)
        payload = p.slash_command_payload("volunteer python", user_id="U0SOCK", user_name="sock")
        texts.append(str(await slack.push_socket_envelope("slash_commands", payload)))
    finally:
        await adapter.stop()
        await store.close()


def _dump_all(tmp_path: Path) -> str:
    """Every row of every database the run wrote, as SQL."""
    dumps = []
    for path in sorted(tmp_path.rglob("relay.db")):
        with sqlite3.connect(path) as db:
            dumps.append("\n".join(db.iterdump()))
    return "\n".join(dumps)


async def test_no_secret_in_logs_rows_or_errors(
    tmp_path: Path, clock: FakeClock, figures: Figures
) -> None:
    """Bot token, app token and signing secret appear in no log line, row, reply or error."""
    texts: list[str] = []
    with debug_logs(list(SECRETS.values()), json_lines=False) as (stream, raw):
        async with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as slack:
            slack.add_user("U0ADMIN", name="admin", is_admin=True)
            async with slack_bot(
                tmp_path,
                slack,
                clock,
                slack_bot_token=BOT_TOKEN,
                slack_signing_secret=SIGNING_SECRET,
            ) as bot:
                await _http_phase(bot, slack, texts)
                texts.append(str(bot.core.worker.stats))
            await _serve_phase(tmp_path, slack, clock, texts)
            await _socket_phase(tmp_path, slack, clock, texts)
            slack.set_token_revoked(True)
            revoked = build_slack(
                slack_settings(
                    tmp_path, slack, slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET
                ),
                clock,
            )
            with pytest.raises(ConfigError) as refused:
                await revoked.start(_NoInbox())
            texts.append(str(refused.value))
            sent = [str(c.args) + str(c.response) for c in slack.calls()]
            used = {c.token for c in slack.calls()}
        logged = stream.getvalue()

    rows = _dump_all(tmp_path)
    places = {"log": logged, "rows": rows, "replies and errors": "\n".join(texts)}
    places["sent to Slack"] = "\n".join(sent)
    leaks = {
        (place, name) for place, text in places.items() for name, s in NEEDLES.items() if s in text
    }
    assert leaks == set()
    assert {BOT_TOKEN, APP_TOKEN} <= used  # the secrets were really in play (as credentials)
    assert "CRITICAL" in logged  # the revoked token was noticed, loudly, without the token
    assert len(logged.splitlines()) > 100  # DEBUG really was on
    figures["log_lines"] = len(logged.splitlines())
    figures["db_rows_searched"] = rows.count("\n") + 1
    figures["texts_searched"] = len(texts)
    figures["raw_records_with_a_secret"] = sum(
        any(s in line for s in NEEDLES.values()) for line in raw.lines
    )
    figures["leaks"] = 0


class _NoInbox:
    """An inbox for an adapter that must fail before it delivers anything."""

    async def handle(self, event: InboundEvent) -> Reply:
        raise AssertionError("no event expected")

    async def connect_community(self, community: Community) -> None:
        raise AssertionError("the token was revoked: nothing to connect")
