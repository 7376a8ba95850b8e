"""Slash commands, reactions and buttons through real discord.py, the core and SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.discord import client as client_module
from adapters.discord import render
from bot import texts
from bot.commands import VERBS
from bot.model import InboundEvent, Platform, Reply
from tests.adapters.discord.conftest import DiscordHarness
from tests.fakes.discord_payloads import PERM_SEND_MESSAGES, FakeMember, FakeUser
from tests.fakes.fake_discord import FakeDiscord

EPHEMERAL = 64
LINK = "https://example.com/draft"


async def ask(bot: DiscordHarness, **options: Any) -> str:
    """bob volunteers for python, alice asks; returns the relay post's message id."""
    await bot.slash("bob", "volunteer", topics="python")
    await bot.slash("alice", "ask", link=LINK, topics="python", **options)
    await bot.deliver()
    (post,) = bot.posts()
    return str(post["id"])


def status_of(bot: DiscordHarness, message_id: str) -> str:
    message = bot.fake.message(message_id)
    assert message is not None
    (embed,) = message["embeds"]
    return next(f["value"] for f in embed["fields"] if f["name"] == "Status")


def buttons_of(bot: DiscordHarness, message_id: str) -> list[str]:
    message = bot.fake.message(message_id)
    assert message is not None
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


async def test_ask_answers_ephemerally_then_posts(bot: DiscordHarness) -> None:
    """The asker gets an ephemeral confirmation at once; the relay post follows from the outbox."""
    callback = await bot.slash("alice", "ask", link=LINK, topics="python", note="section 2")
    assert callback.type == 4
    assert callback.data is not None
    assert callback.data["flags"] == EPHEMERAL
    assert callback.data["content"].startswith("Request #1 is open")
    assert bot.posts() == []  # nothing posted while answering: the ack waits on no platform call
    await bot.deliver()
    (post,) = bot.posts()
    (embed,) = post["embeds"]
    assert embed["title"] == "Review request #1"
    assert embed["url"] == LINK
    assert {f["name"]: f["value"] for f in embed["fields"]}["Note"] == "section 2"
    assert buttons_of(bot, post["id"]) == ["review:claim:1"]
    (create,) = bot.fake.requests_matching(f"POST /channels/{bot.reviews}/messages")
    assert create.json["nonce"] == "1"  # the outbox row id
    assert create.json["enforce_nonce"] is True


async def test_volunteers_are_mentioned_and_only_they(bot: DiscordHarness) -> None:
    """The matched volunteer is pinged in the post; allowed_mentions allows nobody else."""
    await ask(bot, note="@everyone @here <@&123> <@456> look")
    (create,) = bot.fake.requests_matching(f"POST /channels/{bot.reviews}/messages")
    assert create.json["content"] == f"<@{bot.user('bob')}>" + render.MENTION_NOTE
    assert create.json["allowed_mentions"] == {"parse": [], "users": [int(bot.user("bob"))]}


async def test_no_answer_or_edit_can_ping(bot: DiscordHarness) -> None:
    """Every message, edit, DM and interaction answer says who may be pinged: nobody, or the
    relay post's own volunteers. Never @everyone, roles or whoever the text names."""
    message_id = await ask(bot, note="@everyone")
    await bot.react("carol", message_id, "👀")
    await bot.react("bob", message_id, "👀")
    await bot.deliver()
    calls = bot.fake.requests_matching("POST /channels/*/messages")
    calls += bot.fake.requests_matching("PATCH /channels/*/messages/*")
    bodies = [c.json for c in calls]
    bodies += [c.json["data"] for c in bot.fake.requests_matching("POST /interactions/*")]
    assert len(bodies) >= 6  # 2 answers, the post, its edit, a refusal DM, the requester's DM
    for body in bodies:
        assert body["allowed_mentions"]["parse"] == []
        assert body["allowed_mentions"].get("users", []) in ([], [int(bot.user("bob"))])
        assert "roles" not in body["allowed_mentions"]


