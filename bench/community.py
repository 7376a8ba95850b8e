"""Community simulation: who gets asked, and does the work get done and spread fairly?

A seeded discrete-event simulation (an event heap over minutes; no store, no network) of one
community: 300 volunteers over six topics, some heavy givers (capacity 3, answer 85% of
notifications within ~1.5 h), many occasional ones (capacity 1, answer 20%, ~10 h), in six time
zones, half with quiet hours 22:00-08:00 and everyone asleep 23:00-07:00 local; 250 people who
only ask (~2 requests a week each) and 40% of the volunteers who also ask (0.7 a week). Requests
arrive for four weeks, in the asker's waking hours, on one topic (one in five on two); the run
goes on until every request is claimed or has expired (14 days).

A notified volunteer answers with their probability after a delay (deferred past their night)
and claims the request if it is still open and they are under capacity; the review then takes
~0.5-2 days. Every policy gets the bot's other paths: the requester's `nudge` (at most once a
day, half of the days a request waits; notifies volunteers not asked yet), the 09:00 UTC digest
of requests waiting 24 h (the top 25; a free volunteer reads it with their browse probability
and claims the first one on their topics), and `/review list <topic>` read by a volunteer whose
review just ended (same probability).

Policies, each notifying 3 volunteers per request (`Rules.notify_limit`):
- round robin: the next 3 eligible volunteers after the last one notified;
- load balancing: the 3 eligible with the fewest claims in 30 days (ties at random);
- ours: the bot's own `bot.usecases.asking.choose` (auto-pause after 3 ignored notifications,
  the first a day old, then `bot.matching.rank`) over an in-memory transaction, with the digest
  and list in `bot.reciprocity.queue_order` order: age only (RECIPROCITY=off), or givers first
  (soft). As the store does (migration 0008), a notification of a request someone else claimed
  does not count as ignored;
- a what-if of ours (soft): no auto-pause at all.
Eligible, for every policy: `bot.matching.is_eligible` (shares a topic, not the requester, not
paused, under capacity, not in quiet hours). Auto-paused volunteers resume after ~2 days with
half their answer probability; the others stay paused.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, cast

from bench.report import Table
from bot import matching, reciprocity
from bot.effects import DIGEST_MAX_ITEMS
from bot.model import Ledger, Member, Platform, QuietHours, Request, Status, Volunteer
from bot.usecases import asking
from bot.usecases.base import Context, Rules
from bot.usecases.people import LIST_MAX
from storage.base import Transaction

# A Monday in January: no daylight-saving change in any zone below for the six weeks simulated,
# so the fixed offsets the humans keep agree with the zone names `rank` checks quiet hours in.
START = datetime(2026, 1, 5, tzinfo=UTC)
ZONES = (
    ("UTC", 0.0),
    ("Europe/Berlin", 1.0),
    ("America/New_York", -5.0),
    ("America/Los_Angeles", -8.0),
    ("Asia/Kolkata", 5.5),
    ("Asia/Tokyo", 9.0),
)
TOPICS = ("python", "writing", "design", "data", "rust", "web")
OFFERED = (0.30, 0.25, 0.15, 0.15, 0.05, 0.10)  # how often volunteers list each topic
ASKED = (0.25, 0.20, 0.15, 0.15, 0.12, 0.13)  # how often requests name it: rust is scarce
DAY = 24 * 60  # minutes
HOUR = 60
STALE = 24 * HOUR
EXPIRE = 14 * DAY
DIGEST_AT = 9 * HOUR  # UTC
NUDGE_PROBABILITY = 0.5
RESUME_SHARE = 0.5  # of their answer probability: how likely an auto-paused volunteer resumes
RULES = Rules()
POLICIES = (
    "round robin",
    "load balancing",
    "ours, RECIPROCITY=off",
    "ours, RECIPROCITY=soft",
    "what-if: ours, soft, no auto-pause",
)
NEVER = 10**9  # an auto-pause threshold no streak reaches


@dataclass(frozen=True, slots=True)
class Size:
    volunteers: int
    takers: int  # people who only ask
    weeks: int


FULL = Size(volunteers=300, takers=250, weeks=4)
QUICK = Size(volunteers=80, takers=70, weeks=1)


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of volunteer: capacity, answer probability and delay, review length, browsing."""

    name: str
    share: float
    capacity: int
    answers: float
    delay_hours: float  # median; lognormal
    review_hours: float  # median; lognormal
    browse: float  # reads the digest, or the list when a review ends


