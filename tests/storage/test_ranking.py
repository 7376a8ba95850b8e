"""The stored ranking keys (migration 0005): loads that stay exact through every change, a load
window that moves, and `rank_candidates` ranking as `matching.rank` over every candidate does."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import matching
from bot.model import Member, QuietHours, Request, Status, Volunteer
from bot.reciprocity import LOAD_WINDOW
from storage.base import Transaction
from storage.migrate import migrations
from storage.sqlite import SqliteStore
from tests.factories import member
from tests.fakes.fake_clock import FakeClock

TOPICS = ("python", "go", "rust", "writing")

# Every stored load, and every mirrored key on a topic row, that differs from a recount.
_DRIFT = """
SELECT 'volunteer', v.person_id FROM volunteers v, load_window w
WHERE v.active_claims != (SELECT COUNT(*) FROM requests r
                          WHERE r.claimer_person = v.person_id AND r.status = 'claimed')
   OR v.recent_claims != (SELECT COUNT(*) FROM claims c
                          WHERE c.person_id = v.person_id AND c.claimed_at >= w.since)
   OR v.oldest_recent_claim_at IS NOT (SELECT MIN(c.claimed_at) FROM claims c
                                       WHERE c.person_id = v.person_id AND c.claimed_at >= w.since)
UNION ALL
SELECT 'topic ' || t.topic, t.person_id FROM volunteer_topics t JOIN volunteers v USING (person_id)
WHERE t.active_claims IS NOT v.active_claims OR t.recent_claims IS NOT v.recent_claims
   OR t.last_notified_at IS NOT v.last_notified_at OR t.ignored_streak IS NOT v.ignored_streak
