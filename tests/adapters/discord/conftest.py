"""The real Discord adapter (discord.py 2.7), core and SQLite store, against FakeDiscord.

`DiscordHarness` drives the fake like users would (slash commands, buttons, reactions) and sends
notices only when a test calls `deliver()` (the outbox drained once), so a test states exactly
what Discord has received by then. Inbound gateway events are handled in discord.py's own tasks:
`RecordingInbox` records each one so a test can wait until the core has seen it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import DiscordAdapter
from adapters.discord.client import ReviewClient
from bot.app import Core, build_core
from bot.dispatcher import Dispatcher
from bot.model import Community, InboundEvent, OpenPost, Platform, Reply
from bot.settings import Settings
from storage.sqlite import SqliteStore
from tests.fakes.discord_payloads import JSON
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_discord import FakeDiscord, FakeGuild, InteractionCallback

TOKEN = "test-token"
FAST_READY = 0.05


class FastReviewClient(ReviewClient):
    """The production client minus the 5 s discord.py sleeps before every re-IDENTIFY."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


class RecordingInbox:
    """The dispatcher, recording every event it handled and the reply, for tests to wait on."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self.handled: list[tuple[InboundEvent, Reply]] = []
        self._changed = asyncio.Condition()

    async def handle(self, event: InboundEvent) -> Reply:
        reply = await self._dispatcher.handle(event)
        async with self._changed:
            self.handled.append((event, reply))
            self._changed.notify_all()
        return reply

    async def connect_community(self, community: Community) -> None:
        await self._dispatcher.connect_community(community)

    async def open_posts(
        self, platform: Platform, *, before: int | None = None, limit: int | None = None
    ) -> Sequence[OpenPost]:
        return await self._dispatcher.open_posts(platform, before=before, limit=limit)

    async def relay_posts_due(self, platform: Platform, at: datetime) -> bool:
        return await self._dispatcher.relay_posts_due(platform, at)

    async def wait_for(self, check: Callable[[list[tuple[InboundEvent, Reply]]], bool]) -> None:
        async with asyncio.timeout(5.0), self._changed:
            await self._changed.wait_for(lambda: check(self.handled))


def discord_settings(tmp_path: Path, fake: FakeDiscord, guild: FakeGuild, **overrides: Any):
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'relay.db'}",
        "http_host": "127.0.0.1",
        "http_port": 0,
        "discord_bot_token": TOKEN,
        "discord_api_url": fake.api_base,
        "discord_gateway_url": fake.gateway_url,
        "discord_review_channel_id": guild.channel("reviews").id,
        "discord_guild_id": guild.id,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


def make_adapter(settings: Settings, clock: FakeClock) -> DiscordAdapter:
    return DiscordAdapter(
        settings,
        clock,
        client_class=FastReviewClient,
        guild_ready_timeout=FAST_READY,
        ready_timeout=5.0,
    )


@dataclass
class DiscordHarness:
    fake: FakeDiscord
    guild: FakeGuild
    adapter: DiscordAdapter
    core: Core
    inbox: RecordingInbox
    clock: FakeClock

    @property
    def reviews(self) -> str:
        return self.guild.channel("reviews").id

    def user(self, name: str) -> str:
        return self.guild.member(name).id

    async def slash(self, user: str, subcommand: str, **options: Any) -> InteractionCallback:
        """`/review <subcommand>` by `user`; returns Discord's record of the bot's answer."""
        interaction_id = await self.fake.send_slash_command(
            self.guild.id, self.reviews, user, subcommand=subcommand, options=options
        )
        return await self.fake.wait_for_interaction_response(interaction_id)

    async def click(self, user: str, message_id: str, custom_id: str) -> InteractionCallback:
        interaction_id = await self.fake.send_button_click(
            self.guild.id, self.reviews, message_id, user, custom_id
        )
        return await self.fake.wait_for_interaction_response(interaction_id)

    async def submit(self, user: str, custom_id: str, response: str) -> InteractionCallback:
        """Submit the form `custom_id` (laid out as the bot opened it) with `response` typed in."""
        interaction_id = await self.fake.send_modal_submit(
            self.guild.id, self.reviews, user, custom_id, {"response": response}
        )
        return await self.fake.wait_for_interaction_response(interaction_id)

    async def react(self, user: str, message_id: str, emoji: str, *, add: bool = True) -> None:
        """A user adds (or removes) a reaction; returns once the core has handled it."""
        before = len(self.inbox.handled)
        change = self.fake.add_reaction if add else self.fake.remove_reaction
        await change(self.guild.id, self.reviews, message_id, self.user(user), emoji)
        await self.inbox.wait_for(lambda handled: len(handled) > before)

    async def deliver(self) -> None:
        await self.core.worker.drain()

    def posts(self) -> list[JSON]:
        return self.fake.messages(self.reviews)

    def dms(self, name: str) -> list[str]:
        channel = self.fake.dm_channel_for(self.user(name))
        return [] if channel is None else [m["content"] for m in self.fake.messages(channel)]


@contextlib.asynccontextmanager
async def running(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> AsyncIterator[DiscordHarness]:
    """A started adapter on a fresh core over the settings' database; stopped and closed after."""
    store = await SqliteStore.open(settings.database_path)
    adapter = make_adapter(settings, clock)
    core = build_core(settings, store, {Platform.DISCORD: adapter.sender}, clock)
    inbox = RecordingInbox(core.dispatcher)
    try:
        await adapter.start(inbox)
        yield DiscordHarness(fake, guild, adapter, core, inbox, clock)
    finally:
        await adapter.stop()
        await store.close()


@pytest.fixture
def guild() -> FakeGuild:
    built = FakeGuild.build(
        "Reviewers", channels=["general", "reviews"], members=["alice", "bob", "carol", "admin"]
    )
    built.owner_id = built.member("admin").id
    return built


@pytest.fixture
async def fake(guild: FakeGuild) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, guilds=[guild]) as server:
        yield server
    assert server.internal_errors == []


@pytest.fixture
def settings(tmp_path: Path, fake: FakeDiscord, guild: FakeGuild) -> Settings:
    return discord_settings(tmp_path, fake, guild)


@pytest.fixture
async def bot(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> AsyncIterator[DiscordHarness]:
    async with running(settings, fake, guild, clock) as harness:
        yield harness
