"""Crashes: `python -m bot run` killed with SIGKILL at random moments under load, many times.

The bot runs as a real process, configured for one platform, against a fake served by this test.
Slack: signed slash commands (asks and claims) hit its HTTP port from several clients at once
until the kill; in Socket Mode the same commands come as envelopes on the bot's websocket.
Discord: `/review ask` and `/review claim` interactions and 👀 reactions arrive over
FakeDiscord's gateway, and the bot answers them and delivers over FakeDiscord's REST API.
After every kill the database is checked as it lies on disk: integrity, every acknowledged request
and claim present, every state change with its outbox rows and no outbox row without its change.
After the last restart every notice is delivered. A Slack relay post or DM is delivered once: one
a kill cut off between Slack accepting it and the bot marking it sent is found in its conversation's
history by its metadata. On Discord every new message carries its outbox id as an enforced nonce.

A fresh interpreter spends ~1.4 s importing slack-bolt, aiohttp and pydantic before it serves, which
would make each kill cost that much. So one "zygote" process imports the bot once and forks a
child per cycle; the child runs exactly `python -m bot run` (runpy) and is the process killed.
The final restart is a plain `python -m bot run` subprocess, the command line itself.

Each Discord start costs ~2.3 s more than a Slack one: discord.py waits `guild_ready_timeout` (2 s
in production) for more guilds before it is ready, and the bot serves /healthz only then. So the
Discord test kills 20 times by default (in the default part of the suite), the Slack one 60
times (slow part) and the Slack one in Socket Mode 20 times (default part). RELIABILITY_CRASHES
sets the kills of all three (the issue's 200 by hand: ~3 minutes for Slack, ~10 for Discord); a
Discord run longer than the default is marked slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from adapters.discord.backoff import MAX_DELAY
from adapters.slack.render import render_text
from bot import texts
from bot.model import Status
from tests.adapters.discord.conftest import discord_settings
from tests.adapters.slack.conftest import BOT_TOKEN, REVIEW_CHANNEL, SECRET
from tests.fakes import slack_payloads as p
from tests.fakes.discord_payloads import JSON
from tests.fakes.fake_discord import FakeDiscord, FakeGuild
from tests.fakes.fake_slack import FakeSlack, sign
from tests.net import free_port
from tests.reliability.conftest import (
    DISCORD_MEMBERS,
    Figures,
    posts_by_request,
    query,
    socket_command,
)
from tests.reliability.test_discord_faults import _messages_by_request

CRASHES = int(os.environ.get("RELIABILITY_CRASHES", "60"))
SOCKET_CRASHES = int(os.environ.get("RELIABILITY_CRASHES", "20"))  # in the default part
DISCORD_DEFAULT_CRASHES = 20  # ~3 s each: the most the default part of the suite can afford
DISCORD_CRASHES = int(os.environ.get("RELIABILITY_CRASHES", str(DISCORD_DEFAULT_CRASHES)))
CLIENTS = 6
STARTUP_KILL_SHARE = 0.1  # this share of kills lands while the bot is still starting
_ASKED = re.compile(r"Request #(\d+) is open")
_CLAIMED = re.compile(r"You claimed request #(\d+):")
_DM_CLAIMED = re.compile(r" claimed your request #(\d+) ")
# Imports once, then for each "PORT LOGFILE" line forks a child that runs `python -m bot run`
# (runpy, exactly as the command line does) and reports its pid, then how it ended.
_ZYGOTE = """
import os, runpy, sys
import adapters.discord, adapters.slack, bot.app, bot.cli
for line in sys.stdin:
    port, log = line.split()
    pid = os.fork()
    if pid == 0:
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.environ["HTTP_PORT"] = port
        sys.argv = ["bot", "run"]
        code = 1
        try:
            runpy.run_module("bot", run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        finally:
            os._exit(code)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def _base_env(tmp_path: Path) -> dict[str, str]:
    """What every bot here gets besides its platform (run from tmp_path, so no .env is read)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}",
        "HTTP_HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }


def _slack_env(tmp_path: Path, slack: FakeSlack) -> dict[str, str]:
    """Exactly the settings the Slack-only bot gets."""
    return _base_env(tmp_path) | {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "SLACK_REVIEW_CHANNEL": REVIEW_CHANNEL,
    }


_DISCORD_ENV = (
    "discord_bot_token",
    "discord_api_url",
    "discord_gateway_url",
    "discord_guild_id",
    "discord_review_channel_id",
)


def _discord_env(tmp_path: Path, fake: FakeDiscord, guild: FakeGuild) -> dict[str, str]:
    """The Discord-only bot's settings: those the in-process Discord tests use, as variables."""
    settings = discord_settings(tmp_path, fake, guild)
    env = _base_env(tmp_path)
    for name in _DISCORD_ENV:
        value = getattr(settings, name)
        env[name.upper()] = value.get_secret_value() if name.endswith("token") else str(value)
    # Asks come from the guild's 300 members, many each: the hourly limit is not under test here.
    env["REQUESTS_PER_HOUR"] = "1000000"
    return env


@dataclass
class Bot:
    """One running bot: its port, its log, and how to learn that it ended."""

    port: int
    log: Path
    ended: asyncio.Future[int]
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def healthy(self, http: aiohttp.ClientSession, timeout: float = 15.0) -> None:  # noqa: ASYNC109 - one deadline
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ended.done():
                raise AssertionError(f"bot exited: {self.log.read_text(errors='replace')}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{self.url}/healthz") as answer:
                    if answer.status == 200:
                        return
            await asyncio.sleep(0.02)
        raise AssertionError(f"bot not healthy: {self.log.read_text(errors='replace')}")

    async def kill(self) -> None:
        """SIGKILL this bot (by its own pid) and wait until it is gone."""
        if not self.ended.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        await self.ended


class Zygote:
    """A Python process that has imported the bot once and forks a fresh bot per cycle."""

    def __init__(self, proc: asyncio.subprocess.Process, tmp_path: Path) -> None:
        self._proc = proc
        self._tmp_path = tmp_path
        self._count = 0

    @classmethod
    async def start(cls, tmp_path: Path, env: dict[str, str]) -> Zygote:
        """A zygote whose bots run with `env` (one platform's settings)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _ZYGOTE,
            cwd=tmp_path,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc, tmp_path)

    async def fork(self) -> Bot:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._count += 1
        port, log = free_port(), self._tmp_path / f"bot-{self._count:04d}.log"
        self._proc.stdin.write(f"{port} {log}\n".encode())
        pid = int(await self._proc.stdout.readline())
        ended = asyncio.ensure_future(self._ended(self._proc.stdout))
        return Bot(port, log, ended, pid)

    @staticmethod
    async def _ended(stdout: asyncio.StreamReader) -> int:
        return int(await stdout.readline())

    async def stop(self) -> None:
        if self._proc.returncode is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()


async def _final_run(
    tmp_path: Path,
    env: dict[str, str],
    http: aiohttp.ClientSession,
    before_drain: Callable[[Path], Awaitable[None]] | None = None,
) -> None:
    """The last start, the plain way (`python -m bot run`): healthy, then `before_drain`, the
    outbox drained, and a graceful stop (SIGINT)."""
    path, port, log = tmp_path / "relay.db", free_port(), tmp_path / "bot-final.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp_path,
            env=env | {"HTTP_PORT": str(port)},
            stdout=sink,
            stderr=sink,
        )
    try:
        await Bot(port, log, asyncio.ensure_future(proc.wait()), proc.pid).healthy(http)
        if before_drain is not None:
            await before_drain(path)
        await _drain(path)
        proc.send_signal(signal.SIGINT)  # a graceful stop this time
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()  # only the process this test started
            await proc.wait()


@dataclass
class Ledger:
    """What clients were told (acks) and what each kill left behind."""

    asks: dict[int, str] = field(default_factory=dict)  # acked request id -> link
    claims: dict[int, str] = field(default_factory=dict)  # acked claim: request id -> user id
    sent: int = 0
    unacked: int = 0
    pending_deliveries: dict[tuple[str, ...], int] = field(default_factory=dict)
    startup_kills: int = 0


# Sends one slash command (user id, text) to the bot; returns the reply, or None when the bot
# gave no answer (it was killed).
Send = Callable[[str, str], Awaitable["str | None"]]


async def _client(send: Send, ledger: Ledger, rng: random.Random, tag: str) -> None:
    """Send asks and claims one after another until the bot stops answering."""
    for n in itertools.count():
        open_ids = [i for i in ledger.asks if i not in ledger.claims]
        if open_ids and rng.random() < 0.3:
            rid = rng.choice(open_ids)
            user, text = f"UV{tag}x{n}", f"claim {rid}"
        else:
            user, text = f"UA{tag}x{n}", f"https://example.com/{tag}-{n} #ops"
        ledger.sent += 1
        try:
            reply = await send(user, text)
        except asyncio.CancelledError:
            # Killed mid-command: over HTTP the connection drops, but an envelope waits for its
            # ack until the cycle cancels the client.
            ledger.unacked += 1
            raise
        if reply is None:
            ledger.unacked += 1
            return
        if asked := _ASKED.match(reply):
            ledger.asks[int(asked.group(1))] = f"https://example.com/{tag}-{n}"
        elif claimed := _CLAIMED.match(reply):
            ledger.claims[int(claimed.group(1))] = user


def _over_http(http: aiohttp.ClientSession, bot: Bot) -> Send:
    """Signed slash commands to the bot's HTTP route, as Slack posts them."""

    async def send(user: str, text: str) -> str | None:
        body = p.slash_command_body(text, user_id=user, user_name=user.lower())
        try:
            async with http.post(
                f"{bot.url}/slack/events", data=body, headers=sign(body, SECRET)
            ) as answer:
                return str((await answer.json())["text"]) if answer.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    return send


def _over_the_socket(slack: FakeSlack) -> Send:
    """Slash command envelopes on the Socket Mode connection; the reply comes in the ack."""

    async def send(user: str, text: str) -> str | None:
        try:
            return await socket_command(slack, text, (user, user.lower()))
        except (TimeoutError, ConnectionError):  # the socket died with the bot
            return None

    return send


def _deliveries(slack: FakeSlack) -> Counter[tuple[str, ...]]:
    """Messages Slack accepted, keyed like outbox rows: relay posts by request, DMs by text."""
    found: Counter[tuple[str, ...]] = Counter()
    for rid, count in posts_by_request(slack, REVIEW_CHANNEL).items():
        found["post", str(rid)] = count
    for call in slack.calls("chat.postMessage"):
        if call.status == 200 and str(call.args.get("channel", "")).startswith("U"):
            found["dm", call.args["channel"], call.args["text"]] += 1
    return found


# What identifies an outbox row's delivery on the platform: (id, kind, request_id, user_id, text)
# to a key of `_deliveries`, or None for a row that is not checked (an edit).
DeliveryKey = Callable[[int, str, "int | None", str, str], "tuple[str, ...] | None"]


def _key(
    outbox_id: int, kind: str, request_id: int | None, user_id: str, text: str
) -> tuple[str, ...] | None:
    del outbox_id  # Slack has no idempotency key: a delivery is known by what it says
    if kind == "relay_post":
        return ("post", str(request_id))
    if kind == "direct":
        return ("dm", user_id, render_text(text))
    return None  # edits (chat.update) are idempotent: a repeat is not a duplicate


def _check_store(
    path: Path, ledger: Ledger, delivered: Counter[tuple[str, ...]], key_of: DeliveryKey = _key
) -> int:
    """Assert what must hold on disk after a kill; record deliveries not yet marked sent.

    `delivered` counts what the platform accepted, by the keys `key_of` gives outbox rows.
    """
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        requests = {
            rid: (link, status, claimer)
            for rid, link, status, claimer in db.execute(
                "SELECT id, link, status, claimer_user FROM requests"
            )
        }
        for rid, link in ledger.asks.items():  # every acknowledged request is there
            assert requests[rid][0] == link
        for rid, user in ledger.claims.items():  # every acknowledged claim is there
            assert requests[rid][1:] == ("claimed", user)
        # a request always comes with its relay post, a claim with its post edit and its DM
        posts = dict(
            db.execute(
                "SELECT request_id, COUNT(*) FROM outbox WHERE kind = 'relay_post' "
                "GROUP BY request_id"
            ).fetchall()
        )
        assert posts == dict.fromkeys(requests, 1)
        claims = db.execute(
            "SELECT c.request_id, c.claimed_at, c.status, r.requester_user FROM claims c "
            "JOIN requests r ON r.id = c.request_id"
        ).fetchall()
        assert {status for *_, status, _ in claims} <= {"active"}
        assert sorted(r for r, *_ in claims) == sorted(
            rid for rid, (_, status, _) in requests.items() if status == "claimed"
        )
        # ...each claim with its post edit and its DM to the requester, written in the same
        # transaction (same timestamp), and no edit or DM without its claim
        edits = db.execute(
            "SELECT request_id, created_at FROM outbox WHERE kind = 'post_update'"
        ).fetchall()
        assert Counter(edits) == Counter((rid, at) for rid, at, *_ in claims)
        dms = [
            (user, at, int(_DM_CLAIMED.search(text).group(1)))  # type: ignore[union-attr]
            for user, at, text in db.execute(
                "SELECT user_id, created_at, text FROM outbox WHERE kind = 'direct'"
            )
        ]
        assert Counter(dms) == Counter((user, at, rid) for rid, at, _, user in claims)
        for outbox_id, kind, status, rid, user_id, text in db.execute(
            "SELECT id, kind, status, request_id, user_id, text FROM outbox"
        ):
            key = key_of(outbox_id, kind, rid, user_id, text)
            if key is None:
                continue
            if status == "sent":  # marked sent only after Slack accepted it
                assert delivered[key] >= 1, key
            elif status == "pending" and delivered[key]:
                ledger.pending_deliveries[key] = delivered[key]  # accepted, never marked
        return len(requests)
    finally:
        db.close()


async def _cycle(  # noqa: PLR0917 - the parts of one cycle
    http: aiohttp.ClientSession,
    zygote: Zygote,
    ledger: Ledger,
    rng: random.Random,
    tag: str,
    sender: Callable[[Bot], Send],
) -> None:
    """Start a bot, load it, and kill it at a random moment."""
    bot = await zygote.fork()
    clients: list[asyncio.Task[None]] = []
    try:
        if rng.random() < STARTUP_KILL_SHARE:
            ledger.startup_kills += 1
            await asyncio.sleep(rng.uniform(0.0, 0.3))
        else:
            await bot.healthy(http)
            clients = [
                asyncio.create_task(_client(sender(bot), ledger, rng, f"{tag}c{k}"))
                for k in range(CLIENTS)
            ]
            await asyncio.sleep(rng.uniform(0.05, 0.6))
    finally:
        await bot.kill()
        await asyncio.sleep(0.05)  # let the fake finish requests that arrived before the kill
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)


