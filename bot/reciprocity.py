"""Soft reciprocity and fairness: the give/take record in words, hints to give back, and who has
gone quiet. Pure functions, except `hint`, which reads the store inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import matching, texts
from bot.model import Ledger, Member, Request, Status, Volunteer
from storage.base import Transaction

LOAD_WINDOW = timedelta(days=30)
NEWCOMER_REQUESTS = 3  # a person's first requests are never met with a hint
TAKE_GAP = 3  # received this many more reviews than given before we suggest giving back
SUGGESTIONS = 2


def silent(
    candidates: list[Volunteer], request: Request, now: datetime, *, after: int
) -> list[Volunteer]:
    """Eligible volunteers who ignored `after` notifications in a row: pause them, not ping."""
    topics = frozenset(request.topics)
    return [
        v
        for v in candidates
        if v.ignored_streak >= after
        and matching.is_eligible(
            v, topics=topics, requester_person_id=request.requester.person_id, now=now
        )
    ]


def owes(ledger: Ledger) -> bool:
    """Has received much more than given, and is no newcomer."""
    return ledger.asked > NEWCOMER_REQUESTS and ledger.received - ledger.given >= TAKE_GAP


def stats_text(ledger: Ledger, helpers: list[tuple[Member, int]], viewer: tuple[str, str]) -> str:
    """A person's balance, then thanks to the month's helpers; never a list of who did least."""
    own = texts.STATS_OWN.format(
        given=ledger.given,
        gs=texts.plural(ledger.given),
        given_recent=ledger.given_recent,
        received=ledger.received,
        rs=texts.plural(ledger.received),
        received_recent=ledger.received_recent,
    )
    if not helpers:
        return f"{own}\n{texts.STATS_NO_HELPERS}"
    return f"{own}\n{texts.STATS_HELPERS.format(names=helped_list(helpers, viewer))}"


def helped_list(helpers: list[tuple[Member, int]], viewer: tuple[str, str] | None) -> str:
    return ", ".join(
        texts.HELPED.format(
            name=texts.who(m, viewer), count=n, people="person" if n == 1 else "people"
        )
        for m, n in helpers
    )


async def hint(tx: Transaction, member: Member, request: Request, now: datetime) -> str:
    """For someone who takes much more than they give: one or two requests they could review."""
    ledger = await tx.ledger(member.person_id, now - LOAD_WINDOW)
    if not owes(ledger):
        return ""
    volunteer = await tx.volunteer(member.person_id)
    wanted = set(request.topics) | (set(volunteer.topics) if volunteer else set())
    picks = [
        r
        for r in await tx.open_requests(limit=50)
        if r.status is Status.OPEN
        and r.requester.person_id != member.person_id
        and wanted & set(r.topics)
    ][:SUGGESTIONS]
    if not picks:
        return ""
    return texts.SUGGEST.format(items=", ".join(f"#{r.id} {r.link}" for r in picks))
