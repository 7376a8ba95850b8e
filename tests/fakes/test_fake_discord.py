"""Proves the real discord.py 2.7.1 client works against ``tests.fakes.fake_discord``.

Owns only these contract tests for the fake; adapter behaviour is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator

import aiohttp
import pytest
import yarl

from tests.fakes.fake_discord import FakeDiscord, FakeGuild, point_discord_py_at

with warnings.catch_warnings():
    # discord.py 2.7.1 imports the deprecated stdlib ``audioop`` (voice) at import time, which
    # ``filterwarnings = ["error"]`` turns into a collection error on Python 3.11/3.12.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord
    from discord import app_commands

TOKEN = "test-token"
FAST_READY = 0.05


@pytest.fixture
def guild() -> FakeGuild:
    return FakeGuild.build(
        "Reviewers", channels=["general", "reviews"], members=["alice", "bob"], roles=["Reviewer"]
    )


@pytest.fixture
async def fake(guild: FakeGuild) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, guilds=[guild]) as server:
        with point_discord_py_at(server):
            yield server
        assert server.internal_errors == []


class FastClient(discord.Client):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every non-initial IDENTIFY (identify rate limit).
        return None


def make_client(**intents: bool) -> discord.Client:
    wanted = intents or {"guilds": True, "guild_reactions": True}
    return FastClient(intents=discord.Intents(**wanted), guild_ready_timeout=FAST_READY)


@contextlib.asynccontextmanager
async def running(client: discord.Client) -> AsyncIterator[discord.Client]:
    """Run ``client.start`` in a task until ready; always close and join it."""
    runner = asyncio.create_task(client.start(TOKEN))
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait(
            {runner, ready}, timeout=5, return_when=asyncio.FIRST_COMPLETED
        )
        if runner in done:
            runner.result()  # re-raise why the client stopped
        assert ready in done, "client never became ready"
        yield client
    finally:
        ready.cancel()
        await client.close()
        await asyncio.wait_for(runner, 5)


async def test_client_connects_and_sees_guild(fake: FakeDiscord, guild: FakeGuild) -> None:
    client = make_client()
    seen_ready = asyncio.Event()

    @client.event
    async def on_ready() -> None:
        seen_ready.set()

    async with running(client):
        assert seen_ready.is_set()
        assert client.user is not None
        assert str(client.user.id) == fake.bot.id
        assert client.application_id == int(fake.application_id)
        got = client.get_guild(int(guild.id))
        assert got is not None
        assert got.name == "Reviewers"
        reviews = client.get_channel(int(guild.channel("reviews").id))
        assert isinstance(reviews, discord.TextChannel)
        assert reviews.name == "reviews"
        assert {r.name for r in got.roles} >= {"@everyone", "Reviewer"}
        assert got.me is not None  # the bot's own member arrives even without the members intent

    assert fake.identify_count == 1
    assert fake.intents == discord.Intents(guilds=True, guild_reactions=True).value
    query = fake.gateway_connections[0]
    assert query["v"] == "10"
    assert query["encoding"] == "json"
    assert query["compress"] in ("zlib-stream", "zstd-stream")
    assert fake.hits("GET /users/@me") == 1
    assert fake.hits("GET /oauth2/applications/@me") == 1
    assert not fake.connected  # close(1000) ended the session


async def test_rest_wire_format_and_errors(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{fake.api_base}/users/@me", headers={"Authorization": f"Bot {TOKEN}"}
        ) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["id"] == fake.bot.id
        async with http.get(
            f"{fake.api_base}/users/@me", headers={"Authorization": "Bot nope"}
        ) as resp:
            assert resp.status == 401
            assert await resp.json() == {"message": "401: Unauthorized", "code": 0}
        async with http.get(f"{fake.api_base}/no/such/route") as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "404: Not Found", "code": 0}

    client = make_client()
    with pytest.raises(discord.LoginFailure):
        await client.login("wrong-token")
    await client.close()


async def test_tree_sync_reaches_fake(fake: FakeDiscord, guild: FakeGuild) -> None:
    client = make_client()
    tree = app_commands.CommandTree(client)
    review = app_commands.Group(name="review", description="Peer review requests")

    @review.command(name="ask", description="Ask for a review")
    @app_commands.describe(url="What to review", reviewer="Who should review")
    async def ask(
        interaction: discord.Interaction, url: str, reviewer: discord.Member | None = None
    ) -> None:
        await interaction.response.send_message("ok")

    tree.add_command(review, guild=discord.Object(id=int(guild.id)))
    await client.login(TOKEN)
    try:
        synced = await tree.sync(guild=discord.Object(id=int(guild.id)))
    finally:
        await client.close()

    assert [c.name for c in synced] == ["review"]
    assert fake.command_sync_count(guild.id) == 1
    assert fake.hits(f"PUT /applications/{fake.application_id}/guilds/{guild.id}/commands") == 1
    (stored,) = fake.synced_commands(guild.id)
    (sub,) = stored["options"]
    assert (sub["name"], sub["type"]) == ("ask", 1)
    assert [(o["name"], o["type"], o.get("required", False)) for o in sub["options"]] == [
        ("url", 3, True),
        ("reviewer", 6, False),
    ]
    assert fake.synced_commands() == []


async def test_slash_command_invokes_callback_and_ephemeral_reply(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    client = make_client()
    tree = app_commands.CommandTree(client)
    review = app_commands.Group(name="review", description="Peer review requests")
    calls: list[tuple[str, int, int, str]] = []

    @review.command(name="ask", description="Ask for a review")
    async def ask(interaction: discord.Interaction, url: str, reviewer: discord.Member) -> None:
        await interaction.response.send_message("ok", ephemeral=True)
        original = await interaction.original_response()
        calls.append((url, reviewer.id, interaction.user.id, original.content))

    gobj = discord.Object(id=int(guild.id))
    tree.add_command(review, guild=gobj)
    reviews = guild.channel("reviews")
    async with running(client):
        await tree.sync(guild=gobj)
        interaction_id = await fake.send_slash_command(
            guild.id,
            reviews.id,
            "alice",
            name="review",
            subcommand="ask",
            options={"url": "https://example.test/pr/1", "reviewer": guild.member("bob").id},
        )
        callback = await fake.wait_for_interaction_response(interaction_id)
        await fake.wait_for("GET /webhooks/*/messages/@original")

    assert callback.type == 4
    assert callback.data is not None
    assert callback.data["content"] == "ok"
    assert callback.data["flags"] == 64
    assert callback.with_response  # discord.py 2.7 always asks ?with_response=1
    assert calls == [
        (
            "https://example.test/pr/1",
            int(guild.member("bob").id),
            int(guild.member("alice").id),
            "ok",
        )
    ]
    assert fake.messages(reviews.id) == []  # ephemeral replies are not channel history
    reply = fake.interaction_message(interaction_id)
    assert reply is not None
    assert reply["flags"] & 64


async def test_button_click_reaches_view_and_updates_message(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    client = make_client()
    clicked: list[str] = []
    raw_interactions: list[str] = []

    class Claim(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Claim", custom_id="review:claim:42")
        async def claim(
            self, interaction: discord.Interaction, button: discord.ui.Button[Claim]
        ) -> None:
            clicked.append(interaction.user.name)
            await interaction.response.edit_message(
                content=f"claimed by {interaction.user.name}", view=None
            )

    @client.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        if interaction.data is not None:
            raw_interactions.append(str(interaction.data.get("custom_id")))

    reviews = guild.channel("reviews")
    async with running(client):
        channel = client.get_channel(int(reviews.id))
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("Review wanted: PR 42", view=Claim())
        assert (
            fake.messages(reviews.id)[0]["components"][0]["components"][0]["custom_id"]
            == "review:claim:42"
        )
        interaction_id = await fake.send_button_click(
            guild.id, reviews.id, sent.id, "bob", "review:claim:42"
        )
        callback = await fake.wait_for_interaction_response(interaction_id)

    assert clicked == ["bob"]
    assert raw_interactions == ["review:claim:42"]
    assert callback.type == 7
    (message,) = fake.messages(reviews.id)
    assert message["content"] == "claimed by bob"
    assert message["components"] == []
    assert message["edited_timestamp"] is not None


async def test_raw_reaction_events_for_uncached_message(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    client = make_client()
    added: list[discord.RawReactionActionEvent] = []
    removed: list[discord.RawReactionActionEvent] = []
    got_remove = asyncio.Event()

    @client.event
    async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
        added.append(payload)

    @client.event
    async def on_raw_reaction_remove(payload: discord.RawReactionActionEvent) -> None:
        removed.append(payload)
        got_remove.set()

    reviews = guild.channel("reviews")
    bob = guild.member("bob")
    async with running(client):
        message_id = await fake.post_user_message(
            reviews.id, "alice", "please review PR 7", dispatch=False
        )
        await fake.add_reaction(guild.id, reviews.id, message_id, bob.id, "👀")
        channel = client.get_channel(int(reviews.id))
        assert isinstance(channel, discord.TextChannel)
        fetched = await channel.fetch_message(int(message_id))
        reactors = [u.id async for u in fetched.reactions[0].users()]
        await fake.remove_reaction(guild.id, reviews.id, message_id, bob.id, "👀")
        await asyncio.wait_for(got_remove.wait(), 5)

    (add,) = added
    assert (add.message_id, add.user_id, add.emoji.name) == (int(message_id), int(bob.id), "👀")
    assert add.guild_id == int(guild.id)
    assert add.member is not None
    assert add.member.id == int(bob.id)
    assert add.message_author_id == int(guild.member("alice").id)
    (rem,) = removed
    assert (rem.message_id, rem.user_id, rem.emoji.name) == (int(message_id), int(bob.id), "👀")
    assert reactors == [int(bob.id)]
    assert fake.reaction_users(reviews.id, message_id, "👀") == []


async def test_enforced_nonce_creates_one_message(fake: FakeDiscord, guild: FakeGuild) -> None:
    client = make_client()
    reviews = guild.channel("reviews")
    async with running(client):
        channel = client.get_channel(int(reviews.id))
        assert isinstance(channel, discord.TextChannel)
        first = await channel.send("review request", nonce=123)
        second = await channel.send("review request", nonce=123)
        third = await channel.send("review request", nonce=124)

    assert first.id == second.id != third.id
    assert [m["id"] for m in fake.messages(reviews.id)] == [str(first.id), str(third.id)]
    posts = fake.requests_matching(f"POST /channels/{reviews.id}/messages")
    assert len(posts) == 3
    assert posts[0].json["nonce"] == "123"  # discord.py stringifies the nonce ...
    assert posts[0].json["enforce_nonce"] is True  # ... and always enforces it


async def test_rate_limit_with_via_is_retried(fake: FakeDiscord, guild: FakeGuild) -> None:
    client = make_client()
    reviews = guild.channel("reviews")
    fake.fail_next("POST", f"/channels/{reviews.id}/messages", status=429, retry_after=0.05)
    async with running(client):
        channel = client.get_channel(int(reviews.id))
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("after a rate limit")

    hits = fake.requests_matching(f"POST /channels/{reviews.id}/messages")
    assert [h.status for h in hits] == [429, 200]
    assert hits[0].response == {
        "message": "You are being rate limited.",
        "retry_after": 0.05,
        "global": False,
    }
    assert [m["id"] for m in fake.messages(reviews.id)] == [str(sent.id)]


async def test_injected_forbidden_surfaces_discord_error_code(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    client = make_client()
    reviews = guild.channel("reviews")
    fake.fail_next("POST", "/channels/*/messages", status=403)
    async with running(client):
        channel = client.get_channel(int(reviews.id))
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.Forbidden) as caught:
            await channel.send("nope")
    assert caught.value.code == 50013
    assert fake.messages(reviews.id) == []


async def test_drop_connection_resumes_and_replays_missed_event(
    fake: FakeDiscord, guild: FakeGuild
) -> None:
    client = make_client()
    reactions: list[int] = []
    resumed = asyncio.Event()
    got_reaction = asyncio.Event()

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    @client.event
    async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
        reactions.append(payload.message_id)
        got_reaction.set()

    reviews = guild.channel("reviews")
    async with running(client):
        message_id = await fake.post_user_message(reviews.id, "alice", "PR 9", dispatch=False)
        await fake.drop_connection(4000)
        assert not fake.connected
        # Dispatched while the client is away: buffered and replayed on RESUME.
        assert await fake.add_reaction(guild.id, reviews.id, message_id, "bob", "✅") == 1
        await asyncio.wait_for(resumed.wait(), 5)
        await asyncio.wait_for(got_reaction.wait(), 5)
        await asyncio.sleep(0.05)  # a duplicate replay would land here

    assert reactions == [int(message_id)]
    assert fake.identify_count == 1
    assert fake.resume_count == 1
    assert fake.resumes[0]["seq"] >= 1


async def test_invalid_session_forces_fresh_identify(fake: FakeDiscord) -> None:
    client = make_client()
    readies = 0
    second_ready = asyncio.Event()

    @client.event
    async def on_ready() -> None:
        nonlocal readies
        readies += 1
        if readies == 2:
            second_ready.set()

    async with running(client):
        await fake.invalidate_session(resumable=False)
        await asyncio.wait_for(second_ready.wait(), 5)

    assert fake.identify_count == 2
    assert fake.resume_count == 0


async def test_members_intent_chunks_via_op8(fake: FakeDiscord, guild: FakeGuild) -> None:
    client = make_client(guilds=True, members=True)
    async with running(client):
        got = client.get_guild(int(guild.id))
        assert got is not None
        assert got.chunked
        alice = got.get_member(int(guild.member("alice").id))
        assert alice is not None
        assert alice.name == "alice"
    assert any(f.get("op") == 8 for f in fake.gateway_received)


async def test_dm_and_modal_round_trip(fake: FakeDiscord, guild: FakeGuild) -> None:
    client = make_client()
    tree = app_commands.CommandTree(client)
    notes: list[str] = []

    class Feedback(discord.ui.Modal, title="Review feedback"):
        body: discord.ui.TextInput[Feedback] = discord.ui.TextInput(
            label="Notes", custom_id="notes"
        )

        async def on_submit(self, interaction: discord.Interaction) -> None:
            notes.append(self.body.value)
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("thanks", ephemeral=True)

    @tree.command(name="feedback", description="Leave feedback")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Feedback(custom_id="feedback-modal"))

    alice = guild.member("alice")
    async with running(client):
        await tree.sync()
        user = await client.fetch_user(int(alice.id))
        await user.send("you have a review request")
        opened = await fake.send_slash_command(
            guild.id, None, alice, name="feedback", subcommand=None
        )
        assert (await fake.wait_for_interaction_response(opened)).type == 9
        submitted = await fake.send_modal_submit(
            guild.id, None, alice, "feedback-modal", {"notes": "LGTM"}
        )
        assert (await fake.wait_for_interaction_response(submitted)).type == 5
        await fake.wait_for("POST /webhooks/*")

    dm = fake.dm_channel_for(alice.id)
    assert dm is not None
    assert [m["content"] for m in fake.messages(dm)] == ["you have a review request"]
    assert notes == ["LGTM"]
    assert fake.modals["feedback-modal"]["title"] == "Review feedback"


def test_point_discord_py_at_restores_attributes() -> None:
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    server = FakeDiscord()
    server._port = 1234  # no socket needed to compute URLs
    with point_discord_py_at(server):
        during = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    assert during == ("http://127.0.0.1:1234/api/v10", yarl.URL("ws://127.0.0.1:1234/gateway"))
    after = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    assert after == before


async def test_plain_text_frames_and_late_ack(guild: FakeGuild) -> None:
    """Text frames (no zlib-stream) work, and a too-late interaction reply gets 10062."""
    errors: list[int] = []
    async with FakeDiscord(
        token=TOKEN, guilds=[guild], gateway_compression=False, interaction_ack_timeout=0.05
    ) as server:
        with point_discord_py_at(server):
            client = make_client()
            tree = app_commands.CommandTree(client)

            @tree.command(name="slow", description="Answers too late")
            async def slow(interaction: discord.Interaction) -> None:
                await asyncio.sleep(0.1)
                try:
                    await interaction.response.send_message("late")
                except discord.NotFound as exc:
                    errors.append(exc.code)

            async with running(client):
                await tree.sync()
                await server.send_slash_command(
                    guild.id, None, "alice", name="slow", subcommand=None
                )
                await server.wait_for("POST /interactions/*/*/callback")

    # The client asked for a compressed stream yet ran fine on the plain text frames it got.
    assert server.gateway_connections[0]["compress"] in ("zlib-stream", "zstd-stream")
    assert errors == [10062]
    assert server.interaction_responses == {}
