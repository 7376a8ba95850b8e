"""Crashes: `python -m bot run` killed with SIGKILL at random moments under load, many times.

The bot runs as a real process against a FakeSlack served by this test; signed slash commands
(asks and claims) hit its HTTP port from several clients at once until the kill. After every kill
the database is checked as it lies on disk: integrity, every acknowledged request and claim
present, every state change with its outbox rows and no outbox row without its change. After the
last restart every notice is delivered, and a Slack duplicate is allowed only where a kill landed
between Slack accepting a message and the bot marking it sent (counted per notice at each kill).

A fresh interpreter spends ~1.4 s importing slack-bolt, aiohttp and pydantic before it serves, which
would make each kill cost that much. So one "zygote" process imports the bot once and forks a
child per cycle; the child runs exactly `python -m bot run` (runpy) and is the process killed.
The final restart is a plain `python -m bot run` subprocess, the command line itself.

RELIABILITY_CRASHES sets the number of kills (default 60; the issue's 200 by hand, ~3 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from adapters.slack.render import render_text
from tests.adapters.slack.conftest import BOT_TOKEN, REVIEW_CHANNEL, SECRET
from tests.fakes import slack_payloads as p
from tests.fakes.fake_slack import FakeSlack, sign
from tests.net import free_port
from tests.reliability.conftest import Figures, posts_by_request

CRASHES = int(os.environ.get("RELIABILITY_CRASHES", "60"))
CLIENTS = 6
STARTUP_KILL_SHARE = 0.1  # this share of kills lands while the bot is still starting
_ASKED = re.compile(r"Request #(\d+) is open")
_CLAIMED = re.compile(r"You claimed request #(\d+):")
_DM_CLAIMED = re.compile(r" claimed your request #(\d+) ")
# Imports once, then for each "PORT LOGFILE" line forks a child that runs `python -m bot run`
# (runpy, exactly as the command line does) and reports its pid, then how it ended.
_ZYGOTE = """
import os, runpy, sys
import adapters.slack, bot.app, bot.cli
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

pytestmark = pytest.mark.slow


