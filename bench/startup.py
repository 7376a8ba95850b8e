"""Start-up with both adapters: `python -m bot run` from process start to `/healthz` 200.

FakeSlack and FakeDiscord run in this process; the bot is the real command in a fresh
interpreter (the venv's), configured through the environment as in production (Slack in HTTP
mode, Discord with a guild and review channel, a SQLite file, HTTP on a free 127.0.0.1 port,
JSON log lines), from a directory without a `.env`. This process polls `GET /healthz` every few
milliseconds from the spawn on; once it answers 200 the bot idles for a moment and its resident
memory is read from /proc (VmRSS now, VmHWM the peak), then SIGINT stops it, which must end it
cleanly. The first start creates the database and syncs Discord's commands; later starts reuse
both, like a restart. Next to it: the interpreter alone and importing slack_bolt + discord alone
(`bench.footprint`'s measurement, in fresh interpreters too).

The phases come from the bot's own log lines (their timestamps against the spawn).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bench import footprint, servers
from bench.report import INFO, Table, median, mib, ms, verdict
from tests.net import free_port

if TYPE_CHECKING:
    from tests.fakes.discord_payloads import FakeGuild

RUNS = 4  # restarts; plus the first start
QUICK_RUNS = 2
IDLE = 1.0  # seconds after the first 200 before reading the idle RSS
POLL = 0.005
GUILD_READY_WAIT = 2.0  # adapters.discord: guild_ready_timeout, discord.py's default
HEALTHY_TIMEOUT = 60.0
# Log lines that mark the phases of a start, in order (prefixes of the message).
PHASES = (
    ("Slack connected", "Slack: connected to"),
    ("Discord commands checked", "discord commands"),
    ("Discord ready", "discord connected as"),
    ("HTTP listening", "HTTP server listening"),
)


@dataclass(slots=True)
class Start:
    healthy: float | None = None  # seconds from spawn to the first 200
    rss: int = 0
    peak: int = 0
    exit_code: int | None = None
    phases: dict[str, float] = field(default_factory=dict)
    error: str = ""


def _memory(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of a process, in bytes (0 when unreadable)."""
    found = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, *value = line.split()
            if key in found:
                found[key] = int(value[0]) * 1024
    except OSError:
        pass
    return found["VmRSS:"], found["VmHWM:"]


def _phases(log: Path, spawned: float) -> dict[str, float]:
    """Seconds from the spawn to the first log line of each phase."""
    found: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
            at = datetime.fromisoformat(record["time"]).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        for name, prefix in PHASES:
            if name not in found and str(record.get("message", "")).startswith(prefix):
                found[name] = at - spawned
    return found


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-300:]


async def _healthy(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while process.returncode is None:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            await asyncio.sleep(POLL)
    msg = f"exited with {process.returncode} before /healthz said 200"
    raise RuntimeError(msg)


async def start_once(env: dict[str, str], cwd: Path, log: Path) -> Start:
    result = Start()
    port = free_port()
    env = env | {"HTTP_PORT": str(port)}
    spawned, clock = time.time(), time.perf_counter()
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
            cwd=cwd,
            env=env,
        )
    try:
        async with asyncio.timeout(HEALTHY_TIMEOUT):
            await _healthy(f"http://127.0.0.1:{port}/healthz", process)
        result.healthy = time.perf_counter() - clock
        await asyncio.sleep(IDLE)
        result.rss, result.peak = _memory(process.pid)
    except (RuntimeError, TimeoutError) as exc:
        result.error = f"{exc or type(exc).__name__}: {_tail(log)}"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            result.exit_code = await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            result.exit_code = await process.wait()
            result.error = result.error or "did not stop within 15 s of SIGINT"
    result.phases = _phases(log, spawned)
    return result


def _guild() -> FakeGuild:
    from tests.fakes.discord_payloads import FakeGuild  # noqa: PLC0415 - imported when run

    return FakeGuild.build("Reviewers", channels=["general", "reviews"], members=["alice"])


