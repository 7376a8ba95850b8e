"""Matching: how long it takes to choose 3 volunteers for one request.

Paths, each timed per request:
- `rank` over every volunteer (the function alone: a linear scan by design);
- `rank` over the volunteers sharing a topic (what the store used to give it);
- the reference store path: `SqliteTransaction.candidates(topics, since)` (every candidate, loads
  counted from the claims) on a real store holding the same volunteers, then `rank`;
- an ask's real matching step as shipped: `bot.usecases.asking.choose`, which ranks in SQL over
  the stored loads (`rank_candidates`: one index walk per topic, a few rows each) and lets `rank`
  finish; once for the requests below and once for topics only 3 volunteers share.

Volunteers: 500 topics, 1-5 each, loads 0-3 of a cap of 3 plus up to 6 past claims (the 30-day
load), ~10% paused, ~5% with quiet hours; requests ask for 1-3 topics. Every path's picks are
checked against the others', so a faster path cannot cheat.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import random
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import aiosqlite

from bench import fixtures
from bench.report import INFO, Table, median, ms, percentile, verdict
from bot.matching import OVERFETCH, rank
from bot.model import Member, Platform, QuietHours, Request, Status, Volunteer
from bot.reciprocity import LOAD_WINDOW
from bot.usecases import asking
from bot.usecases.base import Context, Rules
from storage.base import Transaction
from storage.sqlite import SqliteStore

TOPICS = tuple(f"topic{i:03d}" for i in range(500))
SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
LIMIT = 3
TARGET_P50 = 0.002  # seconds, at 100k volunteers
TARGET_SLOPE = 0.5  # log10 growth of p50 per 10x volunteers; linear code shows ~0.8-1.0
SAMPLE_CAP = 3.0  # seconds: a store query running longer is interrupted and counted as this
SIZE_BUDGET = 6.0  # seconds of samples per path and size
# Store asks come a minute apart, so each also moves the 30-day load window by a minute, and the
# store recounts those whose oldest claim left it: about 1,700 claims a day at 100,000 volunteers.
ASK_GAP = timedelta(minutes=1)
RARE_TOPICS = tuple(f"rare{i}" for i in range(10))
RARE_SHARE = 3  # volunteers per rare topic
PATHS = (
    "rank over all volunteers",
    "rank over topic candidates",
    "store: candidates + rank (reference)",
    "store: choose, as shipped",
    "store: choose, as shipped, rare topic",
)
COMMUNITY = "T1"
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")


@dataclass(frozen=True, slots=True)
class Ask:
    topics: tuple[str, ...]
    requester: int


@dataclass(frozen=True, slots=True)
class Pool:
    """A volunteer and the claims behind their load figures: (status, claimed_at)."""

    volunteer: Volunteer
    claims: list[tuple[str, datetime]]


@dataclass(slots=True)
class Timing:
    samples: list[float] = field(default_factory=list)  # seconds per request
    floor: list[float] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)
    rank: list[float] = field(default_factory=list)  # the `rank` part of a store sample
    censored: int = 0  # samples stopped at SAMPLE_CAP


def make_volunteers(count: int, rng: random.Random) -> list[Pool]:
    """Volunteers with their claim history (the store derives their loads from it)."""
    found = []
    since = fixtures.NOW - LOAD_WINDOW
    for pid in range(1, count + 1):
        roll = rng.random()
        paused = (
            fixtures.NOW + timedelta(days=7)
            if roll < 0.1
            else fixtures.NOW - timedelta(days=3)
            if roll < 0.15
            else None
        )
        active = rng.choice((0, 0, 0, 1, 1, 2, 3))
        history = [
            fixtures.NOW - timedelta(seconds=rng.randrange(180 * 86_400))
            for _ in range(rng.randint(0, 6))
        ]
        claims = [("active", fixtures.NOW - timedelta(days=1))] * active
        claims += [("done", at) for at in history]
        found.append(
            Pool(
                Volunteer(
                    person_id=pid,
                    member=Member(
                        platform=Platform.SLACK,
                        community_id=COMMUNITY,
                        user_id=f"U{pid}",
                        display_name=f"user {pid}",
                        person_id=pid,
                    ),
                    topics=frozenset(rng.sample(TOPICS, rng.randint(1, 5))),
                    max_open_claims=3,
                    paused_until=paused,
                    active_claims=active,
                    recent_claims=sum(at >= since for _, at in claims),
                    last_notified_at=None
                    if rng.random() < 0.3
                    else fixtures.NOW - timedelta(seconds=rng.randrange(2_600_000)),
                    quiet=QuietHours(start="22:00", end="08:00", timezone=rng.choice(ZONES))
                    if rng.random() < 0.05
                    else None,
                ),
                claims,
            )
        )
    return found


def make_asks(count: int, volunteers: int, rng: random.Random) -> list[Ask]:
    return [
        Ask(tuple(rng.sample(TOPICS, rng.randint(1, 3))), rng.randint(1, volunteers))
        for _ in range(count)
    ]


def populate(path: Path, pools: Sequence[Pool], rng: random.Random) -> None:
    """The same volunteers in a real store, their loads as claimed/done requests and claims, plus
    the rare topics. The store's triggers fill in its stored loads: the history goes in first, so
    each volunteer row counts its own once, and each topic row copies them once."""
    with fixtures.bulk(path) as db:
        # The load window of a store that has been answering asks up to NOW.
        db.execute("UPDATE load_window SET since = ?", (fixtures.ts(fixtures.NOW - LOAD_WINDOW),))
        fixtures.people(db, len(pools), platform="slack", community=COMMUNITY)
        requests, claims = _history(pools)
        with fixtures.indexes_deferred(db, ["requests", "claims"]):
            fixtures.insert(db, "requests", fixtures.REQUEST_COLUMNS, requests)
            fixtures.insert(db, "claims", fixtures.CLAIM_COLUMNS, claims)
        fixtures.insert(db, "volunteers", fixtures.VOLUNTEER_COLUMNS, map(_volunteer_row, pools))
        rare = (
            (topic, person)
            for topic in RARE_TOPICS
            for person in rng.sample(range(1, len(pools) + 1), RARE_SHARE)
        )
        with fixtures.indexes_deferred(db, ["volunteer_topics"]):
            fixtures.insert(
                db,
                "volunteer_topics",
                "topic, person_id",
                itertools.chain(
                    ((t, p.volunteer.person_id) for p in pools for t in p.volunteer.topics), rare
                ),
            )


def _volunteer_row(pool: Pool) -> tuple[object, ...]:
    v = pool.volunteer
    quiet = (v.quiet.start, v.quiet.end, v.quiet.timezone) if v.quiet else (None, None, None)
    return (
        v.person_id,
        "slack",
        COMMUNITY,
        v.member.user_id,
        v.max_open_claims,
        fixtures.ts(v.paused_until) if v.paused_until else None,
        fixtures.ts(v.last_notified_at) if v.last_notified_at else None,
        *quiet,
        0,
    )


def _history(pools: Sequence[Pool]) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    requests: list[tuple[object, ...]] = []
    claims: list[tuple[object, ...]] = []
    for pool in pools:
        v = pool.volunteer
        requester = v.person_id % len(pools) + 1
        for status, claimed in pool.claims:
            rid = len(requests) + 1
            at = fixtures.ts(claimed)
            state = "claimed" if status == "active" else "done"
            requests.append(
                (rid, f"https://docs.example/{rid}", "topic000", "", "slack", COMMUNITY,
                 f"U{requester}", requester, "C1", state, at, at, "slack", COMMUNITY,
                 v.member.user_id, v.person_id, at, "")
            )  # fmt: skip
            ended = None if status == "active" else at
            claims.append(
                (rid, rid, v.person_id, status, at, ended, 0, None, "slack", COMMUNITY,
                 v.member.user_id)
            )  # fmt: skip
    return requests, claims


def _rank(
    volunteers: Iterable[Volunteer], ask: Ask, now: datetime = fixtures.NOW
) -> list[Volunteer]:
    return rank(
        volunteers,
        topics=ask.topics,
        requester_person_id=ask.requester,
        now=now,
        limit=LIMIT,
    )


def time_pure(
    volunteers: list[Volunteer], asks: Sequence[Ask], *, prefilter: bool
) -> tuple[Timing, list[list[int] | None]]:
    """`rank` alone, over every volunteer or over the topic's candidates (as the store finds)."""
    by_topic: dict[str, list[Volunteer]] = defaultdict(list)
    if prefilter:
        for v in volunteers:
            for topic in v.topics:
                by_topic[topic].append(v)
    timing = Timing()
    picks: list[list[int] | None] = []
    started = time.perf_counter()
    for ask in asks:
        if time.perf_counter() - started > SIZE_BUDGET:
            break
        pool = (
            list({v.person_id: v for t in ask.topics for v in by_topic[t]}.values())
            if prefilter
            else volunteers
        )
        start = time.perf_counter()
        chosen = _rank(pool, ask)
        timing.samples.append(time.perf_counter() - start)
        picks.append([v.person_id for v in chosen])
        start = time.perf_counter()
        for _ in pool:  # the floor: Python visiting each volunteer and doing nothing
            pass
        timing.floor.append(time.perf_counter() - start)
        timing.candidates.append(len(pool))
    return timing, picks