def _bot_env(tmp_path: Path, slack: FakeSlack) -> dict[str, str]:
    """Exactly the settings the bot gets (run from tmp_path, so no .env is read)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "LANG": "C.UTF-8",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}",
        "HTTP_HOST": "127.0.0.1",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "SLACK_REVIEW_CHANNEL": REVIEW_CHANNEL,
        "LOG_LEVEL": "INFO",
    }


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
    async def start(cls, tmp_path: Path, slack: FakeSlack) -> Zygote:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _ZYGOTE,
            cwd=tmp_path,
            env=_bot_env(tmp_path, slack),
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


async def _command_line_bot(
    tmp_path: Path, slack: FakeSlack
) -> tuple[Bot, asyncio.subprocess.Process]:
    """A bot started the plain way, `python -m bot run`, for the final restart."""
    port, log = free_port(), tmp_path / "bot-final.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp_path,
            env=_bot_env(tmp_path, slack) | {"HTTP_PORT": str(port)},
            stdout=sink,
            stderr=sink,
        )
    ended = asyncio.ensure_future(proc.wait())
    return Bot(port, log, ended, proc.pid), proc


@dataclass
class Ledger:
    """What clients were told (acks) and what each kill left behind."""

    asks: dict[int, str] = field(default_factory=dict)  # acked request id -> link
    claims: dict[int, str] = field(default_factory=dict)  # acked claim: request id -> user id
    sent: int = 0
    unacked: int = 0
    pending_deliveries: dict[tuple[str, ...], int] = field(default_factory=dict)
    startup_kills: int = 0


async def _client(
    http: aiohttp.ClientSession, bot: Bot, ledger: Ledger, rng: random.Random, tag: str
) -> None:
    """Send asks and claims one after another until the bot stops answering."""
    for n in range(1_000_000):
        open_ids = [i for i in ledger.asks if i not in ledger.claims]
        if open_ids and rng.random() < 0.3:
            rid = rng.choice(open_ids)
            user, text = f"UV{tag}x{n}", f"claim {rid}"
        else:
            user, text = f"UA{tag}x{n}", f"https://example.com/{tag}-{n} #ops"
        body = p.slash_command_body(text, user_id=user, user_name=user.lower())
        ledger.sent += 1
        try:
            async with http.post(
                f"{bot.url}/slack/events", data=body, headers=sign(body, SECRET)
            ) as answer:
                reply = (await answer.json())["text"] if answer.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError, ValueError):
            ledger.unacked += 1
            return
        if asked := _ASKED.match(reply):
            ledger.asks[int(asked.group(1))] = f"https://example.com/{tag}-{n}"
        elif claimed := _CLAIMED.match(reply):
            ledger.claims[int(claimed.group(1))] = user


def _deliveries(slack: FakeSlack) -> Counter[tuple[str, ...]]:
    """Messages Slack accepted, keyed like outbox rows: relay posts by request, DMs by text."""
    found: Counter[tuple[str, ...]] = Counter()
    for rid, count in posts_by_request(slack, REVIEW_CHANNEL).items():
        found["post", str(rid)] = count
    for call in slack.calls("chat.postMessage"):
        if call.status == 200 and str(call.args.get("channel", "")).startswith("U"):
            found["dm", call.args["channel"], call.args["text"]] += 1
    return found


def _key(kind: str, request_id: int | None, user_id: str, text: str) -> tuple[str, ...] | None:
    if kind == "relay_post":
        return ("post", str(request_id))
    if kind == "direct":
        return ("dm", user_id, render_text(text))
    return None  # edits (chat.update) are idempotent: a repeat is not a duplicate


def _check_store(path: Path, ledger: Ledger, slack: FakeSlack) -> int:
    """Assert what must hold on disk after a kill; record deliveries not yet marked sent."""
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
        delivered = _deliveries(slack)
        for kind, status, rid, user_id, text in db.execute(
            "SELECT kind, status, request_id, user_id, text FROM outbox"
        ):
            key = _key(kind, rid, user_id, text)
            if key is None:
                continue
            if status == "sent":  # marked sent only after Slack accepted it
                assert delivered[key] >= 1, key
            elif status == "pending" and delivered[key]:
                ledger.pending_deliveries[key] = delivered[key]  # accepted, never marked
        return len(requests)
    finally:
        db.close()


async def _cycle(
    http: aiohttp.ClientSession, zygote: Zygote, ledger: Ledger, rng: random.Random, tag: str
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
                asyncio.create_task(_client(http, bot, ledger, rng, f"{tag}c{k}"))
                for k in range(CLIENTS)
            ]
            await asyncio.sleep(rng.uniform(0.05, 0.6))
    finally:
        await bot.kill()
        await asyncio.sleep(0.05)  # let the fake finish requests that arrived before the kill
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)


async def _drain(path: Path, timeout: float = 60.0) -> None:  # noqa: ASYNC109 - one deadline
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db = sqlite3.connect(path)
        try:
            (pending,) = db.execute(
                "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"
            ).fetchone()
        finally:
            db.close()
        if pending == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{pending} notices still pending after {timeout}s")


def _logs(tmp_path: Path) -> str:
    return "".join(f.read_text(errors="replace") for f in sorted(tmp_path.glob("bot-*.log")))


async def test_kill_9_under_load_loses_nothing_acknowledged(
    tmp_path: Path, slack: FakeSlack, rng: random.Random, figures: Figures
) -> None:
    """After each SIGKILL the store is intact and consistent; after a restart all is delivered."""
    path = tmp_path / "relay.db"
    ledger = Ledger()
    started = time.perf_counter()
    zygote = await Zygote.start(tmp_path, slack)
    final: tuple[Bot, asyncio.subprocess.Process] | None = None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for cycle in range(CRASHES):
                await _cycle(http, zygote, ledger, rng, f"k{cycle}")
                if path.exists():
                    _check_store(path, ledger, slack)
            await zygote.stop()
            final = await _command_line_bot(tmp_path, slack)
            await final[0].healthy(http)
            await _drain(path)
            final[1].send_signal(signal.SIGINT)  # a graceful stop this time
            await asyncio.wait_for(final[1].wait(), 10)
    finally:
        if final is not None and final[1].returncode is None:
            final[1].kill()  # only the process this test started
            await final[1].wait()
        await zygote.stop()
    requests = _check_store(path, ledger, slack)
    delivered = _deliveries(slack)
    posts = {int(k[1]): n for k, n in delivered.items() if k[0] == "post"}
    assert sorted(posts) == list(range(1, requests + 1))  # every request posted
    expected = {key: 1 + ledger.pending_deliveries.get(key, 0) for key in delivered}
    assert dict(delivered) == expected  # duplicates exactly where a kill hit send..mark
    duplicates = sum(n - 1 for n in delivered.values())
    logs = _logs(tmp_path)
    assert "database is locked" not in logs
    assert "Traceback" not in logs
    figures["kills"] = CRASHES
    figures["startup_kills"] = ledger.startup_kills
    figures["commands_sent"] = ledger.sent
    figures["acked_asks"] = len(ledger.asks)
    figures["acked_claims"] = len(ledger.claims)
    figures["requests_stored"] = requests
    figures["unacked_in_flight"] = ledger.unacked
    figures["slack_duplicates"] = duplicates
    figures["duplicate_posts"] = sum(n - 1 for k, n in delivered.items() if k[0] == "post")
    figures["wall_s"] = time.perf_counter() - started
