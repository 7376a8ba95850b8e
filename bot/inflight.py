"""Inbound events being handled right now, so background work can give way to them.

Slack wants a slash command acknowledged within 3 s and Discord an interaction answered within 3 s;
a relay post or a digest has no such deadline. All of them share one event loop (and one store
connection), so the delivery worker waits for a lull between inbound events before each send: under
a burst the acks come first and the posts follow a moment later. A lull starts a few milliseconds
after the last event's handling ended, because the adapter still has to send its answer (Discord's
interaction callback, Slack's HTTP response) after the core returned it. The wait is bounded, so
sustained traffic slows delivery down but never stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

MAX_WAIT = 0.5  # seconds background work waits for a lull before it goes ahead anyway
QUIET = 0.005  # seconds after the last event ended: its answer is on the way out


class InFlight:
    def __init__(self) -> None:
        self._count = 0
        self._ended = -QUIET  # time.monotonic() when the last event's handling ended
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
            self._ended = time.monotonic()
            if not self._count:
                self._lull.set()

    async def lull(self, at_most: float = MAX_WAIT) -> None:
        """Return once no inbound event was handled for QUIET seconds, or after `at_most`."""
        deadline = time.monotonic() + at_most
        while (left := deadline - time.monotonic()) > 0:
            if self._count:
                with contextlib.suppress(TimeoutError):  # not wait_for: see DeliveryWorker.run
                    async with asyncio.timeout(left):
                        await self._lull.wait()
                continue
            quiet_for = time.monotonic() - self._ended
            if quiet_for >= QUIET:
                return
            await asyncio.sleep(min(QUIET - quiet_for, left))
