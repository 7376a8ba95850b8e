"""The reliability suite's harness: the real adapters, core and SqliteStore against the fakes.

`slack_bot(...)` starts the same pieces `bot.app.serve` wires (bolt behind the aiohttp server, the
Dispatcher, the DeliveryWorker, a SqliteStore file) with the settings a scenario needs, and yields
the `SlackHarness` the Slack adapter tests use. `discord_bot(...)` is its twin for Discord: the
real discord.py client (`adapters/discord`) logged in to FakeDiscord over REST and the gateway on
127.0.0.1, optionally with the Slack app beside it on the same core, yielding the
`DiscordHarness` the Discord adapter tests use. `figures` records the numbers a scenario measured;
they are printed at the end of the run (and written as JSON to `$RELIABILITY_FIGURES` if set), and
docs/reliability.md quotes them. Randomness is seeded: `RELIABILITY_SEED` changes the seed of every
scenario, so a failure can be replayed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.http import HttpServer
from adapters.slack import build_slack
from bot.app import build_core
from bot.delivery import DeliveryWorker
from bot.model import Community, NoticeKind, Platform
from bot.ports import Sender
from storage.sqlite import SqliteStore
from tests.adapters.discord.conftest import (
    TOKEN,
    DiscordHarness,
    RecordingInbox,
    discord_settings,
    make_adapter,
)
from tests.adapters.slack.conftest import BOT_TOKEN, SECRET, SlackHarness, slack_settings
from tests.fakes import slack_payloads as p
from tests.fakes.fake_clock import FakeClock
from tests.fakes.fake_discord import FakeDiscord, FakeGuild
from tests.fakes.fake_slack import ApiCall, FakeSlack
from tests.net import Answer

DEFAULT_SEED = 20261123
OUTGOING = ("chat.postMessage", "chat.update", "chat.postEphemeral")
# What a relay post says first, in its notification text: "Review request #12 from ...".
POST_ID = re.compile(r"Review request #(\d+) ")
CONSOLE = Community(
    platform=Platform.CONSOLE, community_id="local", name="local", review_channel_id="reviews"
)

_FIGURES: dict[str, dict[str, Any]] = {}


class Figures:
    """The numbers one scenario measured, by name; printed in the terminal summary."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario

    def __setitem__(self, name: str, value: Any) -> None:
        _FIGURES.setdefault(self.scenario, {})[name] = value

    def __getitem__(self, name: str) -> Any:
        return _FIGURES[self.scenario][name]


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(request.node.name)