async def test_claim_by_reaction_edits_post_and_tells_requester(bot: DiscordHarness) -> None:
    """👀 claims: the post shows the claimer and offers Done/Release; the requester gets a DM."""
    message_id = await ask(bot)
    await bot.react("bob", message_id, "👀")
    await bot.deliver()
    assert status_of(bot, message_id) == "claimed by bob"
    assert buttons_of(bot, message_id) == ["review:done:1", "review:release:1"]
    assert bot.fake.hits(f"PATCH /channels/{bot.reviews}/messages/{message_id}") == 1
    assert bot.dms("alice") == [f"bob claimed your request #1 ({LINK})."]


async def test_second_claimer_is_refused_by_dm(bot: DiscordHarness) -> None:
    """A 👀 on a claimed request changes nothing; its author hears why, by DM."""
    message_id = await ask(bot)
    await bot.react("bob", message_id, "👀")
    await bot.react("carol", message_id, "👀")
    await bot.deliver()
    assert status_of(bot, message_id) == "claimed by bob"
    (refusal,) = bot.dms("carol")
    assert "already claimed by bob" in refusal


async def test_removing_the_reaction_releases(bot: DiscordHarness) -> None:
    """The claimer taking back their 👀 releases the request; the post offers Claim again."""
    message_id = await ask(bot)
    await bot.react("bob", message_id, "👀")
    await bot.react("bob", message_id, "👀", add=False)
    await bot.deliver()
    assert status_of(bot, message_id) == "open"
    assert buttons_of(bot, message_id) == ["review:claim:1"]
    assert bot.dms("alice")[-1] == "bob released your request #1; it is open again."


async def test_add_after_remove_is_a_new_claim(bot: DiscordHarness) -> None:
    """👀, un-👀, 👀 again: the third event is not mistaken for a replay of the first."""
    message_id = await ask(bot)
    await bot.react("bob", message_id, "👀")
    await bot.react("bob", message_id, "👀", add=False)
    await bot.react("bob", message_id, "👀")
    await bot.deliver()
    assert status_of(bot, message_id) == "claimed by bob"
    keys = [
        event.event_key
        for event, _ in bot.inbox.handled
        if event.event_key.startswith("discord:rx")
    ]
    assert len(keys) == len(set(keys)) == 3


async def test_done_by_button(bot: DiscordHarness) -> None:
    """Done, then its form sent blank: the presser is thanked ephemerally and the post shows it
    done, buttonless."""
    message_id = await ask(bot)
    await bot.click("bob", message_id, "review:claim:1")
    await bot.deliver()  # the edit that shows the Done button
    form = await bot.click("bob", message_id, "review:done:1")
    assert form.type == 9
    assert form.data is not None
    callback = await bot.submit("bob", form.data["custom_id"], "")
    assert callback.type == 4
    assert callback.data is not None
    assert callback.data["flags"] == EPHEMERAL
    assert callback.data["content"] == "Thank you! Request #1 is marked done."
    await bot.deliver()
    assert status_of(bot, message_id) == "done by bob"
    assert buttons_of(bot, message_id) == []


async def test_button_refusal_is_an_ephemeral_reply(bot: DiscordHarness) -> None:
    """A refused press is answered in place, not by DM."""
    message_id = await ask(bot)
    await bot.click("bob", message_id, "review:claim:1")
    callback = await bot.click("carol", message_id, "review:claim:1")
    assert callback.data is not None
    assert "already claimed by bob" in callback.data["content"]
    await bot.deliver()
    assert bot.dms("carol") == []


async def test_setup_needs_manage_server(bot: DiscordHarness) -> None:
    """Manage Server makes a member an admin of the community; others are refused."""
    refused = await bot.slash("alice", "setup", tz="Europe/Berlin")
    assert refused.data is not None
    assert "admin" in refused.data["content"]
    done = await bot.slash("admin", "setup", tz="Europe/Berlin", time="10:00")
    assert done.data is not None
    assert "10:00 (Europe/Berlin)" in done.data["content"]


REQUIRED: dict[str, dict[str, Any]] = {
    "ask": {"link": LINK},
    "volunteer": {"topics": "python"},
    "pause": {"days": 3},
    **{verb: {"id": 1} for verb in ("claim", "release", "cancel", "reopen", "snooze", "done")},
}


