"""DiscordAdapter: the `bot.ports.Adapter` for Discord, and `build_discord` that `bot.app` calls.

`start` logs in (REST: GET /users/@me and /oauth2/applications/@me, then the command sync check),
runs `client.connect()` in a background task in the running loop, and returns once the first
session is ready, or raises a clear error. discord.py reconnects and RESUMEs on its own from then
on; `connected` follows the gateway session for /healthz. A stop, or a failed start, closes the
client for good, so the next start makes a new one (`client` is always the current one) and
hands it to the same `sender`, which the delivery worker holds.

discord.py reads its REST base and gateway address from two class attributes, so they are
process-wide: `start` sets both from the settings every time (the defaults equal discord.py's own,
so that is a no-op in production and keeps tests from depending on leftovers) and `stop` puts the
previous values back. One Discord adapter per process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import discord
import discord.gateway
import discord.http
import yarl

from adapters.discord.backoff import STABLE_AFTER, StartBackoff
from adapters.discord.client import ReviewClient
from adapters.discord.send import DiscordSender
from bot.errors import ConfigError, ReviewRelayError
from bot.model import Platform
from bot.ports import Clock, Inbox, Sender
from bot.settings import Settings

log = logging.getLogger(__name__)

READY_TIMEOUT: Final = 60.0


class DiscordStartError(ReviewRelayError):
    """The Discord adapter could not log in or get a ready gateway session."""


class DiscordAdapter:
    platform = Platform.DISCORD

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        client_class: type[ReviewClient] = ReviewClient,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float = READY_TIMEOUT,
        backoff: StartBackoff | None = None,
    ) -> None:
        if settings.discord_guild_id and not settings.discord_guild_id.isdigit():
            msg = f"DISCORD_GUILD_ID: '{settings.discord_guild_id}' is not a Discord id"
            raise ConfigError(msg)
        self._settings = settings
        self._clock = clock
        self._client_class = client_class
        self._guild_ready_timeout = guild_ready_timeout
        self._ready_timeout = ready_timeout
        self._backoff = backoff or StartBackoff(None, clock)
        self.client = self._new_client()
        # The core keeps this sender for good, so a fresh client is handed to it, not replaced.
        self._sender = DiscordSender(self.client)
        # Typed as the port: Adapter.sender is a mutable protocol member, hence invariant.
        self.sender: Sender = self._sender
        self._runner: asyncio.Task[None] | None = None
        self._stable: asyncio.TimerHandle | None = None
        self._previous_urls: tuple[str, yarl.URL] | None = None
        self._ready_once = False

    @property
    def connected(self) -> bool:
        return self.client.live and not self.client.is_closed()

    async def start(self, inbox: Inbox) -> None:
        token = self._settings.discord_bot_token
        if token is None:
            msg = "DISCORD_BOT_TOKEN: required to start the Discord adapter"
            raise ConfigError(msg)
        await self._backoff.before_start()
        self._point_discord_py_at_settings()
        if self.client.is_closed():
            # discord.py cannot log a closed client in again (its HTTP client keeps the closed
            # connector, discord.py #9121), and a failed start closes it too.
            self.client = self._new_client()
            self._sender.use(self.client)
        self.client.bind(inbox)
        try:
            await self.client.login(token.get_secret_value())
            self._runner = asyncio.create_task(self.client.connect(), name="discord-gateway")
            self._runner.add_done_callback(self._runner_ended)
            await self._wait_ready()
        except discord.LoginFailure:
            await self.stop()
            msg = "DISCORD_BOT_TOKEN: Discord rejected the token (401)"
            raise ConfigError(msg) from None
        except BaseException:
            await self.stop()
            raise
        self._ready_once = True
        self._stable = asyncio.get_running_loop().call_later(STABLE_AFTER, self._backoff.succeeded)
        log.info(
            "discord connected as %s in %d guild(s)", self.client.user, len(self.client.guilds)
        )

    def _new_client(self) -> ReviewClient:
        return self._client_class(
            settings=self._settings,
            clock=self._clock,
            guild_ready_timeout=self._guild_ready_timeout,
        )

    async def _wait_ready(self) -> None:
        assert self._runner is not None  # noqa: S101 - created just before
        # Ready means on_ready has registered the guilds as communities (`remind` relies on it).
        ready = asyncio.create_task(self.client.registered.wait())
        done, _ = await asyncio.wait(
            {ready, self._runner}, timeout=self._ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done:
            return
        ready.cancel()
        if self._runner in done and not self._runner.cancelled():
            error = self._runner.exception()
            msg = f"discord: the gateway connection ended before it was ready: {error!r}"
            raise DiscordStartError(msg) from error
        msg = f"discord: no ready gateway session after {self._ready_timeout:.0f}s"
        raise DiscordStartError(msg)

    def _runner_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and self._ready_once:
            log.critical("discord gateway stopped for good", exc_info=task.exception())

    async def stop(self) -> None:
        """Close the session and the HTTP client; safe to call twice or after a failed start."""
        if self._stable is not None:
            self._stable.cancel()
            self._stable = None
        self.client.stop_reconcile()
        await self.client.close()
        # Join the background tasks; their own failures were logged when they ended.
        tasks = [t for t in (self.client.reconciling, self._runner) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None
        self.client.live = False
        self._restore_discord_py()
        if self._ready_once:
            self._backoff.succeeded()  # a clean stop is no crash loop
            self._ready_once = False

    def _point_discord_py_at_settings(self) -> None:
        if self._previous_urls is None:
            self._previous_urls = (
                discord.http.Route.BASE,
                discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
            )
        discord.http.Route.BASE = self._settings.discord_api_url.rstrip("/")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
            self._settings.discord_gateway_url
        )

    def _restore_discord_py(self) -> None:
        if self._previous_urls is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = (
                self._previous_urls
            )
            self._previous_urls = None


def build_discord(settings: Settings, clock: Clock) -> DiscordAdapter:
    """The Discord adapter for `reviewrelay run` / `remind`, with its crash-loop backoff."""
    return DiscordAdapter(
        settings, clock, backoff=StartBackoff.beside(settings.database_path, clock)
    )
