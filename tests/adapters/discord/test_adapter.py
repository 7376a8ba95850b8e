"""The adapter's life: login, command sync, guilds, reconnects, restarts and reconcile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import discord.gateway
import discord.http
import pytest

from adapters.discord import client as client_module
from adapters.discord import reconcile as reconcile_module
from adapters.http import HttpServer
from bot import dispatcher as dispatcher_module
from bot.app import build_core, serve
from bot.delivery import MAX_ATTEMPTS
from bot.errors import ConfigError, DeliveryError, StoreError
from bot.model import Community, Notice, NoticeKind, Outgoing, Platform
from bot.settings import Settings
from storage.base import Transaction
from storage.sqlite import SqliteStore
from tests.adapters.discord.conftest import (
    DiscordHarness,
    RecordingInbox,
    discord_settings,
    make_adapter,
    running,
)
from tests.fakes.discord_payloads import FakeGuild
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_discord import FakeDiscord, FaultRule

LINK = "https://example.com/draft"


async def open_request(bot: DiscordHarness) -> str:
    await bot.slash("alice", "ask", link=LINK, topics="python")
    await bot.deliver()
    (post,) = bot.posts()
    return str(post["id"])


async def test_connects_with_least_intents(bot: DiscordHarness, fake: FakeDiscord) -> None:
    """Guilds and guild reactions only: nothing privileged, no message content."""
    assert bot.adapter.connected
    assert fake.intents == discord.Intents(guilds=True, guild_reactions=True).value
    assert fake.identify_count == 1


async def test_commands_sync_once_per_change(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """The first start PUTs the commands to the guild; a restart with the same ones does not."""
    async with running(settings, fake, guild, clock):
        pass
    async with running(settings, fake, guild, clock):
        pass
    assert fake.command_sync_count(guild.id) == 1
    assert fake.hits(f"GET /applications/{fake.application_id}/guilds/{guild.id}/commands") == 2
    assert fake.command_sync_count() == 0
    (review,) = fake.synced_commands(guild.id)
    assert review["name"] == "review"


async def test_without_guild_id_commands_sync_globally(
    tmp_path: Path, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """Without DISCORD_GUILD_ID the commands go global, also only when changed."""
    settings = discord_settings(tmp_path, fake, guild, discord_guild_id=None)
    for _ in range(2):
        async with running(settings, fake, guild, clock) as bot:
            callback = await bot.slash("alice", "help")
            assert callback.data is not None
            assert "reviewrelay" in callback.data["content"]
    assert fake.command_sync_count() == 1
    assert fake.command_sync_count(guild.id) == 0


async def test_ready_registers_guilds_with_their_own_review_channel(
    tmp_path: Path, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """Each guild becomes a community; DISCORD_REVIEW_CHANNEL_ID only for the guild it is in."""
    other = fake.add_guild(FakeGuild.build("Elsewhere", channels=["chat"], members=["dave"]))
    settings = discord_settings(tmp_path, fake, guild, discord_guild_id=None)

    async def both(tx: Transaction) -> tuple[Community | None, Community | None]:
        return (
            await tx.community(Platform.DISCORD, guild.id),
            await tx.community(Platform.DISCORD, other.id),
        )

    async with running(settings, fake, guild, clock) as bot:
        ours, theirs = await bot.core.store.run(both)
    assert ours is not None
    assert (ours.name, ours.review_channel_id) == ("Reviewers", guild.channel("reviews").id)
    assert theirs is not None
    assert (theirs.name, theirs.review_channel_id) == ("Elsewhere", None)


async def test_reconnect_replays_missed_reaction_once(
    bot: DiscordHarness, fake: FakeDiscord
) -> None:
    """A dropped connection RESUMEs; the reaction made meanwhile is replayed and handled once."""
    message_id = await open_request(bot)
    await fake.drop_connection(4000)
    await bot.react("bob", message_id, "👀")  # buffered by Discord, replayed on RESUME
    await asyncio.sleep(0.05)  # a duplicate would arrive here
    await bot.deliver()
    assert fake.resume_count == 1
    assert fake.identify_count == 1
    reactions = [e for e, _ in bot.inbox.handled if e.event_key.startswith("discord:rx")]
    assert len(reactions) == 1
    assert bot.dms("alice") == [f"bob claimed your request #1 ({LINK})."]
    assert bot.adapter.connected
    # A RESUME is no new session: nothing to reconcile, no extra reads of the post.
    assert fake.hits(f"GET /channels/*/messages/{message_id}") == 0


async def test_restart_reconciles_reaction_made_while_down(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """A 👀 added while the bot was down claims the request at the next start, once."""
    async with running(settings, fake, guild, clock) as bot:
        message_id = await open_request(bot)
    reviews, bob = guild.channel("reviews").id, guild.member("bob").id
    await fake.add_reaction(guild.id, reviews, message_id, bob, "👀")  # no client listening
    async with running(settings, fake, guild, clock) as bot:
        assert bot.adapter.client.reconciling is not None
        assert await bot.adapter.client.reconciling == 1
        await bot.deliver()
        assert bot.dms("alice") == [f"bob claimed your request #1 ({LINK})."]
        assert bot.fake.message(message_id)["embeds"][0]["fields"][-1]["value"] == "claimed by bob"
    async with running(settings, fake, guild, clock) as bot:
        assert bot.adapter.client.reconciling is not None
        await bot.adapter.client.reconciling  # claimed now: the 👀 is not fed again
        await bot.deliver()
        assert bot.dms("alice") == [f"bob claimed your request #1 ({LINK})."]


async def test_reconcile_reads_every_open_post_page_by_page(
    settings: Settings,
    fake: FakeDiscord,
    guild: FakeGuild,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More open posts than a page: 👀 added while down on the newest and the oldest both count."""
    monkeypatch.setattr(dispatcher_module, "OPEN_POSTS_PAGE", 2)
    async with running(settings, fake, guild, clock) as bot:
        for i in range(5):
            await bot.slash("alice", "ask", link=f"{LINK}/{i}", topics="python")
        await bot.deliver()
        posts = [str(p["id"]) for p in bot.posts()]
    assert len(posts) == 5
    reviews = guild.channel("reviews").id
    await fake.add_reaction(guild.id, reviews, posts[0], guild.member("bob").id, "👀")
    await fake.add_reaction(guild.id, reviews, posts[-1], guild.member("carol").id, "👀")
    async with running(settings, fake, guild, clock) as bot:
        assert bot.adapter.client.reconciling is not None
        assert await bot.adapter.client.reconciling == 2
        await bot.deliver()
        assert sorted(bot.dms("alice")) == [
            f"bob claimed your request #1 ({LINK}/0).",
            f"carol claimed your request #5 ({LINK}/4).",
        ]