async def _drain(path: Path, stall: float = 30.0) -> None:
    """Wait until the outbox is empty; fail if `stall` seconds pass without a notice sent (200
    kills leave thousands to send, and how long that takes is not what this checks)."""
    least, progress = None, time.monotonic()
    while time.monotonic() - progress < stall:
        db = sqlite3.connect(path)
        try:
            (pending,) = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"
            ).fetchone()
        finally:
            db.close()
        if pending == 0:
            return
        if least is None or pending < least:
            least, progress = pending, time.monotonic()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{pending} notices still pending, none sent for {stall}s")


def _logs(tmp_path: Path) -> str:
    return "".join(f.read_text(errors="replace") for f in sorted(tmp_path.glob("bot-*.log")))


async def _kill_9_slack(  # noqa: PLR0917 - one Slack kill -9 run, HTTP or Socket Mode
    tmp_path: Path,
    slack: FakeSlack,
    rng: random.Random,
    figures: Figures,
    env: dict[str, str],
    sender: Callable[[aiohttp.ClientSession, Bot], Send],
    crashes: int,
) -> None:
    """Kill the bot `crashes` times under load, checking the store after each kill, then restart
    it once more and check that everything was delivered, a duplicate only where a kill hit."""
    path = tmp_path / "relay.db"
    ledger = Ledger()
    started = time.perf_counter()
    zygote = await Zygote.start(tmp_path, env)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for cycle in range(crashes):
                await _cycle(
                    http, zygote, ledger, rng, f"k{cycle}", functools.partial(sender, http)
                )
                if path.exists():
                    _check_store(path, ledger, _deliveries(slack))
            await zygote.stop()
            await _final_run(tmp_path, env, http)
    finally:
        await zygote.stop()
    delivered = _deliveries(slack)
    requests = _check_store(path, ledger, delivered)
    posts = {int(k[1]): n for k, n in delivered.items() if k[0] == "post"}
    assert sorted(posts) == list(range(1, requests + 1))  # every request posted
    # A relay post or DM a kill cut off between Slack taking it and the bot recording it is found
    # in its conversation's history at the next start: each arrives once.
    assert dict(delivered) == dict.fromkeys(delivered, 1)
    duplicates = sum(n - 1 for n in delivered.values())
    logs = _logs(tmp_path)
    assert "database is locked" not in logs
    assert "Traceback" not in logs
    assert ledger.asks  # the load got through between the kills
    figures["kills"] = crashes
    figures["startup_kills"] = ledger.startup_kills
    figures["commands_sent"] = ledger.sent
    figures["acked_asks"] = len(ledger.asks)
    figures["acked_claims"] = len(ledger.claims)
    figures["requests_stored"] = requests
    figures["unacked_in_flight"] = ledger.unacked
    figures["slack_duplicates"] = duplicates
    figures["posts_found_after_a_kill"] = sum(
        n for k, n in ledger.pending_deliveries.items() if k[0] == "post"
    )
    figures["dms_found_after_a_kill"] = sum(
        n for k, n in ledger.pending_deliveries.items() if k[0] == "dm"
    )
    figures["wall_s"] = time.perf_counter() - started


