"""Both platforms at once: one real `bot.app.serve` running the Slack and the Discord adapter
against FakeSlack and FakeDiscord, on a SqliteStore file in tmp_path.

`BothPlatforms` acts as people would: signed Slack slash commands, events and button clicks are
posted to the bot's own HTTP server; Discord slash commands, reactions and button clicks arrive
through the fake's gateway. Tests wait on what the fakes record, or on `settle()`, never on a
timer. `serving()` runs one `serve` and stops it cleanly, so a test can start a second one on the
same database (a restart). The clock is a FakeClock: a retry comes due only when a test advances
it.

`CoreProbe` only watches: `serve` builds its Core through `bot.app.build_core`, which the probe
wraps to see each inbound event handled and each store commit, so `settle()` can tell when the
outbox has nothing left that is due (and can wake the worker after a test moves the clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import discord.gateway
import discord.http
import pytest

from adapters.discord import DiscordAdapter
from adapters.slack import build_slack
from bot import app
from bot.app import Core, serve
from bot.model import InboundEvent, Reply
from bot.ports import Sender
from bot.settings import Settings
from storage.base import Transaction
from tests.adapters.discord.conftest import FAST_READY, FastReviewClient
from tests.fakes import slack_payloads as p
from tests.fakes.discord_payloads import JSON
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_discord import (
    FakeDiscord,
    FakeGuild,
    InteractionCallback,
    RecordedRequest,
)
from tests.fakes.fake_slack import ApiCall, FakeSlack, sign
from tests.net import Answer, free_port

SECRET = "scenario-signing-secret"
SLACK_TOKEN = "xoxb-scenario"
DISCORD_TOKEN = "scenario-discord-token"
SLACK_REVIEWS = "C0REVIEW"
SLACK_TEAM_NAME = "Fake Team"  # what FakeSlack's auth.test calls the workspace
GUILD_NAME = "Reviewers"
ALICE, CAROL = ("U0ALICE", "alice"), ("U0CAROL", "carol")
WAIT = 5.0  # seconds any single wait may take before the test fails

T = TypeVar("T")

_build_core = app.build_core


class CoreProbe:
    """Watches the Core that `serve` builds: inbound events handled, and every store commit."""

    def __init__(self) -> None:
        self.cores: list[Core] = []
        self.in_flight = 0
        self.started = 0  # inbound events the core has begun to handle
        self.handled: list[tuple[InboundEvent, Reply | None]] = []
        self._changed = asyncio.Event()
        self._checker: asyncio.Task[Any] | None = None  # settle()'s own reads notify nobody

    @property
    def core(self) -> Core:
        return self.cores[-1]

    def build_core(self, *args: Any, **kwargs: Any) -> Core:
        core = _build_core(*args, **kwargs)
        handle, run = core.dispatcher.handle, core.store.run

        async def watched_handle(event: InboundEvent) -> Reply:
            self.in_flight += 1
            self.started += 1
            self._notify()
            reply = None
            try:
                reply = await handle(event)
                return reply
            finally:
                self.in_flight -= 1
                self.handled.append((event, reply))
                self._notify()

        async def watched_run(work: Callable[[Transaction], Awaitable[T]]) -> T:
            result = await run(work)
            if asyncio.current_task() is not self._checker:
                self._notify()
            return result

        core.dispatcher.handle = watched_handle  # type: ignore[method-assign]
        core.store.run = watched_run  # type: ignore[method-assign]
        self.cores.append(core)
        return core

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, check: Callable[[], bool], what: str) -> None:
        """Wait until `check()` holds, re-checking after each event handled and each commit."""
        try:
            async with asyncio.timeout(WAIT):
                while True:
                    changed = self._changed
                    if check():
                        return
                    await changed.wait()
        except TimeoutError:
            msg = f"CoreProbe: no {what} within {WAIT}s"
            raise TimeoutError(msg) from None

    async def wait_handled(self, count: int) -> None:
        """Wait until the core has handled `count` inbound events in all."""
        await self.wait(lambda: len(self.handled) >= count, f"{count} handled events")

    async def settle(self) -> None:
        """Wait until no event is being handled and no notice is due: each is sent, dead, or
        waiting for a retry the clock has not reached."""
        core = self.core
        core.worker.wake()  # for a retry that the clock has just made due
        try:
            async with asyncio.timeout(WAIT):
                while True:
                    changed = self._changed
                    if self.in_flight == 0 and not await self._anything_due(core):
                        return
                    await changed.wait()
        except TimeoutError:
            msg = f"CoreProbe: the outbox still had notices due after {WAIT}s"
            raise TimeoutError(msg) from None

    async def _anything_due(self, core: Core) -> bool:
        # A notice being sent is still pending and due until the worker records the outcome.
        self._checker = asyncio.current_task()
        try:
            return bool(await core.store.run(lambda tx: tx.due_notices(core.clock.now(), 1)))
        finally:
            self._checker = None


@dataclass
class BothPlatforms:
    """Handles on a running bot and both fakes, with the moves people make on each platform."""

    slack: FakeSlack
    discord: FakeDiscord
    guild: FakeGuild
    clock: FakeClock
    settings: Settings
    probe: CoreProbe
    http: aiohttp.ClientSession
    db_path: Path

    # ---- running the bot -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serving(
        self,
        *,
        wrap_discord_sender: Callable[[Sender], Sender] | None = None,
        wrap_slack_sender: Callable[[Sender], Sender] | None = None,
    ) -> AsyncIterator[Core]:
        """One `serve` with fresh adapters; yields its Core once started, then stops it."""
        slack_adapter = build_slack(self.settings, self.clock)
        if wrap_slack_sender is not None:
            slack_adapter.sender = wrap_slack_sender(slack_adapter.sender)
        discord_adapter = DiscordAdapter(
            self.settings,
            self.clock,
            client_class=FastReviewClient,
            guild_ready_timeout=FAST_READY,
            ready_timeout=WAIT,
        )
        if wrap_discord_sender is not None:
            discord_adapter.sender = wrap_discord_sender(discord_adapter.sender)
        started, stop = asyncio.Event(), asyncio.Event()
        running = asyncio.create_task(
            serve(
                self.settings,
                [slack_adapter, discord_adapter],
                self.clock,
                started=started,
                stop=stop,
            ),
            name="serve",
        )
        up = asyncio.create_task(started.wait())
        try:
            await asyncio.wait({running, up}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
            if not started.is_set():
                msg = "serve did not start"
                raise RuntimeError(msg)
            yield self.probe.core
        finally:
            up.cancel()
            stop.set()
            await asyncio.wait_for(running, WAIT)

    async def settle(self) -> None:
        """Wait until every event sent so far is handled and every notice due is delivered."""
        await self.probe.settle()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """A read of the bot's database on a connection of its own (as another process sees it)."""
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            return db.execute(sql).fetchall()

    # ---- Slack ---------------------------------------------------------------------------

    async def slack_post(self, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        url = f"http://127.0.0.1:{self.settings.http_port}/slack/events"
        async with self.http.post(
            url, data=body, headers=sign(body, SECRET) | (headers or {})
        ) as r:
            return Answer(r.status, await r.text())

    async def slack_command(self, text: str, who: tuple[str, str] = ALICE) -> Answer:
        """`/review <text>` typed by `who` in the Slack review channel."""
        body = p.slash_command_body(
            text, user_id=who[0], user_name=who[1], channel_id=SLACK_REVIEWS
        )
        return await self.slack_post(body)

    async def slack_react(self, ts: str, who: tuple[str, str], reaction: str = "eyes") -> Answer:
        """`who` adds a reaction to message `ts` in the Slack review channel (an Events API)."""
        event = p.reaction_event(user=who[0], reaction=reaction, channel=SLACK_REVIEWS, ts=ts)
        return await self.slack_post(p.event_callback_body(event))

    async def slack_click(
        self, action: str, request_id: int, who: tuple[str, str], ts: str
    ) -> Answer:
        """`who` presses the `claim`, `release` or `done` button on Slack message `ts`."""
        body = p.block_actions_body(
            f"review_{action}",
            str(request_id),
            user_id=who[0],
            user_name=who[1],
            channel_id=SLACK_REVIEWS,
            message_ts=ts,
        )
        return await self.slack_post(body)

    def slack_posts(self) -> list[ApiCall]:
        """Relay posts Slack accepted in the review channel, in call order."""
        return [
            c
            for c in self.slack.calls("chat.postMessage")
            if c.args.get("channel") == SLACK_REVIEWS and c.status == 200
        ]

    def slack_updates(self, ts: str) -> list[ApiCall]:
        """Accepted edits of the Slack message `ts`, in call order."""
        return [
            c for c in self.slack.calls("chat.update") if c.args.get("ts") == ts and c.status == 200
        ]

    def slack_dms(self, user_id: str) -> list[str]:
        """Texts of the direct messages Slack accepted for `user_id` (posted to the user id)."""
        return [
            str(c.args["text"])
            for c in self.slack.calls("chat.postMessage")
            if c.args.get("channel") == user_id and c.status == 200
        ]

    def slack_ephemerals(self, user_id: str) -> list[str]:
        """Texts shown only to `user_id` (refusals and confirmations of reactions and buttons)."""
        return [
            str(c.args["text"])
            for c in self.slack.calls("chat.postEphemeral")
            if c.args.get("user") == user_id and c.status == 200
        ]

    # ---- Discord -------------------------------------------------------------------------

    @property
    def reviews(self) -> str:
        """The Discord review channel's id."""
        return self.guild.channel("reviews").id

    def user(self, name: str) -> str:
        """A Discord guild member's user id."""
        return self.guild.member(name).id

    async def discord_command(
        self, user: str, subcommand: str, **options: Any
    ) -> InteractionCallback:
        """`/review <subcommand>` by `user` in the Discord review channel; returns the answer."""
        interaction = await self.discord.send_slash_command(
            self.guild.id, self.reviews, user, subcommand=subcommand, options=options
        )
        return await self.discord.wait_for_interaction_response(interaction)

    async def discord_reaction(self, user: str, message_id: str, emoji: str = "👀") -> None:
        """`user` adds a reaction on Discord (the gateway event is sent, not yet handled)."""
        await self.discord.add_reaction(
            self.guild.id, self.reviews, message_id, self.user(user), emoji
        )

    async def discord_react(self, user: str, message_id: str, emoji: str = "👀") -> None:
        """`user` adds a reaction on Discord; returns once the core has handled it."""
        handled = len(self.probe.handled)
        await self.discord_reaction(user, message_id, emoji)
        await self.probe.wait_handled(handled + 1)

    async def discord_click(
        self, user: str, message_id: str, custom_id: str
    ) -> InteractionCallback:
        """`user` presses a button (`review:<action>:<id>`) on a Discord message; the answer."""
        interaction = await self.discord.send_button_click(
            self.guild.id, self.reviews, message_id, user, custom_id
        )
        return await self.discord.wait_for_interaction_response(interaction)

    def discord_posts(self) -> list[JSON]:
        """The messages in the Discord review channel as they are now (edits applied)."""
        return self.discord.messages(self.reviews)

    def discord_post_creates(self) -> list[RecordedRequest]:
        """Every POST of a message to the Discord review channel the fake answered."""
        return self.discord.requests_matching(f"POST /channels/{self.reviews}/messages")

    def discord_dms(self, user: str) -> list[str]:
        """Texts of the bot's direct messages to a Discord guild member."""
        channel = self.discord.dm_channel_for(self.user(user))
        return (
            [] if channel is None else [str(m["content"]) for m in self.discord.messages(channel)]
        )


def discord_status(message: JSON | None) -> str:
    """The Status field of a Discord relay post's embed."""
    assert message is not None
    (embed,) = message["embeds"]
    return next(str(f["value"]) for f in embed["fields"] if f["name"] == "Status")


def discord_buttons(message: JSON | None) -> list[str]:
    """The custom ids of a Discord message's buttons."""
    assert message is not None
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


def slack_status(call: ApiCall) -> str:
    """The status line of a Slack relay post (its `*Status:*` context block)."""
    for block in call.args["blocks"]:
        if block["type"] == "context":
            text = str(block["elements"][0]["text"])
            if text.startswith("*Status:* "):
                return text.removeprefix("*Status:* ")
    msg = f"no status block in {call.args['blocks']}"
    raise AssertionError(msg)


@contextlib.contextmanager
def discord_py_untouched() -> Iterator[None]:
    """Fail if a test leaves discord.py pointed somewhere else (the adapter must restore it)."""
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    yield
    assert before == (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


@pytest.fixture
def guild() -> FakeGuild:
    return FakeGuild.build(GUILD_NAME, channels=["general", "reviews"], members=["alice", "bob"])


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(bot_token=SLACK_TOKEN) as fake:
        for user_id, name in (ALICE, CAROL):
            fake.add_user(user_id, name=name)  # what users.info says about them
        yield fake


@pytest.fixture
async def fake_discord(guild: FakeGuild) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=DISCORD_TOKEN, guilds=[guild]) as fake:
        yield fake
    assert fake.internal_errors == []


@pytest.fixture
async def platforms(
    tmp_path: Path,
    fake_slack: FakeSlack,
    fake_discord: FakeDiscord,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[BothPlatforms]:
    """Both fakes and the settings that point the bot at them; the bot is not running yet."""
    asyncio.get_running_loop().set_debug(True)
    (guild,) = fake_discord.guilds
    db_path = tmp_path / "relay.db"
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{db_path}",
        "http_host": "127.0.0.1",
        "http_port": free_port(),
        "slack_bot_token": SLACK_TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": fake_slack.api_url,
        "slack_review_channel": SLACK_REVIEWS,
        "discord_bot_token": DISCORD_TOKEN,
        "discord_api_url": fake_discord.api_base,
        "discord_gateway_url": fake_discord.gateway_url,
        "discord_review_channel_id": guild.channel("reviews").id,
        "discord_guild_id": guild.id,
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    probe = CoreProbe()
    monkeypatch.setattr(app, "build_core", probe.build_core)
    with discord_py_untouched():
        async with aiohttp.ClientSession() as http:
            yield BothPlatforms(
                fake_slack, fake_discord, guild, clock, settings, probe, http, db_path
            )


@pytest.fixture
async def both_platforms(platforms: BothPlatforms) -> AsyncIterator[BothPlatforms]:
    """The bot running under one `serve` for the whole test, against both fakes."""
    async with platforms.serving():
        yield platforms
