"""The real Slack adapter, core and SQLite store, behind a real HTTP server, against FakeSlack.

`SlackHarness` signs requests as Slack does and posts them to `/slack/events`; notices are sent
only when a test calls `deliver()` (the outbox drained once), so a test states exactly what
Slack has received by then, and the FakeClock moves only when told.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.http import HttpServer
from adapters.slack import SlackAdapter, build_slack
from bot.app import Core, build_core
from bot.model import Community, InboundEvent, Platform, Reply
from bot.settings import Settings
from storage.sqlite import SqliteStore
from tests.fakes import slack_payloads as p
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import ApiCall, FakeSlack, sign
from tests.net import Answer

SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-test"
REVIEW_CHANNEL = "C0REVIEW"
ALICE, BOB, CAROL = ("U0ALICE", "alice"), ("U0BOB", "bob"), ("U0CAROL", "carol")


def slack_settings(tmp_path: Path, slack: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'relay.db'}",
        "http_host": "127.0.0.1",
        "http_port": 0,
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": slack.api_url,
        "slack_review_channel": REVIEW_CHANNEL,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


@dataclass
class SlackHarness:
    slack: FakeSlack
    adapter: SlackAdapter
    core: Core
    clock: FakeClock
    url: str
    http: aiohttp.ClientSession

    async def post(
        self,
        body: bytes,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        signed = sign(body, secret, timestamp) | (headers or {})
        async with self.http.post(self.url, data=body, headers=signed) as resp:
            return Answer(resp.status, await resp.text())

    async def command(self, text: str, who: tuple[str, str] = ALICE, **kwargs: Any) -> Answer:
        user_id, name = who
        body = p.slash_command_body(text, user_id=user_id, user_name=name, **kwargs)
        return await self.post(body)

    async def react(
        self,
        ts: str,
        who: tuple[str, str],
        reaction: str = "eyes",
        *,
        added: bool = True,
        event_id: str | None = None,
        retry: int | None = None,
        item_user: str = p.BOT_USER_ID,
        event_ts: str | None = None,
    ) -> Answer:
        kind = "reaction_added" if added else "reaction_removed"
        event = p.reaction_event(
            kind,
            user=who[0],
            reaction=reaction,
            channel=REVIEW_CHANNEL,
            ts=ts,
            item_user=item_user,
            event_ts=event_ts,
        )
        body = p.event_callback_body(event, event_id=event_id)
        headers = {} if retry is None else {"X-Slack-Retry-Num": str(retry)}
        if retry is not None:
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self.post(body, headers=headers)

    async def click(self, action: str, request_id: int, who: tuple[str, str], ts: str) -> Answer:
        body = p.block_actions_body(
            f"review_{action}",
            str(request_id),
            user_id=who[0],
            user_name=who[1],
            channel_id=REVIEW_CHANNEL,
            message_ts=ts,
        )
        return await self.post(body)

    async def submit(
        self, view: dict[str, Any], who: tuple[str, str], response: str | None
    ) -> Answer:
        """Submit a form the bot opened (as views.open stored it), as Slack posts it."""
        value = {"type": "plain_text_input", "value": response}
        body = p.view_submission_body(
            view["callback_id"],
            {"response": {"response": value}},
            user_id=who[0],
            user_name=who[1],
            view_id=view["id"],
            private_metadata=view["private_metadata"],
        )
        return await self.post(body)

    def forms(self) -> list[dict[str, Any]]:
        """The views Slack opened for the bot, oldest first."""
        return [c.response["view"] for c in self.calls("views.open") if c.response.get("ok")]

    async def deliver(self) -> None:
        await self.core.worker.drain()

    def calls(self, method: str) -> list[ApiCall]:
        return self.slack.calls(method)

    def posts(self) -> list[ApiCall]:
        """chat.postMessage calls to the review channel that Slack accepted."""
        return [
            c
            for c in self.calls("chat.postMessage")
            if c.args.get("channel") == REVIEW_CHANNEL and c.status == 200
        ]

    def post_ts(self, index: int = 0) -> str:
        return str(self.posts()[index].response["ts"])


class BrokenInbox:
    """An inbox whose store is gone: every event fails."""

    def __init__(self) -> None:
        self.communities: list[Community] = []

    async def handle(self, event: InboundEvent) -> Reply:
        msg = "database is locked"
        raise RuntimeError(msg)

    async def connect_community(self, community: Community) -> None:
        self.communities.append(community)


def now() -> int:
    return int(time.time())


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        for user_id, name in (ALICE, BOB, CAROL):
            fake.add_user(user_id, name=name)  # what users.info says about them
        yield fake


@pytest.fixture
async def harness(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[SlackHarness]:
    settings = slack_settings(tmp_path, slack)
    adapter = build_slack(settings, clock)
    store = await SqliteStore.open(settings.database_path)
    core = build_core(settings, store, {Platform.SLACK: adapter.sender}, clock)
    server = HttpServer(host="127.0.0.1", port=0, checks={}, routes=adapter.routes())
    try:
        await adapter.start(core.dispatcher)
        await server.start()
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.port}/slack/events"
            yield SlackHarness(slack, adapter, core, clock, url, http)
    finally:
        await server.stop()
        await adapter.stop()
        await store.close()