"""


def drift(path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as raw:
        return [(str(kind), int(person)) for kind, person in raw.execute(_DRIFT)]


async def ranked_by_store(
    tx: Transaction,
    topics: tuple[str, ...],
    requester: int,
    now: datetime,
    *,
    limit: int = 50,
    exclude: frozenset[int] = frozenset(),
) -> list[Volunteer]:
    """What `rank_candidates` hands over (quiet hours are left to `rank`, so dropped here)."""
    found = await tx.rank_candidates(
        topics,
        requester_person_id=requester,
        now=now,
        recent_since=now - LOAD_WINDOW,
        limit=limit,
        exclude=exclude,
    )
    return [replace(v, quiet=None) for v in found]


async def ranked_by_rank(
    tx: Transaction,
    topics: tuple[str, ...],
    requester: int,
    now: datetime,
    *,
    limit: int = 50,
    exclude: frozenset[int] = frozenset(),
) -> list[Volunteer]:
    """What `rank_candidates` promises: `matching.rank` over every candidate, loads counted from
    the claims, quiet hours aside."""
    everyone = [
        replace(v, quiet=None)
        for v in await tx.candidates(topics, now - LOAD_WINDOW)
        if v.person_id not in exclude
    ]
    return matching.rank(
        everyone, topics=topics, requester_person_id=requester, now=now, limit=limit
    )


async def _ask(tx: Transaction, requester: Member, at: datetime) -> Request:
    return await tx.add_request(
        link=f"https://example.com/{at.timestamp()}",
        topics=("python",),
        note="",
        requester=requester,
        origin_channel_id="reviews",
        at=at,
    )


async def _claimed(tx: Transaction, requester: Member, claimer: Member, at: datetime) -> int:
    request = await _ask(tx, requester, at)
    await tx.change_status(request.id, Status.OPEN, Status.CLAIMED, actor=claimer, at=at)
    return request.id


async def _loads(tx: Transaction, topic: str, requester: int, now: datetime):
    """(person id, active, recent) of every available volunteer for `topic`, as stored."""
    found = await tx.rank_candidates(
        [topic],
        requester_person_id=requester,
        now=now,
        recent_since=now - LOAD_WINDOW,
        limit=50,
    )
    return [(v.person_id, v.active_claims, v.recent_claims) for v in found]


async def _move_window(store: SqliteStore, since: datetime) -> None:
    await store.run(
        lambda tx: tx.rank_candidates(
            ["python"], requester_person_id=0, now=since, recent_since=since, limit=0
        )
    )


# --- counters ------------------------------------------------------------------------------------


async def test_claims_and_every_way_a_hold_ends_keep_the_counters_exact(store, clock, tmp_path):
    """Claim, release, done, cancel, expire and reopen move the stored loads as a recount does."""
    db = tmp_path / "test.db"
    now = clock.now()

    async def history(tx: Transaction) -> tuple[Member, Member, list[int], Request]:
        riley = await tx.member(member("riley"), now)
        vera = await tx.member(member("vera"), now)
        await tx.save_volunteer(vera, frozenset({"python", "go"}), None)
        held = [await _claimed(tx, riley, vera, now) for _ in range(4)]
        return riley, vera, held, await _ask(tx, riley, now)

    riley, vera, held, expiring = await store.run(history)
    assert drift(db) == []
    for change in (
        (held[0], Status.CLAIMED, Status.OPEN),  # release
        (held[1], Status.CLAIMED, Status.DONE),
        (held[2], Status.CLAIMED, Status.CANCELLED),
        (expiring.id, Status.OPEN, Status.EXPIRED),
        (expiring.id, Status.EXPIRED, Status.OPEN),  # reopen
    ):
        assert await store.run(lambda tx, c=change: tx.change_status(*c, actor=vera, at=now))
        assert drift(db) == []
    loads = await store.run(lambda tx: _loads(tx, "go", riley.person_id, now))
    assert loads == [(vera.person_id, 1, 4)]


async def test_someone_who_volunteers_while_holding_claims_starts_with_them(store, clock, tmp_path):
    """A new volunteer row counts the claims its person made before volunteering."""
    now = clock.now()

    async def history(tx: Transaction) -> None:
        riley = await tx.member(member("riley"), now)
        sam = await tx.member(member("sam"), now)
        await _claimed(tx, riley, sam, now)
        await tx.save_volunteer(sam, frozenset({"python"}), None)
        await tx.save_volunteer(sam, frozenset({"python", "rust"}), None)  # the update path
        assert await _loads(tx, "rust", riley.person_id, now) == [(sam.person_id, 1, 1)]

    await store.run(history)
    assert drift(tmp_path / "test.db") == []


async def test_merge_split_and_forget_keep_the_counters_exact(store, clock, tmp_path):
    """Linking two identities adds their loads up; unlinking and forgetting leave no drift."""
    db = tmp_path / "test.db"
    now = clock.now()

    async def merge(tx: Transaction) -> Member:
        riley = await tx.member(member("riley"), now)
        vera = await tx.member(member("vera"), now)
        other = await tx.member(member("vera-discord"), now)
        await tx.save_volunteer(vera, frozenset({"python"}), None)
        await tx.save_volunteer(other, frozenset({"go"}), None)
        await _claimed(tx, riley, vera, now)
        await _claimed(tx, riley, other, now - timedelta(days=2))
        await tx.merge_persons(keep=vera.person_id, merge=other.person_id)
        assert await _loads(tx, "go", riley.person_id, now) == [(vera.person_id, 2, 2)]
        [counted] = await tx.candidates(["go"], now - LOAD_WINDOW)
        assert (counted.active_claims, counted.recent_claims) == (2, 2)
        return vera

    async def split(tx: Transaction) -> None:
        await tx.split_member(await tx.member(member("vera-discord"), now), now)

    vera = await store.run(merge)
    assert drift(db) == []
    await store.run(split)
    assert drift(db) == []
    await store.run(lambda tx: tx.forget_person(vera.person_id))
    assert drift(db) == []


async def test_merging_into_someone_who_is_no_volunteer_moves_the_loads(store, clock, tmp_path):
    """When the kept person had no volunteer row, the moved row counts both persons' claims."""
    now = clock.now()

    async def merge(tx: Transaction) -> None:
        riley = await tx.member(member("riley"), now)
        vera = await tx.member(member("vera"), now)
        other = await tx.member(member("vera-discord"), now)
        await tx.save_volunteer(other, frozenset({"python"}), None)
        await _claimed(tx, riley, vera, now)
        await _claimed(tx, riley, other, now)
        await tx.merge_persons(keep=vera.person_id, merge=other.person_id)
        assert await _loads(tx, "python", riley.person_id, now) == [(vera.person_id, 2, 2)]

    await store.run(merge)
    assert drift(tmp_path / "test.db") == []


