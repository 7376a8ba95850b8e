"""Who hears about a request: a pure ranking over plain volunteer records.

Eligible: shares a topic, is not the requester (any of their linked identities), is not paused,
and is under their own cap of open claims. Ranked by fewest active claims, then least recently
notified, then person id, so equal volunteers take turns and the order is deterministic.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.model import Volunteer

_NEVER = datetime.min.replace(tzinfo=UTC)


def is_eligible(
    volunteer: Volunteer, *, topics: frozenset[str], requester_person_id: int, now: datetime
) -> bool:
    return (
        volunteer.person_id != requester_person_id
        and not volunteer.topics.isdisjoint(topics)
        and (volunteer.paused_until is None or volunteer.paused_until <= now)
        and volunteer.active_claims < volunteer.max_open_claims
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
    # nsmallest keeps this O(n log limit): the cost is one pass over the candidates.
    return heapq.nsmallest(
        limit,
        eligible,
        key=lambda v: (v.active_claims, v.last_notified_at or _NEVER, v.person_id),
    )
