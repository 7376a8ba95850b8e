"""discord.py and aiohttp failures mapped to the outbox's DeliveryError."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest

from adapters.discord.send import CLOUDFLARE_BAN_RETRY, delivery_error


def http_error(status: int, code: int = 0, headers: dict[str, str] | None = None) -> Any:
    response = SimpleNamespace(status=status, reason="x", headers=headers or {})
    body = {"message": "error", "code": code}
    if status == 403:
        return discord.Forbidden(response, body)  # type: ignore[arg-type]
    if status == 404:
        return discord.NotFound(response, body)  # type: ignore[arg-type]
    if status >= 500:
        return discord.DiscordServerError(response, body)  # type: ignore[arg-type]
    return discord.HTTPException(response, body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "retryable", "unauthorized"),
    [
        (http_error(403, 50013), False, False),  # missing permissions
        (http_error(403, 50001), False, False),  # missing access
        (http_error(404, 10003), False, False),  # unknown channel
        (http_error(404, 10008), False, False),  # unknown message
        (http_error(400, 50007), False, False),  # cannot DM this user
        (http_error(400, 50035), False, False),  # invalid form body
        (http_error(401), True, True),  # revoked token: the worker stops calling Discord
        (http_error(500), True, False),
        (http_error(503), True, False),
        (TimeoutError(), True, False),
        (aiohttp.ClientConnectionError(), True, False),
        (ConnectionResetError(), True, False),
    ],
)
def test_errors_map_to_retryable_or_permanent(
    error: Exception, retryable: bool, unauthorized: bool
) -> None:
    """Permissions, missing things and bad bodies are permanent; the rest is worth retrying."""
    mapped = delivery_error("relay_post", error)
    assert (mapped.retryable, mapped.unauthorized) == (retryable, unauthorized)


def test_long_rate_limit_keeps_discords_hint() -> None:
    """A 429 longer than discord.py will sleep comes back with its retry_after."""
    mapped = delivery_error("relay_post", discord.RateLimited(42.5))
    assert mapped.retryable
    assert mapped.retry_after == 42.5


def test_cloudflare_ban_backs_off_long() -> None:
    """A 429 without Discord's JSON (an IP ban) honours Retry-After, or waits long."""
    assert delivery_error("x", http_error(429, headers={"Retry-After": "120"})).retry_after == 120
    assert delivery_error("x", http_error(429)).retry_after == CLOUDFLARE_BAN_RETRY


def test_token_never_appears_in_the_error() -> None:
    """The message names the call and the status, nothing from the request headers."""
    mapped = delivery_error("direct", http_error(401))
    assert "401" in str(mapped)
    assert "Bot " not in str(mapped)


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (http_error(403, 50013), True),  # missing permissions
        (http_error(403, 50001), True),  # missing access
        (http_error(404, 10003), True),  # unknown channel
        (http_error(404, 10008), False),  # unknown message: one post, not the channel
        (http_error(403, 50007), False),  # cannot DM this user
        (http_error(403, 50005), False),  # cannot edit another user's message
    ],
)
def test_channel_codes_mark_the_channel_lost(error: Exception, lost: bool) -> None:
    """Unknown Channel, Missing Access and Missing Permissions say the channel is lost."""
    assert delivery_error("relay_post", error, to_channel=True).channel_lost is lost


def test_a_dm_is_never_a_lost_channel() -> None:
    """The same codes on a DM (or an ephemeral, which Discord gets as a DM) degrade nothing."""
    assert delivery_error("direct", http_error(403, 50001)).channel_lost is False


@pytest.mark.parametrize(
    ("error", "maybe_delivered"),
    [
        (http_error(500), True),
        (http_error(502), True),
        (http_error(504), True),
        (http_error(524), True),  # Cloudflare: Discord's origin took the call and did not answer
        (http_error(503), False),
        (http_error(400, 50035), False),
        (
            aiohttp.ClientConnectorError(SimpleNamespace(ssl=None, host="h", port=1), OSError()),
            False,
        ),  # type: ignore[arg-type]
    ],
)
def test_a_server_error_may_have_posted_already(error: Exception, maybe_delivered: bool) -> None:
    """discord.py gives up on a 500, 502, 504 or 524 after its own tries, any of which Discord
    may have done: the worker then looks for the message before a resend, as after a timeout
    (the nonce covers only a few minutes). It used to resend blind, and a message created by
    the first try showed twice once Discord had forgotten the nonce."""
    assert delivery_error("relay_post", error).maybe_delivered is maybe_delivered