# --- the load window -----------------------------------------------------------------------------


async def test_a_claim_weighs_until_exactly_thirty_days_later(store, clock, tmp_path):
    """A claim counts in the load until it is exactly 30 days old and not a microsecond longer;
    the order of two volunteers flips at that moment on both paths."""
    start = clock.now()

    async def history(tx: Transaction) -> tuple[Member, Member, Member]:
        riley = await tx.member(member("riley"), start)
        vera = await tx.member(member("vera"), start)  # the lower person id: first on a tie
        sam = await tx.member(member("sam"), start)
        for volunteer in (vera, sam):
            await tx.save_volunteer(volunteer, frozenset({"python"}), None)
        request_id = await _claimed(tx, riley, vera, start)
        await tx.change_status(request_id, Status.CLAIMED, Status.DONE, actor=vera, at=start)
        return riley, vera, sam

    async def ranked_at(tx: Transaction, at: datetime) -> list[Volunteer]:
        ranked = await ranked_by_store(tx, ("python",), riley.person_id, at)
        assert ranked == await ranked_by_rank(tx, ("python",), riley.person_id, at)
        return ranked

    riley, vera, sam = await store.run(history)
    for at, expected in (
        (start + timedelta(days=29), [sam.person_id, vera.person_id]),
        (start + LOAD_WINDOW, [sam.person_id, vera.person_id]),
        (start + LOAD_WINDOW + timedelta(microseconds=1), [vera.person_id, sam.person_id]),
    ):
        ranked = await store.run(lambda tx, at=at: ranked_at(tx, at))
        assert [v.person_id for v in ranked] == expected
        assert drift(tmp_path / "test.db") == []


async def test_moving_the_window_recounts_only_those_whose_claims_left_it(store, clock, tmp_path):
    """Moving the window forward recounts the volunteers whose oldest counted claim fell out,
    and nobody else."""
    db = tmp_path / "test.db"
    start = clock.now()

    async def history(tx: Transaction) -> tuple[Member, Member]:
        riley = await tx.member(member("riley"), start)
        vera = await tx.member(member("vera"), start)
        sam = await tx.member(member("sam"), start)
        for volunteer in (vera, sam):
            await tx.save_volunteer(volunteer, frozenset({"python"}), None)
        await _claimed(tx, riley, vera, start - timedelta(days=20))
        await _claimed(tx, riley, sam, start)
        return vera, sam

    await _move_window(store, start - LOAD_WINDOW)
    vera, sam = await store.run(history)
    with sqlite3.connect(db) as raw:  # a marker on sam: a recount would overwrite it
        raw.execute(
            "UPDATE volunteers SET recent_claims = 99 WHERE person_id = ?", (sam.person_id,)
        )
    await _move_window(store, start - LOAD_WINDOW + timedelta(days=11))
    with sqlite3.connect(db) as raw:
        loads = dict(raw.execute("SELECT person_id, recent_claims FROM volunteers"))
    assert (loads[vera.person_id], loads[sam.person_id]) == (0, 99)
    assert drift(db) == [("volunteer", sam.person_id)]  # the marker, and nothing else


async def test_a_window_moved_back_recounts_everyone(store, clock, tmp_path):
    """After the clock goes back, the loads again count the claims the earlier window covers."""
    db = tmp_path / "test.db"
    start = clock.now()

    async def history(tx: Transaction) -> tuple[Member, Member]:
        riley = await tx.member(member("riley"), start)
        vera = await tx.member(member("vera"), start)
        await tx.save_volunteer(vera, frozenset({"python"}), None)
        await _claimed(tx, riley, vera, start - timedelta(days=40))
        return riley, vera

    async def loads(tx: Transaction) -> None:
        assert await _loads(tx, "python", riley.person_id, start + LOAD_WINDOW) == [
            (vera.person_id, 1, 0)
        ]
        assert await _loads(tx, "python", riley.person_id, start - timedelta(days=20)) == [
            (vera.person_id, 1, 1)
        ]

    riley, vera = await store.run(history)
    await _move_window(store, start)
    assert drift(db) == []
    await store.run(loads)
    assert drift(db) == []


# --- choosing ------------------------------------------------------------------------------------


