"""Who is a workspace admin: a `users.info` read, bounded in time and cached.

Slash command payloads do not say whether the user is an admin, and `/review setup` needs to
know. This is the one Web API call an inbound handler makes: a read, not a notice, so it does
not go through the outbox; it is short enough (1.5 s at most) to answer inside Slack's 3 s ack
window, and it is made only for commands that need it. Failure means "not an admin": deny by
default (design §9).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports import Clock

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 1.5
CACHE_TTL = timedelta(minutes=5)  # short: a demoted admin loses the right within minutes
_ADMIN_FIELDS = ("is_admin", "is_owner", "is_primary_owner")


class AdminCheck:
    def __init__(
        self,
        client: AsyncWebClient,
        clock: Clock,
        *,
        timeout: float = LOOKUP_TIMEOUT,
        ttl: timedelta = CACHE_TTL,
    ) -> None:
        self._client = client
        self._clock = clock
        self._timeout = timeout
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[bool, datetime]] = {}

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """True if Slack says the user administers or owns the workspace."""
        now = self._clock.now()
        cached = self._cache.get((team_id, user_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.users_info(user=user_id)
        except (SlackClientError, TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Not cached: the next attempt asks again.
            log.warning("users.info for %s failed (%s); treating as not an admin", user_id, exc)
            return False
        user = response.get("user") or {}
        admin = isinstance(user, dict) and any(user.get(f) is True for f in _ADMIN_FIELDS)
        self._cache[(team_id, user_id)] = (admin, now + self._ttl)
        return admin
