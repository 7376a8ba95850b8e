"""Back off between failed starts, across process restarts, to spare Discord's login budget.

Discord allows 1,000 new gateway sessions (IDENTIFY) a day; a bot in a crash loop under a
supervisor that restarts it every few seconds spends that in hours and is then locked out. Each
start is counted as a failure *before* connecting, in a small JSON file next to the database, so
a crash at any point counts; a clean stop, or a session that stayed up for `stable_after`
seconds, clears the count. The next start waits `base * 2**(failures - 1)` seconds (capped) after
the previous attempt. With the database in memory (tests) there is no file and no waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from bot.ports import Clock

log = logging.getLogger(__name__)

BASE_DELAY = 5.0
MAX_DELAY = 900.0  # 15 minutes: at worst ~100 starts a day
STABLE_AFTER = 300.0


def start_delay(failures: int, *, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Seconds to wait after `failures` failed starts in a row (0 for none)."""
    if failures <= 0:
        return 0.0
    return min(cap, base * 2.0 ** min(failures - 1, 30))


class StartBackoff:
    """A persisted failed-start counter: `before_start`, then `succeeded` or nothing (a crash)."""

    def __init__(
        self,
        path: Path | None,
        clock: Clock,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._path = path
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def beside(cls, database: Path | str, clock: Clock) -> StartBackoff:
        """The counter file next to the database (none for an in-memory database)."""
        if not isinstance(database, Path):
            return cls(None, clock)
        return cls(database.with_name(database.name + ".discord-starts.json"), clock)

    def _read(self) -> tuple[int, datetime | None]:
        if self._path is None:
            return 0, None
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            return int(data["failures"]), datetime.fromisoformat(data["last"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, None

    def _write(self, failures: int) -> None:
        if self._path is None:
            return
        data = {"failures": failures, "last": self._clock.now().isoformat()}
        try:
            self._path.write_text(json.dumps(data), encoding="utf-8")
        except OSError as exc:  # a read-only volume must not stop the bot
            log.warning("cannot record discord start attempts in %s: %s", self._path, exc)

    async def before_start(self) -> None:
        """Wait out the backoff the previous failures earned, then count this start as one."""
        failures, last = self._read()
        delay = start_delay(failures)
        if delay and last is not None:
            remaining = delay - (self._clock.now() - last).total_seconds()
            if remaining > 0:
                log.warning(
                    "discord: %d failed start(s) in a row; waiting %.0fs before logging in",
                    failures,
                    remaining,
                )
                await self._sleep(remaining)
        self._write(failures + 1)

    def succeeded(self) -> None:
        """The session proved stable, or the bot stopped cleanly: forget the failures."""
        self._write(0)