@pytest.mark.slow
async def test_kill_9_under_load_loses_nothing_acknowledged(
    tmp_path: Path, slack: FakeSlack, rng: random.Random, figures: Figures
) -> None:
    """After each SIGKILL the store is intact and consistent; after a restart all is delivered."""
    env = _slack_env(tmp_path, slack)
    await _kill_9_slack(tmp_path, slack, rng, figures, env, _over_http, CRASHES)


async def test_kill_9_in_socket_mode_loses_nothing_acknowledged(
    tmp_path: Path, slack: FakeSlack, rng: random.Random, figures: Figures
) -> None:
    """The same over Socket Mode: commands come as envelopes on the bot's websocket and are
    acknowledged in the envelope's ack, which bolt sends once the handler has committed."""
    env = _slack_env(tmp_path, slack) | {"SLACK_APP_TOKEN": slack.app_token}
    del env["SLACK_SIGNING_SECRET"]  # Socket Mode needs none: Slack authenticates the socket
    await _kill_9_slack(
        tmp_path, slack, rng, figures, env, lambda _, bot: _over_the_socket(slack), SOCKET_CRASHES
    )


# --- Discord ------------------------------------------------------------------------------------

REACT_SHARE = 0.1  # of client actions: a 👀 on the relay post of an open request
CLAIM_SHARE = 0.25  # of client actions: `/review claim N` on an open request
# Every third request is left to 👀 alone: commands would claim most requests before their post
# reaches Discord (posts queue in one channel), and a 👀 that must win is the stronger check.
FOR_EYES = 3
WHILE_DOWN_REACTIONS = 3  # 👀 added between a kill and the restart, for the reconcile to find
DISCORD_STARTUP_WINDOW = 2.6  # s: login, IDENTIFY, READY, guild_ready_timeout, on_ready
_CREATES = frozenset({"relay_post", "direct", "ephemeral", "channel_text"})  # new messages


