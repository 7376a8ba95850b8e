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
from collections.abc import Iterator

MAX_WAIT = 0.5  # seconds background work waits for a lull before it goes ahead anyway
QUIET = 0.005  # seconds after the last event ended: its answer is on the way out


class InFlight:
    def __init__(self) -> None:
        self._count = 0
        self._quiet = asyncio.Event()  # set while a lull lasts
        self._quiet.set()
        self._starting: asyncio.TimerHandle | None = None  # sets `_quiet` QUIET after an end

    @property
    def count(self) -> int:
        return self._count

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """Count one inbound event as in flight for the duration of the block."""
        self._count += 1
        self._quiet.clear()
        if self._starting is not None:
            self._starting.cancel()
            self._starting = None
        try:
            yield
        finally:
            self._count -= 1
            if not self._count:
                # One timer, cancelled if another event begins first: under steady traffic the
                # waiters (one per notice waiting to go out) sleep on, where each used to wake
                # at every event's end only to sleep again.
                loop = asyncio.get_running_loop()
                self._starting = loop.call_later(QUIET, self._quiet.set)

    async def lull(self, at_most: float = MAX_WAIT) -> None:
        """Return once no inbound event was handled for QUIET seconds, or after `at_most`."""
        with contextlib.suppress(TimeoutError):  # not wait_for: see DeliveryWorker.run
            async with asyncio.timeout(at_most):
                await self._quiet.wait()