async def test_rank_candidates_walks_one_index_slice_per_topic(store, clock):
    """The ranking query reads each topic's volunteers through the ranking index, in order, and
    never scans a table: its cost does not grow with the number of volunteers."""
    statements: list[str] = []
    riley = await store.run(lambda tx: tx.member(member("riley"), clock.now()))
    await store._db.set_trace_callback(statements.append)
    await store.run(
        lambda tx: tx.rank_candidates(
            ["go", "python"],
            requester_person_id=riley.person_id,
            now=clock.now(),
            recent_since=clock.now() - LOAD_WINDOW,
            limit=12,
            exclude={5, 6},
        )
    )
    await store._db.set_trace_callback(None)
    [query] = [s for s in statements if "volunteer_topics t JOIN" in s]
    rows = await store.run(lambda tx: tx._rows("EXPLAIN QUERY PLAN " + query))
    plan = [r[3] for r in rows]
    walks = [step for step in plan if "volunteer_topics_rank" in step]
    assert len(walks) == 2
    assert all(step.startswith("SEARCH t USING COVERING INDEX") for step in walks)
    assert [s for s in plan if s.startswith("SCAN") and ("SCAN v" in s or "SCAN t" in s)] == []
    sorts = [s for s in plan if "ORDER BY" in s]  # only the union's few rows, and the chosen
    assert sorts == ["USE TEMP B-TREE FOR ORDER BY"] * 2


@pytest.mark.parametrize("seed", range(6))
async def test_random_histories_keep_the_loads_exact_and_the_ranking_equal(seed, tmp_path):
    """Random claims, releases, completions, cancels, expiries, merges, splits, forgets, pauses,
    quiet hours and notifications over weeks: after every step the stored loads match a
    recount, and the store ranks the available volunteers as `rank` over all candidates does."""
    rng = random.Random(seed)
    clock = FakeClock()
    path = tmp_path / "random.db"
    names = [f"p{i:02d}" for i in range(14)]
    asks = 0

    async def step_and_ask(tx: Transaction, ask: bool) -> bool:
        """One random step, then maybe an ask; True if the ask chose someone."""
        await _random_step(tx, rng, clock, names)
        if not ask:
            return False
        who = await tx.member(member(rng.choice(names)), clock.now())
        topics = tuple(rng.sample(TOPICS, rng.randint(1, 3)))
        limit = rng.randint(1, 8)
        exclude = frozenset(rng.sample(range(1, 20), rng.randint(0, 3)))
        args = (tx, topics, who.person_id, clock.now())
        expected = await ranked_by_rank(*args, limit=limit, exclude=exclude)
        assert await ranked_by_store(*args, limit=limit, exclude=exclude) == expected
        return bool(expected)

    async with await SqliteStore.open(path) as store:
        for step in range(160):
            asks += await store.run(lambda tx, ask=step % 3 == 0: step_and_ask(tx, ask))
            assert drift(path) == [], f"step {step}"
            clock.advance(minutes=rng.choice((1, 30, 600, 3000)))
    assert asks > 20  # the asks did choose someone, mostly


async def _random_step(tx: Transaction, rng: random.Random, clock: FakeClock, names) -> None:
    now = clock.now()
    actor = await tx.member(member(rng.choice(names)), now)
    other = await tx.member(member(rng.choice(names)), now)
    roll = rng.random()
    if roll < 0.15:
        paused = rng.choice((None, None, now + timedelta(hours=2), now - timedelta(hours=2)))
        await tx.save_volunteer(actor, frozenset(rng.sample(TOPICS, rng.randint(1, 3))), paused)
    elif roll < 0.2:
        quiet = rng.choice((None, QuietHours(start="00:00", end="23:59", timezone="UTC")))
        await tx.set_quiet(actor.person_id, quiet)
    elif roll < 0.45:
        if actor.person_id != other.person_id:
            await _claimed(tx, other, actor, now - timedelta(days=rng.choice((0, 0, 12, 29, 31))))
    elif roll < 0.7:
        held = await tx.requests_of(actor.person_id)
        if held:
            request = rng.choice(held)
            ends = (Status.OPEN, Status.DONE, Status.CANCELLED)
            after = rng.choice(ends if request.status is Status.CLAIMED else ends[2:])
            if request.status is Status.OPEN and rng.random() < 0.5:
                after = Status.EXPIRED
            await tx.change_status(request.id, request.status, after, actor=actor, at=now)
            if after is Status.EXPIRED and rng.random() < 0.5:
                await tx.change_status(request.id, after, Status.OPEN, actor=actor, at=now)
    elif roll < 0.8:
        await tx.mark_notified(sorted({actor.person_id, other.person_id}), now)
    elif roll < 0.86:
        if actor.person_id != other.person_id:
            await tx.merge_persons(keep=actor.person_id, merge=other.person_id)
    elif roll < 0.92:
        if await tx.identities(actor.person_id) > 1:
            await tx.split_member(actor, now)
    elif roll < 0.95:
        await tx.forget_person(actor.person_id)
    else:
        await tx.remove_volunteer(actor.person_id)