KINDS = (
    Kind("heavy", 0.08, 3, 0.85, 1.5, 12, 0.6),
    Kind("regular", 0.37, 2, 0.55, 4, 24, 0.25),
    Kind("occasional", 0.55, 1, 0.20, 10, 48, 0.08),
)


@dataclass(slots=True)
class Person:
    """A simulated human: maybe a volunteer (kind set), maybe an asker (rate > 0)."""

    pid: int
    member: Member
    offset: float  # hours from UTC
    quiet: QuietHours | None
    kind: Kind | None = None
    topics: frozenset[str] = frozenset()
    rate: float = 0.0  # requests per week
    # the volunteer's state, as the store would hold it
    active: int = 0
    claimed_at: deque[float] = field(default_factory=deque)  # minutes, for the 30-day load
    last_notified: datetime | None = None
    ignored: int = 0
    ignored_since: datetime | None = None  # the first notification of the streak
    pending: set[int] = field(default_factory=set)  # requests behind `ignored` (what-if row)
    paused_until: datetime | None = None
    # the ledger
    given_at: list[float] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    asked: int = 0
    # what the report counts
    notified: int = 0
    reviews: int = 0
    auto_paused: int = 0

    @property
    def capacity(self) -> int:
        return self.kind.capacity if self.kind else 0


@dataclass(slots=True)
class Ask:
    request: Request
    at: float
    requester: Person
    earlier: int  # the requester's requests before this one
    taker: bool  # held back under soft reciprocity (measured the same way under every policy)
    status: Status = Status.OPEN
    claimed: float | None = None
    claimer: int | None = None
    done: float | None = None
    notified: set[int] = field(default_factory=set)


class Event(IntEnum):
    ASK = 0
    ANSWER = 1
    DONE = 2
    NUDGE = 3
    EXPIRE = 4
    DIGEST = 5
    READ_DIGEST = 6
    BROWSE = 7
    RESUME = 8


@dataclass(slots=True)
class Outcome:
    """What one policy's run produced, for the table and the tests."""

    policy: str
    asks: list[Ask]
    people: list[Person]
    violations: list[str]


def _lognormal(rng: random.Random, median_hours: float, sigma: float = 0.8) -> float:
    return median_hours * HOUR * math.exp(rng.gauss(0, sigma))


def _local_hour(person: Person, t: float) -> float:
    return (t / HOUR + person.offset) % 24


def _awake(person: Person, t: float) -> float:
    """The first moment at or after `t` when the person is awake (07:00-23:00 local)."""
    hour = _local_hour(person, t)
    if 7 <= hour < 23:
        return t
    return t + ((7 - hour) % 24) * HOUR


def _people(size: Size, rng: random.Random) -> list[Person]:
    people: list[Person] = []
    for pid in range(1, size.volunteers + size.takers + 1):
        zone, offset = rng.choice(ZONES)
        member = Member(
            platform=Platform.CONSOLE,
            community_id="sim",
            user_id=f"u{pid}",
            display_name=f"u{pid}",
            person_id=pid,
        )
        quiet = (
            QuietHours(start="22:00", end="08:00", timezone=zone) if rng.random() < 0.5 else None
        )
        person = Person(pid=pid, member=member, offset=offset, quiet=quiet)
        if pid <= size.volunteers:
            person.kind = rng.choices(KINDS, weights=[k.share for k in KINDS])[0]
            count = rng.choice((1, 1, 2, 2, 3))
            topics: set[str] = set()
            while len(topics) < count:
                topics.add(rng.choices(TOPICS, weights=OFFERED)[0])
            person.topics = frozenset(topics)
            person.rate = 0.7 if rng.random() < 0.4 else 0.0
        else:
            person.rate = 2.0 * math.exp(rng.gauss(0, 0.7))
        people.append(person)
    return people