@dataclass
class DiscordLedger(Ledger):
    """`Ledger`, plus what only Discord has: requesters, relay post ids, 👀 and interactions."""

    requesters: dict[int, str] = field(default_factory=dict)  # acked request id -> user id
    posts: dict[int, str] = field(default_factory=dict)  # request id -> relay post message id
    reacted: dict[int, str] = field(default_factory=dict)  # request id -> who added a 👀
    reactions_while_down: int = 0
    # interaction id -> (subcommand, link or request id, user id), until answered or given up
    inflight: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    backoff_counts: list[int] = field(default_factory=list)
    backoff_torn: int = 0


def _record_answer(ledger: DiscordLedger, interaction: str, answer: JSON) -> None:
    """What the user saw as the interaction's reply, into the ledger's acknowledgements."""
    verb, what, user = ledger.inflight.pop(interaction)
    text = str(answer.get("content", ""))
    if verb == "ask" and (asked := _ASKED.match(text)):
        ledger.asks[int(asked.group(1))] = what
        ledger.requesters[int(asked.group(1))] = user
    elif verb == "claim" and (claimed := _CLAIMED.match(text)):
        assert int(claimed.group(1)) == int(what)
        ledger.claims[int(what)] = user


async def _discord_client(
    fake: FakeDiscord, guild: FakeGuild, ledger: DiscordLedger, rng: random.Random, tag: str
) -> None:
    """Asks, claims and 👀, one after another, each answer awaited, until the bot stops."""
    reviews = guild.channel("reviews").id
    members = [guild.member(name).id for name in DISCORD_MEMBERS]
    for n in itertools.count():
        roll = rng.random()
        open_ids = [i for i in ledger.asks if i not in ledger.claims and i % FOR_EYES]
        reactable = _reactable(ledger)
        if reactable and roll < REACT_SHARE:
            await _react(fake, guild, ledger, rng, rng.choice(reactable))
            await asyncio.sleep(0)  # no answer to wait for: let the others run
            continue
        user = rng.choice(members)
        options: dict[str, object]
        if open_ids and roll < REACT_SHARE + CLAIM_SHARE:
            rid = rng.choice(open_ids)
            if user == ledger.requesters[rid]:
                continue  # requesters cannot claim their own: not what this test is about
            verb, what, options = "claim", str(rid), {"id": rid}
        else:
            link = f"https://example.com/{tag}-{n}"
            verb, what, options = "ask", link, {"link": link, "topics": "ops"}
        ledger.sent += 1
        interaction = await fake.send_slash_command(
            guild.id, reviews, user, subcommand=verb, options=options
        )
        ledger.inflight[interaction] = (verb, what, user)
        try:
            answer = await fake.wait_for_interaction_reply(interaction, timeout=5.0)
        except TimeoutError:
            return  # the bot is gone; the sweep after the kill settles this interaction
        _record_answer(ledger, interaction, answer)


