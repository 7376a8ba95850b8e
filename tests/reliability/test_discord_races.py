"""Races through the real discord.py client: claims from both platforms at once, 👀 flapping.

The claim race runs one request's relay posts on Discord and on Slack and sends, all released at
the same instant, 👀 reactions over FakeDiscord's gateway, `/review claim` interactions over the
gateway, and Slack `/review claim` commands and `reaction_added` events over HTTP, into one core
and one SqliteStore. Exactly one claimer may win and every other one must be told who holds the
request, each where the bot answers on its platform: the interaction's ephemeral reply, a DM for
a Discord reaction (a reaction has nowhere else to answer), the Slack ack or an ephemeral.

Flapping: Discord delivers a session's gateway events in order (each frame has the next sequence
number), so the end state must equal the reaction Discord shows at the end. On RESUME Discord
replays from the sequence number the client sends; replayed frames keep their sequence numbers
and must change nothing (the inbound key is `discord:rx:<session>:<seq>:...`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot import texts
from bot.model import ReactionChanged, Status
from tests.fakes.discord_payloads import FLAG_EPHEMERAL, JSON
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_slack import FakeSlack
from tests.reliability.conftest import DiscordBot, Figures, db_path, discord_bot, percentile, query

CLAIMS = {
    "discord_reaction": 150,
    "discord_command": 150,
    "slack_command": 120,
    "slack_reaction": 80,
}
LINK = "https://example.com/race"


@dataclass(frozen=True)
class Attempt:
    kind: str
    user_id: str
    text: str  # what the claimer was told at once ("" where the answer comes as a notice)
    ephemeral: bool
    seconds: float


async def _claim(bot: DiscordBot, kind: str, index: int, gate: asyncio.Event) -> Attempt:
    """One claimer, waiting at the gate, then claiming the way `kind` says."""
    fake, slack = bot.fake, bot.both()
    await gate.wait()
    started = time.perf_counter()
    text, ephemeral = "", True
    if kind.startswith("discord"):
        member = bot.guild.member(f"d{index:03d}")  # each Discord claimer a guild member
        user_id = member.id
    if kind == "discord_reaction":
        await fake.add_reaction(bot.guild.id, bot.reviews, bot.posts()[0]["id"], member.id, "👀")
    elif kind == "discord_command":
        interaction = await fake.send_slash_command(
            bot.guild.id, bot.reviews, member.id, subcommand="claim", options={"id": 1}
        )
        answer = await fake.wait_for_interaction_reply(interaction, timeout=60)
        text, ephemeral = str(answer["content"]), bool(answer["flags"] & FLAG_EPHEMERAL)
    else:
        user_id = f"U0C{index:04d}"
        who = (user_id, f"claimer{index}")
        if kind == "slack_command":
            ack = await slack.command("claim 1", who)
            assert ack.status == 200
            text = ack.json()["text"]
        else:
            assert (await slack.react(slack.post_ts(), who)).status == 200
    return Attempt(kind, user_id, text, ephemeral, time.perf_counter() - started)


def _indexes(kinds: list[str]) -> list[int]:
    """A number per claimer, counted per platform (Discord claimers are guild members d000...)."""
    counters: Counter[str] = Counter()
    numbers = []
    for kind in kinds:
        platform = kind.split("_")[0]
        numbers.append(counters[platform])
        counters[platform] += 1
    return numbers


def _told(bot: DiscordBot, slack: FakeSlack, attempts: list[Attempt]) -> dict[str, str]:
    """What each claimer was told: interaction reply or ack, a Discord DM, a Slack ephemeral."""
    told = {a.user_id: a.text for a in attempts if a.text}
    assert all(a.ephemeral for a in attempts)  # interaction answers are seen by the claimer only
    for attempt in attempts:
        if attempt.kind == "discord_reaction":
            dms = _discord_dm(bot, attempt.user_id)
            assert len(dms) <= 1
            if dms:
                told[attempt.user_id] = dms[0]
    return told | {e["user"]: e["text"] for e in slack.ephemerals}


async def _wait_handled(bot: DiscordBot, count: int) -> None:
    """Wait until the core has handled `count` events in all (5 s per step of progress)."""
    while (seen := len(bot.inbox.handled)) < count:

        def progressed(handled: list[Any], seen: int = seen) -> bool:
            return len(handled) > seen

        await bot.inbox.wait_for(progressed)


def _discord_dm(bot: DiscordBot, user_id: str) -> list[str]:
    channel = bot.fake.dm_channel_for(user_id)
    return [] if channel is None else [str(m["content"]) for m in bot.fake.messages(channel)]


async def test_claims_from_both_platforms_at_once_have_exactly_one_winner(  # noqa: PLR0917 - fixtures
    tmp_path: Path,
    fake_discord: FakeDiscord,
    slack: FakeSlack,
    clock: FakeClock,
    rng: random.Random,
    figures: Figures,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """500 claims at once (Discord 👀 and /review claim, Slack commands and 👀): one holder."""
    caplog.set_level(logging.WARNING)
    kinds = [kind for kind, count in CLAIMS.items() for _ in range(count)]
    rng.shuffle(kinds)
    async with discord_bot(tmp_path, fake_discord, clock, slack=slack) as bot:
        asked = await bot.slash("alice", "ask", link=LINK, topics="python")
        assert asked.data is not None
        assert asked.data["content"].startswith("Request #1 is open")
        await bot.deliver()
        assert len(bot.posts()) == 1
        assert len(bot.both().posts()) == 1  # the same request, relayed to Slack
        before = len(bot.inbox.handled)
        gate = asyncio.Event()
        tasks = [
            asyncio.create_task(_claim(bot, kind, index, gate))
            for kind, index in zip(kinds, _indexes(kinds), strict=True)
        ]
        await asyncio.sleep(0)
        started = time.perf_counter()
        gate.set()
        attempts = list(await asyncio.gather(*tasks))
        await _wait_handled(bot, before + len(kinds))
        elapsed = time.perf_counter() - started
        await bot.deliver()
        request = await bot.core.store.run(lambda tx: tx.request(1))

    assert request is not None
    assert request.status is Status.CLAIMED
    assert request.claimer is not None
    assert query(db_path(tmp_path), "SELECT COUNT(*) FROM claims WHERE request_id = 1") == [(1,)]
    holder_id = request.claimer.user_id
    holder_kind = next(a.kind for a in attempts if a.user_id == holder_id)
    told = _told(bot, slack, attempts)
    if holder_kind.endswith("reaction"):  # a 👀 that worked gets no message: the post says it
        assert holder_id not in told
    else:
        assert told.pop(holder_id) == texts.CLAIMED.format(id=1, link=LINK)
    holder = texts.who(request.claimer)
    assert Counter(told.values()) == {
        texts.ALREADY_CLAIMED.format(id=1, name=holder): len(kinds) - 1
    }
    callbacks = fake_discord.requests_matching("POST /interactions/*/callback")
    assert {c.status for c in callbacks} <= {200, 204}  # all answered within Discord's 3 s
    assert "database is locked" not in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    discord_seconds = [a.seconds for a in attempts if a.kind == "discord_command"]
    figures["claims"] = CLAIMS
    figures["winner_kind"] = holder_kind
    figures["wall_s"] = elapsed
    figures["discord_interaction_p50_ms"] = 1000 * percentile(discord_seconds, 0.5)
    figures["discord_interaction_p99_ms"] = 1000 * percentile(discord_seconds, 0.99)
    figures["deferred"] = sum(1 for c in callbacks if c.json and c.json.get("type") == 5)
    figures["errors"] = 0


# --- a reaction flapping -------------------------------------------------------------------


def _status_field(post: JSON) -> str:
    (embed,) = post["embeds"]
    return next(str(f["value"]) for f in embed["fields"] if f["name"] == "Status")


def _reaction_keys(bot: DiscordBot, start: int) -> list[str]:
    return [e.event_key for e, _ in bot.inbox.handled[start:] if isinstance(e, ReactionChanged)]


async def _state(bot: DiscordBot) -> tuple[Status, str | None]:
    request = await bot.core.store.run(lambda tx: tx.request(1))
    assert request is not None
    return request.status, request.claimer.user_id if request.claimer else None


@pytest.mark.parametrize("count", [20, 21])
async def test_discord_flapping_ends_as_the_reactions_end_and_a_replay_changes_nothing(
    tmp_path: Path, fake_discord: FakeDiscord, clock: FakeClock, figures: Figures, count: int
) -> None:
    """👀 toggled 20 (21) times over the gateway: state = last reaction; a RESUME replay: no-op."""
    async with discord_bot(tmp_path, fake_discord, clock) as bot:
        await bot.slash("alice", "ask", link=LINK, topics="python")
        await bot.deliver()
        post_id = bot.posts()[0]["id"]
        flapper = bot.user("vola")
        assert bot.adapter.client.ws is not None
        position = bot.adapter.client.ws.sequence or 0
        first = len(bot.inbox.handled)
        for index in range(count):
            await bot.react("vola", post_id, "👀", add=index % 2 == 0)
            clock.advance(milliseconds=100)
            status, claimer = await _state(bot)
            assert (status, claimer) in ((Status.OPEN, None), (Status.CLAIMED, flapper))
        await bot.deliver()
        applied = _reaction_keys(bot, first)
        after_flaps = await _state(bot)
        outbox = query(db_path(tmp_path), "SELECT COUNT(*) FROM outbox")
        dms = bot.dms("alice")
        shown = _status_field(bot.posts()[0])

        # The connection drops; the RESUME replays all those frames again (same seq numbers).
        replayed_from = len(bot.inbox.handled)
        resumes = fake_discord.resume_count
        fake_discord.replay_on_resume(position)
        await fake_discord.drop_connection(4000)
        await bot.inbox.wait_for(lambda h: len(_reaction_keys(bot, replayed_from)) >= count)
        assert fake_discord.resume_count == resumes + 1
        await bot.deliver()
        replayed = _reaction_keys(bot, replayed_from)
        after_replay = await _state(bot)

    held = count % 2 == 1  # the last toggle was an add
    users = fake_discord.reaction_users(bot.reviews, post_id, "👀")
    assert users == ([flapper] if held else [])  # what Discord shows at the end
    assert after_flaps == ((Status.CLAIMED, flapper) if held else (Status.OPEN, None))
    assert len(dms) == count  # one DM to the requester per transition: each event applied once
    assert shown == ("claimed by vola" if held else "open")  # the post says what the store says
    assert len(set(applied)) == count
    assert replayed == applied  # the same events, by session and sequence number ...
    assert after_replay == after_flaps  # ... and they changed nothing
    assert query(db_path(tmp_path), "SELECT COUNT(*) FROM outbox") == outbox
    assert bot.dms("alice") == dms
    figures["toggles"] = count
    figures["replayed"] = len(replayed)
    figures["dms"] = len(dms)
