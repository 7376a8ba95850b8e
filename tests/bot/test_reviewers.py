"""Requests that want several reviewers (`x2`): slots in bot.transitions.decide, holders in
bot.texts, and the buttons a post offers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot import texts
from bot.model import ButtonAction, Member, Request, Status
from bot.transitions import Action, Refusal, Transition, buttons, decide
from tests import factories
from tests.factories import person

RILEY = person("riley", 1)  # the requester
SAM = person("sam", 2)
VERA = person("vera", 3)
ALEX = person("alex", 4)  # a bystander (an admin when the test says so)
OPEN, CLAIMED, DONE = Status.OPEN, Status.CLAIMED, Status.DONE


def request(
    status: Status = OPEN,
    *claimers: Member,
    wanted: int = 2,
    finished: tuple[Member, ...] = (),
) -> Request:
    """Request #42 by Riley wanting `wanted` reviewers, with these claimers (some finished)."""
    return factories.request(status, *claimers, requester=RILEY, wanted=wanted, finished=finished)


def act(req: Request, action: Action, actor: Member, *, admin: bool = False) -> object:
    return decide(req, action, actor_person_id=actor.person_id, is_admin=admin)


# One row per case: the request, the action, who acts, admin?, and what decide answers.
CASES = [
    # N=1 is the single-reviewer machine, unchanged.
    ("n1-claim", request(wanted=1), Action.CLAIM, SAM, False, Transition(OPEN, CLAIMED)),
    (
        "n1-done",
        request(CLAIMED, SAM, wanted=1),
        Action.DONE,
        SAM,
        False,
        Transition(CLAIMED, DONE),
    ),
    (
        "n1-release",
        request(CLAIMED, SAM, wanted=1),
        Action.RELEASE,
        SAM,
        False,
        Transition(CLAIMED, OPEN),
    ),
    # N=2: the first claim leaves a slot, the second fills it.
    ("first-slot", request(), Action.CLAIM, SAM, False, Transition(OPEN, OPEN)),
    ("last-slot", request(OPEN, SAM), Action.CLAIM, VERA, False, Transition(OPEN, CLAIMED)),
    ("full", request(CLAIMED, SAM, VERA), Action.CLAIM, ALEX, False, "claimed by sam, vera"),
    ("twice", request(OPEN, SAM), Action.CLAIM, SAM, False, "already hold request #42"),
    ("own", request(OPEN, SAM), Action.CLAIM, RILEY, False, "your own request #42"),
    # Release reopens a slot and ends only the releaser's claim.
    (
        "release-full",
        request(CLAIMED, SAM, VERA),
        Action.RELEASE,
        VERA,
        False,
        Transition(CLAIMED, OPEN, only=VERA.person_id),
    ),
    (
        "release-partial",
        request(OPEN, SAM),
        Action.RELEASE,
        SAM,
        False,
        Transition(OPEN, OPEN, only=SAM.person_id),
    ),
    # Done ends the doer's claim; the last one of a full request finishes it.
    (
        "partial-done",
        request(CLAIMED, SAM, VERA),
        Action.DONE,
        SAM,
        False,
        Transition(CLAIMED, CLAIMED, only=SAM.person_id),
    ),
    (
        "last-done",
        request(CLAIMED, SAM, VERA, finished=(SAM,)),
        Action.DONE,
        VERA,
        False,
        Transition(CLAIMED, DONE, only=VERA.person_id),
    ),
    (
        "done-twice",
        request(CLAIMED, SAM, VERA, finished=(SAM,)),
        Action.DONE,
        SAM,
        False,
        "held by vera",
    ),
    (
        "done-before-full",
        request(OPEN, SAM),
        Action.DONE,
        SAM,
        False,
        Transition(OPEN, OPEN, only=SAM.person_id),
    ),
    ("stranger-done", request(CLAIMED, SAM, VERA), Action.DONE, ALEX, False, "held by sam, vera"),
    # An admin who holds nothing acts on every active claim.
    (
        "admin-release",
        request(CLAIMED, SAM, VERA),
        Action.RELEASE,
        ALEX,
        True,
        Transition(CLAIMED, OPEN),
    ),
    ("admin-done", request(OPEN, SAM), Action.DONE, ALEX, True, Transition(OPEN, DONE)),
    ("nothing-held", request(), Action.RELEASE, ALEX, True, "is open, not claimed"),
    # Cancel (and close enough) ends every active claim; a held request does not expire.
    (
        "cancel",
        request(CLAIMED, SAM, VERA),
        Action.CANCEL,
        RILEY,
        False,
        Transition(CLAIMED, Status.CANCELLED),
    ),
    ("no-expiry-held", request(OPEN, SAM), Action.EXPIRE, ALEX, True, "cannot be claimed"),
]


@pytest.mark.parametrize(
    ("req", "action", "actor", "admin", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_slots(req: Request, action: Action, actor: Member, admin: bool, expected: object) -> None:
    """Each case decides as the table says: a Transition, or a refusal containing the words."""
    result = act(req, action, actor, admin=admin)
    if isinstance(expected, Transition):
        assert expected == result
    else:
        assert isinstance(result, Refusal), result
        assert str(expected) in result.reason


def test_claimer_is_the_first_claimer() -> None:
    """`claimer` stays the first holder, whichever field a request was built with."""
    assert request(OPEN, SAM, VERA).claimer == SAM
    assert request(CLAIMED, wanted=1).claimer is None
    assert replace(request(wanted=1), claimer=SAM).claimers == (SAM,)


@pytest.mark.parametrize(
    ("req", "shown"),
    [
        (request(), "open · 0 of 2 reviewers"),
        (request(OPEN, SAM), "open · 👀 sam · 1 of 2 reviewers"),
        (request(CLAIMED, VERA, SAM), "claimed · 👀 vera, sam · 2 of 2"),
        (request(CLAIMED, VERA, SAM, finished=(VERA,)), "claimed · 👀 sam · ✅ vera · 2 of 2"),
        (request(DONE, VERA, SAM, finished=(VERA, SAM)), "done · ✅ vera, sam · 2 of 2"),
        (request(CLAIMED, SAM, wanted=1), "claimed by sam"),
    ],
)
def test_status_shows_the_holders(req: Request, shown: str) -> None:
    """A request with several slots shows who holds them and how many are taken."""
    assert shown == texts.status_text(req)


@pytest.mark.parametrize(
    ("req", "offered"),
    [
        (request(wanted=1), (ButtonAction.CLAIM,)),
        (request(CLAIMED, SAM, wanted=1), (ButtonAction.DONE, ButtonAction.RELEASE)),
        (request(OPEN, SAM), (ButtonAction.CLAIM, ButtonAction.DONE, ButtonAction.RELEASE)),
        (request(CLAIMED, SAM, VERA), (ButtonAction.DONE, ButtonAction.RELEASE)),
        (request(DONE, SAM, VERA, finished=(SAM, VERA)), ()),
    ],
)
def test_buttons_follow_the_slots(req: Request, offered: tuple[ButtonAction, ...]) -> None:
    """Claim while a slot is free, Done and Release while someone reviews."""
    assert offered == buttons(req)
