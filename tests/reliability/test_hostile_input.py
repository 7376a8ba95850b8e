"""Hostile input through the real Slack app: nothing pings, nothing lies, bad links write nothing.

Every chat.postMessage, chat.update and chat.postEphemeral FakeSlack records, and every slash
command ack, is searched: no `<!channel>`/`<!here>`/`<!everyone>`/`<!subteam...>` (no `<!` at
all), no `<@...>` but the volunteers the bot chose to mention, no masked link whose label differs
from its target, no `link_names` or `parse`, no bidi or invisible characters from what people
typed. The hypothesis fuzz of 10,000 commands through Dispatcher.handle is at the end (slow).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import commands, texts
from bot.dispatcher import Dispatcher, Rules
from bot.model import CommandReceived, Member, Platform, Reply
from storage.sqlite import SqliteStore
from tests.adapters.slack.conftest import REVIEW_CHANNEL, SlackHarness
from tests.conftest import COMMUNITY
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_slack import FakeSlack
from tests.reliability import corpus
from tests.reliability.conftest import Figures, db_path, fingerprint, outgoing, slack_bot

VOLUNTEERS = (("U0VOLA", "vola"), ("U0VOLB", "volb"))
ALLOWED_MENTIONS = frozenset(f"@{user_id}" for user_id, _ in VOLUNTEERS)
_ANGLE = re.compile(r"<([^<>]*)>")
_LINK = re.compile(r"^(https?://[^|]+)\|(.+)$", re.DOTALL)
_INVISIBLE = frozenset("\u200b\u200c\u2060\ufeff") | corpus.BIDI_CONTROLS
FUZZ_EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ", "10000"))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _problems(text: str, *, may_mention: bool) -> list[str]:
    """What is wrong with one outgoing text (empty when it is safe)."""
    found = []
    for inner in _ANGLE.findall(text):
        if inner in ALLOWED_MENTIONS and may_mention:
            continue
        link = _LINK.match(inner)
        if link is None:
            found.append(f"markup <{inner[:60]}>")
            continue
        target, label = link.groups()
        if not target.replace("%7C", "|").startswith(label.removesuffix("…")):
            found.append(f"masked link {inner[:80]}")
    if "<!" in text:
        found.append("broadcast markup")
    found += [f"U+{ord(c):04X}" for c in set(text) & _INVISIBLE]
    found += [f"control U+{ord(c):04X}" for c in set(text) if ord(c) < 32 and c != "\n"]
    if "\n\n\n" in text:
        found.append("blank-line run")
    if "\n" in text and "*Status:*" in text:
        found.append("forged status line")  # the real one is a context element of its own
    return found


def _audit(slack: FakeSlack, acks: list[str]) -> list[str]:
    """Every problem in what the bot sent to Slack or answered; names the call and the text."""
    problems = []
    for call in outgoing(slack):
        banned = {"link_names", "parse"} & set(call.args)
        if banned:
            problems.append(f"{call.method} sets {banned}")
        relay = call.method != "chat.postEphemeral" and call.args.get("channel") == REVIEW_CHANNEL
        for text in _strings({k: v for k, v in call.args.items() if k != "channel"}):
            problems += [f"{call.method}: {p}" for p in _problems(text, may_mention=relay)]
    for ack in acks:
        problems += [f"ack: {p}" for p in _problems(ack, may_mention=False)]
    return problems


async def _ack(bot: SlackHarness, text: str, who: tuple[str, str]) -> str:
    answer = await bot.command(text, who)
    assert answer.status == 200
    return str(answer.json().get("text", "")) if answer.text else ""


async def _hostile_round(bot: SlackHarness, n: int, note: str, acks: list[str]) -> None:
    """Ask with a hostile note and requester name, claim, finish with a hostile response."""
    requester = (f"U0REQ{n:04d}", corpus.NAMES[n % len(corpus.NAMES)])
    claimer = (f"U0CLM{n:04d}", corpus.NAMES[(n + 3) % len(corpus.NAMES)])
    asked = await _ack(bot, f"https://example.com/h{n} #python {note}", requester)
    acks.append(asked)
    opened = re.match(r"Request #(\d+) is open", asked)
    assert opened, asked
    rid = opened.group(1)
    acks.append(await _ack(bot, f"claim {rid}", claimer))
    acks.append(await _ack(bot, f"done {rid} {note}", claimer))
    acks.append(await _ack(bot, note, requester))  # an unknown verb, echoed back
    acks.append(await _ack(bot, f"https://example.com/t{n} #{note}", requester))  # a bad topic


async def test_hostile_notes_names_and_responses_ping_nobody(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, figures: Figures
) -> None:
    """Corpus notes, names and responses reach Slack escaped: no ping, no masked link, no trick."""
    for user_id, name in VOLUNTEERS:
        slack.add_user(user_id, name=name)
    acks: list[str] = []
    notes = [form for note in corpus.NOTES for form in corpus.slack_forms(note)]
    async with slack_bot(tmp_path, slack, clock, requests_per_hour=100_000) as bot:
        for volunteer in VOLUNTEERS:
            await bot.command("volunteer python", volunteer)
        for n, note in enumerate(notes):
            await _hostile_round(bot, n, note, acks)
            clock.advance(minutes=1)
        await bot.deliver()
        # A late 👀 on a finished post is refused in an ephemeral that names the holder.
        for index in range(0, len(notes), 7):
            await bot.react(bot.post_ts(index), VOLUNTEERS[0])
        await bot.deliver()

    sent = outgoing(slack)
    assert _audit(slack, acks) == []
    mentioned = {m for c in sent for t in _strings(c.args) for m in re.findall(r"<@(\w+)>", t)}
    assert mentioned == {user_id for user_id, _ in VOLUNTEERS}  # the volunteers are still pinged
    figures["payloads"] = len(notes)
    figures["outgoing_calls"] = len(sent)
    figures["acks"] = len(acks)
    figures["problems"] = 0


async def test_display_names_are_cleaned_like_notes(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock
) -> None:
    """A requester name with a bidi override, a newline or a zero-width space is relayed clean."""
    acks: list[str] = []
    async with slack_bot(tmp_path, slack, clock, requests_per_hour=100_000) as bot:
        for n, name in enumerate(corpus.TRICK_NAMES):
            acks.append(await _ack(bot, f"https://example.com/n{n} #python", (f"U0N{n}", name)))
        await bot.deliver()

    assert _audit(slack, acks) == []


@pytest.mark.parametrize(("link", "why"), corpus.BAD_LINKS, ids=[w for _, w in corpus.BAD_LINKS])
async def test_bad_link_is_refused_with_a_reason_and_writes_nothing(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock, link: str, why: str
) -> None:
    """A link that is not a plain http(s) link to a visible host is refused; nothing changes."""
    async with slack_bot(tmp_path, slack, clock) as bot:
        await bot.command("volunteer python", VOLUNTEERS[0])
        await bot.deliver()
        before, calls = fingerprint(db_path(tmp_path)), len(slack.calls())
        replies = [
            await _ack(bot, f"{link} #python please", ("U0BAD", "bad")),
            await _ack(bot, f"ask {link} #python", ("U0BAD", "bad")),
        ]
        await bot.deliver()
        after = fingerprint(db_path(tmp_path))

    for reply in replies:
        assert reply
        assert not reply.startswith("Request #")
        assert reply != texts.APOLOGY
    assert after == before
    assert len(slack.calls()) == calls


@pytest.mark.parametrize(
    ("link", "why"), corpus.BAD_LINK_FIELDS, ids=[w for _, w in corpus.BAD_LINK_FIELDS]
)
async def test_bad_link_field_is_refused_and_writes_nothing(
    tmp_path: Path, clock: FakeClock, link: str, why: str
) -> None:
    """A link option with spaces around or inside it is refused (options: Discord's shape)."""
    # Through FakeDiscord's /review ask link:... too: test_discord_hostile_input.py.
    store = await SqliteStore.open(tmp_path / "relay.db")
    try:
        dispatcher = Dispatcher(store=store, clock=clock, rules=Rules(), platforms=[])
        await dispatcher.connect_community(COMMUNITY)
        before = fingerprint(tmp_path / "relay.db")
        reply = await dispatcher.handle(
            CommandReceived(
                event_key="options",
                member=Member(
                    platform=Platform.CONSOLE, community_id="local", user_id="u", display_name="u"
                ),
                channel_id="reviews",
                text="ask",
                options=(("link", link), ("topics", "python")),
                received_at=clock.now(),
            )
        )
    finally:
        await store.close()

    assert reply.text
    assert not reply.text.startswith("Request #")
    assert fingerprint(tmp_path / "relay.db") == before


async def test_homograph_hosts_are_shown_in_punycode(
    tmp_path: Path, slack: FakeSlack, clock: FakeClock
) -> None:
    """A link whose host mixes scripts is accepted but posted with its ASCII (punycode) host."""
    async with slack_bot(tmp_path, slack, clock, requests_per_hour=100) as bot:
        for n, (link, _) in enumerate(corpus.HOMOGRAPHS):
            assert (await _ack(bot, f"{link} #python", (f"U0H{n}", "h"))).startswith("Request #")
        await bot.deliver()

    posts = [json.dumps(c.args, ensure_ascii=False) for c in bot.posts()]
    for (link, ascii_host), post in zip(corpus.HOMOGRAPHS, posts, strict=True):
        unicode_host = link.split("/")[2]
        assert ascii_host in post
        assert unicode_host not in post


# --- the fuzz -----------------------------------------------------------------------------------

_VERBS = [*commands.VERBS, "Claim", "DONE", "ask:", "x", "", "🙂"]
_WORDS = st.one_of(
    st.sampled_from(corpus.MENTIONS + corpus.MARKUP + [link for link, _ in corpus.BAD_LINKS]),
    st.sampled_from(["#python", "#go", "#", "##", "#" + "a" * 40, "local", "!local", "confirm"]),
    st.sampled_from(["1", "2", "#1", "0", "-1", "999999999", "1" * 30, "١٢", "1.5", "0x1"]),
    st.sampled_from(
        ["tz=Europe/Berlin", "tz=Mars/Olympus", "time=25:00", "share=off", "22:00-08:00"]
    ),
    st.sampled_from(["https://example.com/a", "https://example.com/b", "www.example.com"]),
    st.text(max_size=30),
)
# Commands as people mean them, so the fuzz also reaches the use cases, not only the parser.
_TEMPLATES = [
    "https://example.com/{n} #python {word}",
    "ask https://example.com/{n} #go #python {word}",
    "{word} #python",
    "claim {n}",
    "release {n}",
    "done {n} {word}",
    "cancel {n}",
    "reopen {n}",
    "snooze {n}",
    "nudge {n}",
    "close {n} enough",
    "volunteer python go",
    "unvolunteer {word}",
    "pause {n}",
    "resume",
    "list #python",
    "mine",
    "stats",
    "quiet 22:00-08:00 Europe/Berlin",
    "quiet off",
    "setup tz=Europe/Berlin time=08:30 share=off",
    "link",
    "link {word}",
    "unlink",
    "export-me",
    "forget-me confirm",
]
_TEXTS = st.one_of(
    st.builds(
        lambda template, n, word: template.format(n=n, word=word),
        st.sampled_from(_TEMPLATES),
        st.integers(min_value=1, max_value=40),
        _WORDS,
    ),
    st.builds(
        lambda verb, words: " ".join([verb, *words]),
        st.sampled_from(_VERBS),
        st.lists(_WORDS, max_size=6),
    ),
    st.text(max_size=300),
    st.sampled_from(corpus.NOTES),
)
_OPTIONS = st.none() | st.lists(
    st.tuples(
        st.sampled_from(["link", "topics", "note", "id", "days", "response", "tz", "local"]),
        st.one_of(_WORDS, st.text(max_size=50)),
    ),
    max_size=4,
).map(tuple)
_ACTORS = st.sampled_from(["requester", "volunteer", "other", "admin"])


# Every sentence a use case refuses with (bot/usecases, bot/transitions): after any of them the
# store must be as it was.
_REFUSALS = [
    "UNKNOWN_REQUEST",
    "NOT_OPEN",
    "OWN_REQUEST",
    "ALREADY_CLAIMED",
    "ALREADY_YOURS",
    "ALREADY_REVIEWED",
    "NOT_CLAIMED",
    "NOT_CLAIMER",
    "NOT_REQUESTER",
    "NOT_ACTIVE",
    "NOT_REQUESTER_REOPEN",
    "NOT_EXPIRED",
    "CHANGED_MEANWHILE",
    "RATE_LIMITED",
    "DUPLICATE",
    "NOT_VOLUNTEER",
    "SETUP_ADMIN_ONLY",
    "LINK_BAD_CODE",
    "LINK_SAME",
    "NOT_LINKED",
    "UNLINK_ACTIVE_REQUEST",
    "NOT_YOURS_TO_SNOOZE",
    "NOT_YOUR_REQUEST",
    "RENOTIFY_DAILY",
]
_REFUSAL = re.compile(
    "|".join(
        "(?:" + re.sub(r"\\\{[^}]*\\\}", ".*", re.escape(getattr(texts, name))) + ")$"
        for name in _REFUSALS
    ),
    re.DOTALL,
)


def _data_version(db: Any) -> int:
    return int(db.execute("PRAGMA data_version").fetchone()[0])


@pytest.mark.slow
def test_fuzzed_commands_never_raise_and_refusals_write_nothing(
    tmp_path: Path, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    """10,000 generated commands: no exception, a reply to each, no write by any refused input."""
    caplog.set_level(logging.ERROR)
    path = tmp_path / "fuzz.db"
    clock = FakeClock()
    counts = {"examples": 0, "refused_by_parser": 0, "refused_by_rule": 0, "changed_store": 0}
    with asyncio.Runner() as runner:
        store = runner.run(SqliteStore.open(path))
        dispatcher = Dispatcher(
            store=store, clock=clock, rules=Rules(), platforms=[Platform.CONSOLE]
        )
        runner.run(dispatcher.connect_community(COMMUNITY))
        watcher = sqlite3.connect(path)

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(text=_TEXTS, options=_OPTIONS, actor=_ACTORS)
        def one(text: str, options: tuple[tuple[str, str], ...] | None, actor: str) -> None:
            counts["examples"] += 1
            clock.advance(minutes=1)
            verb = text.split(maxsplit=1)[0] if options is not None and text.split() else text
            event = CommandReceived(
                event_key=f"fuzz:{counts['examples']}",
                member=Member(
                    platform=Platform.CONSOLE,
                    community_id="local",
                    user_id=actor,
                    display_name=actor,
                ),
                channel_id="reviews",
                text=verb if options is not None else text,
                options=options,
                received_at=clock.now(),
                is_admin=actor == "admin",
            )
            before = _data_version(watcher)
            reply: Reply = runner.run(dispatcher.handle(event))
            changed = _data_version(watcher) != before
            parsed = (
                commands.parse(event.text)
                if options is None
                else commands.parse_options(event.text, dict(options))
            )
            assert reply.text  # every command gets an answer, refusals included
            if isinstance(parsed, commands.UsageError):
                counts["refused_by_parser"] += 1
                assert reply.text == parsed.message
                assert not changed
            elif _REFUSAL.match(reply.text):
                counts["refused_by_rule"] += 1
                assert not changed, reply.text
            counts["changed_store"] += changed

        started = time.perf_counter()
        try:
            one()
        finally:
            watcher.close()
            runner.run(store.close())
        elapsed = time.perf_counter() - started

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    for name, value in counts.items():
        figures[name] = value
    figures["wall_s"] = elapsed
    assert counts["refused_by_parser"] > 0
    assert counts["refused_by_rule"] > 0
    assert counts["changed_store"] > 0
