"""What Slack says about a user: one cache of `users.info` answers: admin rights, names, bots.

Slash commands do not say whether the user is a workspace admin (`/review setup` needs to know),
and reaction events carry only a user id, so a post would say "claimed by U0CAROL". Both come
from one `users.info` read, cached per user by the injected clock: an admin answer is trusted for
5 minutes (a demoted admin loses the right within minutes), a name for an hour. These are the only
Web API calls inbound handlers make besides opening the Done form: reads, not notices, so they do
not go through the outbox; each is bounded (1.5 s) to fit Slack's 3 s ack window. A failure is
not cached: it means "not an admin" (deny by default, design §9) and "no name" (the core keeps the
name it has, or shows the id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import clean_text
from bot.ports import Clock

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT: Final = 1.5
ADMIN_TTL: Final = timedelta(minutes=5)
NAME_TTL: Final = timedelta(hours=1)
NAME_LIMIT: Final = 80  # Slack's own limit for display names
MAX_ENTRIES: Final = 10_000  # past this, entries too old to use for anything are dropped
_ADMIN_FIELDS: Final = ("is_admin", "is_owner", "is_primary_owner")


@dataclass(frozen=True, slots=True)
class _Entry:
    admin: bool
    name: str
    fetched_at: datetime
    bot: bool = False


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def user_name(user: Mapping[str, Any]) -> str:
    """The name Slack shows: the profile's display name, else the real name, else the handle."""
    profile = user.get("profile")
    profile = profile if isinstance(profile, Mapping) else {}
    for raw in (
        _str(profile.get("display_name")),
        _str(profile.get("real_name")),
        _str(user.get("real_name")),
        _str(user.get("name")),
    ):
        name = clean_text(raw, NAME_LIMIT)  # people choose these: no bidi tricks in posts
        if name:
            return name
    return ""


class SlackUsers:
    """Cached `users.info` reads for one workspace's bot token."""

    def __init__(
        self,
        client: AsyncWebClient,
        clock: Clock,
        *,
        timeout: float = LOOKUP_TIMEOUT,
        admin_ttl: timedelta = ADMIN_TTL,
        name_ttl: timedelta = NAME_TTL,
    ) -> None:
        self._client = client
        self._clock = clock
        self._timeout = timeout
        self._admin_ttl = admin_ttl
        self._name_ttl = name_ttl
        self._cache: dict[tuple[str, str], _Entry] = {}

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """True if Slack says the user administers or owns the workspace; False on any failure."""
        entry = await self._entry(team_id, user_id, self._admin_ttl)
        return entry is not None and entry.admin

    async def display_name(self, team_id: str, user_id: str, fallback: str = "") -> str:
        """The user's name (cached for an hour), or `fallback` when Slack cannot say."""
        entry = await self._entry(team_id, user_id, self._name_ttl)
        return entry.name if entry is not None and entry.name else fallback

    async def is_bot(self, team_id: str, user_id: str) -> bool:
        """True if Slack says the user is a bot (cached with the name); False when it cannot say."""
        entry = await self._entry(team_id, user_id, self._name_ttl)
        return entry is not None and entry.bot

    def cached_name(self, team_id: str, user_id: str) -> str:
        """The name if a fresh answer is cached, else ""; never calls Slack."""
        entry = self._fresh(team_id, user_id, self._name_ttl)
        return entry.name if entry is not None else ""

    def _fresh(self, team_id: str, user_id: str, ttl: timedelta) -> _Entry | None:
        entry = self._cache.get((team_id, user_id))
        if entry is not None and entry.fetched_at + ttl > self._clock.now():
            return entry
        return None

    async def _entry(self, team_id: str, user_id: str, ttl: timedelta) -> _Entry | None:
        return self._fresh(team_id, user_id, ttl) or await self._fetch(team_id, user_id)

    async def _fetch(self, team_id: str, user_id: str) -> _Entry | None:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.users_info(user=user_id)
        except (SlackClientError, TimeoutError, aiohttp.ClientError, OSError) as exc:
            reason = exc.response.get("error") if isinstance(exc, SlackApiError) else None
            log.warning("users.info for %s failed (%s)", user_id, reason or type(exc).__name__)
            return None
        user = response.get("user")
        if not isinstance(user, Mapping):
            return None
        entry = _Entry(
            admin=any(user.get(f) is True for f in _ADMIN_FIELDS),
            name=user_name(user),
            fetched_at=self._clock.now(),
            bot=user.get("is_bot") is True,
        )
        self._remember((team_id, user_id), entry)
        return entry

    def _remember(self, key: tuple[str, str], entry: _Entry) -> None:
        if len(self._cache) >= MAX_ENTRIES:
            oldest = entry.fetched_at - max(self._admin_ttl, self._name_ttl)
            self._cache = {k: e for k, e in self._cache.items() if e.fetched_at > oldest}
        self._cache[key] = entry