async def _open(path: Path) -> tuple[SqliteStore, aiosqlite.Connection]:
    """The store on a connection we hold, so a runaway query can be interrupted at the cap."""
    db = await aiosqlite.connect(str(path), isolation_level=None)
    db.row_factory = sqlite3.Row
    for pragma in ("synchronous = NORMAL", "foreign_keys = ON", "busy_timeout = 5000"):
        await db.execute(f"PRAGMA {pragma}")  # as SqliteStore.open; the file is migrated
    return SqliteStore(db), db


def _ask_context(tx: Transaction, ask: Ask, now: datetime) -> tuple[Context, Request]:
    """What `choose` is given in an ask: the requester's context and their (unsaved) request."""
    requester = Member(
        platform=Platform.SLACK,
        community_id=COMMUNITY,
        user_id=f"U{ask.requester}",
        display_name=f"user {ask.requester}",
        person_id=ask.requester,
    )
    context = Context(
        tx=tx,
        member=requester,
        now=now,
        rules=Rules(notify_limit=LIMIT),
        platforms=frozenset({Platform.SLACK}),
    )
    request = Request(
        id=0,
        link="https://docs.example/ask",
        topics=ask.topics,
        note="",
        requester=requester,
        origin_channel_id="C1",
        status=Status.OPEN,
        created_at=now,
        updated_at=now,
    )
    return context, request


