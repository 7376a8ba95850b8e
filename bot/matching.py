"""Who hears about a request: a pure ranking over plain volunteer records.

Eligible: shares a topic, is not the requester (any of their linked identities), is not paused,
is under their own cap of open claims, and is not in their quiet hours. Ranked by fewest active
claims, then fewest claims in the last 30 days (load balancing over time), then least recently
notified, then person id, so equal volunteers take turns and the order is deterministic.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from bot.model import QuietHours, Volunteer

_NEVER = datetime.min.replace(tzinfo=UTC)
# A store ranks in SQL all it can check and leaves quiet hours to `rank`; it hands over this many
# volunteers per one to notify, so quiet hours seldom leave too few and force a second fetch.
OVERFETCH = 4


def in_quiet_hours(quiet: QuietHours, now: datetime) -> bool:
    """Whether `now` falls in the quiet window, in the volunteer's own time zone."""
    local = now.astimezone(ZoneInfo(quiet.timezone)).time()
    start, end = (time.fromisoformat(quiet.start), time.fromisoformat(quiet.end))
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # the window runs past midnight


def is_eligible(
    volunteer: Volunteer, *, topics: frozenset[str], requester_person_id: int, now: datetime
) -> bool:
    return (
        volunteer.person_id != requester_person_id
        and not volunteer.topics.isdisjoint(topics)
        and (volunteer.paused_until is None or volunteer.paused_until <= now)
        and volunteer.active_claims < volunteer.max_open_claims
        and (volunteer.quiet is None or not in_quiet_hours(volunteer.quiet, now))
    )


def rank(
    volunteers: Iterable[Volunteer],
    *,
    topics: Iterable[str],
    requester_person_id: int,
    now: datetime,
    limit: int,
) -> list[Volunteer]:
    """The `limit` volunteers to notify, best first."""
    wanted = frozenset(topics)
    if not wanted or limit <= 0:
        return []
    eligible = (
        v
        for v in volunteers
        if is_eligible(v, topics=wanted, requester_person_id=requester_person_id, now=now)
    )
    # nsmallest keeps this O(n log limit): the cost is one pass over the candidates. The store's
    # ranking index (storage/migrations/0005) holds this same order, never-notified first: keep
    # the two in step.
    return heapq.nsmallest(
        limit,
        eligible,
        key=lambda v: (
            v.active_claims,
            v.recent_claims,
            v.last_notified_at or _NEVER,
            v.person_id,
        ),
    )
