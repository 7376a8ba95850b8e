"""The calls a fake is still answering: what a test waits for before it jumps a fake clock.

A fake's late answer (a fault with a delay) sleeps in real time and then does the work, as a
platform can finish a post after our client gave up. A test driving the worker on a FakeClock
jumps that clock by the retry wait (`bot.delivery.LATE_ANSWER_WAIT`, 30 s) in no real time, so
without waiting the retry would look before the late work lands, which cannot happen where the
platform's lateness and the bot's waiting share one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class Answering:
    """Counts the calls in progress; `settled()` returns once there are none."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """Hold for the whole of one call: its delay and its work."""
        self._count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._count -= 1
            if not self._count:
                self._idle.set()

    async def settled(self) -> None:
        """Wait until every call received has been answered (or abandoned and done anyway)."""
        await self._idle.wait()