async def test_reconcile_tie_break_is_lowest_user_id(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """Two 👀 while away: the lower user id wins and the other is told it is taken."""
    async with running(settings, fake, guild, clock) as bot:
        message_id = await open_request(bot)
    first, second = sorted([guild.member("carol").id, guild.member("bob").id], key=int)
    for user in (second, first):
        await fake.add_reaction(guild.id, guild.channel("reviews").id, message_id, user, "👀")
    async with running(settings, fake, guild, clock) as bot:
        assert bot.adapter.client.reconciling is not None
        await bot.adapter.client.reconciling
        await bot.deliver()
        claimer = bot.fake.user(first).username
        assert bot.dms("alice") == [f"{claimer} claimed your request #1 ({LINK})."]
        loser_dm = bot.fake.dm_channel_for(second)
        assert loser_dm is not None
        (refusal,) = [m["content"] for m in bot.fake.messages(loser_dm)]
        assert f"already claimed by {claimer}" in refusal


async def test_reconcile_waits_for_a_post_sent_just_before_a_crash(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """Discord made the post but its answer was lost, and the bot died before its retry; a 👀
    lands on it meanwhile. At the next start the resend is answered with that message (by
    nonce), and reconcile reads the post once it is recorded: the 👀 claims."""
    reviews = guild.channel("reviews").id
    lost = [FaultRule("POST", f"/channels/{reviews}/messages", None, remaining=1, reset="after")]
    fake.fault_policy = lambda method, path: (
        lost.pop() if lost and lost[0].matches(method, path) else None
    )
    async with running(settings, fake, guild, clock) as bot:
        await bot.slash("alice", "ask", link=LINK, topics="python")
        await bot.deliver()  # the post exists; the bot only knows a retry is due
        [post] = bot.posts()
    await fake.add_reaction(guild.id, reviews, str(post["id"]), guild.member("bob").id, "👀")
    clock.advance(minutes=5)
    async with running(settings, fake, guild, clock) as bot:
        assert bot.adapter.client.reconciling is not None
        await bot.deliver()
        assert await bot.adapter.client.reconciling == 1
        await bot.deliver()
        assert bot.dms("alice") == [f"bob claimed your request #1 ({LINK})."]
        assert [p["id"] for p in bot.posts()] == [post["id"]]


async def test_bad_token_is_a_config_error(
    tmp_path: Path, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """A rejected token stops the start with a one-line error naming the setting."""
    settings = discord_settings(tmp_path, fake, guild, discord_bot_token="wrong")
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    async with await SqliteStore.open(settings.database_path) as store:
        adapter = make_adapter(settings, clock)
        core = build_core(settings, store, {Platform.DISCORD: adapter.sender}, clock)
        with pytest.raises(ConfigError, match="DISCORD_BOT_TOKEN"):
            await adapter.start(core.dispatcher)
    assert not adapter.connected
    after = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    assert after == before  # discord.py's class attributes are put back


async def test_stop_restores_discord_py_and_disconnects(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """While running, discord.py points at the settings' URLs; after stop, at what it had."""
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    async with running(settings, fake, guild, clock) as bot:
        assert fake.api_base == discord.http.Route.BASE
        adapter = bot.adapter
    assert not adapter.connected
    assert not fake.connected
    assert before == (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


async def test_serve_runs_the_adapter_and_reports_health(
    settings: Settings, fake: FakeDiscord, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bot.app.serve` starts the adapter, delivers through it and reports it in /healthz."""
    ports: list[int] = []
    start = HttpServer.start

    async def remember_port(self: HttpServer) -> None:
        await start(self)
        ports.append(self.port)

    monkeypatch.setattr(HttpServer, "start", remember_port)
    adapter = make_adapter(settings, clock)
    started, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, [adapter], clock, started=started, stop=stop))
    try:
        await asyncio.wait_for(started.wait(), 5)
        url = f"http://127.0.0.1:{ports[0]}/healthz"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            health = await response.json()
        assert health["checks"]["discord"] is True
        guild = fake.guilds[0]
        await fake.send_slash_command(
            guild.id, guild.channel("reviews").id, "alice", subcommand="ask", options={"link": LINK}
        )
        await fake.wait_for(f"POST /channels/{guild.channel('reviews').id}/messages")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert not adapter.connected


async def test_start_after_a_failed_start_connects(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """A start that failed on the network can be followed by one that connects and works."""
    reset = FaultRule("GET", "/users/@me", None, remaining=1, reset="before")
    network_down = True
    fake.fault_policy = lambda method, path: (
        reset if network_down and reset.matches(method, path) else None
    )
    async with await SqliteStore.open(settings.database_path) as store:
        adapter = make_adapter(settings, clock)
        core = build_core(settings, store, {Platform.DISCORD: adapter.sender}, clock)
        inbox = RecordingInbox(core.dispatcher)
        with pytest.raises(aiohttp.ClientError):
            await adapter.start(inbox)  # the login's connection was reset
        assert not adapter.connected
        # Meanwhile the worker's sends are plain retries, not a discord.py error ("sender bug").
        text = Notice(
            id=1, kind=NoticeKind.CHANNEL_TEXT, platform=Platform.DISCORD, community_id=guild.id,
            channel_id="1", text="hello",
        )  # fmt: skip
        with pytest.raises(DeliveryError) as refused:
            await adapter.sender.send(text)
        assert refused.value.retryable
        assert not refused.value.maybe_delivered
        network_down = False
        try:
            await adapter.start(inbox)  # as bot.app retries it
            bot = DiscordHarness(fake, guild, adapter, core, inbox, clock)
            callback = await bot.slash("alice", "ask", link=LINK, topics="python")
            await bot.deliver()  # through the sender the core got before the first start
            assert adapter.connected
        finally:
            await adapter.stop()
    assert callback.data is not None
    assert "#1" in callback.data["content"]
    (post,) = bot.posts()
    assert LINK in post["embeds"][0]["description"]
    assert fake.identify_count == 1


async def test_notices_wait_out_a_long_failed_start_without_using_up_their_attempts(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """Discord cannot be started for longer than the worker's attempts last (bot.app retries a
    start every 5 min at most, its crash-loop backoff waits up to 15 min): the notices queued for
    Discord meanwhile were never offered to Discord, so none is given up on; all go out once
    a start connects."""
    async with await SqliteStore.open(settings.database_path) as store:
        adapter = make_adapter(settings, clock)  # not started: no client logged in
        core = build_core(settings, store, {Platform.DISCORD: adapter.sender}, clock)
        reviews = guild.channel("reviews").id
        text = Outgoing(
            kind=NoticeKind.CHANNEL_TEXT, platform=Platform.DISCORD, community_id=guild.id,
            channel_id=reviews, text="hello",
        )  # fmt: skip
        await store.run(lambda tx: tx.enqueue([text], clock.now()))
        for _ in range(MAX_ATTEMPTS + 3):  # an hour and more of fake time
            await core.worker.drain()
            clock.advance(minutes=5)
        assert core.worker.stats[Platform.DISCORD, "dead"] == 0
        inbox = RecordingInbox(core.dispatcher)
        await adapter.start(inbox)
        try:
            await core.worker.drain()
        finally:
            await adapter.stop()
    assert [m["content"] for m in fake.messages(reviews)] == ["hello"]


async def test_reconcile_pages_do_not_split_a_requests_posts(
    settings: Settings,
    fake: FakeDiscord,
    guild: FakeGuild,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request relayed to two guilds has two posts; a page ending between them skips none."""
    monkeypatch.setattr(dispatcher_module, "OPEN_POSTS_PAGE", 3)
    other = fake.add_guild(FakeGuild.build("Elsewhere", channels=["reviews"], members=["dave"]))
    elsewhere = Community(
        platform=Platform.DISCORD,
        community_id=other.id,
        name="Elsewhere",
        review_channel_id=other.channel("reviews").id,
    )
    async with running(settings, fake, guild, clock) as bot:
        await bot.core.dispatcher.connect_community(elsewhere)
        for i in range(3):
            await bot.slash("alice", "ask", link=f"{LINK}/{i}", topics="python")
        await bot.deliver()
        posts = [str(p["id"]) for p in bot.posts() + fake.messages(other.channel("reviews").id)]
    assert len(posts) == 6
    async with running(settings, fake, guild, clock) as bot:
        assert bot.adapter.client.reconciling is not None
        await bot.adapter.client.reconciling
    unread = [p for p in posts if fake.hits(f"GET /channels/*/messages/{p}") == 0]
    assert unread == []


async def test_reconcile_after_a_live_claim_tells_nobody_twice(
    settings: Settings,
    fake: FakeDiscord,
    guild: FakeGuild,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 👀 handled live while reconcile reads other posts is not fed again as a fresh claim."""
    async with running(settings, fake, guild, clock) as bot:
        older = await open_request(bot)
        await bot.slash("alice", "ask", link=f"{LINK}/2", topics="python")
        await bot.deliver()
    reviews = guild.channel("reviews").id
    await fake.add_reaction(guild.id, reviews, older, guild.member("bob").id, "👀")
    real_read = reconcile_module.read_reactors
    gate, waiting = asyncio.Event(), asyncio.Event()

    async def slow_first_read(message, wanted):  # type: ignore[no-untyped-def]
        if not waiting.is_set():  # the newest post: reconcile is busy here a while
            waiting.set()
            await gate.wait()
        return await real_read(message, wanted)

    monkeypatch.setattr(reconcile_module, "read_reactors", slow_first_read)
    async with running(settings, fake, guild, clock) as bot:
        await waiting.wait()
        await bot.react("carol", older, "👀")  # live: carol claims the older request
        await bot.react("bob", older, "👀", add=False)
        await bot.react("bob", older, "👀")  # live: bob hears it is taken
        gate.set()
        assert bot.adapter.client.reconciling is not None
        await bot.adapter.client.reconciling
        await bot.deliver()
        assert bot.dms("carol") == []
        assert bot.dms("bob") == ["Request #1 is already claimed by carol."]


async def test_restart_does_not_reclaim_for_whoever_released_by_button(
    settings: Settings, fake: FakeDiscord, guild: FakeGuild, clock: FakeClock
) -> None:
    """bob claims with 👀 and releases with the button (his 👀 stays): a restart keeps it open."""
    async with running(settings, fake, guild, clock) as bot:
        message_id = await open_request(bot)
        await bot.react("bob", message_id, "👀")
        await bot.deliver()  # the edit that shows the Release button
        await bot.click("bob", message_id, "review:release:1")
        await bot.deliver()
    async with running(settings, fake, guild, clock) as bot:
        assert bot.adapter.client.reconciling is not None
        await bot.adapter.client.reconciling
        await bot.deliver()
        assert bot.dms("alice")[-1] == "bob released your request #1; it is open again."


async def test_a_retried_reaction_a_newer_one_overtook_is_dropped(
    settings: Settings,
    fake: FakeDiscord,
    guild: FakeGuild,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bob's un-👀 meets a store failure and he puts 👀 back before its retry: the retry is
    dropped, so the claim stands, as his 👀 does (retried, it released the claim)."""
    monkeypatch.setattr(client_module, "REACTION_RETRIES", (0.3,))
    async with running(settings, fake, guild, clock) as bot:
        message_id = await open_request(bot)
        await bot.react("bob", message_id, "👀")
        real = bot.core.dispatcher.handle
        calls: list[bool] = []

        async def fail_first_removal(event):  # type: ignore[no-untyped-def]
            calls.append(event.added)
            if calls == [False]:
                msg = "the database failed: database or disk is full"
                raise StoreError(msg)
            return await real(event)

        monkeypatch.setattr(bot.core.dispatcher, "handle", fail_first_removal)
        await fake.remove_reaction(guild.id, bot.reviews, message_id, bot.user("bob"), "👀")
        await fake.add_reaction(guild.id, bot.reviews, message_id, bot.user("bob"), "👀")
        await asyncio.sleep(0.6)  # past the retry's wait
        request = await bot.core.store.run(lambda tx: tx.request(1))
        assert calls == [False, True]
        assert request is not None
        assert [m.user_id for m in request.holding] == [bot.user("bob")]


async def test_a_release_the_store_failed_once_is_not_lost(
    settings: Settings,
    fake: FakeDiscord,
    guild: FakeGuild,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bob's un-👀 meets a store failure (a full disk for a moment): the release still lands,
    tried again by the adapter (Discord never sends the event again)."""
    monkeypatch.setattr(client_module, "REACTION_RETRIES", (0.01,))
    async with running(settings, fake, guild, clock) as bot:
        message_id = await open_request(bot)
        await bot.react("bob", message_id, "👀")
        real = bot.core.dispatcher.handle
        failed, retried = asyncio.Event(), asyncio.Event()

        async def fail_once(event):  # type: ignore[no-untyped-def]
            if not failed.is_set():
                failed.set()
                msg = "the database failed: database or disk is full"
                raise StoreError(msg)
            try:
                return await real(event)
            finally:
                retried.set()

        monkeypatch.setattr(bot.core.dispatcher, "handle", fail_once)
        await fake.remove_reaction(guild.id, bot.reviews, message_id, bot.user("bob"), "👀")
        await failed.wait()
        async with asyncio.timeout(5):
            await retried.wait()
        await bot.deliver()
    async with running(settings, fake, guild, clock) as bot:
        assert bot.adapter.client.reconciling is not None
        await bot.adapter.client.reconciling
        await bot.deliver()
        assert bot.dms("alice")[-1] == "bob released your request #1; it is open again."
