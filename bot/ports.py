"""The protocols the core depends on besides the store: a clock and a per-platform sender."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from bot.model import Community, InboundEvent, Notice, Platform, Reply


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Sender(Protocol):
    """Delivers notices to one platform; the only outbound path to a platform API.

    `send` returns the platform's message id for notices that create a message (so the post can be
    edited later) and raises `DeliveryError` on failure. It must not retry by itself.
    """

    platform: Platform

    async def send(self, notice: Notice) -> str | None: ...

    async def find(self, notice: Notice) -> str | None:
        """The message id of `notice`'s message if an earlier send of it arrived after all (its
        answer lost to a crash or a timeout); None if it is not there, or if the platform cannot
        be asked (then the send that follows may post it twice) or makes a second send a no-op
        by itself (Discord's nonce). Raises `DeliveryError` when asking fails."""
        ...


class Inbox(Protocol):
    """What an adapter feeds: the dispatcher's entry points."""

    async def handle(self, event: InboundEvent) -> Reply: ...
    async def connect_community(self, community: Community) -> None: ...


class Adapter(Protocol):
    """A platform connection: inbound events to the Inbox, notices out through `sender`.

    `start` connects (and registers the communities it serves); `connected` feeds /healthz.
    """

    platform: Platform
    sender: Sender

    @property
    def connected(self) -> bool: ...

    async def start(self, inbox: Inbox) -> None: ...
    async def stop(self) -> None: ...