@dataclass(slots=True)
class _Sample:
    """One ask's matching step, timed inside its unit of work (begin and commit are not
    matching)."""

    floor: float  # one primary-key lookup, the least a statement costs
    seconds: float
    chosen: list[Volunteer]
    candidates: int = 0  # reference path only
    rank: float = 0.0  # reference path only


async def _choose(tx: Transaction, ask: Ask, now: datetime) -> _Sample:
    """An ask's matching step as shipped."""
    floor = await _floor(tx)
    context, request = _ask_context(tx, ask, now)
    start = time.perf_counter()
    chosen, _ = await asking.choose(context, request)
    return _Sample(floor, time.perf_counter() - start, chosen)


async def _reference(tx: Transaction, ask: Ask, now: datetime) -> _Sample:
    """Every candidate, then `rank`."""
    floor = await _floor(tx)
    start = time.perf_counter()
    found = await tx.candidates(ask.topics, now - LOAD_WINDOW)
    ranked = time.perf_counter()
    chosen = _rank(found, ask, now)
    end = time.perf_counter()
    return _Sample(floor, end - start, chosen, len(found), end - ranked)


async def _floor(tx: Transaction) -> float:
    start = time.perf_counter()
    await tx.community(Platform.SLACK, COMMUNITY)
    return time.perf_counter() - start


