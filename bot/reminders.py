"""The daily digest of stale requests: pure timing rules plus an idempotent run for the day.

A row per (community, local date) is written in the transaction that enqueues the digest, so a
second run on the same local day, in this process or another, sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot import texts
from bot.model import Community, NoticeKind, Outgoing, Platform
from bot.ports import Clock
from storage.base import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DigestResult:
    community: Community
    local_date: str
    stale: int
    sent: bool  # False when this local day's digest had already run


def local_date(now: datetime, timezone: str) -> str:
    return now.astimezone(ZoneInfo(timezone)).date().isoformat()


def is_due(community: Community, now: datetime) -> bool:
    """Whether the community's reminder time has come today, in its own time zone."""
    local = now.astimezone(ZoneInfo(community.timezone))
    hour, minute = map(int, community.reminder_time.split(":"))
    return local.time() >= time(hour, minute)


def digest_text(lines: list[str]) -> str:
    return "\n".join([texts.DIGEST_HEAD.format(count=len(lines)), *lines])


async def run_digests(
    *,
    store: Store,
    clock: Clock,
    platforms: Collection[Platform],
    stale_after: timedelta,
    only_when_due: bool = True,
) -> list[DigestResult]:
    """Enqueue today's digest for every community that has not had it yet.

    With `only_when_due` (the in-process schedule) a community waits for its reminder time; cron's
    `reviewrelay remind` passes False and lets cron choose the moment.
    """
    now = clock.now()
    results = []
    async with store.transaction() as tx:
        communities = [
            c for c in await tx.communities() if c.review_channel_id and c.platform in platforms
        ]
    for community in communities:
        if only_when_due and not is_due(community, now):
            continue
        day = local_date(now, community.timezone)
        async with store.transaction() as tx:
            first = await tx.record_reminder_run(
                community.platform, community.community_id, day, now
            )
            stale = await tx.stale_requests(now - stale_after) if first else []
            if stale:
                text = digest_text([texts.request_line(r, now) for r in stale])
                await tx.enqueue(
                    [
                        Outgoing(
                            kind=NoticeKind.CHANNEL_TEXT,
                            platform=community.platform,
                            community_id=community.community_id,
                            channel_id=community.review_channel_id or "",
                            text=text,
                        )
                    ],
                    now,
                )
        results.append(DigestResult(community, day, len(stale), first))
        log.info(
            "digest for %s/%s on %s: %s",
            community.platform,
            community.community_id,
            day,
            f"{len(stale)} stale" if first else "already sent today",
        )
    return results
