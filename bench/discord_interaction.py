"""Discord interaction: `/review ask` from the gateway to the interaction callback, bot vs bare.

Two FakeDiscords run in this process, one per server under test, each a child process of its own
(see `bench.servers`): the bot (`bot.app.serve` with the Discord adapter on a real SqliteStore
file) and a bare discord.py client with the production client's options whose `/review ask` only
answers (ephemeral). A sample: the fake dispatches INTERACTION_CREATE for `/review ask link topics`
(`FakeDiscord.send_slash_command`) and the latency is from just before that call to the moment the
interaction callback (`POST /interactions/<id>/<token>/callback`) reaches the fake's REST API, as
the fake's request log stamps it. So it includes the fake building, compressing and sending the
frame (the same for both; its share is reported).

Samples are sequential, in blocks that alternate between the two servers (the first rotating),
so drift in the machine's load hits both alike. Before each bot sample the previous request's
relay post has been delivered: the interaction is timed with an idle delivery worker (the Slack
benchmark shows what a busy one costs). Users come from a pool, links are all new, and the bot's
REQUESTS_PER_HOUR is raised as for Slack.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import servers
from bench.report import Table, percentile, verdict
from tests.net import free_port

if TYPE_CHECKING:
    from tests.fakes.discord_payloads import FakeGuild
    from tests.fakes.fake_discord import FakeDiscord, InteractionCallback

SAMPLES = 300
QUICK_SAMPLES = 60
BLOCK = 50
WARM = 20
USERS = 20
ANSWER_TIMEOUT = 5.0
TARGET_P50_RATIO = 3.0
EPHEMERAL = 64


@dataclass(slots=True)
class Samples:
    server: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cpu: float = 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


@dataclass(slots=True)
class Server:
    label: str
    fake: FakeDiscord
    guild: FakeGuild
    child: servers.Child
    is_bot: bool
    asked: int = 0

    @property
    def reviews(self) -> str:
        return self.guild.channel("reviews").id

    async def sample(self, into: Samples | None) -> None:
        """One `/review ask`; recorded into `into` (None: a warm-up)."""
        self.asked += 1
        n = self.asked
        user = f"user{n % USERS}"
        options = {"link": f"https://example.com/bench/{n}", "topics": "python"}
        general = self.guild.channel("general").id
        cpu = self.child.cpu_seconds()
        start = time.monotonic()
        interaction = await self.fake.send_slash_command(
            self.guild.id, general, user, subcommand="ask", options=options
        )
        try:
            callback = await self.fake.wait_for_interaction_response(
                interaction, timeout=ANSWER_TIMEOUT
            )
            if self.is_bot:  # its relay post too: the next sample finds an idle worker
                await self.fake.wait_for(
                    f"POST /channels/{self.reviews}/messages", count=n, timeout=ANSWER_TIMEOUT
                )
        except TimeoutError as exc:
            if into is not None:
                into.errors[str(exc).split(";")[0]] += 1
            return
        if into is None:
            return
        into.cpu += self.child.cpu_seconds() - cpu
        into.latencies.append(self._arrival(interaction) - start)
        problem = self._problem(callback)
        if problem is not None:
            into.errors[problem] += 1

    def _arrival(self, interaction: str) -> float:
        prefix = f"/interactions/{interaction}/"
        for request in reversed(self.fake.requests):
            if request.method == "POST" and request.path.startswith(prefix):
                return request.at
        return time.monotonic()

    def _problem(self, callback: InteractionCallback) -> str | None:
        data: dict[str, Any] = callback.data or {}
        content = str(data.get("content", ""))
        if callback.type != 4 or not int(data.get("flags") or 0) & EPHEMERAL:
            return f"callback type {callback.type}, flags {data.get('flags')}"
        expected = (
            content.startswith("Request #") if self.is_bot else content == servers.BARE_ANSWER
        )
        return None if expected else f"answer: {content[:60]!r}"


def _guild() -> FakeGuild:
    from tests.fakes.discord_payloads import FakeGuild  # noqa: PLC0415 - imported when run

    return FakeGuild.build(
        "Reviewers",
        channels=["general", "reviews"],
        members=[f"user{i}" for i in range(USERS)],
    )


async def _start(kind: str, label: str, tmp: Path) -> Server:
    from tests.fakes.fake_discord import FakeDiscord  # noqa: PLC0415 - imported when run

    guild = _guild()
    fake = FakeDiscord(token=servers.DISCORD_TOKEN, guilds=[guild])
    await fake.start()
    config = {
        "port": free_port(),
        "db": str(tmp / f"{kind}.db"),
        "api_base": fake.api_base,
        "gateway_url": fake.gateway_url,
        "guild_id": guild.id,
        "channel_id": guild.channel("reviews").id,
    }
    try:
        child = await servers.spawn(kind, config, tmp / f"{kind}.log")
    except BaseException:
        await fake.close()
        raise
    return Server(label, fake, guild, child, is_bot=kind == "discord-bot")


async def _measure(samples: int) -> tuple[list[Samples], list[str]]:
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-discord-") as tmp:
        started: list[Server] = []
        try:
            for kind, label in (("discord-bare", "bare discord.py client"), ("discord-bot", "bot")):
                started.append(await _start(kind, label, Path(tmp)))
            for server in started:
                for _ in range(WARM):
                    await server.sample(None)
            results = {s.label: Samples(s.label) for s in started}
            sizes = [BLOCK] * (samples // BLOCK) + ([samples % BLOCK] if samples % BLOCK else [])
            for block, size in enumerate(sizes):
                turn = block % len(started)
                for server in started[turn:] + started[:turn]:
                    for _ in range(size):
                        await server.sample(results[server.label])
        finally:
            for server in started:
                code = await server.child.stop()
                if code != 0:
                    problems.append(f"{server.label} exited with {code}")
                await server.fake.close()
                problems += [f"fake: {e!r}" for e in server.fake.internal_errors]
    return list(results.values()), problems


def run(quick: bool = False) -> list[Table]:
    samples = QUICK_SAMPLES if quick else SAMPLES
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    results, problems = asyncio.run(_measure(samples))
    seconds, load_after = time.perf_counter() - began, os.getloadavg()[0]
    return [_table(results, problems, seconds, (load_before, load_after))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms"


def _table(
    results: list[Samples], problems: list[str], seconds: float, loads: tuple[float, float]
) -> Table:
    table = Table(
        "Discord interaction: `/review ask` INTERACTION_CREATE to the interaction callback",
        (
            "server",
            "samples",
            "errors",
            "p50",
            "p90",
            "p99",
            "server CPU / request",
            "vs bare",
            "target",
            "result",
        ),
    )
    bare = next(r for r in results if r.server.startswith("bare"))
    for r in results:
        errors = sum(r.errors.values())
        cpu = _ms(r.cpu / len(r.latencies)) if r.latencies else "-"
        if r is bare:
            ratio, target, ok = "-", "0 errors", errors == 0
        else:
            p50_ratio = r.p(50) / bare.p(50)
            ratio = f"p50 x{p50_ratio:.2f}, p99 x{r.p(99) / bare.p(99):.2f}"
            target = f"p50 <= {TARGET_P50_RATIO:g}x bare; 0 errors"
            ok = p50_ratio <= TARGET_P50_RATIO and errors == 0 and not problems
        table.add(
            r.server, len(r.latencies), errors, _ms(r.p(50)), _ms(r.p(90)), _ms(r.p(99)),
            cpu, ratio, target, verdict(ok),
        )  # fmt: skip
    for r in results:
        if r.errors:
            table.notes.append(f"{r.server}: errors {dict(r.errors)}")
    if problems:
        table.notes.append(f"problems: {'; '.join(problems)}")
    table.notes += [
        "each server runs in a child process against its own FakeDiscord in this process "
        "(gateway with zlib-stream compression, REST); latency: from just before the fake "
        "dispatches INTERACTION_CREATE to the callback's arrival in the fake's request log, so "
        "it includes the fake building, JSON-encoding and compressing the frame (the same for "
        f"both). Samples are sequential, in blocks of {BLOCK} alternating between the servers, "
        f"after {WARM} warm-up samples each.",
        "bot: the production client (`adapters.discord`) under `bot.app.serve`; every answer "
        "came as a type-4 ephemeral callback (no defer). A bot sample ends when its relay post "
        "is delivered, so the next one finds an idle worker. Server CPU: the child's "
        "user+system time from dispatch to callback (bot: to its relay post delivered). "
        "REQUESTS_PER_HOUR=1,000,000 (raised: 20 users, a new link each time).",
        f"wall time {seconds:.0f} s; load average (1 min) {loads[0]:.1f} before, "
        f"{loads[1]:.1f} after, on {os.cpu_count()} CPUs",
    ]
    return table
