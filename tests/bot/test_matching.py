"""Who hears about a request: bot.matching.is_eligible and bot.matching.rank, and the store
path of `choose`, which must choose exactly what `rank` over every candidate chooses."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import effects, reciprocity, texts
from bot.matching import is_eligible, rank
from bot.model import Member, Platform, QuietHours, Status, Volunteer
from bot.usecases import asking
from bot.usecases.base import Context, Rules
from storage.base import Transaction
from tests.factories import member

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
REQUESTER = 1
NEVER = datetime.min.replace(tzinfo=UTC)
HOUR = timedelta(hours=1)
MANY = ("python", "go", "rust", "writing", "design", "sql")


def volunteer(person_id: int, *topics: str, **overrides: object) -> Volunteer:
    """A volunteer for `topics` (python by default), free and never notified unless overridden."""
    return Volunteer(
        person_id=person_id,
        member=member(f"v{person_id}"),
        topics=frozenset(topics or ("python",)),
        **overrides,  # type: ignore[arg-type]
    )


def ranked(
    volunteers: Iterable[Volunteer], *, topics: Iterable[str] = ("python",), limit: int = 10
) -> list[int]:
    """The person ids `rank` picks for a request by REQUESTER at NOW."""
    chosen = rank(volunteers, topics=topics, requester_person_id=REQUESTER, now=NOW, limit=limit)
    return [v.person_id for v in chosen]


def eligible(v: Volunteer, topics: Iterable[str] = ("python",)) -> bool:
    return is_eligible(v, topics=frozenset(topics), requester_person_id=REQUESTER, now=NOW)


def ranking_key(v: Volunteer) -> tuple[int, datetime, int]:
    """The documented order: fewest active claims, least recently notified, lowest person id."""
    return (v.active_claims, v.last_notified_at or NEVER, v.person_id)


def test_free_volunteer_with_a_shared_topic_is_eligible() -> None:
    """A volunteer who shares a topic, is not paused and is under their cap is picked."""
    assert ranked([volunteer(2, "go", "python")]) == [2]


def test_requester_is_never_picked() -> None:
    """The requester is not notified of their own request, even as a perfect match."""
    assert not eligible(volunteer(REQUESTER))
    assert ranked([volunteer(REQUESTER), volunteer(2, active_claims=2)]) == [2]


def test_paused_volunteer_is_excluded() -> None:
    """A volunteer paused until a future moment is not picked."""
    assert ranked([volunteer(2, paused_until=NOW + timedelta(minutes=1))]) == []


def test_expired_pause_is_included() -> None:
    """A volunteer whose pause has ended (or ends right now) is picked again."""
    assert ranked(
        [volunteer(2, paused_until=NOW - timedelta(days=1)), volunteer(3, paused_until=NOW)]
    ) == [2, 3]


def test_volunteer_at_capacity_is_excluded() -> None:
    """A volunteer holding as many claims as their cap is not picked; one under it is."""
    assert ranked(
        [
            volunteer(2, max_open_claims=2, active_claims=2),
            volunteer(3, max_open_claims=2, active_claims=1),
        ]
    ) == [3]


def test_volunteer_without_a_shared_topic_is_excluded() -> None:
    """A volunteer whose topics do not meet the request's is not picked."""
    assert ranked([volunteer(2, "go", "rust")], topics=("python", "writing")) == []


def test_fewest_active_claims_come_first() -> None:
    """Volunteers with fewer active claims rank before busier ones."""
    busy, busier = volunteer(3, active_claims=1), volunteer(2, active_claims=2)
    assert ranked([busier, busy, volunteer(4)]) == [4, 3, 2]


def test_least_recently_notified_come_next() -> None:
    """Among equally busy volunteers the never-notified rank first, then the longest ago."""
    assert ranked(
        [
            volunteer(2, last_notified_at=NOW - timedelta(days=3)),
            volunteer(3, last_notified_at=NOW - timedelta(hours=1)),
            volunteer(4),
        ]
    ) == [4, 2, 3]


def test_person_id_breaks_remaining_ties() -> None:
    """Volunteers equal in load and notification time rank by person id."""
    at = NOW - timedelta(hours=2)
    assert ranked([volunteer(p, last_notified_at=at) for p in (7, 2, 5)]) == [2, 5, 7]