def _arrivals(people: Sequence[Person], size: Size, rng: random.Random) -> list[tuple[float, int]]:
    """Each asker's requests: a Poisson process thinned to their waking hours."""
    end = size.weeks * 7 * DAY
    found: list[tuple[float, int]] = []
    for person in people:
        if person.rate <= 0:
            continue
        per_minute = person.rate / (7 * DAY) * 1.5  # 1.5: a third of the day is asleep
        t = rng.expovariate(per_minute)
        while t < end:
            if _awake(person, t) == t:
                found.append((t, person.pid))
            t += rng.expovariate(per_minute)
    return sorted(found)


class SimTransaction:
    """The part of the store `asking.choose` calls, over the simulation's people."""

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim

    async def candidates(
        self, topics: Sequence[str], recent_since: datetime, *, ignored_at_least: int = 0
    ) -> list[Volunteer]:
        return [
            self._sim.volunteer(p)
            for p in self._sim.sharing(topics)
            if p.ignored >= ignored_at_least
        ]

    async def save_volunteer(
        self, member: Member, topics: frozenset[str], paused_until: datetime | None
    ) -> None:
        self._sim.pause(self._sim.people[member.person_id - 1], paused_until)

    async def rank_candidates(
        self,
        topics: Sequence[str],
        *,
        requester_person_id: int,
        now: datetime,
        recent_since: datetime,
        limit: int,
        exclude: Iterable[int] = frozenset(),
    ) -> list[Volunteer]:
        # What the store filters in SQL; quiet hours and the order are left to `rank`, which
        # has the last word. Handing over every such volunteer (not the first `limit`) only
        # gives `rank` more to choose from, never a different choice.
        excluded = frozenset(exclude)
        return [
            self._sim.volunteer(p)
            for p in self._sim.sharing(topics)
            if p.pid != requester_person_id
            and p.pid not in excluded
            and (p.paused_until is None or p.paused_until <= now)
            and p.active < p.capacity
        ]


