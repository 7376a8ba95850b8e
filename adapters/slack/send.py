"""SlackSender: the only path from the outbox to the Slack Web API.

One notice, one Web API call, no retries here: the outbox owns retries, so a failure becomes a
`DeliveryError` that says whether trying again can help (429 with its `Retry-After`, 5xx,
timeouts, connection errors), whether the token is bad, or whether the notice is dead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack import render
from bot.errors import DeliveryError
from bot.model import Notice, NoticeKind, Platform

log = logging.getLogger(__name__)

UNAUTHORIZED: Final = frozenset({"invalid_auth", "not_authed", "token_revoked", "account_inactive"})
# Slack answers these with HTTP 200 now and then; they say "not now", not "never".
TRANSIENT: Final = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Slack's own words for these: "it's possible some aspect of the operation succeeded before the
# error was raised"; so with a 500, 502 or 504 (a proxy's, after Slack took the call) the post
# may be there. A 503 (service_unavailable) turned the call away.
PARTLY_DONE: Final = frozenset({"internal_error", "fatal_error"})
_MAYBE_DONE_STATUSES: Final = frozenset({500, 502, 504})
# The channel is gone or closed to the bot: nothing sent there can work until someone fixes it.
CHANNEL_LOST: Final = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived"}
)
# New messages carry their outbox id as message metadata, so that one whose answer was lost can
# be found in its conversation's history instead of posted twice (`SlackSender.find`).
METADATA_EVENT: Final = "reviewrelay_notice"
HISTORY_PAGE = 200  # messages per conversations.history call (Slack advises at most 200)
HISTORY_PAGES = 5
_CHANNEL_POSTS = frozenset({NoticeKind.RELAY_POST, NoticeKind.CHANNEL_TEXT})
_LOOKED_FOR = _CHANNEL_POSTS | {NoticeKind.DIRECT}
_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(raw, list):  # slack_sdk keeps header values as lists
        raw = raw[0] if raw else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def delivery_error(method: str, exc: Exception, *, to_channel: bool = False) -> DeliveryError:
    """Map what slack_sdk or aiohttp raised to the core's DeliveryError (never a token in it).

    `to_channel`: the call addressed the notice's channel (not a DM), so an answer saying the
    channel is lost is about that channel.
    """
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        code = str(exc.response.get("error", "") or f"http_{status}")
        message = f"slack {method}: {code} (HTTP {status})"
        if status == _TOO_MANY_REQUESTS or code == "ratelimited":
            # Slack limits per method and workspace, not per channel: wait before any call.
            after = _retry_after(exc.response.headers)
            return DeliveryError(message, retryable=True, retry_after=after, platform_wide=True)
        if code in UNAUTHORIZED:
            # Worth sending again once the token is fixed; the worker stops calling Slack till then.
            return DeliveryError(message, retryable=True, unauthorized=True)
        return DeliveryError(
            message,
            retryable=status >= _SERVER_ERROR or code in TRANSIENT,
            channel_lost=to_channel and code in CHANNEL_LOST,
            maybe_delivered=status in _MAYBE_DONE_STATUSES or code in PARTLY_DONE,
        )
    if isinstance(exc, TimeoutError | aiohttp.ClientError | OSError):
        # Only a connection never made is sure to have done nothing: Slack's Web API has no
        # idempotency key to make the second try of a post a no-op.
        sent = not isinstance(exc, aiohttp.ClientConnectorError)
        return DeliveryError(
            f"slack {method}: {type(exc).__name__}", retryable=True, maybe_delivered=sent
        )
    return DeliveryError(f"slack {method}: {type(exc).__name__}: {exc}", retryable=False)


class SlackSender:
    """Sends notices with one AsyncWebClient (shared with bolt, its retry handlers removed)."""

    platform = Platform.SLACK

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        # "channels" or "dms": the app lacks the scopes to read their history (installed with an
        # older manifest); their resends are not looked for until restart.
        self._cannot_read: set[str] = set()
        # Set once auth.test said who we are: another app's metadata in the channel is not ours.
        self.bot_user_id: str | None = None

    async def send(self, notice: Notice) -> str | None:
        method, args = self._call(notice)
        response = await self._api(notice, method, json=args)
        if notice.kind in _CHANNEL_POSTS:
            ts = response.get("ts")
            return str(ts) if ts else None
        return None

    async def find(self, notice: Notice) -> str | None:
        """The ts of `notice`'s message, looked for by its metadata in its conversation's history,
        newest first: the channel, or for a DM the bot's DM with the user (conversations.open).
        A conversation's notices go out in id order, so the walk stops at the first of ours with
        a lower id."""
        place = "dms" if notice.kind is NoticeKind.DIRECT else "channels"
        if notice.kind not in _LOOKED_FOR or place in self._cannot_read:
            log.warning(
                "notice %s (%s) may have reached Slack before its answer was lost; sending it "
                "again without looking, so it may arrive twice",
                notice.id, notice.kind,
            )  # fmt: skip
            return None
        try:
            if notice.kind is NoticeKind.DIRECT:
                # A form body, as slack_sdk's conversations_open sends it.
                users = {"users": notice.user_id}
                opened = await self._api(notice, "conversations.open", data=users)
                return await self._walk(notice, str((opened.get("channel") or {}).get("id", "")))
            return await self._walk(notice, notice.channel_id)
        except DeliveryError as exc:
            if exc.retryable or exc.channel_lost:
                raise
            # missing_scope, say: an app created before the manifest asked for the scope.
            log.warning("cannot look for notice %s (%s); sending it again", notice.id, exc)
            if "missing_scope" in str(exc):
                self._cannot_read.add(place)
            return None

    async def _walk(self, notice: Notice, channel: str) -> str | None:
        args: dict[str, Any] = {
            "channel": channel,
            "include_all_metadata": True,
            "limit": HISTORY_PAGE,
        }
        for _ in range(HISTORY_PAGES):
            page = await self._api(notice, "conversations.history", params=args)
            for message in page.get("messages") or ():
                if self.bot_user_id is not None and message.get("user") != self.bot_user_id:
                    continue
                posted = _notice_of(message)
                if posted == notice.id:
                    return str(message["ts"])
                if posted is not None and posted < notice.id:
                    return None  # posted before this notice's first try: it is not further back
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return None
            args["cursor"] = cursor
        log.warning(
            "notice %s not found in the last %d messages of %s; sending it again",
            notice.id, HISTORY_PAGE * HISTORY_PAGES, channel,
        )  # fmt: skip
        return None

    async def _api(self, notice: Notice, method: str, **args: Any) -> AsyncSlackResponse:
        try:
            # slack_sdk honours its timeout only on sessions it creates; bound every call here.
            async with asyncio.timeout(self._client.timeout):
                http_verb = "GET" if "params" in args else "POST"
                return await self._client.api_call(method, http_verb=http_verb, **args)
        except (SlackClientError, TimeoutError, aiohttp.ClientError, OSError) as exc:
            # A DM goes to the user id as channel: its "channel_not_found" is about the user.
            to_channel = notice.kind is not NoticeKind.DIRECT
            raise delivery_error(method, exc, to_channel=to_channel) from None

    @staticmethod
    def _call(notice: Notice) -> tuple[str, dict[str, Any]]:
        """The Web API method and JSON arguments for a notice (what `send` will call)."""
        text = render.render_text(notice.text)
        match notice.kind:
            case NoticeKind.RELAY_POST | NoticeKind.POST_UPDATE if notice.request is not None:
                body = render.render_relay_post(
                    notice.request, notice.mentions, community_id=notice.community_id
                )
                if notice.kind is NoticeKind.RELAY_POST:
                    post = {"channel": notice.channel_id, "metadata": _metadata(notice)}
                    return "chat.postMessage", {**post, **body}
                edit = {"channel": notice.channel_id, "ts": notice.message_id}
                return "chat.update", {**edit, **body}
            case NoticeKind.DIRECT:
                # A user id as channel posts to the app's DM with them: one call. Only a lookup
                # (`find`, rare) needs the DM's own id, from conversations.open.
                dm = {"channel": notice.user_id, "metadata": _metadata(notice)}
                return "chat.postMessage", {**dm, "text": text}
            case NoticeKind.EPHEMERAL:
                args = {"channel": notice.channel_id, "user": notice.user_id, "text": text}
                return "chat.postEphemeral", args
            case NoticeKind.CHANNEL_TEXT:
                post = {"channel": notice.channel_id, "metadata": _metadata(notice)}
                return "chat.postMessage", {**post, "text": text}
            case NoticeKind.TEXT_UPDATE:
                args = {"channel": notice.channel_id, "ts": notice.message_id, "text": text}
                return "chat.update", args
        msg = f"slack cannot send a {notice.kind} notice without what it needs (notice {notice.id})"
        raise DeliveryError(msg, retryable=False)


def _metadata(notice: Notice) -> dict[str, Any]:
    return {"event_type": METADATA_EVENT, "event_payload": {"notice_id": notice.id}}


def _notice_of(message: Mapping[str, Any]) -> int | None:
    """The outbox id in a message's metadata, if the bot posted it (None otherwise)."""
    metadata = message.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != METADATA_EVENT:
        return None
    payload = metadata.get("event_payload")
    notice_id = payload.get("notice_id") if isinstance(payload, Mapping) else None
    return notice_id if isinstance(notice_id, int) else None