def _reactable(ledger: DiscordLedger) -> list[int]:
    """Acked requests left to 👀 whose relay post Discord shows, with no 👀 yet."""
    return [
        rid
        for rid in ledger.asks
        if rid % FOR_EYES == 0 and rid in ledger.posts and rid not in ledger.reacted
    ]


async def _react(
    fake: FakeDiscord, guild: FakeGuild, ledger: DiscordLedger, rng: random.Random, rid: int
) -> None:
    """A 👀 on request `rid`'s relay post by someone who is not its requester."""
    members = [guild.member(name).id for name in DISCORD_MEMBERS]
    user = rng.choice([m for m in members if m != ledger.requesters[rid]])
    ledger.reacted[rid] = user
    await fake.add_reaction(guild.id, guild.channel("reviews").id, ledger.posts[rid], user, "👀")


async def _settle_interactions(fake: FakeDiscord, ledger: DiscordLedger) -> None:
    """After a kill: take the answers that landed, and count the rest as cut off in flight."""
    for interaction in list(ledger.inflight):
        try:
            # timeout=0 looks once without waiting: the killed bot cannot answer any more.
            answer = await fake.wait_for_interaction_reply(interaction, timeout=0)
        except TimeoutError:
            ledger.inflight.pop(interaction)
            ledger.unacked += 1
        else:
            _record_answer(ledger, interaction, answer)