def test_limit_is_respected() -> None:
    """No more than `limit` volunteers are picked, the best ones first."""
    assert ranked([volunteer(p) for p in (5, 4, 3, 2)], limit=2) == [2, 3]


def test_zero_limit_picks_nobody() -> None:
    """A limit of zero picks nobody."""
    assert ranked([volunteer(2)], limit=0) == []


def test_request_without_topics_reaches_nobody() -> None:
    """A request with no topics notifies no volunteer directly."""
    assert ranked([volunteer(2), volunteer(3, "go")], topics=()) == []


VOLUNTEERS = st.builds(
    Volunteer,
    person_id=st.integers(1, 8),
    member=st.just(member("v")),
    topics=st.frozensets(st.sampled_from(["python", "go", "rust", "writing"]), max_size=3),
    max_open_claims=st.integers(0, 3),
    paused_until=st.none() | st.integers(-3, 3).map(lambda h: NOW + timedelta(hours=h)),
    active_claims=st.integers(0, 4),
    last_notified_at=st.none() | st.integers(0, 5).map(lambda h: NOW - timedelta(hours=h)),
)


@given(
    st.lists(VOLUNTEERS, max_size=8, unique_by=lambda v: v.person_id),
    st.frozensets(st.sampled_from(["python", "go", "rust", "writing"]), max_size=2),
    st.integers(0, 10),
)
def test_rank_picks_the_best_eligible_volunteers(
    volunteers: list[Volunteer], topics: frozenset[str], limit: int
) -> None:
    """Rank returns min(limit, eligible) eligible volunteers, sorted, none worse than the rest."""
    allowed = [v for v in volunteers if eligible(v, topics)]
    chosen = rank(volunteers, topics=topics, requester_person_id=REQUESTER, now=NOW, limit=limit)
    assert all(v in allowed for v in chosen)
    assert min(limit, len(allowed)) == len(chosen)
    assert sorted(chosen, key=ranking_key) == chosen
    left_out = [v for v in allowed if v not in chosen]
    assert all(ranking_key(c) < ranking_key(v) for c in chosen for v in left_out)


# --- the store path: `choose` ranks in SQL first, and must choose exactly what rank over all does


class _UndoError(Exception):
    """Raised with a transaction's result, to roll the transaction back once it is read."""


async def _choose_over_all_candidates(ctx, request, exclude=frozenset()):
    """`choose` as it was before the store ranked: rank over every candidate, counted afresh."""
    tx, now = ctx.tx, ctx.now
    candidates = [
        v
        for v in await tx.candidates(request.topics, now - reciprocity.LOAD_WINDOW)
        if v.person_id not in exclude
    ]
    silent = reciprocity.silent(candidates, request, now, after=ctx.rules.auto_pause_after)
    told = []
    for volunteer in silent:
        await tx.save_volunteer(volunteer.member, volunteer.topics, now + asking.AUTO_PAUSE)
        if volunteer.member.platform in ctx.platforms:
            text = texts.AUTO_PAUSED.format(count=volunteer.ignored_streak)
            told.append(effects.direct(volunteer.member, text))
    chosen = rank(
        [v for v in candidates if v not in silent],
        topics=request.topics,
        requester_person_id=request.requester.person_id,
        now=now,
        limit=ctx.rules.notify_limit,
    )
    return chosen, told


