"""Forgetting what nothing reads any more, so the database does not grow without bound.

Two kinds of rows pile up with every event and serve only for a while:
- inbound event keys: a repeat comes minutes later at most (Slack's retries, a Discord session's
  replay). Discord's reconcile feeds the same reactions again at each new session; a key's age
  starts over each time it is seen, so those live as long as reconciles keep meeting them;
- sent notices other than relay posts (edits, replies, DMs, digests): never read once sent. A
  relay post is: it says where the request's copies are, to edit them.
Requests, claims, thanks and the rest of the give/take record are kept.

Once a UTC day, at the first check of the day, in a series of short units so that no command
waits behind one long delete.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.reminders import GLOBAL
from storage.base import Store, Transaction

log = logging.getLogger(__name__)

KEEP = timedelta(days=90)  # far beyond any platform's redelivery (minutes)
SCAN = 2_000  # rows of each table a unit looks at: a few ms, 66 at most on a 1M-key store


async def prune(store: Store, now: datetime) -> int:
    """Forget event keys last seen, and notices sent, before `now - KEEP`; once per UTC day
    (the day's mark is stored, so restarts do not prune again). Returns how many rows went."""
    mark = f"prune-{now.astimezone(UTC).date().isoformat()}"

    async def first(tx: Transaction) -> _Pass | None:
        if not await tx.record_reminder_run(GLOBAL, GLOBAL, mark, now):
            return None  # done today already
        return await _Pass(before=now - KEEP).batch(tx)

    day = await store.run(first)
    if day is None:
        return 0
    while not day.done:
        day = await store.run(day.batch)
    if day.gone:
        log.info("forgot %d event keys and sent notices from before %s", day.gone, day.before)
    return day.gone


@dataclass(frozen=True, slots=True)
class _Pass:
    """One day's pass over both tables, each in its own order; a unit looks at SCAN rows of each,
    so a unit's cost does not grow with the tables. A batch returns the pass after it rather than
    moving this one: a unit may run again (SqliteStore.run), and only a committed batch counts."""

    before: datetime
    key: str | None = ""  # where the event keys go on from; None: all looked at
    notice: int | None = 0  # the same for the outbox, by id
    gone: int = 0

    @property
    def done(self) -> bool:
        return self.key is None and self.notice is None

    async def batch(self, tx: Transaction) -> _Pass:
        key, notice, gone = self.key, self.notice, self.gone
        if key is not None:
            n, key = await tx.forget_event_keys(self.before, key, SCAN)
            gone += n
        if notice is not None:
            n, notice = await tx.forget_sent_notices(self.before, notice, SCAN)
            gone += n
        return _Pass(before=self.before, key=key, notice=notice, gone=gone)