def _discord_key(
    outbox_id: int, kind: str, request_id: int | None, user_id: str, text: str
) -> tuple[str, ...] | None:
    del request_id, user_id, text  # a new message is known by its nonce, the outbox id
    return ("nonce", str(outbox_id)) if kind in _CREATES else None


def _bot_messages(fake: FakeDiscord, guild: FakeGuild) -> list[JSON]:
    """Every message the bot created outside interactions: the review channel and all DMs."""
    channels = [guild.channel("reviews").id]
    channels += [c for name in DISCORD_MEMBERS if (c := fake.dm_channel_for(guild.member(name).id))]
    return [
        m
        for channel in channels
        for m in fake.messages(channel)
        if m["author"]["id"] == fake.bot.id and "interaction_metadata" not in m
    ]


def _discord_deliveries(fake: FakeDiscord, guild: FakeGuild) -> Counter[tuple[str, ...]]:
    """Messages Discord created, by nonce (None for a message sent without one)."""
    return Counter(("nonce", str(m.get("nonce"))) for m in _bot_messages(fake, guild))


def _relay_posts(fake: FakeDiscord, guild: FakeGuild) -> dict[int, JSON]:
    """Relay posts in the review channel by request id (the embed title "Review request #N")."""
    found: dict[int, JSON] = {}
    for post in fake.messages(guild.channel("reviews").id):
        for embed in post.get("embeds") or []:
            title = str(embed.get("title", ""))
            if title.startswith("Review request #"):
                found[int(title.removeprefix("Review request #"))] = post
    return found