@pytest.fixture
def rng(request: pytest.FixtureRequest, figures: Figures) -> random.Random:
    """A random source seeded from RELIABILITY_SEED and the test's name (replayable)."""
    seed = int(os.environ.get("RELIABILITY_SEED", DEFAULT_SEED))
    figures["seed"] = seed
    return random.Random(f"{seed}:{request.node.name}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.write_sep("-", "reliability figures")
    for scenario, values in _FIGURES.items():
        shown = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
        terminalreporter.write_line(f"{scenario}: {shown}")
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        Path(target).write_text(json.dumps(_FIGURES, indent=2, default=str), encoding="utf-8")


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(bot_token=BOT_TOKEN) as fake:
        yield fake


@dataclass
class Harness(SlackHarness):
    """The Slack adapter tests' harness, signing with the signing secret the bot was given."""

    secret: str = SECRET

    async def post(
        self,
        body: bytes,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        return await super().post(
            body, secret=secret or self.secret, timestamp=timestamp, headers=headers
        )


async def socket_command(
    slack: FakeSlack,
    text: str,
    who: tuple[str, str],
    timeout: float = 5.0,  # noqa: ASYNC109
) -> str:
    """`/review <text>` from `who` (user id, name) as Socket Mode brings it: an envelope on the
    bot's websocket. Returns the reply the bot put in its ack."""
    payload = p.slash_command_payload(text, user_id=who[0], user_name=who[1])
    ack = await slack.push_socket_envelope("slash_commands", payload, timeout=timeout)
    return str(ack["payload"]["text"])


@asynccontextmanager
async def slack_bot(
    tmp_path: Path,
    slack: FakeSlack,
    clock: FakeClock,
    *,
    senders: Mapping[Platform, Sender] | None = None,
    communities: Iterable[Community] = (),
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """The real Slack app, core and store, serving HTTP on 127.0.0.1 (settings `overrides`).

    `senders` adds platforms beside Slack (a recording console sender stands for a second
    platform); `communities` are connected first, as their adapters would at start.
    """
    settings = slack_settings(tmp_path, slack, **overrides)
    adapter = build_slack(settings, clock)
    store = await SqliteStore.open(settings.database_path)
    core = build_core(settings, store, {Platform.SLACK: adapter.sender, **(senders or {})}, clock)
    server = HttpServer(host="127.0.0.1", port=0, checks={}, routes=adapter.routes())
    try:
        for community in communities:
            await core.dispatcher.connect_community(community)
        await adapter.start(core.dispatcher)
        await server.start()
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector) as http:
            url = f"http://127.0.0.1:{server.port}/slack/events"
            secret = settings.slack_signing_secret
            yield Harness(
                slack, adapter, core, clock, url, http, secret.get_secret_value() if secret else ""
            )
    finally:
        await server.stop()
        await adapter.stop()
        await store.close()


# Guild members for the Discord scenarios: a requester, volunteers, and many would-be claimers.
DISCORD_MEMBERS = ["alice", "vola", "volb", *(f"d{i:03d}" for i in range(300))]
_DISCORD_FIELDS = frozenset(
    {
        "discord_bot_token",
        "discord_api_url",
        "discord_gateway_url",
        "discord_review_channel_id",
        "discord_guild_id",
    }
)


@pytest.fixture
def guild() -> FakeGuild:
    return FakeGuild.build("Reviewers", channels=["general", "reviews"], members=DISCORD_MEMBERS)


@pytest.fixture
async def fake_discord(guild: FakeGuild) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, guilds=[guild]) as fake:
        yield fake
    assert fake.internal_errors == []


@dataclass
class DiscordBot(DiscordHarness):
    """The Discord adapter tests' harness; `slack` is the Slack app on the same core, if asked."""

    slack: Harness | None = None

    def both(self) -> Harness:
        assert self.slack is not None, "started without slack="
        return self.slack


@asynccontextmanager
async def discord_bot(
    tmp_path: Path,
    fake: FakeDiscord,
    clock: FakeClock,
    *,
    slack: FakeSlack | None = None,
    senders: Mapping[Platform, Sender] | None = None,
    communities: Iterable[Community] = (),
    **overrides: Any,
) -> AsyncIterator[DiscordBot]:
    """The real discord.py adapter, core and store against `fake` (settings `overrides`).

    With `slack`, the Slack app serves HTTP on 127.0.0.1 beside it, on the same core and store
    (as `bot.app.serve` runs both); `senders` and `communities` as in `slack_bot`. Every inbound
    event of either platform goes through one `RecordingInbox`, so a test can wait for it.
    """
    (guild,) = fake.guilds
    settings = discord_settings(tmp_path, fake, guild, **overrides)
    if slack is not None:
        discord_values = settings.model_dump(include=set(_DISCORD_FIELDS))
        settings = slack_settings(tmp_path, slack, **(discord_values | overrides))
    adapter = make_adapter(settings, clock)
    slack_adapter = build_slack(settings, clock) if slack is not None else None
    all_senders: dict[Platform, Sender] = {Platform.DISCORD: adapter.sender, **(senders or {})}
    if slack_adapter is not None:
        all_senders[Platform.SLACK] = slack_adapter.sender
    store = await SqliteStore.open(settings.database_path)
    core = build_core(settings, store, all_senders, clock)
    inbox = RecordingInbox(core.dispatcher)
    routes = slack_adapter.routes() if slack_adapter is not None else []
    server = HttpServer(host="127.0.0.1", port=0, checks={}, routes=routes)
    try:
        for community in communities:
            await core.dispatcher.connect_community(community)
        if slack_adapter is not None:
            await slack_adapter.start(inbox)
            await server.start()
        await adapter.start(inbox)
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector) as http:
            harness = None
            if slack is not None and slack_adapter is not None:
                url = f"http://127.0.0.1:{server.port}/slack/events"
                harness = Harness(slack, slack_adapter, core, clock, url, http, SECRET)
            yield DiscordBot(fake, guild, adapter, core, inbox, clock, slack=harness)
    finally:
        await adapter.stop()
        if slack_adapter is not None:
            await server.stop()
            await slack_adapter.stop()
        await store.close()


