"""Slack ack: signed `/review <link> #topic` commands against the real bot and a bare bolt app.

The bot is `bot.app.serve` with the Slack adapter in HTTP mode on a real SqliteStore file, its
delivery worker posting each request's relay post to FakeSlack meanwhile; the bare app is a
slack-bolt AsyncApp whose `/review` only acks, behind the same `HttpServer` and `bolt_endpoint`
(see `bench.servers`). Each runs in a child process of its own; this process is Slack: FakeSlack's
Web API and the load, which signs every body as Slack does (HMAC-SHA256, `v0`) before timing
starts and POSTs it to `/slack/events` over keep-alive connections, `concurrency` at a time.

Every command comes from one of a pool of users, with a link no one sent before, so neither the
duplicate check nor the quota refuses (the bot's REQUESTS_PER_HOUR is raised to 1,000,000 for
this: the pool sends far more than 10 per person in the hour). A warm-up round (each user once)
precedes the measured runs and is not counted, and before each bot run the outbox is drained.

An error is anything but HTTP 200 with the expected answer (the bot's "Request #n is open",
the bare app's fixed text), a connection failure, or an answer later than Slack's 3 s.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from bench import servers
from bench.report import INFO, Table, percentile, verdict
from tests.net import free_port

if TYPE_CHECKING:
    from tests.fakes.fake_slack import FakeSlack

REQUESTS = 2_000
QUICK_REQUESTS = 200
CONCURRENCY = (1, 50)
USERS = 200
# Blocks per level and server: the servers take turns, so drift in the machine's load hits all
# alike. Latency at 1 wants many short blocks: the bot with and without its worker agreed within
# 3% at 10 blocks, and were up to 12% apart at 4. Throughput at 50 wants long ones, as each block
# opens its 50 connections anew, a cost that weighs most on the fastest server. Multiples of 3,
# so each server goes first equally often.
BLOCKS = {1: 12, 50: 3}
WARM_CONCURRENCY = 10
SLACK_DEADLINE = 3.0  # seconds: Slack shows the user an error after this
DRAIN_TIMEOUT = 120.0
TARGET_P50_RATIO = 3.0  # bot p50 at concurrency 1 <= 3x the bare app's
TARGET_THROUGHPUT_SHARE = 0.4  # bot requests/s at concurrency 50 >= 40% of the bare app's
TARGET_P99 = 0.100  # seconds, bot at concurrency 50
PARKED = "bot, delivery worker parked"


@dataclass(slots=True)
class Run:
    """One measured run: `requests` commands, `concurrency` in flight."""

    server: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu: float = 0.0  # the server process's CPU seconds during the run
    cpu_main: float = 0.0  # of which its main thread's (the event loop: HTTP, bolt, adapter)
    cpu_drained: float = 0.0  # the same as cpu, until the block's relay posts were delivered
    drained_after: float | None = None  # seconds from the last ack to the last relay post

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(
            n for kind, n in self.errors.items() if kind.startswith("no answer")
        )

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


Check = Callable[[int, bytes], str | None]  # status, body -> None when right, else the error


def _bot_answer(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}"
    try:
        text = str(json.loads(body).get("text", ""))
    except ValueError:
        return "not JSON"
    return None if text.startswith("Request #") else f"answer: {text[:60]!r}"


def _bare_answer(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}"
    try:
        text = str(json.loads(body).get("text", ""))
    except ValueError:
        return "not JSON"
    return None if text == servers.BARE_ANSWER else f"answer: {text[:60]!r}"


class Commands:
    """Signed slash command bodies: each a new link, users in turn from the pool."""

    def __init__(self) -> None:
        self._serial = itertools.count(1)

    def signed(self, count: int, *, first_user: int = 0) -> list[tuple[bytes, dict[str, str]]]:
        from tests.fakes import slack_payloads as p  # noqa: PLC0415 - imported when run
        from tests.fakes.fake_slack import sign  # noqa: PLC0415

        bodies = []
        for i in range(count):
            n = next(self._serial)
            user = (first_user + i) % USERS
            body = p.slash_command_body(
                f"https://example.com/bench/{n} #python",
                user_id=f"U{user:05d}",
                user_name=f"user{user}",
                channel_id="C0GENERAL",
                trigger_id=f"{n}.bench.trigger",
            )
            bodies.append((body, sign(body, servers.SLACK_SECRET)))
        return bodies


async def load(
    url: str, bodies: list[tuple[bytes, dict[str, str]]], concurrency: int, check: Check, run: Run
) -> None:
    """POST every body, `concurrency` at a time; record latencies and errors into `run`."""
    pending = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)

    async def one_at_a_time(http: aiohttp.ClientSession) -> None:
        for body, headers in pending:
            start = time.perf_counter()
            try:
                async with http.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                    status = response.status
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                run.errors[f"no answer: {type(exc).__name__}"] += 1
                continue
            took = time.perf_counter() - start
            run.latencies.append(took)
            problem = check(status, answer)
            if problem is None and took > SLACK_DEADLINE:
                problem = "later than 3 s"
            if problem is not None:
                run.errors[problem] += 1

    # A full collection in this process (100-200 ms, with the fake's call log and the latency
    # lists) would hold up every request in flight and count against the server measured; as
    # timeit does, the timed part runs without the collector.
    gc.disable()
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            start = time.perf_counter()
            await asyncio.gather(*(one_at_a_time(http) for _ in range(concurrency)))
            run.seconds += time.perf_counter() - start
    finally:
        gc.enable()


def _counting_slack() -> FakeSlack:
    """A FakeSlack that counts accepted relay posts as they come (its call log is O(n) to scan)."""
    from tests.fakes.fake_slack import FakeSlack  # noqa: PLC0415 - imports slack-bolt

    class CountingSlack(FakeSlack):
        relay_posts = 0

        def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
            answer = super().call(method, args)  # raises for what Slack would refuse
            if method == "chat.postMessage" and args.get("channel") == servers.REVIEW_CHANNEL:
                self.relay_posts += 1
            return answer

    return CountingSlack(bot_token=servers.SLACK_TOKEN)


async def _posts(slack: FakeSlack, count: int, timeout: float) -> float | None:  # noqa: ASYNC109
    """Wait until FakeSlack has `count` accepted relay posts; seconds waited, None on timeout."""
    start = time.perf_counter()
    for _ in itertools.count():
        if getattr(slack, "relay_posts", 0) >= count:
            break
        if time.perf_counter() - start > timeout:
            return None
        await asyncio.sleep(0.002)
    return time.perf_counter() - start


@dataclass(slots=True)
class Server:
    """One server under test, running for the whole benchmark."""

    label: str
    child: servers.Child
    check: Check
    delivering: bool  # its worker posts to FakeSlack: drain before each of its blocks
    share: float  # of the requests per level
    commands: Commands = field(default_factory=Commands)
    asked: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.child.ready['port']}/slack/events"

    async def block(self, slack: FakeSlack, count: int, concurrency: int, run: Run) -> None:
        if self.delivering:  # start with an empty outbox: only this block's posts overlap it
            await _posts(slack, self.asked, DRAIN_TIMEOUT)
        cpu, cpu_main = self.child.cpu_seconds(), self.child.cpu_seconds(main_thread=True)
        bodies = self.commands.signed(count, first_user=self.asked)
        await load(self.url, bodies, concurrency, self.check, run)
        run.cpu += self.child.cpu_seconds() - cpu
        run.cpu_main += self.child.cpu_seconds(main_thread=True) - cpu_main
        self.asked += count
        if self.delivering:
            lag = await _posts(slack, self.asked, DRAIN_TIMEOUT)
            run.drained_after = max(run.drained_after or 0.0, lag if lag is not None else math.inf)
            run.cpu_drained += self.child.cpu_seconds() - cpu


# kind, label, config, share of the requests per level (the parked bot is context: half).
CASES: tuple[tuple[str, str, servers.Config, float], ...] = (
    ("slack-bare", "bare bolt app", {}, 1.0),
    ("slack-bot", "bot", {"worker": True}, 1.0),
    ("slack-bot", PARKED, {"worker": False}, 0.5),
)


async def _start(slack: FakeSlack, tmp: Path) -> list[Server]:
    started: list[Server] = []
    try:
        for index, (kind, label, extra, share) in enumerate(CASES):
            config = {
                "port": free_port(),
                "db": str(tmp / f"relay-{index}.db"),
                "api_url": slack.api_url,
                **extra,
            }
            child = await servers.spawn(kind, config, tmp / f"server-{index}.log")
            is_bot = kind == "slack-bot"
            delivering = is_bot and bool(extra.get("worker"))
            check = _bot_answer if is_bot else _bare_answer
            started.append(Server(label, child, check, delivering, share))
    except BaseException:
        for server in started:
            await server.child.stop()
        raise
    return started


async def _measure_all(requests: int) -> list[Run]:
    """All servers up at once; each concurrency level in blocks, the servers taking turns."""
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-slack-") as tmp:
        async with _counting_slack() as slack:
            started = await _start(slack, Path(tmp))
            try:
                for server in started:
                    warm = Run(server.label, WARM_CONCURRENCY)
                    await server.block(slack, USERS, WARM_CONCURRENCY, warm)
                    if warm.errors:
                        tail = server.child.log_tail()
                        msg = f"{server.label}: warm-up failed: {dict(warm.errors)}; log: {tail}"
                        raise RuntimeError(msg)
                for concurrency in CONCURRENCY:
                    level = {s.label: Run(s.label, concurrency) for s in started}
                    blocks = BLOCKS[concurrency]
                    for b in range(blocks):
                        turn = b % len(started)  # rotate who goes first
                        for server in started[turn:] + started[:turn]:
                            size = round(requests * server.share) // blocks
                            await server.block(slack, size, concurrency, level[server.label])
                    runs += level.values()
            finally:
                for server in started:
                    code = await server.child.stop()
                    if code != 0:
                        mine = [r for r in runs if r.server == server.label]
                        if mine:
                            mine[-1].errors[f"server exited with {code}"] += 1
    return runs


def run(quick: bool = False) -> list[Table]:
    requests = QUICK_REQUESTS if quick else REQUESTS
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    runs = asyncio.run(_measure_all(requests))
    seconds, load_after = time.perf_counter() - started, os.getloadavg()[0]
    return [_table(runs, requests, seconds, (load_before, load_after))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms"


def _table(runs: list[Run], requests: int, seconds: float, loads: tuple[float, float]) -> Table:
    table = Table(
        f"Slack ack: signed `/review <link> #topic`, {requests:,} per server and concurrency",
        (
            "server",
            "concurrency",
            "requests",
            "errors",
            "p50",
            "p99",
            "requests/s",
            "server CPU / request",
            "vs bare",
            "target",
            "result",
        ),
    )
    bare = {r.concurrency: r for r in runs if r.server == "bare bolt app"}
    for r in runs:
        base = bare.get(r.concurrency)
        errors = sum(r.errors.values())
        cpu = _ms(r.cpu / r.requests) if r.requests else "-"
        if r.server == "bare bolt app" or base is None:
            table.add(
                r.server, r.concurrency, f"{r.requests:,}", errors, _ms(r.p(50)), _ms(r.p(99)),
                f"{r.throughput:,.0f}", cpu, "-", "0 errors", verdict(errors == 0),
            )  # fmt: skip
            continue
        p50_ratio = r.p(50) / base.p(50)
        share = r.throughput / base.throughput
        ratios = f"p50 x{p50_ratio:.2f}, p99 x{r.p(99) / base.p(99):.2f}, req/s {share:.0%}"
        realistic = r.server == "bot"
        if not realistic:
            target, result = "- (shows the worker's cost)", INFO
        elif r.concurrency == 1:
            ok = p50_ratio <= TARGET_P50_RATIO and errors == 0
            target, result = f"p50 <= {TARGET_P50_RATIO:g}x bare; 0 errors", verdict(ok)
        else:
            ok = share >= TARGET_THROUGHPUT_SHARE and r.p(99) < TARGET_P99 and errors == 0
            target = (
                f"req/s >= {TARGET_THROUGHPUT_SHARE:.0%} of bare; p99 < "
                f"{TARGET_P99 * 1000:.0f} ms; 0 errors"
            )
            result = verdict(ok)
        table.add(
            r.server, r.concurrency, f"{r.requests:,}", errors, _ms(r.p(50)), _ms(r.p(99)),
            f"{r.throughput:,.0f}", cpu, ratios, target, result,
        )  # fmt: skip
    for r in runs:
        if r.errors:
            table.notes.append(f"{r.server} at {r.concurrency}: errors {dict(r.errors)}")
    drained = [r for r in runs if r.drained_after is not None]
    table.notes += [
        "each server runs in a child process of its own (`bench.servers`), all three for the "
        "whole benchmark; this process is Slack (FakeSlack's Web API and the load: aiohttp over "
        "keep-alive connections, bodies signed before timing starts; its garbage collector is "
        "paused during a block, as timeit does). Latency: request sent to answer read, as Slack "
        "sees it. Server CPU: the child's user+system time (all threads) over its blocks, per "
        "request.",
        "each level runs in blocks per server ("
        + ", ".join(f"{n} at {c}" for c, n in BLOCKS.items())
        + "), the servers taking turns (the first rotating), so a change in the machine's load "
        "hits all three alike; the ratios compare the pooled blocks. A block of the bot with its "
        "worker on starts with an empty outbox.",
        "the bot runs with REQUESTS_PER_HOUR=1,000,000 (raised for the benchmark: 200 users "
        f"send up to {2 * requests // USERS + 1} requests each within the hour, the default "
        "allows 10); "
        "every command has a new link. A warm-up round (each user once, 10 at a time) precedes "
        "the runs and is not counted.",
        "`bot` has its delivery worker on (realistic: it posts each request's relay post to "
        "FakeSlack during the block); `bot, delivery worker parked` is the same bot with the "
        "worker's loop replaced by one that never sends, to show what delivering costs (half "
        "the requests: it is context, not a target).",
    ]
    for concurrency in CONCURRENCY:
        on = next((r for r in runs if r.server == "bot" and r.concurrency == concurrency), None)
        off = next((r for r in runs if r.server == PARKED and r.concurrency == concurrency), None)
        if on is None or off is None or not (on.requests and off.requests):
            continue
        table.notes.append(
            f"what delivering costs at {concurrency}: p50 {_ms(on.p(50) - off.p(50))}, "
            f"server CPU {_ms(on.cpu / on.requests - off.cpu / off.requests)} per request "
            "during the block (`bot` minus `bot, delivery worker parked`; at 50 much of the "
            "posting happens after the block, see below); counted until the block's last relay "
            f"post is in, {_ms(on.cpu_drained / on.requests - off.cpu / off.requests)} per "
            "relay post"
        )
    threads = [r for r in runs if r.server in ("bare bolt app", PARKED) and r.requests]
    if threads:
        split = "; ".join(
            f"{r.server} at {r.concurrency}: main {_ms(r.cpu_main / r.requests)}, "
            # Both read in clock ticks a moment apart: a thread-less remainder can dip below 0.
            f"others {_ms(max(0.0, r.cpu - r.cpu_main) / r.requests)}"
            for r in threads
        )
        table.notes.append(
            "server CPU per request by thread: the main thread runs the event loop (HTTP, "
            "bolt, the adapter), the others are the bot's database threads (its units of work "
            f"run whole there, the writer's and the checkpointer's): {split}"
        )
    if drained:
        lag = ", ".join(f"{r.server} at {r.concurrency}: {r.drained_after:.2f} s" for r in drained)
        table.notes.append(f"last relay post after a block's last ack, at most: {lag}")
    table.notes.append(
        f"wall time {seconds:.0f} s; load average (1 min) {loads[0]:.1f} before, "
        f"{loads[1]:.1f} after, on {os.cpu_count()} CPUs"
    )
    return table
