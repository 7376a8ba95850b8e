"""The servers under test, each in a child process of its own: `python -m bench.servers KIND JSON`.

The benchmark process plays the platform (the fake's API, and the load that signs and sends
commands or dispatches interactions); the process under test is only the bot, or only the bare
SDK app it is compared with, as in production where Slack and Discord are elsewhere. Each child
prints one `READY {...}` line on stdout once it serves, and stops cleanly when its stdin closes.

Kinds:

- `slack-bot`: `bot.app.serve` with the Slack adapter in HTTP mode (what `reviewrelay run` runs),
  on a real SqliteStore file, against FakeSlack. `worker: false` parks the delivery worker (its
  `run` waits forever) to show what delivering costs; nothing else changes.
- `slack-bare`: a bare slack-bolt AsyncApp whose `/review` only acks (`process_before_response`,
  the same signing secret and Web API client settings), behind the same `adapters.http.HttpServer`
  with the same `bolt_endpoint` route.
- `discord-bot`: `bot.app.serve` with the Discord adapter, against FakeDiscord.
- `discord-bare`: a bare discord.py client whose `/review ask` only answers (ephemeral).

Platform SDKs and adapters are imported inside the functions: the benchmark process imports this
module only to spawn children.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import discord

    from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SLACK_SECRET = "bench-signing-secret"  # noqa: S105 - a fake's credential
SLACK_TOKEN = "xoxb-bench"  # noqa: S105
DISCORD_TOKEN = "bench-token"  # noqa: S105
REVIEW_CHANNEL = "C0REVIEW"
# Raised for the benchmark: a pool of users sends thousands of requests within the hour; the
# default (10 per person per hour) would refuse most of them. Nothing else is changed.
REQUESTS_PER_HOUR = 1_000_000
BARE_ANSWER = "Request received"
READY = "READY "
START_TIMEOUT = 60.0

Config = dict[str, Any]


# --------------------------------------------------------------------------- parent side


def child_env(**extra: str) -> dict[str, str]:
    """The environment without any platform token or bot setting, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DISCORD_", "DATABASE_", "HTTP_", "LOG_", "REQUESTS_"))
    }
    env.update(extra)
    return env


@dataclass(slots=True)
class Child:
    """A running server under test: its pid, what it said when ready, its log file."""

    process: asyncio.subprocess.Process
    ready: Config
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self, *, main_thread: bool = False) -> float:
        """User + system CPU the child has used so far, all threads or only its main thread
        (the event loop's); from /proc, 0 where there is none."""
        stat = f"/proc/{self.pid}/task/{self.pid}/stat" if main_thread else f"/proc/{self.pid}/stat"
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self, timeout: float = 15.0) -> int:  # noqa: ASYNC109
        """Close its stdin (it then stops cleanly) and wait; kill it if it does not (or at 0)."""
        if self.process.returncode is None and timeout > 0:
            if self.process.stdin is not None and not self.process.stdin.is_closing():
                self.process.stdin.close()
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(self.process.wait(), timeout)
        if self.process.returncode is None:
            self.process.kill()
        return await self.process.wait()

    def log_tail(self, chars: int = 600) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


async def spawn(kind: str, config: Config, log: Path) -> Child:
    """Start `python -m bench.servers kind config`; return once it printed READY."""
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.servers",
            kind,
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            cwd=ROOT,
            env=child_env(),
        )
    child = Child(process, {}, log)
    try:
        async with asyncio.timeout(START_TIMEOUT):
            ready = await _ready_line(process)
    except BaseException:
        await child.stop(timeout=0)
        raise
    if ready is None:
        await process.wait()
        msg = f"{kind} exited with {process.returncode} before ready: {child.log_tail(800)}"
        raise RuntimeError(msg)
    child.ready = ready
    return child


async def _ready_line(process: asyncio.subprocess.Process) -> Config | None:
    """What the child said in its READY line; None if it ended first."""
    assert process.stdout is not None  # noqa: S101 - spawned with stdout=PIPE
    while line := (await process.stdout.readline()).decode():
        if line.startswith(READY):
            ready: Config = json.loads(line.removeprefix(READY))
            return ready
    return None


# --------------------------------------------------------------------------- child side


def _ready(**info: Any) -> None:
    print(READY + json.dumps({"pid": os.getpid(), **info}), flush=True)


async def _until_stdin_closes() -> None:
    stdin: IO[str] = sys.stdin
    await asyncio.to_thread(stdin.read)


def _configure_logs(settings: Settings) -> None:
    """As `reviewrelay run` does (bot.cli): one handler on stderr, secrets redacted."""
    from bot import logs  # noqa: PLC0415 - child only

    logs.configure(
        level=settings.log_level,
        json_lines=settings.log_format == "json",
        secrets=settings.secrets(),
    )


def _settings(config: Config, **values: Any) -> Settings:
    from bot.settings import Settings  # noqa: PLC0415 - child only

    base = {
        "database_url": f"sqlite:///{config['db']}",
        "http_host": "127.0.0.1",
        "http_port": config["port"],
        "requests_per_hour": REQUESTS_PER_HOUR,
    }
    return Settings(_env_file=None, **(base | values))  # type: ignore[call-arg]


def _park_delivery_worker() -> None:
    """Replace the delivery worker's loop with one that never sends (the `worker: false` runs)."""
    import bot.app  # noqa: PLC0415 - child only
    from bot.delivery import DeliveryWorker  # noqa: PLC0415

    class ParkedWorker(DeliveryWorker):
        async def run(self, idle_poll: float = 1.0) -> None:
            await asyncio.Event().wait()

    setattr(bot.app, "DeliveryWorker", ParkedWorker)  # noqa: B010 - replacing a class