def _backoff_file(path: Path) -> Path:
    """Where `StartBackoff.beside(path)` keeps the Discord start count."""
    return path.with_name(path.name + ".discord-starts.json")


def _let_next_start_go(path: Path, ledger: DiscordLedger) -> int | None:
    """Move the crash-loop backoff's last start back so the next start does not wait.

    Each kill is a failed start to `adapters/discord/backoff.py`, which then waits 5 s, 10 s, ...
    (up to MAX_DELAY) after the previous start. Deleting its file would hide whether it counts
    crashes right; moving `last` MAX_DELAY back keeps the count and only ends the wait.
    Returns the count (None if a kill tore the file while the bot rewrote it: no count, no wait).
    """
    backoff = _backoff_file(path)
    if not backoff.exists():
        return None
    try:
        data = json.loads(backoff.read_text(encoding="utf-8"))
        last = datetime.fromisoformat(data["last"])
    except (ValueError, KeyError):
        ledger.backoff_torn += 1
        return None
    data["last"] = (last - timedelta(seconds=MAX_DELAY)).isoformat()
    backoff.write_text(json.dumps(data), encoding="utf-8")
    return int(data["failures"])


async def _discord_cycle(
    http: aiohttp.ClientSession,
    *,
    zygote: Zygote,
    fake: FakeDiscord,
    guild: FakeGuild,
    ledger: DiscordLedger,
    rng: random.Random,
    tag: str,
    startup: bool,
) -> bool:
    """Start a bot, load it, and kill it at a random moment; True if it was up (healthy).

    `startup`: kill it while it starts (logs in, identifies, waits for its guild, registers).
    """
    bot = await zygote.fork()
    clients: list[asyncio.Task[None]] = []
    try:
        if startup:
            ledger.startup_kills += 1
            await asyncio.sleep(rng.uniform(0.0, DISCORD_STARTUP_WINDOW))
            return False
        await bot.healthy(http)
        clients = [
            asyncio.create_task(_discord_client(fake, guild, ledger, rng, f"{tag}c{k}"))
            for k in range(CLIENTS)
        ]
        await asyncio.sleep(rng.uniform(0.05, 0.6))
        return True
    finally:
        await bot.kill()
        await asyncio.sleep(0.05)  # let the fake finish requests that arrived before the kill
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await _settle_interactions(fake, ledger)


async def _while_down(
    fake: FakeDiscord, guild: FakeGuild, ledger: DiscordLedger, rng: random.Random
) -> None:
    """Between a kill and the restart: learn the new relay posts, and 👀 one no session hears."""
    ledger.posts = {rid: str(post["id"]) for rid, post in _relay_posts(fake, guild).items()}
    reactable = _reactable(ledger)
    for rid in rng.sample(reactable, min(WHILE_DOWN_REACTIONS, len(reactable))):
        await _react(fake, guild, ledger, rng, rid)
        ledger.reactions_while_down += 1


async def _until_reactions_land(path: Path, ledger: DiscordLedger, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - one deadline
    """Wait for the last start's reconcile: every 👀 (the only one on its post) claimed by it."""
    deadline = time.monotonic() + timeout
    while True:
        claimed = dict(query(path, "SELECT id, claimer_user FROM requests"))
        missing = {rid for rid, user in ledger.reacted.items() if claimed.get(rid) != user}
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"👀 on requests {sorted(missing)} never became claims")
        await asyncio.sleep(0.1)


def _discord_figures(figures: Figures, ledger: DiscordLedger, kills: int) -> None:
    figures["kills"] = kills
    figures["startup_kills"] = ledger.startup_kills
    figures["commands_sent"] = ledger.sent
    figures["reactions"] = len(ledger.reacted)
    figures["reactions_while_down"] = ledger.reactions_while_down
    figures["acked_asks"] = len(ledger.asks)
    figures["acked_claims"] = len(ledger.claims)
    figures["unacked_in_flight"] = ledger.unacked
    figures["backoff_max_count"] = max(ledger.backoff_counts, default=0)
    figures["backoff_torn"] = ledger.backoff_torn


