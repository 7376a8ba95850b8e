"""Who hears about a request: bot.matching.is_eligible and bot.matching.rank."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.matching import is_eligible, rank
from bot.model import Volunteer
from tests.factories import member

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
REQUESTER = 1
NEVER = datetime.min.replace(tzinfo=UTC)


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
