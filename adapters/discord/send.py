"""DiscordSender: the only path from the outbox to Discord's REST API.

One notice, one message call (plus a DM channel lookup for DMs), no retries of our own: the
outbox owns retries, so every failure becomes a `DeliveryError` saying whether trying again can
help. New messages carry the outbox row id as their `nonce`; discord.py then asks Discord to
enforce it, and a resend within minutes of a crash or a timeout returns the message already
created instead of a second copy; past that `find` looks for the message before any resend.
Edits address the message by id (`PartialMessage`), so nothing is fetched first.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Final

import aiohttp
import discord

from adapters.discord import render
from bot.errors import DeliveryError
from bot.model import Notice, NoticeKind, Platform

log = logging.getLogger(__name__)

# discord.py retries 5xx itself (sleeping 1+3+5+7 s); past this the outbox takes over.
CALL_TIMEOUT: Final = 60.0
NOT_LOGGED_IN_RETRY: Final = 10.0  # seconds between tries of a notice while no client is up
CLOUDFLARE_BAN_RETRY: Final = 600.0  # a 429 without Discord's JSON is an IP ban: back off long
_PERMANENT_STATUSES: Final = frozenset({400, 403, 404, 405, 413})
# Unknown Channel, Missing Access, Missing Permissions: the channel is gone or closed to the bot.
# (Not 50007 "cannot send messages to this user": a closed DM is about one person.)
CHANNEL_LOST_CODES: Final = frozenset({10003, 50001, 50013})
HISTORY_LIMIT: Final = 200  # messages read when looking for a message (two calls)
# How far our clock may be ahead of Discord's: a text is looked for among the messages Discord
# dated from this long before our first try on (see `find`).
CLOCK_SKEW: Final = timedelta(seconds=10)
_UNAUTHORIZED: Final = 401
_TOO_MANY: Final = 429
_SERVER: Final = 500
_MAYBE_DONE_STATUSES: Final = frozenset({500, 502, 504, 524})  # 503 turned the call away


def _retry_after(exc: discord.HTTPException) -> float | None:
    raw = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def delivery_error(what: str, exc: Exception, *, to_channel: bool = False) -> DeliveryError:
    """Map what discord.py or aiohttp raised to the core's DeliveryError (never a token in it).

    `to_channel`: the call addressed the notice's channel (not a DM), so an answer saying the
    channel is lost is about that channel.
    """
    if isinstance(exc, discord.RateLimited):  # longer than max_ratelimit_timeout: not slept on
        # A wait this long is a limit on us, not on one channel: every queue that tried on its
        # own would collect its own invalid answers (Discord bans at 10,000 in 10 minutes).
        return DeliveryError(
            f"discord {what}: 429",
            retryable=True,
            retry_after=exc.retry_after,
            platform_wide=True,
        )
    if isinstance(exc, discord.HTTPException):
        status, code = exc.status, exc.code
        message = f"discord {what}: HTTP {status} code {code}: {exc.text[:200]}"
        if status == _TOO_MANY:
            # discord.py retries Discord's own JSON 429s; one that reaches us is a global limit
            # or Cloudflare's IP ban, and either applies to every call we make.
            after = _retry_after(exc) or CLOUDFLARE_BAN_RETRY
            return DeliveryError(message, retryable=True, retry_after=after, platform_wide=True)
        if status == _UNAUTHORIZED:
            # Worth sending once the token is fixed; the worker stops calling Discord till then.
            return DeliveryError(message, retryable=True, unauthorized=True)
        # 403 50013/50001 (permissions), 404 10003/10008 (channel/message gone), 400 50007
        # (DMs closed), 400 50035 (invalid body): sending the same again cannot work.
        return DeliveryError(
            message,
            retryable=status >= _SERVER or status not in _PERMANENT_STATUSES,
            channel_lost=to_channel and code in CHANNEL_LOST_CODES,
            # discord.py retries these itself before it gives up: any of its tries may have
            # created the message, and the nonce that makes a resend a no-op lasts minutes.
            maybe_delivered=status in _MAYBE_DONE_STATUSES,
        )
    if isinstance(exc, TimeoutError | aiohttp.ClientError | OSError | discord.ConnectionClosed):
        # Only a connection never made is sure to have done nothing. A resend carries the same
        # nonce, but Discord keeps it only minutes, and retries can wait longer than that.
        sent = not isinstance(exc, aiohttp.ClientConnectorError)
        return DeliveryError(
            f"discord {what}: {type(exc).__name__}", retryable=True, maybe_delivered=sent
        )
    return DeliveryError(f"discord {what}: {type(exc).__name__}: {exc}", retryable=False)


def _snowflake(value: str, what: str) -> int:
    if not value.isascii() or not value.isdigit():
        msg = f"discord: {what} {value!r} is not a Discord id"
        raise DeliveryError(msg, retryable=False)
    return int(value)


def _user(notice: Notice) -> discord.Object:
    return discord.Object(id=_snowflake(notice.user_id, "user"))


class DiscordSender:
    """Sends notices through a logged-in `discord.Client` (REST only; the gateway may be down)."""

    platform = Platform.DISCORD

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    def use(self, client: discord.Client) -> None:
        """Send through `client` from now on: the adapter's new one after a restart."""
        self._client = client

    def _check_logged_in(self) -> None:
        # Between a failed start and the next, the client is closed or not logged in yet; a call
        # would fail inside discord.py ("Session is closed") and look like a bug of ours.
        if self._client.is_closed() or self._client.user is None:
            msg = "discord: not logged in (the adapter is starting again)"
            # A wait of our own, as a rate limit's: Discord refused nothing, so the try uses up
            # none of the notice's attempts, however long the starts keep failing (bot.app and
            # the crash-loop backoff space them out to 5 and 15 minutes).
            raise DeliveryError(msg, retryable=True, retry_after=NOT_LOGGED_IN_RETRY)

    async def send(self, notice: Notice) -> str | None:
        self._check_logged_in()
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                return await self._send(notice)
        except DeliveryError:
            raise
        except (discord.DiscordException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Discord sends both DIRECT and EPHEMERAL as DMs (see `_send`): not the channel.
            to_channel = notice.kind not in (NoticeKind.DIRECT, NoticeKind.EPHEMERAL)
            raise delivery_error(str(notice.kind), exc, to_channel=to_channel) from None

    async def find(self, notice: Notice) -> str | None:
        """The message of `notice` if an earlier send arrived (its answer lost), looked for in its
        channel; Discord keeps a nonce only "for the past few minutes", and this holds after a
        longer outage too.

        A relay post is found among the channel's latest messages by the request id in its embed,
        newest first, stopping at our post of an earlier request (a channel's posts go out in
        request order). A text (the digest, a DM) is found by its content among our messages
        dated from our first try on: the outbox sends a channel's messages in order, so an equal
        text of ours after that is this one (or, within CLOCK_SKEW before it, an equal text the
        reader saw just before)."""
        self._check_logged_in()
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                return await self._look_for(notice)
        except (discord.DiscordException, TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = delivery_error("history", exc, to_channel=notice.kind is not NoticeKind.DIRECT)
            if error.retryable:
                raise error from None
            # No Read Message History, say: that says nothing about posting there.
            log.warning("cannot look for notice %s (%s); sending it again", notice.id, error)
        return None

    async def _look_for(self, notice: Notice) -> str | None:
        me = self._client.user
        if me is None:
            return None
        if notice.kind is NoticeKind.RELAY_POST and notice.request is not None:
            async for message in self._channel(notice).history(limit=HISTORY_LIMIT):
                posted = render.relay_post_request(message) if message.author.id == me.id else None
                if posted == notice.request.id:
                    return str(message.id)
                if posted is not None and posted < notice.request.id:
                    return None
            return None
        if notice.kind in (NoticeKind.CHANNEL_TEXT, NoticeKind.DIRECT) and notice.sending_since:
            channel: discord.abc.Messageable = (
                await self._client.create_dm(_user(notice))
                if notice.kind is NoticeKind.DIRECT
                else self._channel(notice)
            )
            expected = render.sent_text(notice.kind, notice.text)
            after = notice.sending_since - CLOCK_SKEW
            async for message in channel.history(limit=HISTORY_LIMIT, after=after):
                if message.author.id == me.id and render.text_of(message) == expected:
                    return str(message.id)
        return None

    async def _send(self, notice: Notice) -> str | None:
        nonce = str(notice.id)  # the outbox row id: Discord de-duplicates a resend by it
        match notice.kind:
            case NoticeKind.RELAY_POST:
                if notice.request is None:
                    msg = "discord relay post without its request"
                    raise DeliveryError(msg, retryable=False)
                post = render.render_relay_post(
                    notice.request, notice.mentions, community_id=notice.community_id
                )
                sent = await self._channel(notice).send(**post, nonce=nonce)
                return str(sent.id)
            case NoticeKind.POST_UPDATE:
                if notice.request is None:
                    msg = "discord post update without its request"
                    raise DeliveryError(msg, retryable=False)
                # `content` (the volunteers' mentions) is left as posted: editing it in would
                # not ping anyone anyway, and the embed carries the state.
                await self._message(notice).edit(
                    embed=render.render_embed(notice.request, notice.community_id),
                    view=render.render_view(notice.request),
                    allowed_mentions=discord.AllowedMentions.none(),
                )
                return None
            case NoticeKind.CHANNEL_TEXT:
                sent = await self._channel(notice).send(
                    **render.render_text(notice.text), nonce=nonce
                )
                return str(sent.id)
            case NoticeKind.TEXT_UPDATE:
                await self._message(notice).edit(**render.render_text(notice.text))
                return None
            case NoticeKind.DIRECT | NoticeKind.EPHEMERAL:
                # Discord has no ephemeral message outside an interaction: a short DM it is.
                channel = await self._client.create_dm(_user(notice))
                await channel.send(render.render_direct(notice.text), nonce=nonce)
                return None

    def _channel(self, notice: Notice) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(_snowflake(notice.channel_id, "channel"))

    def _message(self, notice: Notice) -> discord.PartialMessage:
        message_id = _snowflake(notice.message_id, "message")
        return self._channel(notice).get_partial_message(message_id)