async def _populate(store, rng: random.Random, size: int) -> list[Member]:
    """`size` people, most volunteering: some paused, at their cap, in quiet hours, ignoring
    notifications, tied on every ranking key, with claims from 0 to 45 days old."""

    async def work(tx: Transaction) -> list[Member]:
        people = [await tx.member(member(f"p{i:03d}"), NOW) for i in range(size)]
        asker = await tx.member(member("asker"), NOW)
        for person in people:
            if rng.random() < 0.85:
                paused = rng.choice([None] * 8 + [NOW + timedelta(hours=1), NOW, NOW - HOUR])
                await tx.save_volunteer(
                    person, frozenset(rng.sample(MANY, rng.randint(1, 3))), paused
                )
            if rng.random() < 0.1:
                asleep = rng.choice(["07:00-09:00", "22:00-09:00", "09:00-17:00"]).split("-")
                quiet = QuietHours(start=asleep[0], end=asleep[1], timezone="UTC")
                await tx.set_quiet(person.person_id, quiet)
        busy = rng.choice(((0, 0, 0, 1, 2, 3), (0, 1, 1, 1, 2), (1, 1, 2)))
        for person in people:
            for _ in range(rng.choice(busy)):
                age = timedelta(days=rng.choice((0, 3, 29, 30, 31, 45)))
                request = await tx.add_request(
                    link=f"https://example.com/{rng.random()}",
                    topics=("python",),
                    note="",
                    requester=asker,
                    origin_channel_id="reviews",
                    at=NOW - age,
                )
                await tx.change_status(
                    request.id, Status.OPEN, Status.CLAIMED, actor=person, at=NOW - age
                )
                if rng.random() < 0.6:
                    await tx.change_status(
                        request.id, Status.CLAIMED, Status.DONE, actor=person, at=NOW - age
                    )
        for _ in range(size // 3):  # groups notified at one moment tie on last_notified_at
            group = rng.sample(people, rng.randint(1, 6))
            at = NOW - timedelta(hours=rng.choice((1, 2, 30)))
            for _ in range(3 if rng.random() < 0.1 else 1):
                await tx.mark_notified([p.person_id for p in group], at)
        return people

    return await store.run(work)


async def _dry_choose(store, pick, *, requester, topics, rules, exclude=frozenset()):
    """Run `pick` (a `choose`) for a new request, read what it did, and roll it all back:
    (chosen person ids in order, the DMs to the auto-paused, every paused candidate's id)."""

    async def work(tx: Transaction) -> None:
        ctx = Context(
            tx=tx,
            member=requester,
            now=NOW,
            rules=rules,
            platforms=frozenset({Platform.CONSOLE}),
        )
        request = await tx.add_request(
            link="https://example.com/ask",
            topics=topics,
            note="",
            requester=requester,
            origin_channel_id="reviews",
            at=NOW,
        )
        chosen, told = await pick(ctx, request, exclude)
        paused = [v.person_id for v in await tx.candidates(topics, NOW) if v.paused_until]
        raise _UndoError(([v.person_id for v in chosen], told, paused))

    with pytest.raises(_UndoError) as undo:
        await store.run(work)
    return undo.value.args[0]


@pytest.mark.parametrize("seed", range(4))
async def test_store_path_chooses_what_rank_over_all_candidates_chooses(store, seed):
    """For random populations, `choose` (ranking in the store, then `rank`) notifies the same
    volunteers in the same order, and pauses and tells the same silent ones, as `rank` given
    every candidate, for any topics, requester, notify limit and already-notified set."""
    rng = random.Random(seed)
    people = await _populate(store, rng, 150)
    chosen_any = told_any = 0
    for _ in range(40):
        requester = rng.choice(people)
        rules = Rules(notify_limit=rng.choice((0, 1, 1, 3, 3, 5, 12)))
        exclude = frozenset(p.person_id for p in rng.sample(people, rng.choice((0, 0, 5))))
        topics = tuple(rng.sample(MANY, rng.randint(1, 3)))
        args = {"requester": requester, "topics": topics, "rules": rules, "exclude": exclude}
        new = await _dry_choose(store, asking.choose, **args)
        assert new == await _dry_choose(store, _choose_over_all_candidates, **args), args
        chosen_any += bool(new[0])
        told_any += bool(new[1])
    assert (chosen_any > 20, told_any > 0) == (True, True)


async def test_choose_fetches_more_when_quiet_hours_fill_a_batch(store):
    """When quiet hours rule out every volunteer of the store's first batch, `choose` asks for
    more and finds the best volunteers who are awake."""
    asleep = QuietHours(start="07:00", end="09:00", timezone="UTC")  # NOW is 08:00 UTC

    async def work(tx: Transaction) -> tuple[Member, list[Member]]:
        riley = await tx.member(member("riley"), NOW)
        people = [await tx.member(member(f"v{i:02d}"), NOW) for i in range(30)]
        for person in people:
            await tx.save_volunteer(person, frozenset({"python"}), None)
        for person in people[:25]:
            await tx.set_quiet(person.person_id, asleep)
        await tx.mark_notified([p.person_id for p in people[25:]], NOW - HOUR)
        return riley, people

    riley, people = await store.run(work)
    args = {"requester": riley, "topics": ("python",), "rules": Rules(notify_limit=3)}
    chosen, _, _ = await _dry_choose(store, asking.choose, **args)
    assert chosen == [p.person_id for p in people[25:28]]
    assert (await _dry_choose(store, _choose_over_all_candidates, **args))[0] == chosen