async def time_store(
    path: Path, asks: Sequence[Ask], *, choose: bool, first: datetime
) -> tuple[Timing, list[list[int] | None]]:
    """An ask's matching step on a real store, per request, each in a unit of work of its own:
    `choose` as shipped, or the reference `candidates(topics)` then `rank`. The asks come ASK_GAP
    apart from `first`."""
    timing = Timing()
    picks: list[list[int] | None] = []
    store, db = await _open(path)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        for i, ask in enumerate(asks):
            if time.perf_counter() - started > SIZE_BUDGET:
                break
            now = first + i * ASK_GAP
            stop = loop.call_later(SAMPLE_CAP, lambda: loop.create_task(db.interrupt()))
            try:
                step = _choose if choose else _reference
                sample = await store.run(partial(step, ask=ask, now=now))
            except sqlite3.OperationalError:  # interrupted at the cap: a censored sample
                timing.samples.append(SAMPLE_CAP)
                timing.censored += 1
                picks.append(None)
                continue
            finally:
                stop.cancel()
            timing.floor.append(sample.floor)
            timing.samples.append(sample.seconds)
            if not choose:
                timing.rank.append(sample.rank)
                timing.candidates.append(sample.candidates)
            picks.append([v.person_id for v in sample.chosen])
    finally:
        await store.close()
    return timing, picks


def _slope(low: float, high: float, factor: float) -> float:
    return math.log(high / low, factor) if low > 0 and high > 0 else float("nan")


def run(quick: bool = False) -> list[Table]:
    sizes = QUICK_SIZES if quick else SIZES
    rng = random.Random(42)
    results: dict[str, dict[int, Timing]] = {path: {} for path in PATHS}
    mismatches = 0
    with tempfile.TemporaryDirectory(prefix="bench-matching-") as tmp:
        for size in sizes:
            pools = make_volunteers(size, rng)
            volunteers = [p.volunteer for p in pools]
            asks = make_asks(100 if size >= 100_000 else 300, size, rng)
            rare = [Ask((rng.choice(RARE_TOPICS),), rng.randint(1, size)) for _ in asks]
            path = Path(tmp) / f"matching-{size}.db"
            asyncio.run(fixtures.create_store(path))
            populate(path, pools, rng)
            del pools
            gc.collect()
            later = fixtures.NOW + len(asks) * ASK_GAP  # the rare asks come after the others
            found = [
                time_pure(volunteers, asks, prefilter=False),
                time_pure(volunteers, asks, prefilter=True),
                asyncio.run(time_store(path, asks, choose=False, first=fixtures.NOW)),
                asyncio.run(time_store(path, asks, choose=True, first=fixtures.NOW)),
                asyncio.run(time_store(path, rare, choose=True, first=later)),
            ]
            for name, (timing, _) in zip(PATHS, found, strict=True):
                results[name][size] = timing
            rare_reference = asyncio.run(time_store(path, rare, choose=False, first=later))
            # The pure paths ask at NOW; the store paths at their own moments, each its own check.
            mismatches += _mismatches([picks for _, picks in found[:2]])
            mismatches += _mismatches([picks for _, picks in found[2:4]])
            mismatches += _mismatches([found[4][1], rare_reference[1]])
            del volunteers
    return [_table(results, sizes, mismatches)]