async def test_every_verb_answers(bot: DiscordHarness) -> None:
    """Every subcommand reaches the core and gets an ephemeral answer (typed or free text)."""
    for verb in VERBS:
        callback = await bot.slash("carol", verb, **REQUIRED.get(verb, {}))
        assert callback.type == 4, verb
        assert callback.data is not None
        assert callback.data["flags"] == EPHEMERAL
        assert callback.data["content"], verb


async def test_failure_is_an_apology_not_a_traceback(
    bot: DiscordHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash in the core is logged with the event key; the user reads one sentence."""

    async def broken(event: InboundEvent) -> Reply:
        msg = "database on fire"
        raise RuntimeError(msg)

    bot.inbox.handle = broken  # type: ignore[method-assign]
    callback = await bot.slash("alice", "mine")
    assert callback.data is not None
    assert callback.data["content"] == texts.APOLOGY
    assert any(
        "discord:" in r.getMessage() and r.exc_info
        for r in caplog.records
        if r.levelname == "ERROR"
    )


async def test_stale_command_definition_gets_an_apology(bot: DiscordHarness) -> None:
    """Options that do not match our definition (Discord not yet synced) still get an answer."""
    callback = await bot.slash("alice", "ask", url="https://example.com")  # no `link`
    assert callback.data is not None
    assert callback.data["content"] == texts.APOLOGY


async def test_slow_core_defers_then_follows_up(
    bot: DiscordHarness, fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the core takes long, the interaction is acknowledged in time and answered after."""
    monkeypatch.setattr(client_module, "DEFER_AFTER", 0.05)
    handle = bot.inbox.handle

    async def slow(event: InboundEvent) -> Reply:
        await asyncio.sleep(0.2)
        return await handle(event)

    bot.inbox.handle = slow  # type: ignore[method-assign]
    callback = await bot.slash("alice", "mine")
    assert callback.type == 5  # deferred, "thinking"
    follow_up = await fake.wait_for("POST /webhooks/*")
    assert follow_up.json["content"] == "You have no open requests or claims."
    assert follow_up.json["flags"] == EPHEMERAL


async def test_another_bots_reaction_claims_nothing(bot: DiscordHarness) -> None:
    """A bot's 👀 (a triage or bridge bot reacting to every message) claims nothing: reconcile
    skips bots too, so a human's 👀 right after it is the claim."""
    triage = FakeUser(username="triage", bot=True)
    bot.guild.members.append(FakeMember(user=triage))
    message_id = await ask(bot)
    await bot.fake.add_reaction(bot.guild.id, bot.reviews, message_id, triage, "👀")
    await bot.react("bob", message_id, "👀")
    await bot.inbox.wait_for(
        lambda handled: any(e.member.user_id == bot.user("bob") for e, _ in handled[-2:])
    )
    await bot.deliver()
    assert status_of(bot, message_id) == "claimed by bob"
    assert all(event.member.user_id != triage.id for event, _ in bot.inbox.handled)


async def test_setup_where_the_bot_cannot_post_keeps_the_review_channel(
    bot: DiscordHarness,
) -> None:
    """/review setup in a channel the bot cannot send to (Discord's `app_permissions` lack Send
    Messages) is refused with the reason; the review channel stays where it was."""
    for role in bot.guild.roles:
        role.permissions &= ~PERM_SEND_MESSAGES
    bot.guild.everyone_permissions &= ~PERM_SEND_MESSAGES
    general = bot.guild.channel("general").id

    interaction_id = await bot.fake.send_slash_command(
        bot.guild.id, general, bot.user("admin"), subcommand="setup", options={}
    )
    answer = await bot.fake.wait_for_interaction_response(interaction_id)

    assert answer.data is not None
    assert answer.data["content"] == texts.SETUP_BOT_CANNOT_POST
    known = await bot.core.store.run(lambda tx: tx.community(Platform.DISCORD, bot.guild.id))
    assert known is not None
    assert known.review_channel_id == bot.reviews