def _run_sync(coroutine: Any) -> Any:
    """Run a coroutine that never suspends (the simulated store answers at once)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    msg = "the simulated store suspended"
    raise RuntimeError(msg)


class Simulation:
    def __init__(self, policy: str, size: Size, seed: int) -> None:
        self.policy = policy
        setup = random.Random(seed)  # the same community and requests for every policy
        self.people = _people(size, setup)
        arrivals = _arrivals(self.people, size, setup)
        self.rng = random.Random(f"{seed}:{policy}")  # behaviour
        self.volunteers = [p for p in self.people if p.kind]
        self.by_topic = {t: [p for p in self.volunteers if t in p.topics] for t in TOPICS}
        self.asks: list[Ask] = []
        self.events: list[tuple[float, int, Event, Any]] = []
        self._seq = itertools.count()
        self.now = 0.0
        self.cursor = 0  # round robin
        self.violations: list[str] = []
        self.soft = policy in POLICIES[3:]
        self.ours = policy in POLICIES[2:]
        # As the store's trigger (migration 0008): a notification of a request someone else
        # claimed stops counting as ignored.
        self.forgive = self.ours
        self.rules = Rules(auto_pause_after=NEVER) if policy == POLICIES[4] else RULES
        for t, pid in arrivals:
            self._at(t, Event.ASK, pid)
        last = arrivals[-1][0] if arrivals else 0.0
        for day in range(int(last // DAY) + EXPIRE // DAY + 2):
            self._at(day * DAY + DIGEST_AT, Event.DIGEST, None)

    # --- plumbing ---------------------------------------------------------------------------

    def _at(self, t: float, event: Event, payload: Any) -> None:
        heapq.heappush(self.events, (t, next(self._seq), event, payload))

    def when(self, t: float | None = None) -> datetime:
        return START + timedelta(minutes=self.now if t is None else t)

    def sharing(self, topics: Iterable[str]) -> list[Person]:
        seen: dict[int, Person] = {}
        for topic in topics:
            for p in self.by_topic.get(topic, ()):
                seen.setdefault(p.pid, p)
        return sorted(seen.values(), key=lambda p: p.pid)

    def volunteer(self, p: Person) -> Volunteer:
        window = self.now - 30 * DAY
        while p.claimed_at and p.claimed_at[0] < window:
            p.claimed_at.popleft()
        return Volunteer(
            person_id=p.pid,
            member=p.member,
            topics=p.topics,
            max_open_claims=p.capacity,
            paused_until=p.paused_until,
            active_claims=p.active,
            recent_claims=len(p.claimed_at),
            last_notified_at=p.last_notified,
            quiet=p.quiet,
            ignored_streak=p.ignored,
            ignored_since=p.ignored_since,
        )

    def ledger(self, p: Person) -> Ledger:
        window = self.now - 30 * DAY
        return Ledger(
            given=len(p.given_at),
            given_recent=sum(1 for t in p.given_at if t >= window),
            received=len(p.received_at),
            received_recent=sum(1 for t in p.received_at if t >= window),
            asked=p.asked,
        )

    def pause(self, p: Person, until: datetime | None) -> None:
        p.paused_until, p.ignored = until, 0  # as `save_volunteer` does
        p.pending.clear()
        if until is not None and until > self.when():
            p.auto_paused += 1
            if self.rng.random() < (p.kind.answers if p.kind else 0) * RESUME_SHARE:
                self._at(_awake(p, self.now + _lognormal(self.rng, 48)), Event.RESUME, p)

    # --- the policies -----------------------------------------------------------------------

    def _eligible(self, ask: Ask, exclude: set[int]) -> list[Volunteer]:
        now = self.when()
        topics = frozenset(ask.request.topics)
        return [
            v
            for v in map(self.volunteer, self.sharing(topics))
            if v.person_id not in exclude
            and matching.is_eligible(
                v, topics=topics, requester_person_id=ask.requester.pid, now=now
            )
        ]

    def choose(self, ask: Ask, exclude: set[int]) -> list[int]:
        limit = self.rules.notify_limit
        if self.ours:
            tx = cast("Transaction", SimTransaction(self))
            ctx = Context(
                tx=tx,
                member=ask.requester.member,
                now=self.when(),
                rules=self.rules,
                platforms=frozenset({Platform.CONSOLE}),
            )
            chosen, _ = _run_sync(asking.choose(ctx, ask.request, exclude=frozenset(exclude)))
            return [v.person_id for v in chosen]
        if self.policy == POLICIES[0]:
            return self._round_robin(ask, exclude, limit)
        eligible = self._eligible(ask, exclude)
        self.rng.shuffle(eligible)
        eligible.sort(key=lambda v: v.recent_claims)  # stable: ties stay shuffled
        return [v.person_id for v in eligible[:limit]]

    def _round_robin(self, ask: Ask, exclude: set[int], limit: int) -> list[int]:
        ordered = self.volunteers[self.cursor :] + self.volunteers[: self.cursor]
        eligible = {v.person_id for v in self._eligible(ask, exclude)}
        picked = [p.pid for p in ordered if p.pid in eligible][:limit]
        if picked:
            last = self.volunteers.index(self.people[picked[-1] - 1])
            self.cursor = (last + 1) % len(self.volunteers)
        return picked

    def notify(self, ask: Ask, exclude: set[int]) -> None:
        now = self.when()
        for pid in self.choose(ask, exclude):
            p = self.people[pid - 1]
            if pid == ask.requester.pid:
                self.violations.append(f"request {ask.request.id}: requester {pid} notified")
            p.notified += 1
            if p.ignored == 0:  # as `mark_notified` does
                p.ignored_since = now
            p.ignored += 1
            p.pending.add(ask.request.id)
            p.last_notified = now
            ask.notified.add(pid)
            kind = p.kind
            if kind and self.rng.random() < kind.answers:
                t = _awake(p, self.now + _lognormal(self.rng, kind.delay_hours))
                self._at(t, Event.ANSWER, (p, ask))

    def queue(self, asks: Iterable[Ask], shown: int) -> list[Ask]:
        """Waiting requests in the order the digest and the list show them: as
        `reciprocity.for_volunteers` orders the store's oldest `QUEUE_WINDOW` (soft), or the
        oldest `shown` (off)."""
        oldest = sorted(asks, key=lambda a: (a.at, a.request.id))
        if not self.soft:
            return oldest[:shown]
        window = {a.request.id: a for a in oldest[: reciprocity.QUEUE_WINDOW]}
        ledgers: dict[int, Ledger] = {}
        held = set()
        for a in window.values():
            pid = a.requester.pid
            if pid not in ledgers:
                ledgers[pid] = self.ledger(a.requester)
            if reciprocity.held_back(ledgers[pid], a.earlier, soft=True):
                held.add(a.request.id)
        ordered = reciprocity.queue_order([a.request for a in window.values()], held)
        return [window[r.id] for r in ordered[:shown]]

    # --- the events -------------------------------------------------------------------------

    def run(self) -> Outcome:
        handlers: dict[Event, Callable[[Any], None]] = {
            Event.ASK: self._ask,
            Event.ANSWER: self._answer,
            Event.DONE: self._done,
            Event.NUDGE: self._nudge,
            Event.EXPIRE: self._expire,
            Event.DIGEST: self._digest,
            Event.READ_DIGEST: self._read_digest,
            Event.BROWSE: self._browse,
            Event.RESUME: self._resume,
        }
        while self.events:
            self.now, _, event, payload = heapq.heappop(self.events)
            handlers[event](payload)
        return Outcome(self.policy, self.asks, self.people, self.violations)

    def _ask(self, pid: int) -> None:
        requester = self.people[pid - 1]
        topics = [self.rng.choices(TOPICS, weights=ASKED)[0]]
        if self.rng.random() < 0.2:
            topics.append(self.rng.choices(TOPICS, weights=ASKED)[0])
        at = self.when()
        request = Request(
            id=len(self.asks) + 1,
            link=f"https://example.com/{len(self.asks) + 1}",
            topics=tuple(dict.fromkeys(topics)),
            note="",
            requester=requester.member,
            origin_channel_id="reviews",
            status=Status.OPEN,
            created_at=at,
            updated_at=at,
        )
        earlier = requester.asked
        requester.asked += 1
        # Who would be held back, judged the same way under every policy so rows compare.
        taker = reciprocity.held_back(self.ledger(requester), earlier, soft=True)
        ask = Ask(request, self.now, requester, earlier, taker)
        self.asks.append(ask)
        self.notify(ask, set())
        self._at(self.now + DAY, Event.NUDGE, ask)
        self._at(self.now + EXPIRE, Event.EXPIRE, ask)

    def _claim(self, p: Person, ask: Ask) -> bool:
        if ask.status is not Status.OPEN or p.active >= p.capacity or p.pid == ask.requester.pid:
            return False
        if not frozenset(ask.request.topics) & p.topics:
            return False
        ask.status, ask.claimed, ask.claimer = Status.CLAIMED, self.now, p.pid
        p.active += 1
        p.reviews += 1
        p.ignored = 0
        p.pending.clear()
        p.claimed_at.append(self.now)
        if self.forgive:
            for pid in ask.notified - {p.pid}:
                other = self.people[pid - 1]
                if ask.request.id in other.pending:
                    other.pending.discard(ask.request.id)
                    other.ignored -= 1
        if p.active > p.capacity:
            self.violations.append(f"volunteer {p.pid} over capacity")
        kind = cast("Kind", p.kind)
        self._at(self.now + _lognormal(self.rng, kind.review_hours, 0.6), Event.DONE, (p, ask))
        return True

    def _answer(self, payload: tuple[Person, Ask]) -> None:
        self._claim(*payload)

    def _done(self, payload: tuple[Person, Ask]) -> None:
        p, ask = payload
        p.active -= 1
        ask.status, ask.done = Status.DONE, self.now
        p.given_at.append(self.now)
        ask.requester.received_at.append(self.now)
        kind = cast("Kind", p.kind)
        if self.rng.random() < kind.browse:
            self._at(_awake(p, self.now + self.rng.uniform(0, 2 * HOUR)), Event.BROWSE, p)

    def _nudge(self, ask: Ask) -> None:
        if ask.status is not Status.OPEN:
            return
        if self.rng.random() < NUDGE_PROBABILITY:
            self.notify(ask, set(ask.notified))
        self._at(self.now + DAY, Event.NUDGE, ask)

    def _expire(self, ask: Ask) -> None:
        if ask.status is Status.OPEN:
            ask.status = Status.EXPIRED

    def _digest(self, _: None) -> None:
        stale = [a for a in self.asks if a.status is Status.OPEN and a.at <= self.now - STALE]
        if not stale:
            return
        shown = self.queue(stale, DIGEST_MAX_ITEMS)
        for p in self.volunteers:
            kind = cast("Kind", p.kind)
            paused = p.paused_until is not None and p.paused_until > self.when()
            if p.active < p.capacity and not paused and self.rng.random() < kind.browse:
                t = _awake(p, self.now + _lognormal(self.rng, kind.delay_hours))
                self._at(t, Event.READ_DIGEST, (p, shown))

    def _first_claimable(self, p: Person, asks: Iterable[Ask]) -> None:
        for ask in asks:
            if self._claim(p, ask):
                return

    def _read_digest(self, payload: tuple[Person, list[Ask]]) -> None:
        self._first_claimable(*payload)

    def _browse(self, p: Person) -> None:
        """`/review list <topic>`: the first 20 open requests on one of their topics."""
        topic = self.rng.choice(sorted(p.topics))
        waiting = [a for a in self.asks if a.status is Status.OPEN and topic in a.request.topics]
        self._first_claimable(p, self.queue(waiting, LIST_MAX))

    def _resume(self, p: Person) -> None:
        self.pause(p, None)


def simulate(policy: str, size: Size = FULL, seed: int = 9) -> Outcome:
    return Simulation(policy, size, seed).run()


# --- the report ------------------------------------------------------------------------------


def gini(values: Sequence[float]) -> float:
    """0 when everyone carries the same load, towards 1 when one carries it all."""
    ordered = sorted(values)
    total = sum(ordered)
    if not ordered or total == 0:
        return 0.0
    n = len(ordered)
    weighted = sum(i * x for i, x in enumerate(ordered, start=1))
    return 2 * weighted / (n * total) - (n + 1) / n


@dataclass(frozen=True, slots=True)
class Summary:
    requests: int
    within_day: float
    median_hours: float
    expired: float
    gini: float
    max_load: int
    median_load: float
    top_tenth: float
    notified_mean: float
    notified_max: int
    auto_paused: int
    paused_at_end: int
    givers_day: float
    takers_day: float
    takers: int


def _share(asks: Sequence[Ask]) -> float:
    quick = [a for a in asks if a.claimed is not None and a.claimed - a.at <= DAY]
    return len(quick) / len(asks) if asks else float("nan")


def summarize(outcome: Outcome) -> Summary:
    asks = outcome.asks
    waits = [(a.claimed - a.at) / HOUR for a in asks if a.claimed is not None]
    loads = sorted((p.reviews for p in outcome.people if p.kind), reverse=True)
    tenth = max(1, len(loads) // 10)
    notified = [p.notified for p in outcome.people if p.kind]
    takers = [a for a in asks if a.taker]
    return Summary(
        requests=len(asks),
        within_day=_share(asks),
        median_hours=statistics.median(waits) if waits else float("nan"),
        expired=sum(a.status is Status.EXPIRED for a in asks) / len(asks) if asks else 0.0,
        gini=gini(loads),
        max_load=loads[0] if loads else 0,
        median_load=statistics.median(loads) if loads else 0.0,
        top_tenth=sum(loads[:tenth]) / sum(loads) if sum(loads) else 0.0,
        notified_mean=statistics.fmean(notified) if notified else 0.0,
        notified_max=max(notified, default=0),
        auto_paused=sum(1 for p in outcome.people if p.auto_paused),
        paused_at_end=sum(1 for p in outcome.people if p.paused_until is not None),
        givers_day=_share([a for a in asks if not a.taker]),
        takers_day=_share(takers),
        takers=len(takers),
    )


def _pct(x: float) -> str:
    return f"{x:.1%}"


def table(size: Size = FULL, seed: int = 9) -> Table:
    result = Table(
        f"Community simulation: {size.volunteers} volunteers, {size.weeks} weeks of requests",
        (
            "policy",
            "requests",
            "claimed <= 24 h",
            "median time to claim",
            "expired unclaimed",
            "Gini of reviews",
            "reviews max / median",
            "top 10% do",
            "notifications / volunteer (max)",
            "auto-paused ever / at end",
            "<= 24 h: givers' / takers' requests",
        ),
    )
    for policy in POLICIES:
        s = summarize(simulate(policy, size, seed))
        result.add(
            policy,
            s.requests,
            _pct(s.within_day),
            f"{s.median_hours:.1f} h",
            _pct(s.expired),
            f"{s.gini:.2f}",
            f"{s.max_load} / {s.median_load:g}",
            _pct(s.top_tenth),
            f"{s.notified_mean:.1f} ({s.notified_max})",
            f"{s.auto_paused} / {s.paused_at_end}",
            f"{_pct(s.givers_day)} / {_pct(s.takers_day)} ({s.takers})",
        )
    result.notes += [
        "model: see `bench/community.py`'s docstring; every policy sees the same community and "
        f"the same requests (seed {seed}); behaviour draws differ by policy. No target: a "
        "comparison, not a pass/fail.",
        "`ours` calls the bot's own `asking.choose` (auto-pause, then `matching.rank`) and "
        "`reciprocity.queue_order`; baselines use `matching.is_eligible` and no auto-pause.",
        "takers' requests: the requester received 3+ more reviews than they gave in 30 days and "
        "had asked 3+ times before (`reciprocity.held_back`), judged alike under every policy; "
        "only `RECIPROCITY=soft` moves them behind the others in the digest and the list.",
        "reading: `rank` orders by fewest open claims, then claims in 30 days, then least "
        "recently notified, so it notifies those who claim least, here those who answer least; "
        "auto-pause is what stops that (a notification of a request someone else claimed does "
        "not count as ignored); paused volunteers resume here with half their answer "
        "probability. The what-if row turns auto-pause off (`Rules.auto_pause_after`).",
        "the 24 h share rewards claiming young requests: soft reciprocity puts takers' older "
        "requests behind newer ones, so part of its gain in the total is that shift; read the "
        "givers' / takers' split. Expired = never claimed in 14 days.",
    ]
    return result


def run(quick: bool = False) -> list[Table]:
    return [table(QUICK if quick else FULL)]