async def _measure(runs: int) -> list[Start]:
    from tests.fakes.fake_discord import FakeDiscord  # noqa: PLC0415 - imported when run
    from tests.fakes.fake_slack import FakeSlack  # noqa: PLC0415

    guild = _guild()
    starts = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        async with (
            FakeSlack(bot_token=servers.SLACK_TOKEN) as slack,
            FakeDiscord(token=servers.DISCORD_TOKEN, guilds=[guild]) as discord,
        ):
            env = servers.child_env(
                DATABASE_URL=f"sqlite:///{tmp}/relay.db",
                HTTP_HOST="127.0.0.1",
                LOG_FORMAT="json",
                LOG_LEVEL="INFO",
                SLACK_BOT_TOKEN=servers.SLACK_TOKEN,
                SLACK_SIGNING_SECRET=servers.SLACK_SECRET,
                SLACK_API_URL=slack.api_url,
                SLACK_REVIEW_CHANNEL=servers.REVIEW_CHANNEL,
                DISCORD_BOT_TOKEN=servers.DISCORD_TOKEN,
                DISCORD_API_URL=discord.api_base,
                DISCORD_GATEWAY_URL=discord.gateway_url,
                DISCORD_GUILD_ID=guild.id,
                DISCORD_REVIEW_CHANNEL_ID=guild.channel("reviews").id,
            )
            for index in range(runs):
                log = Path(tmp) / f"start-{index}.log"
                starts.append(await start_once(env, Path(tmp), log))
    return starts


def run(quick: bool = False) -> list[Table]:
    runs = QUICK_RUNS if quick else RUNS
    interpreter = footprint.measure_import((), runs)
    sdks = footprint.measure_import(("slack_bolt", "discord"), runs)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A shell starts a background job (`make bench &`) with SIGINT ignored, and a child
        # inherits that: the bot would never see the SIGINT this measures, and every start
        # would count as a hang. A handler, unlike "ignore", does not pass to children.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    starts = asyncio.run(_measure(runs + 1))  # the first creates the database
    return [_table(interpreter, sdks, starts)]


def _p50(values: list[float]) -> str:
    return ms(median(values)) if values else "-"


def _table(interpreter: footprint.Imported, sdks: footprint.Imported, starts: list[Start]) -> Table:
    table = Table(
        "Start-up with both adapters: `python -m bot run` to `/healthz` 200",
        (
            "what",
            "to `/healthz` 200 p50",
            "import time p50",
            "idle RSS p50",
            "peak RSS p50",
            "target",
            "result",
        ),
    )
    table.add(
        "interpreter only", "-", "-", "-", mib(median(interpreter.rss)), "-", INFO
    )  # fmt: skip
    sdk_rss = median(sdks.rss)
    table.add(
        "SDKs alone: import slack_bolt + discord", "-", ms(median(sdks.seconds)), "-",
        mib(sdk_rss), "-", INFO,
    )  # fmt: skip
    first, again = starts[0], starts[1:]
    healthy = [s.healthy for s in again if s.healthy is not None]
    idle = [s.rss for s in again if s.rss]
    clean = all(s.healthy is not None and s.exit_code in (0, 130) and not s.error for s in starts)
    target = "/healthz 200 with both adapters; clean exit on SIGINT, every start"
    table.add(
        f"`python -m bot run`, both adapters on the fakes, restart (x{len(again)})",
        _p50(healthy), "-", mib(median(idle)) + f" ({median(idle) / sdk_rss:.2f}x SDKs alone)",
        mib(median([s.peak for s in again])), target, verdict(clean),
    )  # fmt: skip
    table.add(
        "the same, first start (new database, Discord commands synced)",
        ms(first.healthy) if first.healthy is not None else "-", "-", mib(first.rss),
        mib(first.peak), "-", INFO,
    )  # fmt: skip
    phases = []
    for name, _ in PHASES:
        at = [s.phases[name] for s in again if name in s.phases]
        if at:
            phases.append(f"{name} {_p50(at)}")
    gaps = [
        s.phases["Discord ready"] - s.phases["Discord commands checked"]
        for s in again
        if {"Discord ready", "Discord commands checked"} <= s.phases.keys()
    ]
    table.notes += [
        "restart rows: medians over the starts after the first (same database, commands "
        f"unchanged); each a fresh process. Idle RSS: VmRSS {IDLE:g} s after the first 200; "
        "peak: VmHWM. SDK and interpreter rows: `bench.footprint`'s fresh-interpreter "
        "measurement (peak RSS), importing only.",
        "phases of a restart, from spawn, by the bot's own log lines (p50): "
        + ", ".join(phases)
        + (f", `/healthz` 200 {_p50(healthy)}" if healthy else ""),
    ]
    if gaps:
        table.notes.append(
            f"from commands checked to Discord ready: {_p50(gaps)} (p50), of which "
            f"{GUILD_READY_WAIT:g} s is discord.py waiting `guild_ready_timeout` after the last "
            "GUILD_CREATE before it fires on_ready (ReviewClient passes 2.0, discord.py's default)"
        )
    codes = sorted({str(s.exit_code) for s in starts})
    table.notes.append(f"exit codes after SIGINT: {', '.join(codes)} (130 is the CLI's ^C)")
    table.notes += [f"start {i}: {s.error}" for i, s in enumerate(starts) if s.error]
    return table