def _check_discord_end(
    path: Path, ledger: DiscordLedger, fake: FakeDiscord, guild: FakeGuild, figures: Figures
) -> None:
    """After the last restart and drain: all delivered once, and every post shows its state."""
    delivered = _discord_deliveries(fake, guild)
    requests = _check_store(path, ledger, delivered, _discord_key)
    outbox = query(path, "SELECT id, kind, status FROM outbox")
    assert {status for *_, status in outbox} == {"sent"}  # nothing pending, nothing dead
    # Every new message the outbox held is in Discord exactly once, and nothing else is.
    assert delivered == Counter(("nonce", str(i)) for i, kind, _ in outbox if kind in _CREATES)
    # Every request posted, none twice in the review channel.
    channel = fake.messages(guild.channel("reviews").id)
    assert _messages_by_request(channel) == dict.fromkeys(range(1, requests + 1), 1)
    posts = _relay_posts(fake, guild)
    # Each post shows its request's state: the claim edits landed.
    claimed = dict(query(path, "SELECT id, status FROM requests"))
    for rid, post in posts.items():
        (status,) = [f["value"] for f in post["embeds"][0]["fields"] if f["name"] == "Status"]
        want = texts.STATUS_WORDS[Status(claimed[rid])].format(claimer="")
        assert status.startswith(want.strip()), (rid, status, want)
    creates = fake.requests_matching("POST /channels/*/messages")
    ids = {str(i) for i, *_ in outbox}
    assert all(c.json["nonce"] in ids and c.json["enforce_nonce"] is True for c in creates)
    returned = Counter(c.response["id"] for c in creates if c.status == 200)
    figures["requests_stored"] = requests
    figures["pending_accepted_at_a_kill"] = len(ledger.pending_deliveries)
    figures["nonce_returned_existing"] = sum(n - 1 for n in returned.values())
    figures["duplicates"] = sum(n - 1 for n in delivered.values())


def _slow_beyond_default(test: Callable[..., object]) -> Callable[..., object]:
    """The default count runs in the default part of the suite; a longer run is slow."""
    return pytest.mark.slow(test) if DISCORD_CRASHES > DISCORD_DEFAULT_CRASHES else test


@_slow_beyond_default
async def test_kill_9_of_the_discord_bot_loses_nothing_and_posts_nothing_twice(
    tmp_path: Path,
    fake_discord: FakeDiscord,
    guild: FakeGuild,
    rng: random.Random,
    figures: Figures,
) -> None:
    """Kill -9 a Discord-only bot under load: the store stays whole, and nothing is sent twice."""
    path = tmp_path / "relay.db"
    env = _discord_env(tmp_path, fake_discord, guild)
    ledger = DiscordLedger()
    started = time.perf_counter()
    zygote = await Zygote.start(tmp_path, env)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for cycle in range(DISCORD_CRASHES):
                before = _let_next_start_go(path, ledger)
                was_up = await _discord_cycle(
                    http,
                    zygote=zygote,
                    fake=fake_discord,
                    guild=guild,
                    ledger=ledger,
                    rng=rng,
                    tag=f"k{cycle}",
                    # every tenth kill during start-up: 2 of the default 20 for sure, not by luck
                    startup=cycle % round(1 / STARTUP_KILL_SHARE) == 1,
                )
                after = _let_next_start_go(path, ledger)
                if after is not None:
                    ledger.backoff_counts.append(after)
                if was_up:  # it reached login, so it counted this start as a failure first
                    assert after == (before or 0) + 1, (before, after)
                if path.exists():
                    _check_store(
                        path, ledger, _discord_deliveries(fake_discord, guild), _discord_key
                    )
                await _while_down(fake_discord, guild, ledger, rng)
            await zygote.stop()
            await _final_run(tmp_path, env, http, lambda path: _until_reactions_land(path, ledger))
    finally:
        await zygote.stop()
    # A clean stop ends the crash loop: the next start will not wait.
    assert json.loads(_backoff_file(path).read_text(encoding="utf-8"))["failures"] == 0
    _check_discord_end(path, ledger, fake_discord, guild, figures)
    logs = _logs(tmp_path)
    assert "database is locked" not in logs
    assert "Traceback" not in logs
    _discord_figures(figures, ledger, DISCORD_CRASHES)
    figures["restarts"] = DISCORD_CRASHES + 1
    figures["wall_s"] = time.perf_counter() - started
