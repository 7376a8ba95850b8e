"""Soft reciprocity and fairness: the give/take record in words, hints to give back, who has gone
quiet, and the order volunteers see waiting requests in (givers' first when volunteers are scarce).
Pure functions, except `hint` and `for_volunteers`, which read the store inside the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from bot import matching, texts
from bot.model import Ledger, Member, Request, Status, Volunteer
from storage.base import Transaction

LOAD_WINDOW = timedelta(days=30)
NEWCOMER_REQUESTS = 3  # a person's first requests are never met with a hint
TAKE_GAP = 3  # received this many more reviews than given before we suggest giving back
IGNORED_AFTER = timedelta(days=1)  # how long a notification may wait before it counts as ignored
SUGGESTIONS = 2
# Waiting requests weighed for the order, oldest first: a list or digest shows fewer, and a giver's
# request behind this many older ones waits for those to go, as it did before soft reciprocity.
QUEUE_WINDOW = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def load_window_start(now: datetime) -> datetime:
    """Where the 30-day load window begins, in whole seconds: the stored loads (migration 0005)
    then move once a second at most, not at every request."""
    return (now - LOAD_WINDOW).replace(microsecond=0)


def silent(
    candidates: list[Volunteer], request: Request, now: datetime, *, after: int
) -> list[Volunteer]:
    """Eligible volunteers who ignored `after` notifications in a row, the first of them at
    least IGNORED_AFTER ago: pause them, not ping. (Four requests in a minute are no sign of
    anything.)"""
    topics = frozenset(request.topics)
    return [
        v
        for v in candidates
        if v.ignored_streak >= after
        and v.ignored_since is not None
        and v.ignored_since <= now - IGNORED_AFTER
        and matching.is_eligible(
            v, topics=topics, requester_person_id=request.requester.person_id, now=now
        )
    ]


def owes(ledger: Ledger) -> bool:
    """Has received much more than given, and is no newcomer."""
    return ledger.asked > NEWCOMER_REQUESTS and ledger.received - ledger.given >= TAKE_GAP


def takes(ledger: Ledger) -> bool:
    """Received `TAKE_GAP` or more reviews than given in the last 30 days."""
    # The same gap as `owes`, so a small deficit (a first review received, none given yet) never
    # moves anyone back; the 30-day window lets a taker catch up by giving now.
    return ledger.received_recent - ledger.given_recent >= TAKE_GAP


def held_back(ledger: Ledger, earlier: int, *, soft: bool) -> bool:
    """Whether a request waits behind givers' requests: RECIPROCITY=soft, its requester takes
    (`takes`), and it is not one of their first `NEWCOMER_REQUESTS` (`earlier` of theirs came
    before it)."""
    return soft and earlier >= NEWCOMER_REQUESTS and takes(ledger)


def queue_order(requests: Iterable[Request], held: Collection[int] = frozenset()) -> list[Request]:
    """Waiting requests in the order volunteers see them: those not `held` (ids) first, then
    oldest first. With nothing held (RECIPROCITY=off) this is age alone."""
    return sorted(requests, key=lambda r: (r.id in held, r.created_at, r.id))


async def for_volunteers(
    tx: Transaction, requests: Sequence[Request], now: datetime, *, soft: bool
) -> list[Request]:
    """`queue_order` of `requests`, reading the requesters' 30-day balances at once (soft only)."""
    held: set[int] = set()
    if soft:
        people = {r.requester.person_id for r in requests}
        ledgers = await tx.recent_ledgers(people, now - LOAD_WINDOW)
        for person in sorted(p for p in people if takes(ledgers[p])):
            ledger = ledgers[person]
            # A newcomer's first requests are never held back: their first few are all it takes.
            asked = await tx.requests_since(person, _EPOCH, limit=NEWCOMER_REQUESTS)
            for request in requests:
                if request.requester.person_id == person:
                    earlier = sum(1 for t in asked if t < request.created_at)
                    if held_back(ledger, earlier, soft=soft):
                        held.add(request.id)
    return queue_order(requests, held)


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
        texts.HELPED.format(name=texts.who(m, viewer), count=n, s=texts.plural(n))
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
        for r in await tx.open_requests(limit=50, seen_from=(member.platform, member.community_id))
        if r.status is Status.OPEN
        and r.requester.person_id != member.person_id
        # An x2 request they hold (or finished) a slot of stays open, but is no help to offer.
        and all(m.person_id != member.person_id for m in r.claimers)
        and wanted & set(r.topics)
    ][:SUGGESTIONS]
    if not picks:
        return ""
    return texts.SUGGEST.format(items=", ".join(f"#{r.id} {r.link}" for r in picks))