def db_path(tmp_path: Path) -> Path:
    """Where `slack_settings` puts the database."""
    return tmp_path / "relay.db"


def fingerprint(path: Path) -> str:
    """A digest of every row of the database: equal digests mean nothing was written."""
    with sqlite3.connect(path) as db:
        digest = hashlib.sha256()
        for line in db.iterdump():
            digest.update(line.encode())
        return digest.hexdigest()


def query(path: Path, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a read on a separate connection (what another process would see)."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, tuple(params)).fetchall()
    finally:
        db.close()


def outgoing(slack: FakeSlack) -> list[ApiCall]:
    """Every message the bot posted, edited or showed to someone in Slack, in call order."""
    return [c for c in slack.calls() if c.method in OUTGOING]


def posts_by_request(slack: FakeSlack, channel: str) -> dict[int, int]:
    """How many relay posts Slack accepted in `channel`, per request id."""
    found: dict[int, int] = {}
    for call in slack.calls("chat.postMessage"):
        match = POST_ID.match(str(call.args.get("text", "")))
        if call.status == 200 and call.args.get("channel") == channel and match:
            request_id = int(match.group(1))
            found[request_id] = found.get(request_id, 0) + 1
    return found


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# --- driving the delivery worker round by round on the FakeClock -----------------------------

_EDITS = (NoticeKind.POST_UPDATE, NoticeKind.TEXT_UPDATE)


async def due_calls(worker: DeliveryWorker, platform: Platform = Platform.SLACK) -> int:
    """How many notices to `platform` the worker's next round will send (what `run_once` will)."""
    return sum(
        1
        for n in await worker.due()
        if n.platform is platform and not (n.kind in _EDITS and not n.message_id)
    )


def next_due(path: Path) -> datetime | None:
    """When the earliest queue head comes due (notices behind a head wait for it, per channel)."""
    [(due,)] = query(
        path,
        "SELECT MIN(next_attempt_at) FROM outbox WHERE id IN "
        "(SELECT MIN(id) FROM outbox WHERE status = 'pending' GROUP BY order_key)",
    )
    return datetime.fromisoformat(due) if due else None


async def worker_rounds(
    clock: FakeClock,
    path: Path,
    worker: DeliveryWorker,
    arm: Callable[[int], None],
    *,
    platform: Platform = Platform.SLACK,
    until: datetime | None = None,
    step: timedelta | None = None,
    max_rounds: int = 5_000,
    settle: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run worker rounds, arming each; jump the clock to the next due notice (or by `step`).

    `arm` is told how many calls to `platform` the round will make before it runs. `settle`
    (a fake's `settled`) is awaited before each jump: the late answers the fake is still giving
    land first, as they would within the real seconds a jump stands for.
    """
    rounds = 0
    while rounds < max_rounds:
        if until is not None and clock.now() >= until:
            return rounds
        calls = await due_calls(worker, platform)
        arm(calls)
        sent = await worker.run_once()
        rounds += 1
        if sent:
            continue
        if settle is not None:
            await settle()
        if step is not None:
            clock.advance(seconds=step.total_seconds())
            continue
        due = next_due(path)
        if due is None:
            return rounds
        pause = worker.paused_until(platform)  # a platform-wide wait holds every channel
        if pause is not None and (due <= clock.now() or pause > due):
            clock.set(pause)
        elif due > clock.now():
            clock.set(due)
        elif not calls:
            return rounds  # due but not sendable (platform disabled): nothing more will happen
    raise AssertionError("the outbox did not settle")
