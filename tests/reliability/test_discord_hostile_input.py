"""Hostile input through the real discord.py client: `/review ask` with the corpus, no pings.

Every message the bot creates or edits on FakeDiscord (channel posts, DMs, edits, interaction
responses and follow-ups) is checked at the wire: `allowed_mentions` is present, parses nothing
(no @everyone/@here, no roles, no users by parsing), and lists users only on relay posts, only
the volunteers the bot chose. What Discord would ping is computed from that: nobody else, whatever
the content says. Bad links are refused with a reason and write nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot import texts
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_discord import FakeDiscord, RecordedRequest
from tests.reliability import corpus
from tests.reliability.conftest import DiscordBot, Figures, db_path, discord_bot, fingerprint

# What Discord accepts in these options (it refuses longer values before they reach the bot).
NOTE_MAX, TOPICS_MAX, RESPONSE_MAX = 500, 400, 1000
_OUTGOING = (
    "POST /channels/*/messages",
    "PATCH /channels/*/messages/*",
    "POST /interactions/*/callback",
    "POST /webhooks/*",
    "PATCH /webhooks/*/messages/*",
)


def _bodies(fake: FakeDiscord) -> list[tuple[RecordedRequest, dict[str, Any]]]:
    """Every message body the bot sent (interaction callbacks: their `data`), with its request."""
    found = []
    for pattern in _OUTGOING:
        for request in fake.requests_matching(pattern):
            body = request.json if isinstance(request.json, dict) else {}
            if request.path.endswith("/callback"):
                if body.get("type") not in (4, 7):
                    continue  # defers and modals carry no message
                body = body.get("data") or {}
            found.append((request, body))
    return found


def _problems(fake: FakeDiscord, relay_channel: str, volunteers: set[str]) -> list[str]:
    problems = []
    for request, body in _bodies(fake):
        where = f"{request.method} {request.path}"
        allowed = body.get("allowed_mentions")
        if not isinstance(allowed, dict):
            problems.append(f"{where}: no allowed_mentions")
            continue
        if allowed.get("parse") != []:
            problems.append(f"{where}: parse {allowed.get('parse')}")
        if allowed.get("roles"):
            problems.append(f"{where}: roles {allowed['roles']}")
        users = {str(u) for u in allowed.get("users") or []}
        relay = request.method == "POST" and request.path == f"/channels/{relay_channel}/messages"
        if users and not (relay and users <= volunteers):
            problems.append(f"{where}: pings users {users}")
    return problems


async def _ask(bot: DiscordBot, who: str, **options: str) -> str:
    answer = await bot.fake.wait_for_interaction_reply(
        await bot.fake.send_slash_command(
            bot.guild.id, bot.reviews, bot.user(who), subcommand="ask", options=options
        )
    )
    return str(answer["content"])


async def test_hostile_asks_through_discord_ping_nobody(
    tmp_path: Path, fake_discord: FakeDiscord, clock: FakeClock, figures: Figures
) -> None:
    """Corpus notes, topics, names and responses via /review: nothing pings but the volunteers."""
    guild = fake_discord.guilds[0]
    names = corpus.NAMES + corpus.TRICK_NAMES
    for index, name in enumerate(names):  # requesters and claimers wear the hostile names
        guild.member(f"d{index:03d}").nick = name
        guild.member(f"d{index + 100:03d}").nick = name
    notes = [note[:NOTE_MAX] for note in corpus.NOTES if note.strip()]
    async with discord_bot(tmp_path, fake_discord, clock, requests_per_hour=100_000) as bot:
        volunteers = {bot.user("vola"), bot.user("volb")}
        for volunteer in ("vola", "volb"):
            await bot.slash(volunteer, "volunteer", topics="python")
        for n, note in enumerate(notes):
            requester, claimer = f"d{n % len(names):03d}", f"d{100 + (n + 3) % len(names):03d}"
            link = f"https://example.com/h{n}"
            asked = await _ask(bot, requester, link=link, topics="python", note=note)
            opened = re.match(r"Request #(\d+) is open", asked)
            assert opened, asked
            rid = int(opened.group(1))
            await _ask(bot, requester, link=f"{link}/t", topics=note[:TOPICS_MAX])
            await bot.slash(claimer, "claim", id=rid)
            await bot.slash(claimer, "done", id=rid, response=note[:RESPONSE_MAX])
            clock.advance(minutes=1)
        await bot.deliver()

    problems = _problems(fake_discord, bot.reviews, volunteers)
    assert problems == []
    mentioned = {
        str(u)
        for _, body in _bodies(fake_discord)
        for u in body["allowed_mentions"].get("users", [])
    }
    assert mentioned == volunteers  # the volunteers are still pinged on relay posts
    figures["payloads"] = len(notes)
    figures["names"] = len(names)
    figures["outgoing_bodies"] = len(_bodies(fake_discord))
    figures["problems"] = len(problems)


# Discord itself refuses a link option over 2,000 characters (the option's max_length).
_LINKS = [link for link, _ in corpus.BAD_LINKS + corpus.BAD_LINK_FIELDS if len(link) <= 2000]


async def test_bad_links_through_discord_are_refused_and_write_nothing(
    tmp_path: Path, fake_discord: FakeDiscord, clock: FakeClock, figures: Figures
) -> None:
    """Each bad link as /review ask link:...: refused with a reason, nothing written or posted."""
    refused = 0
    async with discord_bot(tmp_path, fake_discord, clock, requests_per_hour=100_000) as bot:
        await bot.slash("vola", "volunteer", topics="python")
        await bot.deliver()
        for bad in _LINKS:
            before, creates = (
                fingerprint(db_path(tmp_path)),
                len(bot.fake.requests_matching("POST /channels/*/messages")),
            )
            reply = await _ask(bot, "alice", link=bad, topics="python")
            await bot.deliver()
            assert reply, bad
            assert not reply.startswith("Request #"), bad
            assert reply != texts.APOLOGY, bad
            assert fingerprint(db_path(tmp_path)) == before, bad
            assert len(bot.fake.requests_matching("POST /channels/*/messages")) == creates, bad
            refused += 1
    figures["links"] = refused