# --- migration -----------------------------------------------------------------------------------


def _version_4_file(path: Path, now: datetime) -> None:
    """Persons 1-8 (1 asks; 2-8 volunteer) and 24 requests claimed over 60 days, at version 4."""
    ts = [(now - timedelta(days=d)).isoformat(timespec="microseconds") for d in range(60)]
    with sqlite3.connect(path) as raw:
        raw.executescript(
            "\n".join(sql for number, sql in migrations() if number <= 4)
            + "\nPRAGMA user_version = 4;"
        )
        for i in range(1, 9):
            raw.execute("INSERT INTO persons VALUES (?, ?)", (i, ts[59]))
            raw.execute(
                "INSERT INTO members VALUES ('console', 'local', ?, ?, ?)", (f"u{i}", f"u{i}", i)
            )
        for i in range(2, 9):
            raw.execute(
                "INSERT INTO volunteers (person_id, platform, community_id, user_id, "
                "last_notified_at) VALUES (?, 'console', 'local', ?, ?)",
                (i, f"u{i}", ts[i % 3] if i % 2 else None),
            )
            raw.executemany(
                "INSERT INTO volunteer_topics VALUES (?, ?)", [(t, i) for t in TOPICS[: 1 + i % 3]]
            )
        for rid in range(1, 25):
            claimer, age = 2 + rid % 7, (rid * 7) % 59
            status = ("claimed", "done", "cancelled")[rid % 3]
            holder = ("console", "local", f"u{claimer}", claimer, ts[age])
            raw.execute(
                "INSERT INTO requests (id, link, topics, note, requester_platform, "
                "requester_community, requester_user, requester_person, origin_channel_id, "
                "status, created_at, updated_at, claimer_platform, claimer_community, "
                "claimer_user, claimer_person, claimed_at) VALUES (?, 'https://e.x', 'python', "
                "'', 'console', 'local', 'u1', 1, 'reviews', ?, ?, ?, ?, ?, ?, ?, ?)",
                (rid, status, ts[age], ts[age], *(holder if status == "claimed" else [None] * 5)),
            )
            raw.execute(
                "INSERT INTO claims (request_id, person_id, status, claimed_at) "
                "VALUES (?, ?, ?, ?)",
                (rid, claimer, "active" if status == "claimed" else "done", ts[age]),
            )


async def test_migration_0005_backfills_the_loads_of_an_existing_file(tmp_path: Path):
    """A file at schema version 4 reopens with stored loads that match a recount, and the store
    ranks its volunteers as `rank` over all candidates does."""
    path = tmp_path / "v4.db"
    now = datetime.now(UTC)
    _version_4_file(path, now)
    async with await SqliteStore.open(path) as store:
        assert await store.schema_version() == migrations()[-1][0]
        assert drift(path) == []
        with sqlite3.connect(path) as raw:
            active, recent = raw.execute(
                "SELECT SUM(active_claims), SUM(recent_claims) FROM volunteers"
            ).fetchone()
        assert (active, 0 < recent < 24) == (8, True)

        async def compare(tx: Transaction) -> None:
            for topics in (("python",), ("go", "rust"), ("writing",), TOPICS):
                for limit in (1, 3, 7):
                    args = (tx, topics, 1, now)
                    expected = await ranked_by_rank(*args, limit=limit)
                    assert await ranked_by_store(*args, limit=limit) == expected

        await store.run(compare)
    assert drift(path) == []
