"""The protocols the core depends on besides the store: a clock and a per-platform sender."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from bot.model import Notice, Platform


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