def _mismatches(by_path: list[list[list[int] | None]]) -> int:
    """Requests for which two paths that both finished chose differently."""
    count = 0
    for picks in zip(*by_path, strict=False):
        done = [p for p in picks if p is not None]
        count += any(p != done[0] for p in done)
    return count


def _p50(t: Timing) -> str:
    text = ms(median(t.samples))
    return f"> {text} (capped)" if t.censored * 2 >= len(t.samples) else text


def _table(results: dict[str, dict[int, Timing]], sizes: Sequence[int], mismatches: int) -> Table:
    table = Table(
        "Matching: choose 3 volunteers for one request",
        (
            "path",
            "volunteers",
            "candidates (mean)",
            "samples",
            "p50",
            "p99",
            "of which rank p50",
            "floor p50",
            "target",
            "result",
        ),
    )
    top = sizes[-1]
    for path, by_size in results.items():
        for size in sizes:
            t = by_size[size]
            p50 = median(t.samples)
            at_top = size == top
            counted = f"{sum(t.candidates) / len(t.candidates):,.0f}" if t.candidates else "-"
            table.add(
                path,
                f"{size:,}",
                counted,
                f"{len(t.samples)}" + (f" ({t.censored} capped)" if t.censored else ""),
                _p50(t),
                ms(percentile(t.samples, 99)),
                ms(median(t.rank)) if t.rank else "-",
                ms(median(t.floor)) if t.floor else "-",
                "p50 < 2 ms" if at_top else "-",
                verdict(p50 < TARGET_P50) if at_top else INFO,
            )
        low, high = median(by_size[sizes[-2]].samples), median(by_size[top].samples)
        slope = _slope(low, high, top / sizes[-2])
        capped = " (at least: capped)" if by_size[top].censored else ""
        table.add(
            path,
            f"growth {sizes[-2]:,} -> {top:,}",
            "",
            "",
            f"x{high / low:.1f}{capped}",
            "",
            "",
            f"slope {slope:.2f}",
            f"slope < {TARGET_SLOPE} (sublinear)",
            verdict(slope < TARGET_SLOPE),
        )
    table.notes += [
        "paths: `rank over all` is `rank` given every volunteer; `rank over topic candidates` is "
        "`rank` given only those sharing a topic; `candidates + rank (reference)` times "
        "`SqliteTransaction.candidates(topics, since)` (every candidate, loads counted from the "
        "claims, as `choose` did before schema 5) + `rank` as one unit of work; "
        "`choose, as shipped` times `bot.usecases.asking.choose`: the auto-pause lookup, then "
        "`rank_candidates` (one walk of `volunteer_topics_rank` per requested topic over the "
        f"stored loads, at most {LIMIT * OVERFETCH} rows each), then `rank`; `rare topic`: the "
        f"same for requests whose one topic only {RARE_SHARE} volunteers share.",
        f"a store sample is interrupted at {SAMPLE_CAP:.0f} s and counted as {SAMPLE_CAP:.0f} s "
        f"(`capped`); each path gets at most ~{SIZE_BUDGET:.0f} s per size.",
        "store samples are timed inside their unit of work (`store.run`), without its begin, "
        "commit and trip to the database thread, which every command pays alike.",
        "floor: for `rank` paths a bare Python loop over the same list; for `store` paths one "
        "primary-key lookup in the same unit of work.",
        "slope: log10 of the p50 growth per 10x volunteers (1.0 = linear). Linear code with a "
        "fixed overhead shows 0.8-0.95, so sublinear is taken as < 0.5.",
        "the pure paths rank at one moment; the store paths take their requests "
        f"{ASK_GAP.total_seconds():.0f} s apart, so `choose` also moves the load window "
        "(recounting the volunteers whose oldest claim left it) as it does in production.",
        "every path that finished chose the same volunteers for each request as the other "
        "path(s) asking at the same moments (the rare-topic requests checked against the "
        "reference path): " + ("yes." if not mismatches else f"NO ({mismatches} requests differ)."),
    ]
    return table
