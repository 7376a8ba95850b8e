"""The community simulator (bench/community.py): a tiny run keeps the bot's hard rules and is
reproducible."""

from __future__ import annotations

import pytest

from bench import community
from bot.model import Status

TINY = community.Size(volunteers=30, takers=20, weeks=1)


@pytest.fixture(scope="module")
def outcomes():
    return {policy: community.simulate(policy, TINY, seed=3) for policy in community.POLICIES}


def test_nobody_is_asked_to_review_their_own_request(outcomes):
    """No policy notifies the requester of their own request, and nobody claims it."""
    for outcome in outcomes.values():
        assert outcome.asks
        for ask in outcome.asks:
            assert ask.requester.pid not in ask.notified
            assert ask.claimer != ask.requester.pid
        assert outcome.violations == []


def test_no_volunteer_holds_more_claims_than_their_capacity(outcomes):
    """At every moment each volunteer's open claims are within their capacity."""
    for outcome in outcomes.values():
        moves: dict[int, list[tuple[float, int]]] = {}
        for ask in outcome.asks:
            if ask.claimer is not None:
                assert ask.claimed is not None
                assert ask.done is not None
                moves.setdefault(ask.claimer, []).append((ask.claimed, 1))
                moves.setdefault(ask.claimer, []).append((ask.done, -1))
        for pid, steps in moves.items():
            held = peak = 0
            for _, step in sorted(steps):  # at equal times a release sorts before a claim
                held += step
                peak = max(peak, held)
            assert peak <= outcome.people[pid - 1].capacity


def test_every_request_ends_done_or_expired(outcomes):
    """The run goes on until no request is left open or claimed."""
    for outcome in outcomes.values():
        assert {a.status for a in outcome.asks} <= {Status.DONE, Status.EXPIRED}


def test_only_the_bots_policy_auto_pauses(outcomes):
    """Baselines never pause anyone; the bot's policy pauses only volunteers it had notified at
    least three times."""
    for policy, outcome in outcomes.items():
        paused = [p for p in outcome.people if p.auto_paused]
        if policy in community.POLICIES[:2] or policy == community.POLICIES[4]:
            assert paused == []
        assert all(p.notified >= 3 for p in paused)
    assert any(p.auto_paused for p in outcomes[community.POLICIES[2]].people)


def test_the_same_seed_gives_the_same_table():
    """Two runs with one seed print the same table; another seed prints another."""
    first = community.table(TINY, seed=5).markdown()
    assert first == community.table(TINY, seed=5).markdown()
    assert first != community.table(TINY, seed=6).markdown()


def test_gini_of_equal_and_of_one_sided_loads():
    """Equal loads give 0; one volunteer doing everything among four gives 3/4."""
    assert community.gini([2, 2, 2, 2]) == 0
    assert community.gini([0, 0, 0, 8]) == pytest.approx(0.75)