async def _serve_bot(settings: Settings) -> None:
    """`reviewrelay run` minus the argument parsing: `bot.app.serve` with the enabled adapters.

    READY once every adapter is connected: `serve` sets `started` after each platform's first
    start attempt and retries one that failed in the background, so that alone is not enough.
    """
    from bot.app import platform_adapters, serve  # noqa: PLC0415 - child only
    from bot.ports import SystemClock  # noqa: PLC0415

    _configure_logs(settings)
    clock = SystemClock()
    adapters = platform_adapters(settings, clock)
    started, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(settings, adapters, clock, started=started, stop=stop))

    async def connected() -> None:  # `connected` is a property: polled, there is no event
        await started.wait()
        for _ in itertools.count():
            if all(a.connected for a in adapters):
                return
            await asyncio.sleep(0.01)

    waiting = asyncio.create_task(connected())
    done, _ = await asyncio.wait(
        {task, waiting}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
    )
    if waiting not in done:
        waiting.cancel()
        stop.set()
        await task  # raises what stopped it, if anything did
        msg = f"not every platform connected within {START_TIMEOUT:g} s"
        raise RuntimeError(msg)
    _ready(port=settings.http_port)
    await _until_stdin_closes()
    stop.set()
    await task


async def slack_bot(config: Config) -> None:
    if not config.get("worker", True):
        _park_delivery_worker()
    settings = _settings(
        config,
        slack_bot_token=SLACK_TOKEN,
        slack_signing_secret=SLACK_SECRET,
        slack_api_url=config["api_url"],
        slack_review_channel=REVIEW_CHANNEL,
    )
    await _serve_bot(settings)


async def slack_bare(config: Config) -> None:
    from aiohttp import web  # noqa: PLC0415 - child only
    from slack_bolt.async_app import AsyncAck, AsyncApp  # noqa: PLC0415
    from slack_sdk.web.async_client import AsyncWebClient  # noqa: PLC0415

    from adapters.http import HttpServer  # noqa: PLC0415
    from adapters.slack.web import bolt_endpoint  # noqa: PLC0415

    settings = _settings(config)
    _configure_logs(settings)
    # The bot's client settings (adapters.slack.adapter.build_slack): same base URL, no retries.
    client = AsyncWebClient(
        token=SLACK_TOKEN, base_url=config["api_url"], timeout=10, retry_handlers=[]
    )
    app = AsyncApp(client=client, signing_secret=SLACK_SECRET, process_before_response=True)

    async def on_review(ack: AsyncAck) -> None:
        await ack(text=BARE_ANSWER, response_type="ephemeral")

    app.command("/review")(on_review)
    server = HttpServer(
        host="127.0.0.1",
        port=config["port"],
        checks={},
        routes=[web.post("/slack/events", bolt_endpoint(app))],
    )
    await server.start()
    try:
        _ready(port=server.port)
        await _until_stdin_closes()
    finally:
        await server.stop()


async def discord_bot(config: Config) -> None:
    settings = _settings(
        config,
        discord_bot_token=DISCORD_TOKEN,
        discord_api_url=config["api_base"],
        discord_gateway_url=config["gateway_url"],
        discord_guild_id=config["guild_id"],
        discord_review_channel_id=config["channel_id"],
    )
    await _serve_bot(settings)


async def discord_bare(config: Config) -> None:
    import discord  # noqa: PLC0415 - child only
    import discord.gateway  # noqa: PLC0415
    import discord.http  # noqa: PLC0415
    import yarl  # noqa: PLC0415
    from discord import app_commands  # noqa: PLC0415

    _configure_logs(_settings(config))
    # What tests.fakes.fake_discord.point_discord_py_at does (and DiscordAdapter.start).
    discord.http.Route.BASE = config["api_base"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config["gateway_url"])
    guild = discord.Object(id=int(config["guild_id"]))
    ready = asyncio.Event()

    review = app_commands.Group(name="review", description="Ask for peer review", guild_only=True)

    @review.command(name="ask", description="Ask for a review of a link")
    async def ask(
        interaction: discord.Interaction[Any], link: str, topics: str | None = None
    ) -> None:
        await interaction.response.send_message(BARE_ANSWER, ephemeral=True)

    class BareClient(discord.Client):
        """The production client's options (adapters.discord.client), one command, no core."""

        def __init__(self) -> None:
            super().__init__(
                intents=discord.Intents(guilds=True, guild_reactions=True),
                allowed_mentions=discord.AllowedMentions.none(),
                max_ratelimit_timeout=30.0,
            )
            self.tree: app_commands.CommandTree[BareClient] = app_commands.CommandTree(self)
            self.tree.add_command(review, guild=guild)

        async def setup_hook(self) -> None:
            await self.tree.sync(guild=guild)

        async def on_ready(self) -> None:
            ready.set()

    client = BareClient()
    await client.login(DISCORD_TOKEN)
    runner = asyncio.create_task(client.connect())
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({runner, waiting}, return_when=asyncio.FIRST_COMPLETED)
    try:
        if runner.done():
            await runner
            return
        _ready()
        await _until_stdin_closes()
    finally:
        waiting.cancel()
        await client.close()
        await asyncio.gather(runner, return_exceptions=True)


KINDS: dict[str, Callable[[Config], Coroutine[Any, Any, None]]] = {
    "slack-bot": slack_bot,
    "slack-bare": slack_bare,
    "discord-bot": discord_bot,
    "discord-bare": discord_bare,
}


def main(argv: list[str]) -> int:
    kind, raw = argv
    asyncio.run(KINDS[kind](json.loads(raw)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
