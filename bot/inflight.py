"""Inbound events being handled right now, so background work can give way to them.

Slack wants a slash command acknowledged within 3 s and Discord an interaction answered within 3 s;
a relay post or a digest has no such deadline. All of them share one event loop (and one store
connection), so the delivery worker waits for a lull between inbound events before each send: under
a burst the acks come first and the posts follow a moment later. The wait is bounded, so sustained
traffic slows delivery down but never stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

MAX_WAIT = 0.5  # seconds background work waits for a lull before it goes ahead anyway


class InFlight:
    def __init__(self) -> None:
        self._count = 0
        self._lull = asyncio.Event()
        self._lull.set()

    @property
    def count(self) -> int:
        return self._count

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """Count one inbound event as in flight for the duration of the block."""
        self._count += 1
        self._lull.clear()
        try:
            yield
        finally:
            self._count -= 1
            if not self._count:
                self._lull.set()

    async def lull(self, at_most: float = MAX_WAIT) -> None:
        """Return when no inbound event is being handled, or after `at_most` seconds."""
        if self._count:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lull.wait(), at_most)
